/**
 * Test support for the web UI: Debian's Chromium driven by playwright-core
 * (one browser per test file, reused by its tests), the errors each page
 * reports, and screenshots under test-output/ui at the repository root.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
export const SCREENSHOTS = `${ROOT}test-output/ui/`;

export const WIDE = { width: 1280, height: 800 };
export const NARROW = { width: 390, height: 844 };

export async function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

export interface Tab {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Script errors and console errors (CSP violations among them) seen so far. */
  readonly problems: string[];
}

export async function open(browser: Browser, viewport = WIDE): Promise<Tab> {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    // The API's 4xx answers are logged by Chromium as failed loads; the tests cause some on purpose.
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) problems.push(msg.text());
  });
  return { context, page, problems };
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const size = page.viewportSize();
  await page.screenshot({ path: `${SCREENSHOTS}${name}-${size?.width ?? 0}.png`, fullPage: true });
}
