/**
 * The dashboard in real Chromium against a real producer, consumer, Redis
 * and HTTP receivers: its figures say messages or deliveries and are true,
 * an open circuit breaker is shown with its next probe, and the charts of
 * `GET /api/stats/series` draw (uPlot, served by the producer) under the
 * page's CSP. Waits on what the page shows, never on a sleep.
 */
import { expect } from 'chai';
import { api, startReceiver, type Receiver, waitFor } from '@postoffice/test-support';
import { NARROW, WIDE, open, screenshot, type Tab, uiWorld } from './browser.js';

const ENV = { HEARTBEAT_SECONDS: '1', RETRY_POLL_MS: '100' };

describe('dashboard in Chromium', function () {
  this.timeout(120_000);
  let receiver: Receiver;
  let refusing: Receiver;
  const tabs: Tab[] = [];
  let good = '';
  let bad = '';

  before(async () => {
    receiver = await startReceiver();
    refusing = await startReceiver(() => 500);
  });
  // Each test opens its own tabs, checked below.
  const ui = uiWorld({
    env: ENV,
    consumer: () => ({ BREAKER_THRESHOLD: '2', RETRY_MAX_BACKOFF_SECONDS: '600' }),
    checkProblems: false,
  });
  after(async () => {
    await receiver?.close();
    await refusing?.close();
  });

  before(async () => {
    expect(
      (await api(ui.producer, 'POST', '/api/topics', { name: 'payments', origin_host: 'pay.example' })).status,
    ).to.equal(201);
    const created = async (target: string): Promise<string> => {
      const res = await api(ui.producer, 'POST', '/api/publishers', {
        topic: 'payments',
        type: 'http',
        target,
        seconds_retry: 300,
      });
      expect(res.status).to.equal(201);
      return String(res.json.data.id);
    };
    good = await created(`${receiver.url}/ok`);
    bad = await created(`${refusing.url}/refuses`);
    const sent = await api(ui.producer, 'POST', '/api/bulk_messages', {
      topic: 'payments',
      payload: [{ n: 1 }, { n: 2 }, { n: 3 }],
    });
    expect(sent.status).to.equal(201);
    // Three deliveries made, the other publisher's circuit open after two refusals, and a backlog sample taken.
    await waitFor(async () => {
      const { json } = await api(ui.producer, 'GET', '/api/stats');
      const rows = json.data.per_publisher as { id: string; delivered: number; circuit: unknown }[];
      return rows.find((r) => r.id === good)?.delivered === 3 && rows.find((r) => r.id === bad)?.circuit != null;
    }, 'three deliveries and an open circuit');
    // The consumer samples backlogs at its first heartbeat of each minute: when it took this minute's sample
    // before the messages came, theirs is taken at the next minute.
    await waitFor(
      async () => {
        const { json } = await api(ui.producer, 'GET', `/api/stats/series?publisher=${bad}`);
        return (json.data.points as { backlog: number | null }[]).some((p) => p.backlog === 3);
      },
      'a backlog sample of the refusing publisher',
      75_000,
      200,
    );
  });

  afterEach(function () {
    // No script error and no CSP violation (uPlot's styles, its canvas) on the page.
    if (this.currentTest?.state === 'passed') for (const t of tabs) expect(t.problems).to.deep.equal([]);
  });

  it('labels each figure as messages or deliveries, with true counts, and says which circuit is open', async () => {
    const tab = await open(ui.browser, WIDE);
    tabs.push(tab);
    const { page } = tab;
    await page.goto(`${ui.producer.url}/#/`);
    const figure = (key: string) => page.locator(`[data-stat="${key}"]`);
    await figure('received')
      .filter({ hasText: /^Received3messages$/ })
      .waitFor();
    expect(await figure('delivered').innerText()).to.match(/^Delivered\s+3\s+deliveries$/);
    // Three messages, two publishers: six deliveries, three made, three waiting (retrying after the refusal).
    expect(await figure('backlog').innerText()).to.match(/^Waiting\s+3\s+deliveries not made yet$/);
    expect(await figure('circuits').innerText()).to.match(/^Circuits open\s+1\s+publishers$/);
    expect(await page.locator(`tr[data-publisher="${good}"] [data-col="delivered"]`).innerText()).to.equal('3');
    expect(await page.locator(`tr[data-publisher="${bad}"] [data-col="delivered"]`).innerText()).to.equal('0');
    expect(await page.locator(`tr[data-publisher="${bad}"] [data-col="backlog"]`).innerText()).to.equal('3');

    const banner = page.locator('.alert[data-circuits="1"]');
    await banner.waitFor();
    expect(await banner.innerText()).to.match(new RegExp(`#${bad} \\(payments\\): (next probe in \\d|probing now)`));
    await page.locator(`tr[data-publisher="${bad}"] .badge[data-badge="circuit open"]`).waitFor();
    expect(await page.locator(`tr[data-publisher="${bad}"] [data-col="circuit"]`).innerText()).to.match(
      /^Circuit open: the target kept failing; next probe in \d/,
    );
    expect(await page.locator(`tr[data-publisher="${good}"] [data-col="circuit"]`).count()).to.equal(0);
  });

  it('charts received, delivered and failed over the last hour and day, and the backlog samples', async () => {
    const tab = await open(ui.browser, WIDE);
    tabs.push(tab);
    const { page } = tab;
    await page.goto(`${ui.producer.url}/#/`);
    const counts = page.locator('[data-summary="counts"]');
    await counts
      .filter({ hasText: /^Last hour: 3 messages received, 3 delivered, [1-9]\d* failed attempts\.$/ })
      .waitFor();
    expect(await page.locator('[data-chart="counts"] canvas').count()).to.equal(1);
    expect(await page.locator('[data-chart="backlog"] canvas').count()).to.equal(1);
    await page.locator('[data-summary="backlog"]', { hasText: /backlog at most 3/ }).waitFor();
    expect(await page.locator('[data-chart="counts"] .u-legend').textContent()).to.include('Received (messages/min)');
    // One backlog line (solid) and one oldest-age line (dashed) per publisher.
    const legend = await page.locator('[data-chart="backlog"] .u-legend').textContent();
    for (const id of [good, bad]) expect(legend).to.include(`#${id} backlog`).and.to.include(`#${id} oldest waiting`);
    expect(await page.locator('button[data-window="hour"]').getAttribute('aria-pressed')).to.equal('true');

    await page.click('button[data-window="day"]');
    await page.locator('.series-charts[data-window="day"]').waitFor();
    expect(await page.locator('button[data-window="day"]').getAttribute('aria-pressed')).to.equal('true');
    await counts.filter({ hasText: /^Last day: 3 messages received, 3 delivered/ }).waitFor();
    expect(await page.locator('.chart-panel h3').first().innerText()).to.equal('Messages per 10 minutes');
    await page.click('button[data-window="hour"]');
    await page.locator('.series-charts[data-window="hour"]').waitFor();
  });

  it('fits the screen at 1280 and 390 px, and shows no script error or CSP violation', async () => {
    for (const viewport of [WIDE, NARROW]) {
      const tab = await open(ui.browser, viewport);
      tabs.push(tab);
      const { page } = tab;
      await page.goto(`${ui.producer.url}/#/`);
      await page.locator(`tr[data-publisher="${bad}"] .badge[data-badge="circuit open"]`).waitFor();
      await page.locator('[data-summary="backlog"]', { hasText: /backlog at most 3/ }).waitFor();
      await screenshot(page, 'dashboard');
      const overflow = await page.evaluate('document.documentElement.scrollWidth - window.innerWidth');
      expect(overflow, `dashboard at ${viewport.width} px`).to.be.at.most(0);
      // Each chart's canvas fits its card.
      const widths = await page.evaluate(`[...document.querySelectorAll('.chart')].map((c) => {
        const canvas = c.querySelector('canvas');
        return [c.clientWidth, canvas ? canvas.getBoundingClientRect().width : -1];
      })`);
      for (const [box, canvas] of widths as [number, number][]) expect(canvas).to.be.within(1, box + 0.5);
      expect(tab.problems).to.deep.equal([]);
    }
  });
});
