import { expect } from 'chai';
import { Store } from '@postoffice/shared';
import { StatsCache } from '../src/routes/stats.js';
import { settle } from '@postoffice/test-support/settle';
import { call, createPublisher, createTopic, startApi, type Api } from './helpers.js';

interface PublisherStats {
  id: string;
  unread: number;
  pending: number;
  retrying: number;
  dead: number;
  backlog: number;
  delivered: number;
  oldest_undelivered_at: string | null;
  oldest_undelivered_age_seconds: number | null;
}

async function stats(api: Api): Promise<Record<string, any>> {
  const res = await call(api.app, 'GET', '/api/stats');
  expect(res.status).to.equal(200);
  return (res.body as { data: Record<string, any> }).data;
}

describe('GET /api/stats', () => {
  let api: Api;
  before(async () => {
    // Computed for each request, so that each answer shows the changes made before it.
    api = await startApi({ STATS_CACHE_MS: '0' });
  });
  after(async () => {
    await api.close();
  });

  it('answers zeros when there is nothing', async () => {
    expect(await stats(api)).to.deep.equal({
      topics: 0,
      publishers: 0,
      active_publishers: 0,
      received: 0,
      delivered: 0,
      pending: 0,
      retrying: 0,
      leased: 0,
      in_flight: 0,
      unread: 0,
      dead: 0,
      skipped: 0,
      deleted: 0,
      backlog: 0,
      circuits_open: 0,
      per_publisher: [],
    });
  });

  it('counts received, unread, pending, retrying, dead and delivered messages per publisher', async () => {
    await createTopic(api.app, 'orders');
    const p = await createPublisher(api.app, { topic: 'orders', target: 'http://127.0.0.1:9/hook' });
    const idle = await createPublisher(api.app, { topic: 'orders', target: 'http://127.0.0.1:9/other', active: false });
    for (let i = 0; i < 5; i++) {
      expect((await call(api.app, 'POST', '/api/messages', { topic: 'orders', payload: { i } })).status).to.equal(201);
    }
    // As a consumer node would: read 4 entries, settle 2 as delivered, 1 as dead, keep 1 for a retry.
    const stream = api.keys.topic('orders').stream;
    const pk = api.keys.publisher('orders', String(p.id));
    const read = (await api.redis.xreadgroup('GROUP', String(p.id), 'node', 'COUNT', 4, 'STREAMS', stream, '>')) as [
      string,
      [string, string[]][],
    ][];
    const ids = read[0]![1].map(([id]) => id);
    await settle(api.redis, api.keys, 'orders', String(p.id), [
      { streamId: ids[0]!, outcome: 'd' },
      { streamId: ids[1]!, outcome: 'd' },
      { streamId: ids[2]!, outcome: 'x' },
      { streamId: ids[3]!, outcome: 'r', score: Date.now() + 60_000 },
    ]);
    expect(await api.redis.zcard(pk.dead)).to.equal(1);

    const s = await stats(api);
    expect(s).to.include({
      topics: 1,
      publishers: 2,
      active_publishers: 1,
      received: 5,
      delivered: 2,
      pending: 1,
      retrying: 1,
      in_flight: 0,
      unread: 1 + 5,
      dead: 1,
      backlog: 2 + 5,
      circuits_open: 0,
    });
    const [first, second] = s.per_publisher as PublisherStats[];
    expect(first).to.include({
      id: String(p.id),
      unread: 1,
      pending: 1,
      retrying: 1,
      dead: 1,
      backlog: 2,
      delivered: 2,
      in_flight: 0,
      circuit: null,
    });
    // The oldest undelivered message is the one waiting for a retry (read before the unread one).
    expect(first!.oldest_undelivered_at).to.equal(new Date(Number(ids[3]!.split('-')[0])).toISOString());
    expect(first!.oldest_undelivered_age_seconds).to.be.a('number').and.to.be.at.least(0);
    expect(second).to.include({ id: String(idle.id), unread: 5, pending: 0, backlog: 5, delivered: 0 });
    const [firstEntry] = (await api.redis.xrange(stream, '-', '+', 'COUNT', 1))[0]!;
    expect(second!.oldest_undelivered_at).to.equal(new Date(Number(firstEntry.split('-')[0])).toISOString());
  });

  it('shows no oldest undelivered message once everything is settled', async () => {
    await createTopic(api.app, 'quiet');
    const p = await createPublisher(api.app, { topic: 'quiet', target: 'http://127.0.0.1:9/q' });
    await call(api.app, 'POST', '/api/messages', { topic: 'quiet', payload: 1 });
    const stream = api.keys.topic('quiet').stream;
    const read = (await api.redis.xreadgroup('GROUP', String(p.id), 'node', 'STREAMS', stream, '>')) as [
      string,
      [string, string[]][],
    ][];
    await settle(api.redis, api.keys, 'quiet', String(p.id), [{ streamId: read[0]![1][0]![0], outcome: 'd' }]);
    const mine = ((await stats(api)).per_publisher as PublisherStats[]).find((x) => x.id === String(p.id));
    expect(mine).to.include({
      backlog: 0,
      delivered: 1,
      oldest_undelivered_at: null,
      oldest_undelivered_age_seconds: null,
    });
  });

  it('counts as delivered only what was delivered: not a message deleted from the failing list', async () => {
    await createTopic(api.app, 'refused');
    const p = await createPublisher(api.app, { topic: 'refused', target: 'http://127.0.0.1:9/500' });
    const id = String(p.id);
    expect((await call(api.app, 'POST', '/api/bulk_messages', { topic: 'refused', payload: [1, 2] })).status).to.equal(
      201,
    );
    const stream = api.keys.topic('refused').stream;
    const read = (await api.redis.xreadgroup('GROUP', id, 'node', 'STREAMS', stream, '>')) as [
      string,
      [string, string[]][],
    ][];
    const [first, second] = read[0]![1].map(([sid]) => sid);
    // Read and under way: in flight, not retrying.
    expect(((await stats(api)).per_publisher as PublisherStats[]).find((x) => x.id === id)).to.include({
      pending: 2,
      in_flight: 2,
      retrying: 0,
    });
    await settle(api.redis, api.keys, 'refused', id, [
      { streamId: first!, outcome: 'r', score: Date.now() + 60_000 },
      { streamId: second!, outcome: 'x' },
    ]);
    const deleted = await call(api.app, 'POST', `/api/publishers/${id}/failing/delete`, { all: true });
    expect(deleted.status).to.equal(200);
    const mine = ((await stats(api)).per_publisher as PublisherStats[]).find((x) => x.id === id);
    expect(mine).to.include({ delivered: 0, backlog: 0, pending: 0, retrying: 0, dead: 0, in_flight: 0 });
    // A dead letter the janitor drops after the retention period is not delivered either.
    expect((await call(api.app, 'POST', '/api/messages', { topic: 'refused', payload: 3 })).status).to.equal(201);
    const more = (await api.redis.xreadgroup('GROUP', id, 'node', 'STREAMS', stream, '>')) as [
      string,
      [string, string[]][],
    ][];
    const third = more[0]![1][0]![0];
    await settle(api.redis, api.keys, 'refused', id, [{ streamId: third, outcome: 'x' }]);
    await api.redis.zrem(api.keys.publisher('refused', id).dead, third);
    const after = ((await stats(api)).per_publisher as PublisherStats[]).find((x) => x.id === id);
    expect(after).to.include({ delivered: 0, dead: 0, backlog: 0 });
  });

  it("shows a publisher's open circuit and when it probes next", async () => {
    await createTopic(api.app, 'broken');
    const p = await createPublisher(api.app, { topic: 'broken', target: 'http://127.0.0.1:9/broken' });
    const key = api.keys.publisher('broken', String(p.id)).circuit;
    const next = Date.now() + 30_000;
    await api.redis.set(
      key,
      JSON.stringify({ state: 'open', since: next - 40_000, next_probe_at: next, failures: 5, node: 'n1' }),
      'PX',
      60_000,
    );
    const s = await stats(api);
    expect(s.circuits_open).to.equal(1);
    const mine = (s.per_publisher as { id: string; circuit: unknown }[]).find((x) => x.id === String(p.id));
    expect(mine!.circuit).to.deep.equal({
      state: 'open',
      since: new Date(next - 40_000).toISOString(),
      next_probe_at: new Date(next).toISOString(),
      failures: 5,
      node: 'n1',
    });
    await api.redis.del(key);
    expect((await stats(api)).circuits_open).to.equal(0);
  });
});

describe('GET /api/stats, reused for STATS_CACHE_MS', () => {
  let api: Api;
  before(async () => {
    api = await startApi({ STATS_CACHE_MS: '600000' });
  });
  after(async () => {
    await api.close();
  });

  it('answers the same figures within STATS_CACHE_MS after a change made elsewhere (another replica)', async () => {
    const first = await stats(api);
    await new Store(api.redis, api.keys).createTopic({ name: 'elsewhere', origin_host: 'x.test' });
    expect(await stats(api)).to.deep.equal(first);
    expect(first.topics).to.equal(0);
  });

  it('shows a topic or publisher change made through this producer in the next answer, and not a message', async () => {
    await stats(api);
    await createTopic(api.app, 'here');
    const p = await createPublisher(api.app, { topic: 'here', target: 'http://127.0.0.1:9/here' });
    const after = await stats(api);
    expect(after.topics).to.equal((await new Store(api.redis, api.keys).listTopicNames()).length);
    expect(after.per_publisher.map((x: { id: string }) => x.id)).to.include(String(p.id));
    expect((await call(api.app, 'POST', '/api/messages', { topic: 'here', payload: 1 })).status).to.equal(201);
    expect(await stats(api)).to.deep.equal(after);
  });

  it('computes once for concurrent requests, again once the interval has passed or it was cleared (an injected clock)', async () => {
    let now = 1_000_000;
    let computed = 0;
    const store = new Store(api.redis, api.keys);
    const counting = Object.assign(Object.create(store) as Store, {
      listTopicsAndPublishers: () => {
        computed++;
        return store.listTopicsAndPublishers();
      },
    });
    const cache = new StatsCache({ redis: api.redis, keys: api.keys, store: counting }, 1000, () => now);
    const answers = await Promise.all([cache.get(), cache.get(), cache.get()]);
    expect(computed).to.equal(1);
    expect(answers[1]).to.equal(answers[0]);
    cache.clear();
    await cache.get();
    expect(computed).to.equal(2);
    await createTopic(api.app, 'cached');
    await createPublisher(api.app, { topic: 'cached', target: 'http://127.0.0.1:9/c' });
    now += 999;
    const stale = await cache.get();
    expect(computed).to.equal(2);
    now += 1;
    expect((await cache.get()).publishers).to.equal(stale.publishers + 1);
    expect(computed).to.equal(3);
    // Cleared while computing: that answer is not kept.
    cache.clear();
    const inFlight = cache.get();
    cache.clear();
    await inFlight;
    await cache.get();
    expect(computed).to.equal(5);
  });
});
