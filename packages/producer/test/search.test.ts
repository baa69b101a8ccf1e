import { expect } from 'chai';
import { parseMessageId } from '@postoffice/shared';
import { settle } from '@postoffice/test-support/settle';
import type { SearchAnswer } from '../src/routes/messages.js';
import { call, createPublisher, createTopic, startApi, waitFor, type Api } from './helpers.js';

describe('GET /api/messages (search)', () => {
  let api: Api;

  beforeEach(async () => {
    api = await startApi({ SEARCH_SCAN_BUDGET: '100' });
    await createTopic(api.app, 'a');
    await createTopic(api.app, 'b');
  });

  afterEach(async () => {
    await api?.close();
  });

  async function send(topic: string, payload: unknown, attributes?: Record<string, string>): Promise<string> {
    const res = await call(api.app, 'POST', '/api/messages', { topic, payload, ...(attributes ? { attributes } : {}) });
    expect(res.status, res.raw).to.equal(201);
    return (res.body as { data: { id: string } }).data.id;
  }

  async function bulk(topic: string, payloads: unknown[]): Promise<string[]> {
    const res = await call(api.app, 'POST', '/api/bulk_messages', { topic, payload: payloads });
    expect(res.status, res.raw).to.equal(201);
    return (res.body as { data: { ids: string[] } }).data.ids;
  }

  async function search(query: string): Promise<SearchAnswer> {
    const res = await call(api.app, 'GET', `/api/messages${query}`);
    expect(res.status, res.raw).to.equal(200);
    return res.body as SearchAnswer;
  }

  const ids = (page: SearchAnswer) => page.data.map((m) => m.id);

  it('lists every topic newest first, merged by receipt, and filters by topic', async () => {
    const sent: string[] = [];
    for (let i = 0; i < 6; i++) {
      sent.push(await send(i % 2 === 0 ? 'a' : 'b', { i }));
      // Across topics, receipt order is known to the millisecond (stream ids): let the clock move on.
      await nextMillisecond();
    }
    const all = await search('');
    expect(ids(all)).to.deep.equal([...sent].reverse());
    expect(all.cursor).to.equal(null);
    expect(all.truncated).to.equal(false);
    expect(all.data[0]).to.include({ topic: 'b' });
    expect(all.data[0]!.payload).to.deep.equal({ i: 5 });
    expect(ids(await search('?topic=a'))).to.deep.equal([sent[4], sent[2], sent[0]]);
    expect(ids(await search('?topic=unknown'))).to.deep.equal([]);
  });

  it('filters by message id', async () => {
    const id = await send('a', 1);
    await send('b', 2);
    expect(ids(await search(`?id=${id}`))).to.deep.equal([id]);
    expect(ids(await search(`?id=${id}&topic=b`))).to.deep.equal([]);
    expect(ids(await search('?id=nope'))).to.deep.equal([]);
  });

  it('filters by attribute equality, every given attribute', async () => {
    const x = await send('a', 1, { source: 'shop', kind: 'order' });
    await send('a', 2, { source: 'shop', kind: 'refund' });
    await send('b', 3, { source: 'pos' });
    await send('b', 4);
    expect(ids(await search('?attributes.source=shop&attributes.kind=order'))).to.deep.equal([x]);
    expect(await search('?attributes.source=shop'))
      .to.have.property('data')
      .with.length(2);
  });

  it('filters by received-at range and by a payload substring within it', async () => {
    const tick = async () => {
      const t = Date.now();
      while (Date.now() <= t + 1) await new Promise((r) => setImmediate(r));
    };
    const early = await send('a', { name: 'needle early' });
    await tick();
    const mid = await send('a', { name: 'needle mid' });
    await tick();
    const midHay = await send('b', { name: 'hay' });
    await tick();
    const late = await send('a', { name: 'needle late' });
    const all = await search('');
    const at = (id: string) => all.data.find((m) => m.id === id)!.received_at;
    const range = `from=${encodeURIComponent(at(mid))}&to=${encodeURIComponent(at(midHay))}`;
    expect(ids(await search(`?${range}`))).to.deep.equal([midHay, mid]);
    expect(ids(await search(`?q=needle&${range}`))).to.deep.equal([mid]);
    expect(ids(await search('?q=needle'))).to.deep.equal([late, mid, early]);
    expect(ids(await search(`?q=needle&to=${encodeURIComponent(at(mid))}`))).to.deep.equal([mid, early]);
    expect(ids(await search('?q=%22hay%22'))).to.deep.equal([midHay]);
  });

  it('filters by delivery state, for one publisher or any', async () => {
    const p = await createPublisher(api.app, { topic: 'a', target: 'http://127.0.0.1:9/x' });
    const pid = String(p.id);
    const [m1, m2, m3, m4, m5] = await bulk('a', [1, 2, 3, 4, 5]);
    await send('b', 'other topic');
    const tk = api.keys.topic('a');
    const pk = api.keys.publisher('a', pid);
    const sid = async (id: string) => Promise.resolve(parseMessageId(id)!.streamId!);
    await api.redis.xreadgroup('GROUP', pid, 'n', 'COUNT', 4, 'STREAMS', tk.stream, '>');
    await api.redis.xack(tk.stream, pid, await sid(m1!), await sid(m3!));
    await api.redis.zadd(pk.retries, Date.now() + 60_000, await sid(m2!));
    await api.redis.zadd(pk.dead, Date.now(), await sid(m3!));
    expect(ids(await search(`?state=delivered&publisher=${pid}`))).to.deep.equal([m1]);
    expect(ids(await search(`?state=retrying&publisher=${pid}`))).to.deep.equal([m2]);
    expect(ids(await search(`?state=dead&publisher=${pid}`))).to.deep.equal([m3]);
    expect(ids(await search(`?state=pending&publisher=${pid}`))).to.deep.equal([m5, m4]);
    expect(ids(await search('?state=dead'))).to.deep.equal([m3]);
    const byPublisher = await search(`?publisher=${pid}`);
    expect(ids(byPublisher)).to.deep.equal([m5, m4, m3, m2, m1]);
    expect(byPublisher.data[2]!.deliveries).to.deep.equal([{ publisher_id: pid, state: 'dead' }]);
  });

  it("shows each message's state as its own page does: deleted, dead, leased, and pending again after a pull retry", async () => {
    const http = String((await createPublisher(api.app, { topic: 'a', target: 'http://127.0.0.1:9/x' })).id);
    const pull = String((await createPublisher(api.app, { topic: 'a', target: 'workers', type: 'pull' })).id);
    const [deleted, dead, leased, retried, delivered, unread] = await bulk('a', [1, 2, 3, 4, 5, 6]);
    const sid = (id: string): string => parseMessageId(id)!.streamId!;
    const tk = api.keys.topic('a');
    // http: every message read; one failed then deleted from the failing list, one dead, one delivered.
    await api.redis.xreadgroup('GROUP', http, 'n', 'COUNT', 5, 'STREAMS', tk.stream, '>');
    await settle(api.redis, api.keys, 'a', http, [
      { streamId: sid(deleted!), outcome: 'r', score: Date.now() + 60_000 },
      { streamId: sid(dead!), outcome: 'x', score: Date.now(), reason: 'gave up' },
      { streamId: sid(leased!), outcome: 'd' },
      { streamId: sid(retried!), outcome: 'd' },
      { streamId: sid(delivered!), outcome: 'd' },
    ]);
    const del = await call(api.app, 'POST', `/api/publishers/${http}/failing/delete`, { ids: [deleted] });
    expect(del.status, del.raw).to.equal(200);
    // pull: two leased, one of them handed back for a retry due at once (pending again), one completed.
    const got = await call(api.app, 'POST', `/api/publishers/${pull}/lease`, {
      max: 5,
      lease_seconds: 60,
      worker: { host: 'w1' },
    });
    const leases = (got.body as { data: { token: string; message: { id: string } }[] }).data;
    const token = (id: string): string => leases.find((l) => l.message.id === id)!.token;
    expect(
      (await call(api.app, 'POST', `/api/leases/${encodeURIComponent(token(retried!))}/retry`, { in_seconds: 0 }))
        .status,
    ).to.equal(200);
    expect(
      (await call(api.app, 'POST', `/api/leases/${encodeURIComponent(token(delivered!))}/complete`)).status,
    ).to.equal(200);

    const page = await search('?state=deleted');
    expect(ids(page)).to.deep.equal([deleted]);
    for (const query of [`?publisher=${http}`, `?publisher=${pull}`, '?state=leased']) {
      const found = await search(query);
      for (const item of found.data) {
        const own = (await call(api.app, 'GET', `/api/messages/${item.id}`)).body as {
          data: { deliveries: { publisher_id: string; state: string }[] };
        };
        const expected = own.data.deliveries
          .filter((d) => item.deliveries!.some((x) => x.publisher_id === d.publisher_id))
          .map((d) => ({ publisher_id: d.publisher_id, state: d.state }));
        expect(item.deliveries, `${query} ${item.id}`).to.deep.equal(expected);
      }
    }
    expect(ids(await search(`?state=leased&publisher=${pull}`))).to.have.members([deleted, dead, leased]);
    expect(ids(await search(`?state=pending&publisher=${pull}`))).to.have.members([retried, unread]);
    expect(ids(await search(`?state=delivered&publisher=${pull}`))).to.deep.equal([delivered]);
    expect(ids(await search(`?state=pending&publisher=${http}`))).to.deep.equal([unread]);
    expect(ids(await search(`?state=dead&publisher=${http}`))).to.deep.equal([dead]);
  });

  it('keeps pages stable while new messages arrive', async () => {
    const sent = [
      ...(await bulk(
        'a',
        Array.from({ length: 15 }, (_, i) => i),
      )),
    ];
    // Entries of two topics written in the same millisecond have no order between them (each stream
    // numbers its own): let the clock move on, so that newest first is one order.
    const after = Date.now() + 2;
    await waitFor(() => Date.now() > after, 'the next millisecond');
    sent.push(
      ...(await bulk(
        'b',
        Array.from({ length: 15 }, (_, i) => i),
      )),
    );
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: SearchAnswer = await search(`?limit=7${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...ids(page));
      cursor = page.cursor;
      pages++;
      await send(pages % 2 === 0 ? 'a' : 'b', 'new');
      if (pages === 2) await createTopic(api.app, 'c').then(() => send('c', 'new topic'));
    } while (cursor !== null && pages < 20);
    expect(seen).to.deep.equal([...sent].reverse());
  });

  it('examines at most the scan budget per request and says when it cut a search short', async () => {
    const sent = await bulk(
      'a',
      Array.from({ length: 250 }, (_, i) => (i === 0 ? 'the one' : `other ${i}`)),
    );
    const first = await search('?q=the%20one');
    expect(first.data).to.deep.equal([]);
    expect(first.truncated).to.equal(true);
    expect(first.scanned).to.equal(100);
    expect(first.cursor).to.be.a('string');
    const second = await search(`?q=the%20one&cursor=${first.cursor}`);
    expect(second.truncated).to.equal(true);
    const third = await search(`?q=the%20one&cursor=${second.cursor}`);
    expect(ids(third)).to.deep.equal([sent[0]]);
    expect(third.truncated).to.equal(false);
    expect(third.scanned).to.equal(50);
  });

  it('refuses bad parameters with a 400 naming each', async () => {
    for (const [q, field] of [
      ['?state=lost', 'state'],
      ['?from=yesterday', 'from'],
      ['?to=2020-01-01', 'to'],
      ['?limit=0', 'limit'],
      ['?limit=501', 'limit'],
      ['?cursor=nonsense', 'cursor'],
      ['?publisher=999', 'publisher'],
      ['?topic=bad%20name', 'topic'],
      ['?from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z', 'to'],
    ]) {
      const res = await call(api.app, 'GET', `/api/messages${q}`);
      expect(res.status, q).to.equal(400);
      expect(res.body, q).to.have.nested.property(`data.errors.${field}`);
    }
  });
});

/** Resolves once the clock has moved past the current millisecond (and one more, for Redis' own clock). */
async function nextMillisecond(): Promise<void> {
  const until = Date.now() + 2;
  while (Date.now() < until) await new Promise((resolve) => setImmediate(resolve));
}
