/**
 * The web UI's true states, its publisher page, its counted confirmations
 * and its layout, in real Chromium against a real producer, consumer, Redis
 * and HTTP receivers (issue 18). Each test waits on what the page shows,
 * never on a sleep.
 */
import { expect } from 'chai';
import { api, startReceiver, type Receiver, waitFor } from '@postoffice/test-support';
import { NARROW, WIDE, open, screenshot, uiWorld } from './browser.js';

const ENV = { HEARTBEAT_SECONDS: '1', RETRY_POLL_MS: '100', BREAKER_THRESHOLD: '3', RETRY_MAX_BACKOFF_SECONDS: '60' };

describe('web UI in Chromium: states, the publisher page, confirmations and layout', function () {
  this.timeout(120_000);
  let ok: Receiver;
  let failing: Receiver;
  before(async () => {
    ok = await startReceiver();
    failing = await startReceiver(() => ({ status: 503, body: 'maintenance until 10:00' }));
  });
  const ui = uiWorld({ env: ENV });
  after(async () => {
    await ok?.close();
    await failing?.close();
  });
  const { visit } = ui;
  let topics = 0;

  async function topic(): Promise<string> {
    const name = `t${++topics}`;
    expect((await api(ui.producer, 'POST', '/api/topics', { name, origin_host: 'shop.example' })).status).to.equal(201);
    return name;
  }

  async function publisher(body: Record<string, unknown>): Promise<string> {
    const res = await api(ui.producer, 'POST', '/api/publishers', { type: 'http', ...body });
    expect(res.status, JSON.stringify(res.json)).to.equal(201);
    return String(res.json.data.id);
  }

  async function publish(name: string, payload: unknown): Promise<string> {
    const res = await api(ui.producer, 'POST', '/api/messages', { topic: name, payload });
    expect(res.status).to.equal(201);
    return String(res.json.data.id);
  }

  async function failingIds(pid: string, state = ''): Promise<string[]> {
    const { json } = await api(ui.producer, 'GET', `/api/publishers/${pid}/failing${state ? `?state=${state}` : ''}`);
    return (json.data as { id: string }[]).map((m) => m.id);
  }

  it('shows a deleted message as deleted in search and on its page, and retries or deletes one from its page', async () => {
    const name = await topic();
    const pid = await publisher({ topic: name, target: `${failing.url}/hooks/orders`, seconds_retry: 3600 });
    const [kept, dropped] = [await publish(name, { n: 1 }), await publish(name, { n: 2 })];
    await waitFor(async () => (await failingIds(pid)).length === 2, 'two retrying messages');

    // Delete one from its own page, after a confirmation that says it touches one message.
    await visit(`#/messages/${dropped}`);
    const card = ui.page.locator(`[data-delivery="${pid}"]`);
    await card.locator('.badge[data-badge="retrying"]').waitFor();
    await card.locator('button[data-action="delete"]').click();
    await ui.page.locator('dialog .confirm-count[data-count="1"]').waitFor();
    await ui.page.click('dialog button.btn-danger');
    await card.locator('.delivery-head .badge[data-badge="deleted"]').waitFor();
    await ui.page.locator('.toast', { hasText: `Deleted for publisher #${pid}` }).waitFor();

    // Search says the same, with the publisher filter and with the state filter.
    await visit(`#/messages?publisher=${pid}`);
    await ui.page.locator(`tr[data-message="${dropped}"] .badge[data-badge="deleted"]`).waitFor();
    await ui.page.locator(`tr[data-message="${kept}"] .badge[data-badge="retrying"]`).waitFor();
    expect(await ui.page.locator(`tr[data-message="${dropped}"] .badge[data-badge="delivered"]`).count()).to.equal(0);
    await visit('#/messages?state=deleted');
    await ui.page.locator(`tr[data-message="${dropped}"] .badge[data-badge="deleted"]`).waitFor();

    // Retry now from the message page: the receiver takes it this time.
    failing.respond(() => 200);
    try {
      await visit(`#/messages/${kept}`);
      await card.locator('button[data-action="retry"]').click();
      await ui.page.locator('.toast', { hasText: `Publisher #${pid} sends it again now` }).waitFor();
      await card.locator('.delivery-head .badge[data-badge="delivered"]').waitFor();
    } finally {
      failing.respond(() => ({ status: 503, body: 'maintenance until 10:00' }));
    }
  });

  it('shows a pull lease as leased, with its worker and expiry, in search, on the message page and under Failing', async () => {
    const name = await topic();
    const pid = await publisher({ topic: name, type: 'pull', target: 'workers' });
    const id = await publish(name, { job: 1 });
    const leased = await api(ui.producer, 'POST', `/api/publishers/${pid}/lease`, {
      lease_seconds: 600,
      worker: { host: 'box-1', pid: 4242 },
    });
    expect(leased.json.data).to.have.length(1);

    await visit(`#/messages?publisher=${pid}`);
    await ui.page.locator(`tr[data-message="${id}"] .badge[data-badge="leased"]`).waitFor();
    await visit(`#/messages/${id}`);
    const lease = ui.page.locator(`[data-delivery="${pid}"] tr[data-lease="leased"]`);
    await lease.waitFor();
    expect(await lease.locator('[data-worker]').textContent()).to.equal('box-1 · pid 4242');
    expect(await lease.textContent()).not.to.include('[object Object]');
    // Its expiry: relative, the absolute time and zone on hover.
    const ends = lease.locator('[data-expires] time');
    expect(await ends.textContent()).to.match(/^in (9|10) min$/);
    expect(await ends.getAttribute('title')).to.match(/\d{4}.*\(.+\)$/);
    expect(await ui.page.locator(`[data-delivery="${pid}"] th`).allTextContents()).to.include('Worker');

    await visit('#/failing');
    await ui.page.locator(`tr[data-publisher="${pid}"] [data-col="leased"] .badge`, { hasText: '1' }).waitFor();
    await visit(`#/failing/${pid}`);
    const row = ui.page.locator(`tr[data-message="${id}"]`);
    await row.locator('.badge[data-badge="leased"]').waitFor();
  });

  it("shows a scheduled message with each of its topic's publishers, not 'no publisher'", async () => {
    const name = await topic();
    const ids = [
      await publisher({ topic: name, target: `${ok.url}/a` }),
      await publisher({ topic: name, target: `${ok.url}/b` }),
      await publisher({ topic: name, type: 'pull', target: 'later' }),
    ];
    const res = await api(ui.producer, 'POST', '/api/schedule_messages', {
      topic: name,
      payload: { at: 'later' },
      delay_seconds: 3600,
    });
    expect(res.status).to.equal(201);
    await visit(`#/messages/${String(res.json.data.id)}`);
    await ui.page.locator('[data-testid="scheduled"]').waitFor();
    for (const pid of ids) await ui.page.locator(`[data-delivery="${pid}"] .badge[data-badge="scheduled"]`).waitFor();
    expect(await ui.page.locator('main').textContent()).not.to.include('no publisher');
  });

  it('shows a publisher page: success rate, latency, last error with its answer, breaker, backlog and recent attempts', async () => {
    const name = await topic();
    const pid = await publisher({
      topic: name,
      target: `${failing.url}/hooks/payments/v2/tenants/acme/ok-endpoint`,
      seconds_retry: 0.5,
    });
    for (let i = 0; i < 4; i++) await publish(name, { i });
    await waitFor(async () => {
      const { json } = await api(ui.producer, 'GET', '/api/stats');
      return (json.data.per_publisher as { id: string; circuit?: unknown }[]).some((p) => p.id === pid && p.circuit);
    }, 'the circuit breaker open');

    await visit('#/publishers');
    await ui.page.click(`tr[data-publisher="${pid}"] a:has-text("#${pid}")`);
    await ui.page.waitForURL(new RegExp(`#/publishers/${pid}$`));
    await ui.page.locator('[data-stat="success-rate"] .figure-value', { hasText: '0 %' }).waitFor();
    expect(await ui.page.locator('[data-stat="p50"] .figure-value').textContent()).to.match(/^\d+ ms$/);
    expect(await ui.page.locator('[data-stat="p99"] .figure-value').textContent()).to.match(/^\d+ ms$/);
    expect(await ui.page.locator('[data-testid="last-error"] .badge').first().textContent()).to.equal('HTTP 503');
    expect(await ui.page.locator('[data-testid="last-response"]').textContent()).to.equal('maintenance until 10:00');
    await ui.page
      .locator('[data-testid="breaker"] [data-breaker="open"], [data-testid="breaker"] [data-breaker="probing"]')
      .first()
      .waitFor();
    expect(await ui.page.locator('[data-stat="backlog"] .figure-value').textContent()).to.match(/^[1-9]/);
    expect(await ui.page.locator('[data-stat="oldest"] time').textContent()).to.match(/ago$|^just now$/);
    await ui.page.locator('tr[data-recent]').first().waitFor();
    expect(await ui.page.locator(`section.publisher-charts[data-publisher="${pid}"]`).count()).to.equal(1);
    // The target, shortened in the middle in the header, whole on hover.
    const target = ui.page.locator('.page-header [data-target]');
    expect(await target.textContent()).to.match(/^http:\/\/127\.0\.0\.1:\d+\/…\/ok-endpoint$/);
    expect(await target.getAttribute('title')).to.equal(`${failing.url}/hooks/payments/v2/tenants/acme/ok-endpoint`);

    // The failing list links here too.
    await visit('#/failing');
    await ui.page.click(`tr[data-publisher="${pid}"] a:has-text("#${pid}")`);
    await ui.page.waitForURL(new RegExp(`#/publishers/${pid}$`));
    await ui.page.locator('[data-stat="success-rate"]').waitFor();
  });

  it('shows only the fields of the publisher’s type, and keeps secrets and headers write-only', async () => {
    const name = await topic();
    const http = await publisher({ topic: name, target: `${ok.url}/signed`, secrets: ['whsec_' + 'a'.repeat(44)] });
    const pull = await publisher({ topic: name, type: 'pull', target: 'form-pull' });

    await visit(`#/publishers/${pull}`);
    await ui.page.locator('#f-target').waitFor();
    for (const f of ['headers', 'secrets', 'filter', 'batch_size', 'dead_on_status', 'seconds_timeout'])
      expect(await ui.page.locator(`#f-${f}`).isVisible(), f).to.equal(false);
    expect(await ui.page.locator('#f-retry_max_attempts').isVisible()).to.equal(true);
    await ui.page.fill('#f-retry_max_attempts', '7');
    await ui.page.click('button:has-text("Save changes")');
    await ui.page.locator('.toast', { hasText: `Publisher #${pull} saved` }).waitFor();
    expect((await api(ui.producer, 'GET', `/api/publishers/${pull}`)).json.data.retry_max_attempts).to.equal(7);

    await visit(`#/publishers/${http}`);
    await ui.page.locator('#f-secrets').waitFor();
    expect(await ui.page.inputValue('#f-secrets')).to.equal('');
    expect(await ui.page.locator('[data-field="secrets"] .hint').textContent()).to.include('1 set now');
    await ui.page.fill('#f-headers', 'X-Api-Key: k-123');
    await ui.page.click('button:has-text("Save changes")');
    await ui.page.locator('.toast', { hasText: `Publisher #${http} saved` }).waitFor();
    const saved = (await api(ui.producer, 'GET', `/api/publishers/${http}`)).json.data;
    expect(saved).to.deep.include({ secrets_count: 1, header_names: ['X-Api-Key'] });
    // Removing the secrets: one click, the form never shows them.
    await ui.page.locator('#f-clear_secrets').waitFor();
    await ui.page.check('#f-clear_secrets');
    await ui.page.click('button:has-text("Save changes")');
    await waitFor(
      async () => ((await api(ui.producer, 'GET', `/api/publishers/${http}`)).json.data.secrets_count ?? 0) === 0,
      'the secrets removed',
    );
  });

  it('confirms retry all, recover, deactivate and delete with the number of messages they touch', async () => {
    const name = await topic();
    const pid = await publisher({
      topic: name,
      target: `${failing.url}/bulk`,
      seconds_retry: 3600,
      retry_max_attempts: 1,
    });
    for (let i = 0; i < 3; i++) await publish(name, { i });
    await waitFor(async () => (await failingIds(pid, 'dead')).length === 3, 'three dead letters');
    // The figures the confirmations count from (GET /api/stats answers from a cache up to a second old).
    await waitFor(async () => {
      const { json } = await api(ui.producer, 'GET', '/api/stats');
      return json.data.per_publisher.find((x: { id: string }) => x.id === pid)?.dead === 3;
    }, 'three dead letters in the figures');

    await visit(`#/publishers/${pid}`);
    // Recover: counted from the dead letters since the time given; cancelled, nothing moves.
    await ui.page.click('form[aria-label="Recover dead letters"] button[type="submit"]');
    await ui.page.locator('dialog h2', { hasText: 'Recover 3 dead letters?' }).waitFor();
    await ui.page.click('dialog button:has-text("Cancel")');
    await ui.page.locator('dialog').waitFor({ state: 'detached' });
    expect(await failingIds(pid, 'dead')).to.have.length(3);

    // Retry all: its count, then done.
    await ui.page.click('button[data-action="retry-all"]');
    await ui.page.locator('dialog .confirm-count[data-count="3"]').waitFor();
    await ui.page.click('dialog button.btn-danger');
    await ui.page.locator('.toast', { hasText: 'Retry now: 3 messages' }).waitFor();

    // Deactivate: how many wait for it.
    await ui.page.locator('button[data-action="deactivate"]').click();
    await ui.page.locator('dialog h2', { hasText: `Deactivate publisher #${pid}?` }).waitFor();
    expect(await ui.page.locator('dialog .confirm-count').getAttribute('data-count')).to.match(/^\d+$/);
    await ui.page.click('dialog button.btn-danger');
    await ui.page.locator('button[data-action="activate"]').waitFor();
    expect((await api(ui.producer, 'GET', `/api/publishers/${pid}`)).json.data.active).to.equal(false);

    // Delete: what it drops.
    await ui.page.click('button[data-action="delete"]:has-text("Delete publisher")');
    await ui.page.locator('dialog .confirm-count').waitFor();
    await ui.page.click('dialog button.btn-danger');
    await ui.page.waitForURL(/#\/publishers$/);
    expect((await api(ui.producer, 'GET', `/api/publishers/${pid}`)).status).to.equal(404);
  });

  it('disables deleting a topic that has publishers, says why, and puts a refusal in plain words', async () => {
    const name = await topic();
    await publisher({ topic: name, target: `${ok.url}/guard` });
    const empty = await topic();
    await visit('#/topics');
    const guarded = ui.page.locator(`tr[data-topic="${name}"] button[data-action="delete"]`);
    await guarded.waitFor();
    expect(await guarded.isDisabled()).to.equal(true);
    expect(await ui.page.locator(`[data-reason="${name}"]`).textContent()).to.equal(
      'It has 1 publisher: delete them first.',
    );
    // A publisher created after the page drew: the API refuses, and the toast says so in words.
    const late = ui.page.locator(`tr[data-topic="${empty}"] button[data-action="delete"]`);
    expect(await late.isDisabled()).to.equal(false);
    await publisher({ topic: empty, target: `${ok.url}/late` });
    await late.click();
    await ui.page.click('dialog button.btn-danger');
    const toast = ui.page.locator('.toast-error', { hasText: `Topic ${empty} was not deleted` });
    await toast.waitFor();
    const text = (await toast.textContent()) ?? '';
    expect(text).to.include('This topic has publishers');
    expect(text).not.to.match(/\bname\b|[{}"]/);
  });

  it('refreshes lists live, and shows a not-found page with a way back', async () => {
    const name = await topic();
    await visit('#/publishers');
    await ui.page.locator('tr[data-publisher]').first().waitFor();
    const pid = await publisher({ topic: name, target: `${ok.url}/live` });
    await ui.page.locator(`tr[data-publisher="${pid}"]`).waitFor();
    await visit('#/topics');
    await ui.page.locator('tr[data-topic]').first().waitFor();
    const added = await topic();
    await ui.page.locator(`tr[data-topic="${added}"]`).waitFor();

    await visit(`#/messages/${name}.1-0`);
    await ui.page.locator('[data-testid="not-found"]', { hasText: 'Message not found' }).waitFor();
    await ui.page.click('[data-testid="not-found"] a:has-text("Back to messages")');
    await ui.page.waitForURL(/#\/messages$/);
    await visit('#/nowhere/at/all');
    await ui.page.locator('[data-testid="not-found"]', { hasText: 'Page not found' }).waitFor();
    await visit('#/publishers/99999');
    await ui.page.locator('[data-testid="not-found"]', { hasText: 'Publisher not found' }).waitFor();
  });

  it('fits tables in 1280 px, stacks rows on a phone, and saves screenshots of each page', async () => {
    const name = await topic();
    const pid = await publisher({
      topic: name,
      target: `${failing.url}/hooks/very/long/path/that/goes/on/and/on/ok-endpoint?tenant=acme`,
      seconds_retry: 3600,
    });
    let message = '';
    for (let i = 0; i < 3; i++)
      message = await publish(name, { event: 'invoice.paid', customer: 'c'.repeat(200), n: i });
    await waitFor(async () => (await failingIds(pid)).length === 3, 'three failing messages');

    const pages: [name: string, hash: string, ready: string][] = [
      ['topics', '#/topics', 'tr[data-topic]'],
      ['messages', `#/messages?publisher=${pid}`, 'tr[data-message] .badge'],
      ['message', `#/messages/${message}`, '[data-delivery] tr[data-attempt]'],
      ['publisher', `#/publishers/${pid}`, 'tr[data-recent]'],
      ['failing-list', '#/failing', 'tr[data-publisher]'],
      ['failing', `#/failing/${pid}`, 'tr[data-message]'],
      ['publishers', '#/publishers', 'tr[data-publisher]'],
    ];
    for (const viewport of [WIDE, NARROW]) {
      const t = await open(ui.browser, viewport);
      try {
        for (const [shot, hash, ready] of pages) {
          await t.page.goto(`${ui.producer.url}/${hash}`);
          await t.page.locator(ready).first().waitFor();
          // `operator-<page>`: beside flows.test.ts's `<page>` shots of its own scene.
          await screenshot(t.page, `operator-${shot}`);
          const overflow = await t.page.evaluate('document.documentElement.scrollWidth - window.innerWidth');
          expect(overflow, `${shot} at ${viewport.width} px`).to.be.at.most(0);
          // No table wider than its card: nothing scrolls sideways.
          const wide = await t.page.evaluate(
            `[...document.querySelectorAll('.table-wrap')].filter((w) => w.scrollWidth > w.clientWidth + 1).length`,
          );
          expect(wide, `${shot}: tables scrolling sideways at ${viewport.width} px`).to.equal(0);
        }
        // On the phone, a row is `label: value` lines; wide, a row is a table row.
        const display = await t.page.evaluate(
          `getComputedStyle(document.querySelector('tr[data-publisher] td')).display`,
        );
        expect(display).to.equal(viewport === NARROW ? 'flex' : 'table-cell');
        if (viewport === NARROW) {
          expect(
            await t.page.locator('tr[data-publisher] td[data-label="Topic"]').first().getAttribute('data-label'),
          ).to.equal('Topic');
        }
        expect(t.problems).to.deep.equal([]);
      } finally {
        await t.context.close();
      }
    }
    // The long target, shortened in the middle with host and end of the path, whole as its title.
    await visit('#/failing');
    const target = ui.page.locator(`tr[data-publisher="${pid}"] [data-target]`);
    expect(await target.textContent()).to.match(/^http:\/\/127\.0\.0\.1:\d+\/…\/ok-endpoint\?tenant=acme$/);
  });
});
