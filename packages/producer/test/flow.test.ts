/**
 * The flow routes through the API (fastify inject, a private redis-server):
 * pausing a topic, purging a publisher's backlog and seeking it back, each
 * counted first with a dry run, and what the message pages and search say
 * afterwards. Deliveries are made by hand (XREADGROUP, XACK) as a consumer
 * node would; the whole path with real processes is in the consumer's
 * flow test.
 */
import { expect } from 'chai';
import { call, createPublisher, createTopic, errors, startApi, type Api } from './helpers.js';

describe('flow operations', () => {
  let api: Api;
  let topics = 0;

  before(async () => {
    api = await startApi();
  });

  after(async () => {
    await api?.close();
  });

  /** A new topic with one http publisher of it; returns both. */
  async function setup(type = 'http'): Promise<{ topic: string; id: string }> {
    const topic = `flow-${++topics}`;
    await createTopic(api.app, topic);
    const p = await createPublisher(api.app, {
      topic,
      type,
      target: type === 'http' ? `http://receiver.test/${topic}` : `workers-${topic}`,
    });
    return { topic, id: p.id as string };
  }

  /** Messages received one millisecond apart at least, so that a time falls between any two. */
  async function send(topic: string, n: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const res = await call(api.app, 'POST', '/api/messages', { topic, payload: { i } });
      ids.push((res.body as { data: { id: string } }).data.id);
      const at = Date.now();
      while (Date.now() === at) await new Promise((resolve) => setImmediate(resolve));
    }
    return ids;
  }

  const receivedAt = (id: string): number => Number(id.slice(id.lastIndexOf('.') + 1).split('-')[0]);
  const iso = (ms: number): string => new Date(ms).toISOString();

  /** Delivers the first `n` unread messages of the publisher, as a consumer node would. */
  async function deliver(topic: string, id: string, n: number): Promise<void> {
    const stream = api.keys.topic(topic).stream;
    const reply = (await api.redis.xreadgroup('GROUP', id, 'node-a', 'COUNT', n, 'STREAMS', stream, '>')) as
      [string, [string, string[]][]][] | null;
    const sids = (reply?.[0]?.[1] ?? []).map(([sid]) => sid);
    if (sids.length > 0) await api.redis.xack(stream, id, ...sids);
  }

  async function stateOf(messageId: string, publisherId: string): Promise<Record<string, unknown>> {
    const res = await call(api.app, 'GET', `/api/messages/${messageId}`);
    const deliveries = (res.body as { data: { deliveries: Record<string, unknown>[] } }).data.deliveries;
    return deliveries.find((d) => d.publisher_id === publisherId)!;
  }

  describe('PATCH /api/topics/:name {paused}', () => {
    it('pauses and resumes a topic, shown on the topic and in the list', async () => {
      const { topic } = await setup();
      const paused = await call(api.app, 'PATCH', `/api/topics/${topic}`, { paused: true });
      expect(paused.status).to.equal(200);
      expect(paused.body).to.have.nested.property('data.paused', true);
      expect((await call(api.app, 'GET', `/api/topics/${topic}`)).body).to.have.nested.property('data.paused', true);
      const list = (await call(api.app, 'GET', '/api/topics')).body as { data: { name: string; paused: boolean }[] };
      expect(list.data.find((t) => t.name === topic)?.paused).to.equal(true);
      const resumed = await call(api.app, 'PATCH', `/api/topics/${topic}`, { paused: false });
      expect(resumed.body).to.have.nested.property('data.paused', false);
    });

    it('shows a topic written before `paused` existed as not paused', async () => {
      const meta = api.keys.topic('old-topic').meta;
      await api.redis.sadd(api.keys.topics, 'old-topic');
      await api.redis.hset(
        meta,
        'json',
        JSON.stringify({ id: 99, name: 'old-topic', origin_host: 'o', recovery_enabled: false, created_at: iso(0) }),
      );
      const res = await call(api.app, 'GET', '/api/topics/old-topic');
      expect(res.body).to.have.nested.property('data.paused', false);
    });

    it('refuses a paused that is not a boolean, naming it, and says paused may be changed', async () => {
      const { topic } = await setup();
      const bad = await call(api.app, 'PATCH', `/api/topics/${topic}`, { paused: 'yes' });
      expect(bad.status).to.equal(400);
      expect(bad.body).to.deep.equal(errors({ paused: ['is invalid'] }));
      const empty = await call(api.app, 'PATCH', `/api/topics/${topic}`, {});
      expect(empty.body).to.deep.equal(
        errors({ body: ['must change at least one of origin_host, recovery_enabled, paused'] }),
      );
      expect((await call(api.app, 'PATCH', '/api/topics/nope', { paused: true })).status).to.equal(404);
    });

    it('hands out no lease of a pull publisher while its topic is paused, and its messages again once resumed', async () => {
      const { topic, id } = await setup('pull');
      await send(topic, 2);
      await call(api.app, 'PATCH', `/api/topics/${topic}`, { paused: true });
      const none = await call(api.app, 'POST', `/api/publishers/${id}/lease`, { max: 10 });
      expect(none.status).to.equal(200);
      expect(none.body).to.deep.equal({ data: [] });
      await call(api.app, 'PATCH', `/api/topics/${topic}`, { paused: false });
      const leased = await call(api.app, 'POST', `/api/publishers/${id}/lease`, { max: 10 });
      expect((leased.body as { data: unknown[] }).data).to.have.length(2);
    });
  });

  describe('POST /api/publishers/:id/purge', () => {
    it('counts first with a dry run, then purges what the publisher has not delivered before the time, and nothing of another publisher', async () => {
      const { topic, id } = await setup();
      const other = (await createPublisher(api.app, { topic, target: `http://other.test/${topic}` })).id as string;
      const ids = await send(topic, 5);
      await deliver(topic, id, 1);
      const before = iso(receivedAt(ids[4]!));

      const dry = await call(api.app, 'POST', `/api/publishers/${id}/purge`, { before, dry_run: true });
      expect(dry.status).to.equal(200);
      expect(dry.body).to.deep.equal({ data: { count: 3, unread: 3, pending: 0, dead: 0, before, dry_run: true } });
      expect((await stateOf(ids[1]!, id)).state).to.equal('pending');

      const done = await call(api.app, 'POST', `/api/publishers/${id}/purge`, { before });
      expect(done.body).to.deep.equal({ data: { count: 3, unread: 3, pending: 0, dead: 0, before, dry_run: false } });
      expect((await stateOf(ids[0]!, id)).state).to.equal('delivered');
      for (const m of ids.slice(1, 4)) {
        const d = await stateOf(m, id);
        expect(d.state, m).to.equal('purged');
        expect(d.last_action, m).to.have.property('action', 'purged');
        expect((await stateOf(m, other)).state, m).to.equal('pending');
      }
      expect((await stateOf(ids[4]!, id)).state).to.equal('pending');

      const search = await call(api.app, 'GET', `/api/messages?publisher=${id}&state=purged`);
      expect((search.body as { data: { id: string }[] }).data.map((m) => m.id)).to.deep.equal(
        ids.slice(1, 4).reverse(),
      );
      const delivered = await call(api.app, 'GET', `/api/messages?publisher=${id}&state=delivered`);
      expect((delivered.body as { data: { id: string }[] }).data.map((m) => m.id)).to.deep.equal([ids[0]]);
      const any = await call(api.app, 'GET', `/api/messages?topic=${topic}&state=purged`);
      expect((any.body as { data: unknown[] }).data).to.have.length(3);
    });

    it('purges everything received until now by default, retrying and dead letters included, counting each kind', async () => {
      const { topic, id } = await setup();
      const ids = await send(topic, 4);
      const stream = api.keys.topic(topic).stream;
      await api.redis.xreadgroup('GROUP', id, 'node-a', 'COUNT', 2, 'STREAMS', stream, '>');
      const pk = api.keys.publisher(topic, id);
      const [retrying, dead] = ids.map((m) => m.slice(m.lastIndexOf('.') + 1)) as [string, string];
      await api.redis.zadd(pk.retries, Date.now() + 60_000, retrying);
      await api.redis.xack(stream, id, dead);
      await api.redis.zadd(pk.dead, Date.now(), dead);

      const done = await call(api.app, 'POST', `/api/publishers/${id}/purge`);
      expect(done.status).to.equal(200);
      expect(done.body).to.have.nested.include({
        'data.count': 4,
        'data.unread': 2,
        'data.pending': 1,
        'data.dead': 1,
      });
      for (const m of ids) expect((await stateOf(m, id)).state, m).to.equal('purged');
      const failing = await call(api.app, 'GET', `/api/publishers/${id}/failing`);
      expect(failing.body).to.have.property('data').that.deep.equals([]);
      const again = await call(api.app, 'POST', `/api/publishers/${id}/purge`, {});
      expect(again.body).to.have.nested.property('data.count', 0);
    });

    it('refuses a bad time, an unknown field and an unknown publisher', async () => {
      const { id } = await setup();
      const bad = await call(api.app, 'POST', `/api/publishers/${id}/purge`, { before: 'yesterday' });
      expect(bad.status).to.equal(400);
      expect(bad.body).to.deep.equal(errors({ before: ['must be an ISO-8601 date and time with an offset'] }));
      const unknown = await call(api.app, 'POST', `/api/publishers/${id}/purge`, { all: true });
      expect(unknown.status).to.equal(400);
      expect(unknown.body).to.have.nested.property('data.errors.all');
      const dry = await call(api.app, 'POST', `/api/publishers/${id}/purge`, { dry_run: 'yes' });
      expect(dry.body).to.deep.equal(errors({ dry_run: ['is invalid'] }));
      const missing = await call(api.app, 'POST', '/api/publishers/999999/purge', {});
      expect(missing.status).to.equal(404);
      expect(missing.body).to.deep.equal(errors({ id: ['publisher not found'] }));
    });
  });

  describe('POST /api/publishers/:id/seek', () => {
    it('counts first with a dry run, then gives again what was delivered since the time: pending again, with the seek as last action', async () => {
      const { topic, id } = await setup();
      const ids = await send(topic, 4);
      await deliver(topic, id, 3);
      const to = iso(receivedAt(ids[1]!));

      const dry = await call(api.app, 'POST', `/api/publishers/${id}/seek`, { to, dry_run: true });
      expect(dry.status).to.equal(200);
      expect(dry.body).to.deep.equal({ data: { count: 2, retrying: 0, dead: 0, to, dry_run: true } });
      expect((await stateOf(ids[1]!, id)).state).to.equal('delivered');

      const done = await call(api.app, 'POST', `/api/publishers/${id}/seek`, { to });
      expect(done.body).to.deep.equal({ data: { count: 2, retrying: 0, dead: 0, to, dry_run: false } });
      expect((await stateOf(ids[0]!, id)).state).to.equal('delivered');
      for (const m of ids.slice(1)) expect((await stateOf(m, id)).state, m).to.equal('pending');
      expect((await stateOf(ids[1]!, id)).last_action).to.have.property('action', 'sought');

      await deliver(topic, id, 10);
      for (const m of ids) expect((await stateOf(m, id)).state, m).to.equal('delivered');
    });

    it('goes back no further than the creation of a from_now publisher', async () => {
      const topic = `flow-${++topics}`;
      await createTopic(api.app, topic);
      const [old] = await send(topic, 1);
      const p = await createPublisher(api.app, { topic, target: `http://receiver.test/${topic}`, from_now: true });
      const ids = await send(topic, 1);
      await deliver(topic, p.id as string, 10);
      const res = await call(api.app, 'POST', `/api/publishers/${p.id as string}/seek`, { to: iso(0) });
      expect(res.body).to.have.nested.property('data.count', 1);
      expect(res.body).to.have.nested.property('data.to', p.created_at);
      expect((await stateOf(ids[0]!, p.id as string)).state).to.equal('pending');
      const first = await call(api.app, 'GET', `/api/messages/${old}`);
      expect((first.body as { data: { deliveries: unknown[] } }).data.deliveries).to.deep.equal([]);
    });

    it('refuses a missing or bad time and an unknown publisher', async () => {
      const { id } = await setup();
      const missing = await call(api.app, 'POST', `/api/publishers/${id}/seek`, {});
      expect(missing.status).to.equal(400);
      expect(missing.body).to.have.nested.property('data.errors.to');
      const bad = await call(api.app, 'POST', `/api/publishers/${id}/seek`, { to: 12 });
      expect(bad.body).to.deep.equal(errors({ to: ['is invalid'] }));
      const none = await call(api.app, 'POST', '/api/publishers/999999/seek', { to: iso(0) });
      expect(none.status).to.equal(404);
    });
  });
});
