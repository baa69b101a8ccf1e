import { expect } from 'chai';
import { SERIES_TTL_SECONDS, seriesSlot } from '@postoffice/shared';
import { SeriesCache, type Series } from '../src/stats-series.js';
import { settle } from '@postoffice/test-support/settle';
import { call, createPublisher, createTopic, errors, send, startApi, type Api } from './helpers.js';

async function series(api: Api, query: string): Promise<Series> {
  const res = await call(api.app, 'GET', `/api/stats/series${query}`);
  expect(res.status, res.raw).to.equal(200);
  return (res.body as { data: Series }).data;
}

const total = (s: Series, f: 'received' | 'delivered' | 'failed'): number => s.points.reduce((n, p) => n + p[f], 0);

/** The `r` fields of a topic's counters, this hour and the one before (a test may cross the hour). */
async function receivedFields(api: Api, topic: string): Promise<Record<string, string>> {
  const { hour } = seriesSlot(Date.now());
  const out: Record<string, string> = {};
  for (const h of [hour - 1, hour]) {
    for (const [k, v] of Object.entries(await api.redis.hgetall(api.keys.series(topic, h)))) {
      if (k.endsWith(':r')) out[`${h}/${k}`] = v;
    }
  }
  return out;
}

async function readAll(api: Api, topic: string, publisher: string): Promise<string[]> {
  const read = (await api.redis.xreadgroup(
    'GROUP',
    publisher,
    'node',
    'STREAMS',
    api.keys.topic(topic).stream,
    '>',
  )) as [string, [string, string[]][]][];
  return read[0]![1].map(([sid]) => sid);
}

describe('GET /api/stats/series', () => {
  let api: Api;
  before(async () => {
    api = await startApi({ STATS_CACHE_MS: '0' });
  });
  after(async () => {
    await api.close();
  });

  it('counts received messages (a replayed Idempotency-Key request once) in a key that expires', async () => {
    await createTopic(api.app, 'counted');
    expect((await call(api.app, 'POST', '/api/messages', { topic: 'counted', payload: 1 })).status).to.equal(201);
    const bulk = await call(api.app, 'POST', '/api/bulk_messages', { topic: 'counted', payload: [1, 2, 3] });
    expect(bulk.status).to.equal(201);
    // The same request twice under one Idempotency-Key: written, and counted, once.
    for (let i = 0; i < 2; i++) {
      const res = await send(api.app, 'POST', '/api/messages', JSON.stringify({ topic: 'counted', payload: 'once' }), {
        'content-type': 'application/json',
        'idempotency-key': 'k-1',
      });
      expect(res.status).to.be.oneOf([200, 201]);
    }
    const fields = await receivedFields(api, 'counted');
    expect(Object.values(fields).reduce((n, v) => n + Number(v), 0)).to.equal(5);
    const ttl = await api.redis.ttl(api.keys.series('counted', seriesSlot(Date.now()).hour));
    expect(ttl)
      .to.be.greaterThan(SERIES_TTL_SECONDS - 60)
      .and.at.most(SERIES_TTL_SECONDS);
    // The counters share the topic's hash tag: one slot with its stream, as Redis Cluster needs.
    expect(api.keys.series('counted', 7)).to.equal(`${api.keys.prefix}{counted}:series:7`);
    expect(api.keys.topic('counted').stream.startsWith(`${api.keys.prefix}{counted}:`)).to.equal(true);
    const s = await series(api, '?topic=counted');
    expect(total(s, 'received')).to.equal(5);
  });

  it('answers 60 one-minute buckets of received, delivered and failed, by topic and by publisher', async () => {
    await createTopic(api.app, 'charts');
    const a = String((await createPublisher(api.app, { topic: 'charts', target: 'http://127.0.0.1:9/a' })).id);
    const b = String((await createPublisher(api.app, { topic: 'charts', target: 'http://127.0.0.1:9/b' })).id);
    expect(
      (await call(api.app, 'POST', '/api/bulk_messages', { topic: 'charts', payload: [1, 2, 3] })).status,
    ).to.equal(201);
    const [a1, a2, a3] = await readAll(api, 'charts', a);
    await settle(api.redis, api.keys, 'charts', a, [
      { streamId: a1!, outcome: 'd' },
      { streamId: a2!, outcome: 'd' },
      { streamId: a3!, outcome: 'r', score: Date.now() + 60_000 },
    ]);
    const [b1, b2] = await readAll(api, 'charts', b);
    await settle(api.redis, api.keys, 'charts', b, [
      { streamId: b1!, outcome: 'x' },
      { streamId: b2!, outcome: 'd' },
    ]);

    const hour = await series(api, '?window=hour&topic=charts');
    expect(hour).to.include({ window: 'hour', bucket_seconds: 60, topic: 'charts', publisher: null });
    expect(hour.points).to.have.length(60);
    const starts = hour.points.map((p) => Date.parse(p.at));
    expect(starts.every((t, i) => i === 0 || t - starts[i - 1]! === 60_000)).to.equal(true);
    expect(Date.parse(hour.to) - starts[59]!).to.be.within(0, 60_000);
    expect([total(hour, 'received'), total(hour, 'delivered'), total(hour, 'failed')]).to.deep.equal([3, 3, 2]);
    expect(hour.publishers.map((p) => p.id)).to.deep.equal([a, b]);

    const onlyA = await series(api, `?publisher=${a}`);
    expect(onlyA).to.include({ window: 'hour', topic: 'charts', publisher: a });
    expect([total(onlyA, 'received'), total(onlyA, 'delivered'), total(onlyA, 'failed')]).to.deep.equal([3, 2, 1]);
    expect(onlyA.publishers).to.have.length(1);
    expect(onlyA.publishers[0]).to.include({ id: a, backlog: 1 });

    const day = await series(api, '?window=day&topic=charts');
    expect(day).to.include({ window: 'day', bucket_seconds: 600 });
    expect(day.points).to.have.length(144);
    expect([total(day, 'received'), total(day, 'delivered'), total(day, 'failed')]).to.deep.equal([3, 3, 2]);

    // Everything: this topic's figures are in it (other tests' topics too).
    const all = await series(api, '');
    expect(all.topic).to.equal(null);
    expect(total(all, 'delivered')).to.be.at.least(3);
  });

  it("shows each minute's backlog samples: summed over the publishers, and per publisher", async () => {
    await createTopic(api.app, 'sampled');
    const a = String((await createPublisher(api.app, { topic: 'sampled', target: 'http://127.0.0.1:9/a' })).id);
    const b = String((await createPublisher(api.app, { topic: 'sampled', target: 'http://127.0.0.1:9/b' })).id);
    const now = Date.now();
    const { hour, minute } = seriesSlot(now);
    // As the janitor's node writes them (BacklogSampler): this minute and ten minutes ago.
    const key = api.keys.series('sampled', hour);
    await api.redis.hset(
      key,
      `${minute}:b:${a}`,
      4,
      `${minute}:a:${a}`,
      30,
      `${minute}:b:${b}`,
      6,
      `${minute}:a:${b}`,
      90,
    );
    const earlier = seriesSlot(now - 10 * 60_000);
    await api.redis.hset(api.keys.series('sampled', earlier.hour), `${earlier.minute}:b:${a}`, 2);
    // A sample marked as such (`s`): the publisher without a field (b) had nothing waiting.
    const marked = seriesSlot(now - 8 * 60_000);
    await api.redis.hset(
      api.keys.series('sampled', marked.hour),
      `${marked.minute}:s`,
      1,
      `${marked.minute}:b:${a}`,
      5,
      `${marked.minute}:a:${a}`,
      20,
    );

    // Found by their start, so that a minute turning during the test changes nothing.
    const at = (ms: number): string => new Date(Math.floor(ms / 60_000) * 60_000).toISOString();
    const s = await series(api, '?topic=sampled');
    const index = (ms: number): number => s.points.findIndex((p) => p.at === at(ms));
    expect(s.points[index(now)]).to.include({ backlog: 10, oldest_age_seconds: 90 });
    expect(s.points[index(now - 10 * 60_000)]).to.include({ backlog: 2, oldest_age_seconds: null });
    expect(s.points[index(now - 9 * 60_000)]).to.include({ backlog: null, oldest_age_seconds: null });
    const rowB = s.publishers.find((p) => p.id === b)!;
    expect(rowB.points[index(now)]).to.deep.include({ backlog: 6, oldest_age_seconds: 90 });
    expect(rowB.points[index(now - 10 * 60_000)]).to.deep.include({ backlog: null });
    expect(s.points[index(now - 8 * 60_000)]).to.include({ backlog: 5, oldest_age_seconds: 20 });
    expect(rowB.points[index(now - 8 * 60_000)]).to.deep.include({ backlog: 0, oldest_age_seconds: 0 });
    const onlyA = await series(api, `?publisher=${a}&topic=sampled`);
    expect(onlyA.points.find((p) => p.at === at(now))).to.include({ backlog: 4, oldest_age_seconds: 30 });
  });

  describe('when the query is wrong', () => {
    it('answers 400 naming the field', async () => {
      const week = await call(api.app, 'GET', '/api/stats/series?window=week');
      expect(week.status).to.equal(400);
      expect(week.body).to.deep.equal(errors({ window: ['must be hour or day'] }));
      const unknown = await call(api.app, 'GET', '/api/stats/series?span=1');
      expect(unknown.status).to.equal(400);
      expect(Object.keys((unknown.body as { data: { errors: object } }).data.errors)).to.deep.equal(['span']);
      const badId = await call(api.app, 'GET', '/api/stats/series?publisher=abc');
      expect(badId.status).to.equal(400);
      expect(badId.body).to.deep.equal(errors({ publisher: ['is not a publisher id'] }));
      const badTopic = await call(api.app, 'GET', '/api/stats/series?topic=no%20spaces');
      expect(badTopic.status).to.equal(400);
      expect(Object.keys((badTopic.body as { data: { errors: object } }).data.errors)).to.deep.equal(['topic']);
    });

    it('answers 400 for a publisher of another topic', async () => {
      await createTopic(api.app, 'one');
      await createTopic(api.app, 'two');
      const p = String((await createPublisher(api.app, { topic: 'one', target: 'http://127.0.0.1:9/one' })).id);
      const res = await call(api.app, 'GET', `/api/stats/series?publisher=${p}&topic=two`);
      expect(res.status).to.equal(400);
      expect(res.body).to.deep.equal(errors({ topic: ["is not the publisher's topic"] }));
    });

    it('answers 404 for an unknown topic or publisher', async () => {
      const topic = await call(api.app, 'GET', '/api/stats/series?topic=nowhere');
      expect(topic.status).to.equal(404);
      expect(topic.body).to.deep.equal(errors({ topic: ['topic not found'] }));
      const publisher = await call(api.app, 'GET', '/api/stats/series?publisher=999999');
      expect(publisher.status).to.equal(404);
      expect(publisher.body).to.deep.equal(errors({ publisher: ['publisher not found'] }));
    });
  });
});

describe('SeriesCache', () => {
  it('computes once per query for concurrent requests and within the interval, again after it; keeps no failure', async () => {
    let now = 1_000_000;
    let computed = 0;
    const cache = new SeriesCache(1000, () => now);
    const compute = async (): Promise<Series> => {
      computed++;
      return { window: 'hour' } as Series;
    };
    const [a, b] = await Promise.all([cache.get('hour', compute), cache.get('hour', compute)]);
    expect(a).to.equal(b);
    expect(computed).to.equal(1);
    await cache.get('day', compute);
    expect(computed).to.equal(2);
    now += 999;
    await cache.get('hour', compute);
    expect(computed).to.equal(2);
    now += 1;
    await cache.get('hour', compute);
    expect(computed).to.equal(3);
    let fail = true;
    const failing = async (): Promise<Series> => {
      computed++;
      if (fail) throw new Error('redis down');
      return { window: 'day' } as Series;
    };
    let caught: unknown;
    await cache.get('failing', failing).catch((err: unknown) => (caught = err));
    expect(caught).to.be.instanceOf(Error);
    fail = false;
    expect((await cache.get('failing', failing)).window).to.equal('day');
    expect(computed).to.equal(5);
  });
});
