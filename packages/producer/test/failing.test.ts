import { expect } from 'chai';
import { findMessage, parseMessageId, type DeliveryView } from '@postoffice/shared';
import { settle } from '@postoffice/test-support/settle';
import { decodeCursor, type FailingItem } from '../src/failing.js';
import { call, createPublisher, createTopic, startApi, type Api } from './helpers.js';

describe("a publisher's failing messages", () => {
  let api: Api;
  let topics = 0;

  beforeEach(async () => {
    api = await startApi();
  });

  afterEach(async () => {
    await api?.close();
  });

  /** A topic with one publisher and `n` messages; returns the publisher id and the message ids. */
  async function setup(n: number): Promise<{ topic: string; pid: string; ids: string[] }> {
    const topic = `t${++topics}`;
    await createTopic(api.app, topic);
    const p = await createPublisher(api.app, { topic, target: 'http://127.0.0.1:9/x' });
    const res = await call(api.app, 'POST', '/api/bulk_messages', {
      topic,
      payload: Array.from({ length: n }, (_, i) => ({ n: i })),
    });
    return { topic, pid: String(p.id), ids: (res.body as { data: { ids: string[] } }).data.ids };
  }

  /** Reads every message into the group and records each as failed: retrying (due at `score`) or dead (dead at `score`). */
  async function fail(topic: string, pid: string, ids: string[], outcome: 'r' | 'x', score: (i: number) => number) {
    const tk = api.keys.topic(topic);
    await api.redis.xreadgroup('GROUP', pid, 'node', 'COUNT', 100000, 'STREAMS', tk.stream, '>');
    await settle(
      api.redis,
      api.keys,
      topic,
      pid,
      ids.map((id, i) => ({ streamId: parseMessageId(id)!.streamId!, outcome, score: score(i), reason: 'gave up' })),
    );
  }

  async function list(pid: string, query = ''): Promise<{ data: FailingItem[]; cursor: string | null }> {
    const res = await call(api.app, 'GET', `/api/publishers/${pid}/failing${query}`);
    expect(res.status, res.raw).to.equal(200);
    return res.body as { data: FailingItem[]; cursor: string | null };
  }

  async function record(_topic: string, id: string, pid: string): Promise<DeliveryView> {
    const m = await findMessage(api.redis, api.keys, api.store, id);
    return m!.deliveries.find((d) => d.publisher_id === pid)!;
  }

  it('lists retrying (soonest first) then dead letters (latest first), filtered by state and topic', async () => {
    const { topic, pid, ids } = await setup(6);
    const later = Date.now() + 3600_000;
    await fail(topic, pid, ids.slice(0, 3), 'r', (i) => later + (2 - i) * 1000);
    await fail(topic, pid, ids.slice(3), 'x', (i) => 1_000_000 + i);
    const all = await list(pid);
    expect(all.data.map((m) => m.id)).to.deep.equal([ids[2], ids[1], ids[0], ids[5], ids[4], ids[3]]);
    expect(all.cursor).to.equal(null);
    const first = all.data[0]!;
    expect(first.state).to.equal('retrying');
    expect(first.next_attempt_at).to.equal(new Date(later).toISOString());
    expect(first.attempt_count).to.equal(1);
    expect(first.payload).to.deep.equal({ n: 2 });
    const dead = await list(pid, '?state=dead');
    expect(dead.data.map((m) => m.state)).to.deep.equal(['dead', 'dead', 'dead']);
    expect(dead.data[0]!.dead_at).to.equal(new Date(1_000_002).toISOString());
    expect(dead.data[0]!.dead_reason).to.equal('gave up');
    expect((await list(pid, '?state=retrying')).data).to.have.length(3);
    expect((await list(pid, `?topic=${topic}`)).data).to.have.length(6);
    expect((await list(pid, '?topic=other')).data).to.have.length(0);
  });

  it('pages with a cursor, stable among equal scores and while new failures arrive', async () => {
    const { topic, pid, ids } = await setup(25);
    const due = Date.now() + 3600_000;
    await fail(topic, pid, ids.slice(0, 15), 'r', () => due);
    await fail(topic, pid, ids.slice(15), 'x', () => 5000);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: { data: FailingItem[]; cursor: string | null } = await list(
        pid,
        `?limit=4${cursor ? `&cursor=${cursor}` : ''}`,
      );
      seen.push(...page.data.map((m) => m.id));
      cursor = page.cursor;
      if (++pages === 2) {
        // a new failure with a later due time arrives between pages: it is listed once, at its place
        const extra = await call(api.app, 'POST', '/api/messages', { topic, payload: 'late' });
        const id = (extra.body as { data: { id: string } }).data.id;
        await fail(topic, pid, [id], 'r', () => due + 1);
        ids.push(id);
      }
    } while (cursor !== null && pages < 20);
    expect(seen).to.have.length(26);
    expect(new Set(seen).size).to.equal(26);
    expect(new Set(seen)).to.deep.equal(new Set(ids));
    expect(decodeCursor('not base64 json')).to.equal(undefined);
  });

  it('refuses a bad limit, state or cursor, and answers 404 for an unknown publisher', async () => {
    const { pid } = await setup(1);
    for (const [q, field] of [
      ['?limit=0', 'limit'],
      ['?limit=abc', 'limit'],
      ['?state=delivered', 'state'],
      ['?cursor=xyz', 'cursor'],
    ]) {
      const res = await call(api.app, 'GET', `/api/publishers/${pid}/failing${q}`);
      expect(res.status, q).to.equal(400);
      expect(res.body).to.have.nested.property(`data.errors.${field}`);
    }
    expect((await call(api.app, 'GET', '/api/publishers/999/failing')).status).to.equal(404);
    expect((await call(api.app, 'POST', '/api/publishers/999/failing/retry', { all: true })).status).to.equal(404);
  });

  it('retry now makes the selected messages due at once, dead letters included, and wakes the retry index', async () => {
    const { topic, pid, ids } = await setup(4);
    const later = Date.now() + 3600_000;
    await fail(topic, pid, ids.slice(0, 2), 'r', () => later);
    await fail(topic, pid, ids.slice(2), 'x', () => 1000);
    await api.redis.zadd(api.keys.retryDue, later, pid);
    const before = Date.now();
    const res = await call(api.app, 'POST', `/api/publishers/${pid}/failing/retry`, { ids: [ids[0], ids[2], 'nope'] });
    expect(res.status).to.equal(200);
    expect(res.body).to.deep.equal({ data: { count: 2, ids: [ids[0], ids[2]], missing: ['nope'] } });
    const pk = api.keys.publisher(topic, pid);
    const sid = async (id: string) => Promise.resolve(parseMessageId(id)!.streamId!);
    expect(Number(await api.redis.zscore(pk.retries, await sid(ids[0]!)))).to.be.within(before, Date.now());
    expect(Number(await api.redis.zscore(pk.retries, await sid(ids[2]!)))).to.be.within(before, Date.now());
    expect(await api.redis.zscore(pk.dead, await sid(ids[2]!))).to.equal(null);
    expect(Number(await api.redis.zscore(api.keys.retryDue, pid))).to.be.within(before, Date.now());
    const rec = await record(topic, ids[2]!, pid);
    expect(rec.state).to.equal('retrying');
    expect(rec.dead_reason).to.equal(undefined);
    expect(rec.last_action?.action).to.equal('retry_now');
    const all = await call(api.app, 'POST', `/api/publishers/${pid}/failing/retry`, { all: true });
    expect((all.body as { data: { ids: string[] } }).data.ids).to.have.members([ids[1], ids[3]]);
    expect(await api.redis.zcard(pk.dead)).to.equal(0);
    expect(await api.redis.zcount(pk.retries, '-inf', Date.now())).to.equal(4);
  });

  it('set next attempt moves the due time of the selected messages', async () => {
    const { topic, pid, ids } = await setup(2);
    await fail(topic, pid, ids, 'r', () => Date.now() + 60_000);
    const at = new Date(Date.now() + 7200_000);
    const res = await call(api.app, 'POST', `/api/publishers/${pid}/failing/next_attempt`, {
      ids: [ids[1]],
      next_attempt_at: at.toISOString(),
    });
    expect(res.status).to.equal(200);
    const page = await list(pid);
    expect(page.data.map((m) => [m.id, m.next_attempt_at])).to.deep.equal([
      [ids[0], page.data[0]!.next_attempt_at],
      [ids[1], at.toISOString()],
    ]);
    expect((await record(topic, ids[1]!, pid)).next_attempt_at).to.equal(at.toISOString());
    const bad = await call(api.app, 'POST', `/api/publishers/${pid}/failing/next_attempt`, {
      all: true,
      next_attempt_at: 'tomorrow',
    });
    expect(bad.status).to.equal(400);
    expect(Object.keys((bad.body as { data: { errors: object } }).data.errors).sort()).to.deep.equal([
      'all',
      'next_attempt_at',
    ]);
  });

  it('recover failed since T moves exactly the dead letters that died at or after T', async () => {
    const { topic, pid, ids } = await setup(5);
    const t = Date.now() - 60_000;
    await fail(topic, pid, ids, 'x', (i) => t + (i - 2) * 1000);
    const res = await call(api.app, 'POST', `/api/publishers/${pid}/failing/recover`, {
      since: new Date(t).toISOString(),
    });
    expect(res.status).to.equal(200);
    expect((res.body as { data: { ids: string[] } }).data.ids).to.have.members([ids[2], ids[3], ids[4]]);
    const pk = api.keys.publisher(topic, pid);
    expect(await api.redis.zcard(pk.dead)).to.equal(2);
    expect(await api.redis.zcard(pk.retries)).to.equal(3);
    expect((await record(topic, ids[3]!, pid)).last_action?.action).to.equal('recovered');
  });

  it('delete acknowledges the messages for the publisher, and their page says deleted', async () => {
    const { topic, pid, ids } = await setup(3);
    await fail(topic, pid, ids.slice(0, 2), 'r', () => Date.now() + 60_000);
    await fail(topic, pid, ids.slice(2), 'x', () => 1000);
    const res = await call(api.app, 'POST', `/api/publishers/${pid}/failing/delete`, { ids: [ids[0]] });
    expect((res.body as { data: { count: number } }).data.count).to.equal(1);
    const summary = await api.redis.xpending(api.keys.topic(topic).stream, pid);
    expect(summary[0]).to.equal(1);
    expect((await record(topic, ids[0]!, pid)).state).to.equal('deleted');
    const got = await call(api.app, 'GET', `/api/messages/${ids[0]}`);
    expect(got.body).to.have.nested.property('data.deliveries[0].state', 'deleted');
    await call(api.app, 'POST', `/api/publishers/${pid}/failing/delete`, { all: true });
    expect((await list(pid)).data).to.have.length(0);
    expect((await api.redis.xpending(api.keys.topic(topic).stream, pid))[0]).to.equal(0);
  });

  it('refuses a selection that is missing, empty or both ids and all', async () => {
    const { pid } = await setup(1);
    for (const body of [{}, { ids: [] }, { ids: 'x' }, { all: false }, { ids: ['a'], all: true }]) {
      const res = await call(api.app, 'POST', `/api/publishers/${pid}/failing/retry`, body);
      expect(res.status, JSON.stringify(body)).to.equal(400);
    }
    const res = await call(api.app, 'POST', `/api/publishers/${pid}/failing/recover`, { since: 'yesterday' });
    expect(res.body).to.deep.equal({
      data: { errors: { since: ['must be an ISO-8601 date and time with an offset'] } },
    });
  });
});
