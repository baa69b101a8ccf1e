import { expect } from 'chai';
import { Store } from '@postoffice/shared';
import { StatsCache } from '../src/routes/stats.js';
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
      dead: 0,
      skipped: 0,
      deleted: 0,
      backlog: 0,
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
    await api.redis.xack(stream, String(p.id), ids[0]!, ids[1]!, ids[2]!);
    await api.redis.zadd(pk.dead, Date.now(), ids[2]!);
    await api.redis.zadd(pk.retries, Date.now() + 60_000, ids[3]!);

    const s = await stats(api);
    expect(s).to.include({
      topics: 1,
      publishers: 2,
      active_publishers: 1,
      received: 5,
      delivered: 2,
      pending: 1,
      retrying: 1,
      dead: 1,
      backlog: 2 + 5,
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
    await api.redis.xack(stream, String(p.id), read[0]![1][0]![0]);
    const mine = ((await stats(api)).per_publisher as PublisherStats[]).find((x) => x.id === String(p.id));
    expect(mine).to.include({
      backlog: 0,
      delivered: 1,
      oldest_undelivered_at: null,
      oldest_undelivered_age_seconds: null,
    });
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
