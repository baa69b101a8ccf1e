/**
 * The web UI with API_TOKENS set, in Chromium: the login page, the API's
 * refusal shown next to the token field, a session cookie the scripts
 * cannot read, the pages once logged in, and logging out.
 */
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { killAll, startApp, type AppProcess, startRedis, type RedisServer } from '@postoffice/test-support';
import { NARROW, WIDE, launch, open, screenshot, type Tab } from './browser.js';

const TOKEN = 'ui-test-token-0123456789abcdef';

describe('web UI login when API_TOKENS is set', function () {
  this.timeout(120_000);
  let redis: RedisServer;
  let producer: AppProcess;
  let browser: Browser;
  let tab: Tab;
  let page: Page;

  before(async () => {
    redis = await startRedis();
    producer = await startApp('producer', { REDIS_URL: redis.url, API_TOKENS: TOKEN });
    browser = await launch();
    tab = await open(browser, WIDE);
    page = tab.page;
  });

  after(async () => {
    await browser?.close();
    if (producer) await killAll([producer]);
    await redis?.stop();
  });

  it('refuses the API without a session, and sends the browser to the login page', async () => {
    const res = await fetch(`${producer.url}/api/topics`);
    expect(res.status).to.equal(401);
    await page.goto(`${producer.url}/#/topics`);
    await page.waitForURL(/#\/login$/);
    await page.locator('#f-token').waitFor();
    expect(await page.locator('.sidebar').isVisible()).to.equal(false);
    await screenshot(page, 'login');
    const narrow = await open(browser, NARROW);
    try {
      await narrow.page.goto(`${producer.url}/`);
      await narrow.page.locator('#f-token').waitFor();
      await screenshot(narrow.page, 'login');
    } finally {
      await narrow.context.close();
    }
  });

  it("shows the API's answer to a wrong token next to the field", async () => {
    await page.fill('#f-token', 'not-the-token-at-all');
    await page.click('button:has-text("Log in")');
    await page.locator('.field-error[data-error-for="token"]').filter({ hasText: /.+/ }).waitFor();
    expect(page.url()).to.match(/#\/login$/);
  });

  it('logs in with a token, gets an HttpOnly cookie, and lands on the page it asked for', async () => {
    await page.fill('#f-token', TOKEN);
    await page.click('button:has-text("Log in")');
    await page.waitForURL(/#\/topics$/);
    await page.locator('h1', { hasText: 'Topics' }).waitFor();
    const cookie = (await tab.context.cookies()).find((c) => c.name === 'po_session');
    expect(cookie?.httpOnly).to.equal(true);
    expect(cookie?.sameSite).to.equal('Strict');
    expect(await page.evaluate('document.cookie')).not.to.include('po_session');

    await page.fill('#f-name', 'secured');
    await page.fill('#f-origin_host', 'secure.example');
    await page.click('button:has-text("Create topic")');
    await page.locator('tr[data-topic="secured"]').waitFor();
  });

  it('goes back to the login page when the API answers 401 (the session ended), then returns where it was', async () => {
    await tab.context.clearCookies();
    await page.click('.nav a:has-text("Publishers")');
    await page.waitForURL(/#\/login$/);
    await page.locator('.toast', { hasText: 'log in again' }).waitFor();
    await page.fill('#f-token', TOKEN);
    await page.click('button:has-text("Log in")');
    await page.waitForURL(/#\/publishers$/);
    await page.locator('h1', { hasText: 'Publishers' }).waitFor();
  });

  it('logs out: the cookie is gone and the pages ask for the token again', async () => {
    await page.click('#logout');
    await page.waitForURL(/#\/login$/);
    expect((await tab.context.cookies()).find((c) => c.name === 'po_session')).to.equal(undefined);
    await page.goto(`${producer.url}/#/publishers`);
    await page.waitForURL(/#\/login$/);
    expect(tab.problems).to.deep.equal([]);
  });
});
