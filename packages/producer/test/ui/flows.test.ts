/**
 * The web UI in real Chromium against a real producer, consumer, Redis and
 * HTTP receivers: what an operator does, from creating a topic to
 * repairing a failing message. Each test waits on what the page shows
 * (playwright locators wait until they match), never on a sleep.
 */
import { expect } from 'chai';
import { api, startReceiver, type Receiver, waitFor } from '@postoffice/test-support';
import { NARROW, WIDE, open, screenshot, uiWorld } from './browser.js';

const ENV = { HEARTBEAT_SECONDS: '1', RETRY_POLL_MS: '100' };

describe('web UI in Chromium', function () {
  this.timeout(120_000);
  let receiver: Receiver;
  let flaky: Receiver;
  before(async () => {
    receiver = await startReceiver();
    flaky = await startReceiver(() => 500);
  });
  const ui = uiWorld({ env: ENV });
  after(async () => {
    await receiver?.close();
    await flaky?.close();
  });
  const { visit } = ui;

  async function publisherOf(topic: string): Promise<string> {
    const { json } = await api(ui.producer, 'GET', `/api/topics/${topic}`);
    return String(json.data.publishers[0].id);
  }

  it('creates a topic and a publisher, then finds a published message in search and sees it delivered', async () => {
    await visit('#/topics');
    await ui.page.fill('#f-name', 'orders');
    await ui.page.fill('#f-origin_host', 'shop.example');
    await ui.page.click('button:has-text("Create topic")');
    await ui.page.locator('tr[data-topic="orders"]').waitFor();

    await visit('#/publishers/new');
    await ui.page.selectOption('#f-topic', 'orders');
    await ui.page.fill('#f-target', receiver.url);
    await ui.page.fill('#f-seconds_timeout', '2');
    await ui.page.click('button:has-text("Create publisher")');
    await ui.page.waitForURL(/#\/publishers$/);
    const id = await publisherOf('orders');
    await ui.page.locator(`tr[data-publisher="${id}"]`, { hasText: receiver.url }).waitFor();

    const published = await api(ui.producer, 'POST', '/api/messages', {
      topic: 'orders',
      payload: { order: 42, lines: [{ sku: 'A-1', qty: 2 }] },
      attributes: { source: 'shop' },
    });
    expect(published.status).to.equal(201);
    const messageId = String(published.json.data.id);

    await visit('#/messages');
    await ui.page.selectOption('#f-topic', 'orders');
    await ui.page.fill('#f-q', '"order":42');
    await ui.page.click('button:has-text("Search")');
    await ui.page.waitForURL(/q=/);
    const row = ui.page.locator(`tr[data-message="${messageId}"]`);
    await row.waitFor();
    await row.locator('a').click();
    await ui.page.waitForURL(new RegExp(`#/messages/${messageId}$`));
    // The page refreshes itself until the delivery is recorded.
    await ui.page.locator(`[data-delivery="${id}"] .badge[data-badge="delivered"]`).waitFor();
    expect(await ui.page.locator('[data-testid="payload"]').textContent()).to.equal(
      JSON.stringify({ order: 42, lines: [{ sku: 'A-1', qty: 2 }] }, null, 2),
    );
    expect(await ui.page.locator('[data-testid="attributes"]').textContent()).to.include('"source": "shop"');
    expect(receiver.received.map((r) => r.headers['message-id'])).to.include(messageId);
  });

  it('deactivates a publisher: its backlog grows on the dashboard, and drains once it is activated', async () => {
    await api(ui.producer, 'POST', '/api/topics', { name: 'stock', origin_host: 'warehouse.example' });
    await api(ui.producer, 'POST', '/api/publishers', {
      topic: 'stock',
      type: 'http',
      target: `${receiver.url}?stock`,
    });
    const id = await publisherOf('stock');

    await visit('#/publishers');
    await ui.page.click(`tr[data-publisher="${id}"] button[data-action="deactivate"]`);
    // Asked first, with how many messages wait for it (none yet).
    await ui.page.locator('dialog .confirm-count[data-count="0"]').waitFor();
    await ui.page.click('dialog button.btn-danger');
    await ui.page.locator(`tr[data-publisher="${id}"] button[data-action="activate"]`).waitFor();
    await ui.page.locator(`tr[data-publisher="${id}"] .badge[data-badge="inactive"]`).waitFor();

    for (let i = 0; i < 3; i++) {
      expect((await api(ui.producer, 'POST', '/api/messages', { topic: 'stock', payload: { i } })).status).to.equal(
        201,
      );
    }
    await visit('#/');
    const backlog = ui.page.locator(`tr[data-publisher="${id}"] [data-col="backlog"]`);
    await backlog.filter({ hasText: /^3$/ }).waitFor();
    expect(await ui.page.locator(`tr[data-publisher="${id}"] [data-col="oldest"]`).textContent()).not.to.equal('—');

    await visit('#/publishers');
    await ui.page.click(`tr[data-publisher="${id}"] button[data-action="activate"]`);
    await ui.page.locator(`tr[data-publisher="${id}"] .badge[data-badge="active"]`).waitFor();
    await visit('#/');
    await backlog.filter({ hasText: /^0$/ }).waitFor();
    await ui.page.locator(`tr[data-publisher="${id}"] [data-col="delivered"]`).filter({ hasText: /^3$/ }).waitFor();
    expect(receiver.received.filter((r) => r.path.includes('stock'))).to.have.length(3);
  });

  it('finds a message that failed under Failing and retries it now once the receiver recovers', async () => {
    await api(ui.producer, 'POST', '/api/topics', { name: 'payments', origin_host: 'pay.example' });
    await api(ui.producer, 'POST', '/api/publishers', {
      topic: 'payments',
      type: 'http',
      target: flaky.url,
      seconds_retry: 3600,
    });
    const id = await publisherOf('payments');
    const { json } = await api(ui.producer, 'POST', '/api/messages', { topic: 'payments', payload: { amount: 10 } });
    const messageId = String(json.data.id);

    await visit('#/failing');
    await ui.page.click(`tr[data-publisher="${id}"] a:has-text("Open")`);
    // The list looks again every few seconds while it is empty: the first attempt fails meanwhile.
    const row = ui.page.locator(`tr[data-message="${messageId}"]`);
    await row.filter({ has: ui.page.locator('.badge[data-badge="retrying"]') }).waitFor();
    expect(await row.textContent()).to.include('HTTP 500');

    flaky.respond(() => 200);
    await row.locator('input[type="checkbox"]').check();
    await ui.page.click('button[data-action="retry"]');
    await ui.page.locator('.toast', { hasText: 'Retry now: 1 message' }).waitFor();
    await visit(`#/messages/${messageId}`);
    await ui.page.locator(`[data-delivery="${id}"] .badge[data-badge="delivered"]`).waitFor();
    await waitFor(() => flaky.received.length === 1, 'the retried delivery');
  });

  it('moves the next attempt of a failing message, deletes another after confirmation, and recovers dead letters', async () => {
    await api(ui.producer, 'POST', '/api/topics', { name: 'refunds', origin_host: 'pay.example' });
    flaky.respond(() => 500);
    await api(ui.producer, 'POST', '/api/publishers', {
      topic: 'refunds',
      type: 'http',
      target: `${flaky.url}?refunds`,
      seconds_retry: 3600,
    });
    const id = await publisherOf('refunds');
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const { json } = await api(ui.producer, 'POST', '/api/messages', { topic: 'refunds', payload: { refund: i } });
      ids.push(String(json.data.id));
    }
    // Both failed once before the page loads (it looks again only while its list is empty).
    await waitFor(async () => {
      const { json } = await api(ui.producer, 'GET', `/api/publishers/${id}/failing?state=retrying`);
      return ids.every((m) => json.data.some((f: { id: string }) => f.id === m));
    }, 'both messages retrying');
    await visit(`#/failing/${id}?state=retrying`);
    const [moved, dropped] = ids.map((m) => ui.page.locator(`tr[data-message="${m}"]`));
    await moved!.waitFor();
    await dropped!.waitFor();

    // Next attempt: tomorrow at noon, local time.
    const tomorrow = new Date(Date.now() + 86_400_000);
    const pad = (n: number): string => String(n).padStart(2, '0');
    const local = `${tomorrow.getFullYear()}-${pad(tomorrow.getMonth() + 1)}-${pad(tomorrow.getDate())}T12:00`;
    await moved!.locator('input[type="checkbox"]').check();
    await ui.page.fill('.toolbar input[type="datetime-local"]', local);
    await ui.page.click('button[data-action="next-attempt"]');
    await ui.page.locator('.toast', { hasText: 'Next attempt set: 1 message' }).waitFor();
    const { json: failing } = await api(ui.producer, 'GET', `/api/publishers/${id}/failing`);
    const item = failing.data.find((m: { id: string }) => m.id === ids[0]);
    expect(new Date(item.next_attempt_at).getTime()).to.equal(new Date(local).getTime());

    await ui.page.locator(`tr[data-message="${ids[1]}"] input[type="checkbox"]`).check();
    await ui.page.click('button[data-action="delete"]');
    await ui.page.click('dialog button.btn-danger');
    await ui.page.locator(`tr[data-message="${ids[1]}"]`).waitFor({ state: 'detached' });
    const { json: record } = await api(ui.producer, 'GET', `/api/messages/${ids[1]}`);
    expect(record.data.deliveries[0].state).to.equal('deleted');

    // No dead letter here: recovering since an hour ago finds none, and says so.
    await ui.page.click('form[aria-label="Recover dead letters"] button[type="submit"]');
    await ui.page.locator('.toast', { hasText: 'Nothing to recover' }).waitFor();
    // A blank time is refused next to the field.
    await ui.page.fill('#f-since', '');
    await ui.page.click('form[aria-label="Recover dead letters"] button[type="submit"]');
    await ui.page.locator('.field-error[data-error-for="since"]', { hasText: "can't be blank" }).waitFor();
  });

  it('shows a payload and attributes holding HTML as text, and runs none of it', async () => {
    await api(ui.producer, 'POST', '/api/topics', { name: 'hostile', origin_host: 'evil.example' });
    const script = '<script>window.__pwned = 1</script>';
    const img = '<img src=x onerror="window.__pwned = 2">';
    const { json } = await api(ui.producer, 'POST', '/api/messages', {
      topic: 'hostile',
      payload: { html: script, img },
      attributes: { note: '<b onmouseover="window.__pwned = 3">bold</b>' },
    });
    const messageId = String(json.data.id);

    await visit(`#/messages/${messageId}`);
    const payload = ui.page.locator('[data-testid="payload"]');
    await payload.filter({ hasText: script }).waitFor();
    expect(await payload.textContent()).to.include(img.replace(/"/g, '\\"'));
    expect(await ui.page.locator('[data-testid="attributes"]').textContent()).to.include('<b onmouseover=');
    expect(await ui.page.locator('main img, main script, main b').count()).to.equal(0);

    await visit('#/messages?topic=hostile');
    await ui.page.locator(`tr[data-message="${messageId}"] .payload-preview`, { hasText: '<script>' }).waitFor();
    expect(await ui.page.locator('main img, main script').count()).to.equal(0);
    expect(await ui.page.evaluate('window.__pwned')).to.equal(undefined);
  });

  it("shows the API's error next to the field: a bad target, and a topic that still has publishers", async () => {
    await visit('#/publishers/new');
    await ui.page.selectOption('#f-topic', 'orders');
    await ui.page.fill('#f-target', 'ftp://files.example/drop');
    await ui.page.click('button:has-text("Create publisher")');
    const error = ui.page.locator('.field-error[data-error-for="target"]');
    await error.filter({ hasText: 'must be an http or https URL' }).waitFor();
    expect(await ui.page.locator('.field[data-field="target"]').getAttribute('class')).to.include('invalid');
    expect(ui.page.url()).to.match(/#\/publishers\/new$/);

    // A blank field is caught before the request, in the same place.
    await ui.page.fill('#f-target', '');
    await ui.page.click('button:has-text("Create publisher")');
    await error.filter({ hasText: "can't be blank" }).waitFor();

    // Editing a topic's origin host, and deleting a topic that has publishers (refused by the API).
    await visit('#/topics');
    await ui.page.click('tr[data-topic="orders"] button:has-text("Edit")');
    await ui.page.fill('dialog #edit-origin_host', 'shop2.example');
    await ui.page.click('dialog button:has-text("Save")');
    await ui.page.locator('tr[data-topic="orders"]', { hasText: 'shop2.example' }).waitFor();
    // Its delete button is off while it has publishers, and says why.
    expect(await ui.page.locator('tr[data-topic="orders"] button[data-action="delete"]').isDisabled()).to.equal(true);
    await ui.page.locator('tr[data-topic="orders"] [data-reason]', { hasText: 'delete them first' }).waitFor();
  });

  it('deletes a publisher after confirmation, then its topic', async () => {
    await api(ui.producer, 'POST', '/api/topics', { name: 'scratch', origin_host: 'tmp.example' });
    await api(ui.producer, 'POST', '/api/publishers', {
      topic: 'scratch',
      type: 'http',
      target: `${receiver.url}?scratch`,
    });
    const id = await publisherOf('scratch');
    await visit('#/publishers');
    await ui.page.click(`tr[data-publisher="${id}"] button[data-action="delete"]`);
    await ui.page.click('dialog button:has-text("Cancel")');
    await ui.page.locator(`tr[data-publisher="${id}"]`).waitFor();
    await ui.page.click(`tr[data-publisher="${id}"] button[data-action="delete"]`);
    await ui.page.click('dialog button.btn-danger');
    await ui.page.locator(`tr[data-publisher="${id}"]`).waitFor({ state: 'detached' });
    expect((await api(ui.producer, 'GET', `/api/publishers/${id}`)).status).to.equal(404);

    await visit('#/topics');
    await ui.page.click('tr[data-topic="scratch"] button:has-text("Delete")');
    await ui.page.click('dialog button.btn-danger');
    await ui.page.locator('tr[data-topic="scratch"]').waitFor({ state: 'detached' });
  });

  it('creates a publisher with delivery settings from the form, and a message page shows a refusal’s answer and a skipped message', async () => {
    const gone = await startReceiver(() => ({ status: 410, body: 'customer 7 was closed' }));
    try {
      await api(ui.producer, 'POST', '/api/topics', { name: 'invoices', origin_host: 'billing.example' });
      await visit('#/publishers/new');
      await ui.page.selectOption('#f-topic', 'invoices');
      await ui.page.fill('#f-target', gone.url);
      await ui.page.fill('#f-batch_size', '1');
      await ui.page.fill('#f-dead_on_status', '400, 404');
      await ui.page.fill('#f-retry_max_attempts', '5');
      await ui.page.fill('#f-retry_max_age_seconds', '3600');
      await ui.page.fill('#f-filter', 'kind = invoice\nregion = eu, us');
      await ui.page.fill('#f-headers', 'Authorization: Bearer form-token');
      await ui.page.click('button:has-text("Create publisher")');
      await ui.page.waitForURL(/#\/publishers$/);
      const id = await publisherOf('invoices');
      const { json } = await api(ui.producer, 'GET', `/api/publishers/${id}`);
      expect(json.data).to.deep.include({
        dead_on_status: [400, 404],
        retry_max_attempts: 5,
        retry_max_age_seconds: 3600,
        filter: { attributes: { kind: 'invoice', region: ['eu', 'us'] } },
        header_names: ['Authorization'],
      });
      await ui.page.locator(`tr[data-publisher="${id}"] .tag`, { hasText: 'filtered' }).waitFor();
      // The form shows them again when editing (the headers by name only), on its page and on its own.
      await visit(`#/publishers/${id}/edit`);
      expect(await ui.page.inputValue('#f-dead_on_status')).to.equal('400, 404');
      await visit(`#/publishers/${id}`);
      expect(await ui.page.inputValue('#f-dead_on_status')).to.equal('400, 404');
      expect(await ui.page.inputValue('#f-filter')).to.equal('kind = invoice\nregion = eu, us');
      expect(await ui.page.locator('[data-field="headers"] .hint').textContent()).to.include('Authorization');

      const sent = await api(ui.producer, 'POST', '/api/messages', {
        topic: 'invoices',
        payload: { invoice: 1 },
        attributes: { kind: 'invoice', region: 'eu' },
      });
      const skipped = await api(ui.producer, 'POST', '/api/messages', {
        topic: 'invoices',
        payload: { invoice: 2 },
        attributes: { kind: 'invoice', region: 'asia' },
      });
      await visit(`#/messages/${String(sent.json.data.id)}`);
      await ui.page.locator(`[data-delivery="${id}"] .badge[data-badge="dead"]`).waitFor();
      expect(await ui.page.locator(`[data-delivery="${id}"] [data-testid="response"]`).textContent()).to.equal(
        'customer 7 was closed',
      );
      expect(await ui.page.locator(`[data-delivery="${id}"] .facts`).textContent()).to.include('410 Gone');
      expect(gone.requests[0]!.headers.authorization).to.equal('Bearer form-token');
      await visit(`#/messages/${String(skipped.json.data.id)}`);
      await ui.page.locator(`[data-delivery="${id}"] .delivery-head .badge[data-badge="skipped"]`).waitFor();
      expect(await ui.page.locator(`[data-delivery="${id}"] tr[data-attempt="skipped"]`).textContent()).to.include(
        'filter does not match',
      );
    } finally {
      await gone.close();
    }
  });

  it('shows the cluster: the live node, the slots it holds and each publisher', async () => {
    await visit('#/cluster');
    await ui.page.locator('tr[data-node]').first().waitFor();
    await ui.page.locator('tr[data-node] .chip').first().waitFor();
    const id = await publisherOf('orders');
    await ui.page.locator(`tr[data-publisher="${id}"] [data-col="lag"]`, { hasText: /^0$/ }).waitFor();
  });

  it('shows the API reference from the producer’s own OpenAPI document, linked from the menu', async () => {
    await visit('#/');
    await ui.page.click('nav >> text=API');
    await ui.page.waitForURL(/#\/api$/);
    const send = ui.page.locator('[data-route="POST /api/messages"]');
    await send.waitFor();
    await send.locator('td.mono', { hasText: /^topic$/ }).waitFor();
    await send.locator('.op-answers', { hasText: '201' }).waitFor();
    await ui.page.locator('[data-route="GET /api/health"] .tag', { hasText: 'open' }).waitFor();
    const link = await ui.page.locator('a', { hasText: 'OpenAPI 3.1 document' }).getAttribute('href');
    expect(link).to.equal('/api/openapi.json');
    await visit('#/api?section=pull');
    await ui.page.locator('[data-section="pull"]').waitFor();
    expect(await ui.page.locator('[data-section="topics"]').isVisible()).to.equal(false);
  });

  it('pauses a topic, purges its publisher’s backlog after a confirmation that shows the count, resumes it, and seeks back', async () => {
    await api(ui.producer, 'POST', '/api/topics', { name: 'digest', origin_host: 'mail.example' });
    await api(ui.producer, 'POST', '/api/publishers', {
      topic: 'digest',
      type: 'http',
      target: `${receiver.url}?digest`,
    });
    const id = await publisherOf('digest');
    const got = (m: string): number => receiver.received.filter((r) => r.headers['message-id'] === m).length;

    await visit('#/topics');
    await ui.page.click('tr[data-topic="digest"] button[data-action="pause"]');
    await ui.page.locator('tr[data-topic="digest"] [data-badge="paused"]').waitFor();
    expect((await api(ui.producer, 'GET', '/api/topics/digest')).json.data.paused).to.equal(true);
    const { json: sent } = await api(ui.producer, 'POST', '/api/bulk_messages', {
      topic: 'digest',
      payload: [{ n: 1 }, { n: 2 }, { n: 3 }],
    });
    const held = sent.data.ids as string[];

    await visit(`#/publishers/${id}`);
    const purge = ui.page.locator('form[aria-label="Purge backlog"] button[type="submit"]');
    await purge.click();
    await ui.page.locator('dialog h2', { hasText: 'Purge 3 messages?' }).waitFor();
    await ui.page.locator('dialog', { hasText: '3 not read yet' }).waitFor();
    await ui.page.click('dialog button:has-text("Cancel")');
    await ui.page.locator('dialog').waitFor({ state: 'detached' });
    expect((await api(ui.producer, 'GET', `/api/messages/${held[0]}`)).json.data.deliveries[0].state).to.equal(
      'pending',
    );
    await purge.click();
    await ui.page.locator('dialog h2', { hasText: 'Purge 3 messages?' }).waitFor();
    await ui.page.click('dialog button.btn-danger');
    await ui.page.locator('.toast', { hasText: `Purged 3 messages for publisher #${id}` }).waitFor();
    for (const m of held)
      expect((await api(ui.producer, 'GET', `/api/messages/${m}`)).json.data.deliveries[0].state).to.equal('purged');

    await visit('#/topics');
    await ui.page.click('tr[data-topic="digest"] button[data-action="resume"]');
    await ui.page.locator('tr[data-topic="digest"] button[data-action="pause"]').waitFor();
    const { json: next } = await api(ui.producer, 'POST', '/api/messages', { topic: 'digest', payload: { n: 4 } });
    await waitFor(() => got(String(next.data.id)) === 1, 'the message sent after the purge');
    expect(held.map(got)).to.deep.equal([0, 0, 0]);

    // Seek back a minute: every message since then is sent again, the purged ones too.
    await visit(`#/publishers/${id}`);
    const minuteAgo = new Date(Date.now() - 60_000);
    const pad = (n: number): string => String(n).padStart(2, '0');
    await ui.page.fill(
      '#seek-to',
      `${minuteAgo.getFullYear()}-${pad(minuteAgo.getMonth() + 1)}-${pad(minuteAgo.getDate())}T${pad(minuteAgo.getHours())}:${pad(minuteAgo.getMinutes())}`,
    );
    await ui.page.click('form[aria-label="Seek back"] button[type="submit"]');
    await ui.page.locator('dialog h2', { hasText: 'Send 4 messages again?' }).waitFor();
    await ui.page.click('dialog button.btn-danger');
    await ui.page.locator('.toast', { hasText: `Publisher #${id} receives 4 messages again` }).waitFor();
    await waitFor(() => [...held, String(next.data.id)].map(got).join() === '1,1,1,2', 'the messages sent again');
  });

  it('saves a screenshot of every page, wide and narrow', async () => {
    // A dead letter for the Failing page.
    await api(ui.producer, 'POST', '/api/topics', { name: 'webhooks', origin_host: 'hooks.example' });
    flaky.respond(() => 503);
    await api(ui.producer, 'POST', '/api/publishers', {
      topic: 'webhooks',
      type: 'http',
      target: `${flaky.url}?wh`,
      seconds_retry: 3600,
    });
    const failing = await publisherOf('webhooks');
    for (let i = 0; i < 3; i++)
      await api(ui.producer, 'POST', '/api/messages', { topic: 'webhooks', payload: { event: 'invoice.paid', n: i } });
    await waitFor(async () => {
      const { json } = await api(ui.producer, 'GET', `/api/publishers/${failing}/failing`);
      return json.data.length === 3;
    }, 'three retrying messages');
    const { json: one } = await api(ui.producer, 'GET', `/api/publishers/${failing}/failing`);
    const deadId = String(one.data[0].id);
    const search = await api(ui.producer, 'GET', '/api/messages?topic=orders&limit=1');
    const messageId = String(search.json.data[0].id);

    const pages: [name: string, hash: string, ready: string][] = [
      ['dashboard', '#/', 'tr[data-publisher]'],
      ['topics', '#/topics', 'tr[data-topic]'],
      ['publishers', '#/publishers', 'tr[data-publisher]'],
      ['publisher-form', `#/publishers/new`, 'form'],
      ['publisher', `#/publishers/${failing}`, '[data-stat="backlog"]'],
      ['messages', '#/messages', 'tr[data-message]'],
      ['message', `#/messages/${messageId}`, '[data-delivery]'],
      ['failing-list', '#/failing', 'tr[data-publisher]'],
      ['failing', `#/failing/${failing}`, `tr[data-message="${deadId}"]`],
      ['cluster', '#/cluster', 'tr[data-node]'],
      ['api', '#/api', '[data-route]'],
    ];
    for (const viewport of [WIDE, NARROW]) {
      const t = await open(ui.browser, viewport);
      try {
        for (const [name, hash, ready] of pages) {
          await t.page.goto(`${ui.producer.url}/${hash}`);
          await t.page.locator(ready).first().waitFor();
          await screenshot(t.page, name);
          // Nothing wider than the screen but the tables, which scroll inside their card.
          const overflow = await t.page.evaluate('document.documentElement.scrollWidth - window.innerWidth');
          expect(overflow, `${name} at ${viewport.width} px`).to.be.at.most(0);
        }
        expect(t.problems).to.deep.equal([]);
      } finally {
        await t.context.close();
      }
    }
  });
});
