import { expect } from 'chai';
import { closeRedis, createRedis } from '@postoffice/shared';
import { startRedis, type RedisServer } from '@postoffice/test-support/redis-server';
import { waitFor } from '@postoffice/test-support/wait';
import { startReceiver, type Receiver } from '@postoffice/test-support/receiver';
import { api, killAll, startApp, type AppProcess } from '@postoffice/test-support/processes';

const CLUSTER_ENV = { HEARTBEAT_SECONDS: '1', CLAIM_TIMEOUT_SECONDS: '3', RETRY_POLL_MS: '100' };

describe('consumer processes that crash or stop', function () {
  this.timeout(180_000);
  let redis: RedisServer;
  let receiver: Receiver;
  let apps: AppProcess[];

  beforeEach(async () => {
    redis = await startRedis();
    receiver = await startReceiver();
    apps = [];
  });
  afterEach(async () => {
    await killAll(apps);
    await receiver.close();
    await redis.stop();
  });

  async function setup(publisher: Record<string, unknown> = {}): Promise<AppProcess> {
    const producer = await startApp('producer', { REDIS_URL: redis.url, ...CLUSTER_ENV });
    apps.push(producer);
    expect((await api(producer, 'POST', '/api/topics', { name: 'orders', origin_host: 'test' })).status).to.equal(201);
    const created = await api(producer, 'POST', '/api/publishers', {
      topic: 'orders',
      target: receiver.url,
      type: 'http',
      active: true,
      ...publisher,
    });
    expect(created.status).to.equal(201);
    return producer;
  }

  it('delivers every one of 10,000 messages when one of two consumers is killed with SIGKILL halfway', async () => {
    const seen = new Map<string, number>();
    receiver.respond(async (req) => {
      const id = String(req.headers['message-id']);
      seen.set(id, (seen.get(id) ?? 0) + 1);
      // The receiver answers after a random moment, so that deliveries overlap and finish out of order.
      await new Promise((r) => setTimeout(r, Math.random() * 3));
      return 200;
    });
    const producer = await setup();
    const a = await startApp('consumer', { REDIS_URL: redis.url, NODE_ID: 'node-a', ...CLUSTER_ENV });
    const b = await startApp('consumer', { REDIS_URL: redis.url, NODE_ID: 'node-b', ...CLUSTER_ENV });
    apps.push(a, b);
    const ids = new Set<string>();
    let killed = false;
    for (let batch = 0; batch < 100; batch++) {
      const res = await api(producer, 'POST', '/api/bulk_messages', {
        topic: 'orders',
        attributes: { batch: String(batch) },
        payload: Array.from({ length: 100 }, (_, i) => ({ n: batch * 100 + i })),
      });
      expect(res.status).to.equal(201);
      for (const id of res.json.data.ids as string[]) ids.add(id);
      if (!killed && batch >= 50) {
        await waitFor(() => seen.size >= 4000, 'deliveries under way');
        a.kill('SIGKILL');
        killed = true;
      }
    }
    expect(await a.exited).to.equal('SIGKILL');
    await waitFor(() => [...ids].every((id) => seen.has(id)), 'every message delivered', 120_000, 100);
    // The killed node's pending entries were taken over, and the node was forgotten by its group.
    const consumers = (await waitFor(async () => {
      const r = createRedis(redis.url, 'consumer');
      try {
        const rows = (await r.xinfo('CONSUMERS', 'po:{orders}:stream', '1')) as string[][];
        const names = rows.map((row) => row[1]);
        return names.includes('node-a') ? undefined : names;
      } finally {
        await closeRedis(r);
      }
    }, 'node-a to leave its group')) as string[];
    expect(consumers).to.include('node-b');
    const duplicates = [...seen.values()].reduce((n, c) => n + c - 1, 0);
    // Duplicates are bounded by what the killed node had in flight: at most its concurrency (25).
    expect(duplicates).to.be.at.most(25);
    expect(seen.size).to.equal(10_000);
  });

  it('finishes in-flight deliveries on SIGTERM, exits 0, and loses nothing', async () => {
    let started = 0;
    receiver.respond(async () => {
      started++;
      // Each delivery takes a while: SIGTERM comes while some are in flight.
      await new Promise((r) => setTimeout(r, 300));
      return 200;
    });
    const producer = await setup({ concurrency: 10 });
    const a = await startApp('consumer', { REDIS_URL: redis.url, ...CLUSTER_ENV });
    apps.push(a);
    const res = await api(producer, 'POST', '/api/bulk_messages', {
      topic: 'orders',
      payload: Array.from({ length: 100 }, (_, i) => i),
    });
    expect(res.status).to.equal(201);
    await waitFor(() => started >= 10, 'deliveries in flight');
    a.kill('SIGTERM');
    expect(await a.exited).to.equal(0);
    // Everything it had started was answered before it left.
    expect(receiver.received.length).to.equal(started);
    const b = await startApp('consumer', { REDIS_URL: redis.url, ...CLUSTER_ENV });
    apps.push(b);
    await waitFor(() => new Set(receiver.received.map((r) => r.headers['message-id'])).size === 100, 'the rest');
  });

  it('two consumers never deliver the same message in a calm run', async () => {
    const producer = await setup();
    const a = await startApp('consumer', { REDIS_URL: redis.url, ...CLUSTER_ENV });
    const b = await startApp('consumer', { REDIS_URL: redis.url, ...CLUSTER_ENV });
    apps.push(a, b);
    for (let i = 0; i < 10; i++) {
      await api(producer, 'POST', '/api/bulk_messages', {
        topic: 'orders',
        payload: Array.from({ length: 100 }, (_, j) => j),
      });
    }
    await waitFor(() => receiver.received.length >= 1000, '1000 deliveries');
    const ids = receiver.received.map((r) => r.headers['message-id']);
    expect(new Set(ids).size).to.equal(ids.length);
    expect(ids.length).to.equal(1000);
  });
});
