/**
 * The web UI's sources page and the topics' recovery state, in real
 * Chromium against a real producer and consumer, an SQS server speaking the
 * JSON protocol and an origin server, all on 127.0.0.1. Each test waits on
 * what the page shows, never on a sleep.
 */
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import {
  api,
  killAll,
  startApp,
  type AppProcess,
  startRedis,
  waitFor,
  type RedisServer,
} from '@postoffice/test-support';
import { startSqsServer, type FakeSqs } from '@postoffice/test-support/sqs-server';
import { startOrigin, type OriginServer } from '@postoffice/test-support/origin-server';
import { WIDE, launch, open, screenshot, type Tab } from './browser.js';

describe('web UI: sources and recovery, in Chromium', function () {
  this.timeout(120_000);
  let redis: RedisServer;
  let producer: AppProcess;
  let consumer: AppProcess;
  let sqs: FakeSqs;
  let origin: OriginServer;
  let browser: Browser;
  let tab: Tab;
  let page: Page;

  before(async () => {
    redis = await startRedis();
    sqs = await startSqsServer();
    origin = await startOrigin();
    producer = await startApp('producer', { REDIS_URL: redis.url });
    consumer = await startApp('consumer', {
      REDIS_URL: redis.url,
      HEARTBEAT_SECONDS: '1',
      RECOVERY_INTERVAL_SECONDS: '1',
      RECOVERY_TIMEOUT_SECONDS: '2',
      AWS_ENDPOINT_URL_SQS: sqs.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
    });
    browser = await launch();
    tab = await open(browser, WIDE);
    page = tab.page;
  });

  after(async () => {
    await browser?.close();
    await killAll([producer, consumer].filter(Boolean));
    await sqs?.close();
    await origin?.close();
    await redis?.stop();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'passed') expect(tab.problems).to.deep.equal([]);
  });

  it('creates an SQS source from the form, shows it reading with its counters, switches it off and deletes it', async () => {
    await api(producer, 'POST', '/api/topics', { name: 'orders', origin_host: 'shop.example' });
    const queue = sqs.createQueue('orders');
    sqs.send(queue, '{"order": 1}');
    await page.goto(`${producer.url}/#/sources`);
    await page.locator('nav a', { hasText: 'Sources' }).waitFor();
    await page.selectOption('#f-topic', 'orders');
    await page.selectOption('#f-type', 'sqs');
    await page.click('button:has-text("Create source")');
    await page.locator('[data-error-for="where"]', { hasText: "can't be blank" }).waitFor();
    await page.fill('#f-where', 'not a url');
    await page.click('button:has-text("Create source")');
    await page.locator('[data-error-for="where"]', { hasText: 'must be an http or https URL' }).waitFor();
    await page.fill('#f-where', queue);
    await page.click('button:has-text("Create source")');
    const row = page.locator('tr[data-source="1"]');
    await row.locator('[data-badge="reading"]').waitFor();
    await row.locator('[data-count="ingested"]', { hasText: '1' }).waitFor();
    expect(await row.textContent()).to.contain(queue);
    await screenshot(page, 'sources');
    await row.locator('button', { hasText: 'Switch off' }).click();
    await row.locator('[data-badge="inactive"]').waitFor();
    await row.locator('button', { hasText: 'Delete' }).click();
    await page.locator('dialog button', { hasText: 'Delete' }).click();
    await page.locator('tr[data-source="1"]').waitFor({ state: 'detached' });
    expect((await api(producer, 'GET', '/api/sources')).json.data).to.deep.equal([]);
  });

  it('shows a failing source with its error', async () => {
    await api(producer, 'POST', '/api/topics', { name: 'broken', origin_host: 'shop.example' });
    const created = await api(producer, 'POST', '/api/sources', {
      topic: 'broken',
      type: 'sqs',
      queue_url: `${sqs.endpoint}/000000000000/missing`,
      wait_seconds: 0,
    });
    await page.goto(`${producer.url}/#/sources`);
    const row = page.locator(`tr[data-source="${created.json.data.id as string}"]`);
    await row.locator('[data-badge="failing"]').waitFor();
    await row.locator('[data-source-error]', { hasText: 'QueueDoesNotExist' }).waitFor();
  });

  it("shows a topic's recovery: what it recovered, and the last error", async () => {
    await api(producer, 'POST', '/api/topics', { name: 'rescued', origin_host: origin.url });
    origin.add({ id: 1, topic: 'rescued', payload: { n: 1 } });
    await page.goto(`${producer.url}/#/topics`);
    await page.locator('[data-recovery="rescued"]', { hasText: 'off' }).waitFor();
    await page.locator('tr[data-topic="rescued"] button', { hasText: 'Edit' }).click();
    await page.check('#edit-recovery_enabled');
    await page.click('dialog button:has-text("Save")');
    await page.locator('[data-recovery="rescued"] [data-badge]').waitFor();
    await waitFor(async () => {
      await page.reload();
      return (await page.locator('[data-recovery="rescued"] [data-recovered="1"]').count()) === 1;
    }, 'the recovered message on the page');
    origin.listAnswer({ status: 502, body: 'bad gateway' });
    await waitFor(async () => {
      await page.reload();
      return (await page.locator('[data-recovery-error="rescued"]', { hasText: 'answered 502' }).count()) === 1;
    }, 'the recovery error on the page');
    await screenshot(page, 'topics-recovery');
  });
});
