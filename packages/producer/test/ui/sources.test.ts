/**
 * The web UI's sources page and the topics' recovery state, in real
 * Chromium against a real producer and consumer, an SQS server speaking the
 * JSON protocol and an origin server, all on 127.0.0.1. Each test waits on
 * what the page shows, never on a sleep.
 */
import { expect } from 'chai';
import { api, waitFor } from '@postoffice/test-support';
import { startSqsServer, type FakeSqs } from '@postoffice/test-support/sqs-server';
import { startOrigin, type OriginServer } from '@postoffice/test-support/origin-server';
import { screenshot, uiWorld } from './browser.js';

describe('web UI: sources and recovery, in Chromium', function () {
  this.timeout(120_000);
  let sqs: FakeSqs;
  let origin: OriginServer;
  before(async () => {
    sqs = await startSqsServer();
    origin = await startOrigin();
  });
  const ui = uiWorld({
    consumer: () => ({
      HEARTBEAT_SECONDS: '1',
      RECOVERY_INTERVAL_SECONDS: '1',
      RECOVERY_TIMEOUT_SECONDS: '2',
      AWS_ENDPOINT_URL_SQS: sqs.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
    }),
  });
  after(async () => {
    await sqs?.close();
    await origin?.close();
  });

  it('creates an SQS source from the form, shows it reading with its counters, switches it off and deletes it', async () => {
    await api(ui.producer, 'POST', '/api/topics', { name: 'orders', origin_host: 'shop.example' });
    const queue = sqs.createQueue('orders');
    sqs.send(queue, '{"order": 1}');
    await ui.page.goto(`${ui.producer.url}/#/sources`);
    await ui.page.locator('nav a', { hasText: 'Sources' }).waitFor();
    await ui.page.selectOption('#f-topic', 'orders');
    await ui.page.selectOption('#f-type', 'sqs');
    await ui.page.click('button:has-text("Create source")');
    await ui.page.locator('[data-error-for="where"]', { hasText: "can't be blank" }).waitFor();
    await ui.page.fill('#f-where', 'not a url');
    await ui.page.click('button:has-text("Create source")');
    await ui.page.locator('[data-error-for="where"]', { hasText: 'must be an http or https URL' }).waitFor();
    await ui.page.fill('#f-where', queue);
    await ui.page.click('button:has-text("Create source")');
    const row = ui.page.locator('tr[data-source="1"]');
    await row.locator('[data-badge="reading"]').waitFor();
    await row.locator('[data-count="ingested"]', { hasText: '1' }).waitFor();
    expect(await row.textContent()).to.contain(queue);
    await screenshot(ui.page, 'sources');
    await row.locator('button', { hasText: 'Switch off' }).click();
    await row.locator('[data-badge="inactive"]').waitFor();
    await row.locator('button', { hasText: 'Delete' }).click();
    await ui.page.locator('dialog button', { hasText: 'Delete' }).click();
    await ui.page.locator('tr[data-source="1"]').waitFor({ state: 'detached' });
    expect((await api(ui.producer, 'GET', '/api/sources')).json.data).to.deep.equal([]);
  });

  it('shows a failing source with its error', async () => {
    await api(ui.producer, 'POST', '/api/topics', { name: 'broken', origin_host: 'shop.example' });
    const created = await api(ui.producer, 'POST', '/api/sources', {
      topic: 'broken',
      type: 'sqs',
      queue_url: `${sqs.endpoint}/000000000000/missing`,
      wait_seconds: 0,
    });
    await ui.page.goto(`${ui.producer.url}/#/sources`);
    const row = ui.page.locator(`tr[data-source="${created.json.data.id as string}"]`);
    await row.locator('[data-badge="failing"]').waitFor();
    await row.locator('[data-source-error]', { hasText: 'QueueDoesNotExist' }).waitFor();
  });

  it("shows a topic's recovery: what it recovered, and the last error", async () => {
    await api(ui.producer, 'POST', '/api/topics', { name: 'rescued', origin_host: origin.url });
    origin.add({ id: 1, topic: 'rescued', payload: { n: 1 } });
    await ui.page.goto(`${ui.producer.url}/#/topics`);
    await ui.page.locator('[data-recovery="rescued"]', { hasText: 'off' }).waitFor();
    await ui.page.locator('tr[data-topic="rescued"] button', { hasText: 'Edit' }).click();
    await ui.page.check('#edit-recovery_enabled');
    await ui.page.click('dialog button:has-text("Save")');
    await ui.page.locator('[data-recovery="rescued"] [data-badge]').waitFor();
    await waitFor(async () => {
      await ui.page.reload();
      return (await ui.page.locator('[data-recovery="rescued"] [data-recovered="1"]').count()) === 1;
    }, 'the recovered message on the page');
    origin.listAnswer({ status: 502, body: 'bad gateway' });
    await waitFor(async () => {
      await ui.page.reload();
      return (await ui.page.locator('[data-recovery-error="rescued"]', { hasText: 'answered 502' }).count()) === 1;
    }, 'the recovery error on the page');
    await screenshot(ui.page, 'topics-recovery');
  });
});
