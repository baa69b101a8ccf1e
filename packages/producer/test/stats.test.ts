import { expect } from 'chai';
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
    api = await startApi();
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
      dead: 0,
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
