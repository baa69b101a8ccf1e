/**
 * Test support for the web UI: Debian's Chromium driven by playwright-core
 * (one browser per test file, reused by its tests), the errors each page
 * reports, screenshots under test-output/ui at the repository root, and the
 * world a test file runs in (`uiWorld`).
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { killAll, startApp, startRedis, type AppProcess, type RedisServer } from '@postoffice/test-support';

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

/** What `uiWorld` sets up for a test file of the web UI (read once its before hook ran). */
export interface UiWorld {
  readonly redis: RedisServer;
  readonly producer: AppProcess;
  /** Undefined when the world has no consumer. */
  readonly consumer: AppProcess | undefined;
  readonly browser: Browser;
  /** A wide tab, reused by the file's tests. */
  readonly tab: Tab;
  readonly page: Page;
  /** Opens the UI at `hash` (`#/topics`) in the tab. */
  readonly visit: (hash: string) => Promise<void>;
}

/**
 * Registers, in the calling describe, the hooks of a web UI test file:
 * before, a private Redis, the producer and consumer processes (`env` to
 * both; `consumer` gives the consumer's own env when it starts, or false
 * for none), Chromium and a wide tab; after each passed test, no script
 * error or CSP violation on the tab (unless `checkProblems` is false);
 * after, all of it stopped. Receivers a file needs are started in a before
 * hook registered before this call, and closed in an after hook registered
 * after it.
 */
export function uiWorld(
  options: {
    env?: Record<string, string>;
    consumer?: false | (() => Record<string, string>);
    checkProblems?: boolean;
  } = {},
): UiWorld {
  let redis: RedisServer | undefined;
  let producer: AppProcess | undefined;
  let consumer: AppProcess | undefined;
  let browser: Browser | undefined;
  let tab: Tab | undefined;
  const ready = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the UI world is used before its before hook ran');
    return value;
  };
  const world: UiWorld = {
    get redis() {
      return ready(redis);
    },
    get producer() {
      return ready(producer);
    },
    get consumer() {
      return consumer;
    },
    get browser() {
      return ready(browser);
    },
    get tab() {
      return ready(tab);
    },
    get page() {
      return ready(tab).page;
    },
    visit: async (hash) => {
      await ready(tab).page.goto(`${ready(producer).url}/${hash}`);
    },
  };
  before(async () => {
    redis = await startRedis();
    producer = await startApp('producer', { REDIS_URL: redis.url, ...options.env });
    if (options.consumer !== false) {
      consumer = await startApp('consumer', { REDIS_URL: redis.url, ...options.env, ...options.consumer?.() });
    }
    browser = await launch();
    tab = await open(browser, WIDE);
  });
  after(async () => {
    await browser?.close();
    await killAll([producer, consumer].filter((p) => p !== undefined));
    await redis?.stop();
  });
  if (options.checkProblems ?? true) {
    afterEach(function () {
      // No script error and no CSP violation on any page.
      if (this.currentTest?.state === 'passed') expect(tab?.problems).to.deep.equal([]);
    });
  }
  return world;
}
