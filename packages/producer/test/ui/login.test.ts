/**
 * The web UI with API_TOKENS set, in Chromium: the login page, the API's
 * refusal shown next to the token field, a session cookie the scripts
 * cannot read, the pages once logged in, and logging out.
 */
import { expect } from 'chai';
import { NARROW, open, screenshot, uiWorld } from './browser.js';

const TOKEN = 'ui-test-token-0123456789abcdef';

describe('web UI login when API_TOKENS is set', function () {
  this.timeout(120_000);
  const ui = uiWorld({ env: { API_TOKENS: TOKEN }, consumer: false, checkProblems: false });

  it('refuses the API without a session, and sends the browser to the login page', async () => {
    const res = await fetch(`${ui.producer.url}/api/topics`);
    expect(res.status).to.equal(401);
    await ui.page.goto(`${ui.producer.url}/#/topics`);
    await ui.page.waitForURL(/#\/login$/);
    await ui.page.locator('#f-token').waitFor();
    expect(await ui.page.locator('.sidebar').isVisible()).to.equal(false);
    await screenshot(ui.page, 'login');
    const narrow = await open(ui.browser, NARROW);
    try {
      await narrow.page.goto(`${ui.producer.url}/`);
      await narrow.page.locator('#f-token').waitFor();
      await screenshot(narrow.page, 'login');
    } finally {
      await narrow.context.close();
    }
  });

  it("shows the API's answer to a wrong token next to the field", async () => {
    await ui.page.fill('#f-token', 'not-the-token-at-all');
    await ui.page.click('button:has-text("Log in")');
    await ui.page.locator('.field-error[data-error-for="token"]').filter({ hasText: /.+/ }).waitFor();
    expect(ui.page.url()).to.match(/#\/login$/);
  });

  it('logs in with a token, gets an HttpOnly cookie, and lands on the page it asked for', async () => {
    await ui.page.fill('#f-token', TOKEN);
    await ui.page.click('button:has-text("Log in")');
    await ui.page.waitForURL(/#\/topics$/);
    await ui.page.locator('h1', { hasText: 'Topics' }).waitFor();
    const cookie = (await ui.tab.context.cookies()).find((c) => c.name === 'po_session');
    expect(cookie?.httpOnly).to.equal(true);
    expect(cookie?.sameSite).to.equal('Strict');
    expect(await ui.page.evaluate('document.cookie')).not.to.include('po_session');

    await ui.page.fill('#f-name', 'secured');
    await ui.page.fill('#f-origin_host', 'secure.example');
    await ui.page.click('button:has-text("Create topic")');
    await ui.page.locator('tr[data-topic="secured"]').waitFor();
  });

  it('goes back to the login page when the API answers 401 (the session ended), then returns where it was', async () => {
    await ui.tab.context.clearCookies();
    await ui.page.click('.nav a:has-text("Publishers")');
    await ui.page.waitForURL(/#\/login$/);
    await ui.page.locator('.toast', { hasText: 'log in again' }).waitFor();
    await ui.page.fill('#f-token', TOKEN);
    await ui.page.click('button:has-text("Log in")');
    await ui.page.waitForURL(/#\/publishers$/);
    await ui.page.locator('h1', { hasText: 'Publishers' }).waitFor();
  });

  it('logs out: the cookie is gone and the pages ask for the token again', async () => {
    await ui.page.click('#logout');
    await ui.page.waitForURL(/#\/login$/);
    expect((await ui.tab.context.cookies()).find((c) => c.name === 'po_session')).to.equal(undefined);
    await ui.page.goto(`${ui.producer.url}/#/publishers`);
    await ui.page.waitForURL(/#\/login$/);
    expect(ui.tab.problems).to.deep.equal([]);
  });
});
