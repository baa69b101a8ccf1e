import { expect } from 'chai';
import { inexactNumber, keepsExactly, mayHoldInexactNumber } from '../src/exact-numbers.js';
import { call, createPublisher, createTopic, errors, send, startApi, type Answer, type Api } from './helpers.js';

const json = { 'content-type': 'application/json' };
const cursorOf = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
const fields = (res: Answer): string[] => Object.keys((res.body as { data: { errors: object } }).data.errors).sort();

describe('the input contract', () => {
  let api: Api;
  let hook: string;
  let pullId: string;

  before(async () => {
    api = await startApi({ MAX_BULK_MESSAGES: '5' });
    hook = 'http://127.0.0.1:9/hook';
    await createTopic(api.app, 'orders');
    await createTopic(api.app, 'jobs');
    pullId = String((await createPublisher(api.app, { topic: 'jobs', target: 'workers', type: 'pull' })).id);
  });
  after(async () => {
    await api.close();
  });

  describe('unknown fields', () => {
    it('refuses a publisher sent with `secret` instead of `secrets` with 400 naming it, and creates nothing', async () => {
      const before = (await call(api.app, 'GET', '/api/publishers')).body as { data: unknown[] };
      const res = await call(api.app, 'POST', '/api/publishers', {
        topic: 'orders',
        type: 'http',
        target: `${hook}/signed`,
        secret: ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'],
      });
      expect(res.status).to.equal(400);
      expect(fields(res)).to.deep.equal(['secret']);
      const why = (res.body as { data: { errors: Record<string, string[]> } }).data.errors.secret?.[0];
      expect(why).to.match(/^is an unknown field \(expected one of: .*secrets/);
      const after = (await call(api.app, 'GET', '/api/publishers')).body as { data: unknown[] };
      expect(after.data).to.have.length(before.data.length);
    });

    it('refuses a misspelt option, inside nested objects too, naming its path', async () => {
      const res = await call(api.app, 'POST', '/api/publishers', {
        topic: 'orders',
        type: 'http',
        target: `${hook}/x`,
        seconds_timout: 3,
        rate_limit: { per_second: 1, burst: 1, per_minute: 3 },
      });
      expect(res.status).to.equal(400);
      expect(fields(res)).to.deep.equal(['rate_limit', 'seconds_timout']);
      const lease = await call(api.app, 'POST', `/api/publishers/${pullId}/lease`, { worker: { hots: 'box' } });
      expect(lease.status).to.equal(400);
      expect(fields(lease)).to.deep.equal(['worker.hots']);
    });

    it('refuses unknown fields on every route that takes a body, and unknown query parameters', async () => {
      const cases: [string, string, unknown][] = [
        ['POST', '/api/topics', { name: 'extra', origin_host: 'h', colour: 'red' }],
        ['PATCH', '/api/topics/orders', { origin_host: 'h', colour: 'red' }],
        ['POST', '/api/messages', { topic: 'orders', payload: 1, colour: 'red' }],
        ['POST', '/api/bulk_messages', { topic: 'orders', payload: [1], colour: 'red' }],
        [
          'POST',
          '/api/schedule_messages',
          { topic: 'orders', payload: 1, schedule_at: '2999-01-01T00:00:00Z', colour: 1 },
        ],
        ['POST', `/api/publishers/${pullId}/failing/retry`, { all: true, colour: 'red' }],
        ['POST', `/api/publishers/${pullId}/lease`, { max: 1, colour: 'red' }],
        ['POST', '/api/leases/1.1-0.x/complete', { colour: 'red' }],
      ];
      for (const [method, url, b] of cases) {
        const res = await call(api.app, method as 'POST', url, b);
        expect(res.status, `${method} ${url}`).to.equal(400);
        expect(fields(res), `${method} ${url}`).to.deep.equal(['colour']);
      }
      for (const url of [
        '/api/messages?topic=orders&stat=dead',
        `/api/publishers/${pullId}/failing?colour=1`,
        '/api/topics?colour=1',
      ]) {
        const res = await call(api.app, 'GET', url);
        expect(res.status, url).to.equal(400);
        expect(fields(res), url).to.deep.equal([url.includes('stat=') ? 'stat' : 'colour']);
      }
    });

    it('still takes every field the original Postoffice accepted', async () => {
      const topic = await call(api.app, 'POST', '/api/topics', {
        name: 'legacy',
        origin_host: 'https://shop.test',
        recovery_enabled: false,
      });
      expect(topic.status).to.equal(201);
      const publisher = await call(api.app, 'POST', '/api/publishers', {
        topic: 'legacy',
        target: `${hook}/legacy`,
        type: 'http',
        active: true,
        seconds_timeout: 5,
        seconds_retry: 30,
        chunk_size: 10,
        from_now: false,
        deleted: false,
      });
      expect(publisher.status, publisher.raw).to.equal(201);
      const deleted = await call(api.app, 'POST', '/api/publishers', {
        topic: 'legacy',
        target: `${hook}/gone`,
        type: 'http',
        deleted: true,
      });
      expect(deleted.status).to.equal(400);
      expect(fields(deleted)).to.deep.equal(['deleted']);
      for (const [url, b] of [
        ['/api/messages', { topic: 'legacy', payload: { a: 1 }, attributes: {} }],
        ['/api/bulk_messages', { topic: 'legacy', payload: [{ a: 1 }], attributes: {} }],
        // Postoffice read schedule_at with Elixir's DateTime.from_iso8601, which takes a space for the T.
        [
          '/api/schedule_messages',
          { topic: 'legacy', payload: 1, attributes: {}, schedule_at: '2999-12-31 10:11:12.131415+02:00' },
        ],
      ] as const) {
        expect((await call(api.app, 'POST', url, b)).status, url).to.equal(201);
      }
    });
  });

  describe('reasons', () => {
    it("says can't be blank for a blank choice, and must be given once for a repeated parameter", async () => {
      const blank = await call(api.app, 'POST', '/api/publishers', { topic: 'orders', type: ' ', target: `${hook}/b` });
      expect(blank.body).to.deep.equal(errors({ type: ["can't be blank"] }));
      const twice = await call(api.app, 'GET', '/api/messages?limit=1&limit=2');
      expect(twice.body).to.deep.equal(errors({ limit: ['must be given once'] }));
    });

    it('takes null as "not given" in a creation, and refuses it in a change where it means nothing', async () => {
      const created = await call(api.app, 'POST', '/api/publishers', {
        topic: 'orders',
        type: 'http',
        target: `${hook}/nulls`,
        active: null,
        seconds_retry: null,
        attributes: undefined,
      });
      expect(created.status, created.raw).to.equal(201);
      const id = String((created.body as { data: { id: string } }).data.id);
      const changed = await call(api.app, 'PATCH', `/api/publishers/${id}`, { seconds_retry: null });
      expect(changed.body).to.deep.equal(errors({ seconds_retry: ['is invalid'] }));
    });
  });

  describe('numbers', () => {
    async function stored(id: string): Promise<unknown> {
      const res = await call(api.app, 'GET', `/api/messages/${id}`);
      return (res.body as { data: { payload: unknown } }).data.payload;
    }

    it('refuses a number JSON.parse cannot hold exactly with 400 naming the field, and stores nothing', async () => {
      const xlen = await api.redis.xlen(api.keys.topic('orders').stream);
      for (const [text, field] of [
        ['{"topic":"orders","payload":1e400}', 'payload'],
        ['{"topic":"orders","payload":-1e400}', 'payload'],
        ['{"topic":"orders","payload":12345678901234567890}', 'payload'],
        ['{"topic":"orders","payload":{"n":[1,9007199254740993]}}', 'payload'],
        ['{"topic":"orders","payload":{"tiny":1e-400}}', 'payload'],
        ['{"topic":"orders","payload":0.1000000000000000055511151231257827}', 'payload'],
      ] as const) {
        const res = await send(api.app, 'POST', '/api/messages', text, json);
        expect(res.status, text).to.equal(400);
        expect(fields(res), text).to.deep.equal([field]);
      }
      const bulk = await send(api.app, 'POST', '/api/bulk_messages', '{"topic":"orders","payload":[1,2e999]}', json);
      expect(bulk.status).to.equal(400);
      expect(fields(bulk)).to.deep.equal(['payload']);
      const number = await send(api.app, 'POST', '/api/messages', '1e400', json);
      expect(fields(number)).to.deep.equal(['body']);
      expect(await api.redis.xlen(api.keys.topic('orders').stream)).to.equal(xlen);
    });

    it('delivers exactly the value sent for numbers it takes, and leaves digits in strings alone', async () => {
      const text =
        '{"topic":"orders","payload":{"max":9007199254740992,"big":1e300,"small":2.5e-300,"price":19.99,"exp":1E+21,' +
        '"id":"12345678901234567890","uuid":"550e8400-e29b-41d4-a716-446655440000","e":"1e400","neg":-0,"one":1.0}}';
      const res = await send(api.app, 'POST', '/api/messages', text, json);
      expect(res.status, res.raw).to.equal(201);
      const id = (res.body as { data: { id: string } }).data.id;
      expect(await stored(id)).to.deep.equal({
        max: 9007199254740992,
        big: 1e300,
        small: 2.5e-300,
        price: 19.99,
        exp: 1e21,
        id: '12345678901234567890',
        uuid: '550e8400-e29b-41d4-a716-446655440000',
        e: '1e400',
        neg: 0,
        one: 1,
      });
    });

    it('decides exactness by value, and names the top-level field', () => {
      for (const t of [
        '0',
        '-0',
        '1.5',
        '1e21',
        '1E+21',
        '123456789012345',
        '9007199254740992',
        '1.7976931348623157e308',
        '5e-324',
        '0.30000000000000004',
        '100000000000000000000',
      ])
        expect(keepsExactly(t), t).to.equal(true);
      for (const t of [
        '1e400',
        '1e309',
        '9007199254740993',
        '12345678901234567',
        '1e-400',
        '2e-324',
        '0.1000000000000000055511',
      ])
        expect(keepsExactly(t), t).to.equal(false);
      expect(inexactNumber('{"a":"1e400","b":{"c":[1e400]}}')).to.deep.equal({ field: 'b', number: '1e400' });
      expect(inexactNumber('{"a\\"\\\\":{"x":"}"},"q\\\\":12345678901234567890}')).to.deep.equal({
        field: 'q\\',
        number: '12345678901234567890',
      });
      expect(inexactNumber('[12345678901234567890]')).to.deep.equal({ field: 'body', number: '12345678901234567890' });
    });

    it('scans only bodies that may hold such a number: common payloads pay one regular expression test', () => {
      const common = JSON.stringify({
        topic: 'orders',
        payload: {
          id: 1732000000000,
          price: 12.5,
          at: '2030-01-01T10:00:00.123+02:00',
          ip: '192.168.100.200',
          tags: ['a'],
        },
        attributes: { version: '1.2.3', trace: '4bf92f3577b34da6a3ce929d0e0e4736' },
      });
      expect(mayHoldInexactNumber(common)).to.equal(false);
      expect(mayHoldInexactNumber('{"id":"123e4567-e89b-12d3-a456-426614174000","n":"12345678901234567890"}')).to.equal(
        false,
      );
      for (const t of ['{"n":1234567890123456}', '{"n":[1,\n -1e400]}', '1e400', '{"n":0.0000000000000001}'])
        expect(mayHoldInexactNumber(t), t).to.equal(true);
    });
  });

  describe('ids, cursors and tokens from outside', () => {
    it('answers 400 naming cursor for crafted search cursors, never 500', async () => {
      const now = Date.now();
      for (const c of [
        { p: { hooks: '0-0' } },
        { top: now, p: { orders: '0-0' } },
        { top: now, p: { orders: '99999999999999999999-0' } },
        { top: now, p: { orders: '1-18446744073709551616' } },
        { top: now, p: { orders: '1-0-0' } },
        { top: 1e300, p: {} },
      ]) {
        const res = await call(api.app, 'GET', `/api/messages?cursor=${cursorOf(c)}`);
        expect(res.status, JSON.stringify(c)).to.equal(400);
        expect(res.body).to.deep.equal(errors({ cursor: ['is invalid'] }));
      }
      const fine = await call(
        api.app,
        'GET',
        `/api/messages?cursor=${cursorOf({ top: now, p: { orders: '18446744073709551615-0' } })}`,
      );
      expect(fine.status, fine.raw).to.equal(200);
    });

    it('answers 400 naming cursor for a crafted failing-list cursor', async () => {
      for (const c of [
        { s: 'r', score: 1, sid: '99999999999999999999-0' },
        { s: 'x', score: 1, sid: '1' },
        { s: 'r', score: 'x', sid: '1-0' },
      ]) {
        const res = await call(api.app, 'GET', `/api/publishers/${pullId}/failing?cursor=${cursorOf(c)}`);
        expect(res.status, JSON.stringify(c)).to.equal(400);
        expect(fields(res)).to.deep.equal(['cursor']);
      }
    });

    it('refuses numbers in a query written other than as plain decimals (1e400, Infinity, 0x10), naming them', async () => {
      for (const limit of ['1e400', 'Infinity', '-Infinity', '0x10', '1e2', ' ']) {
        for (const path of [`/api/publishers/${pullId}/failing`, '/api/messages', '/api/topics']) {
          const res = await call(api.app, 'GET', `${path}?limit=${encodeURIComponent(limit)}`);
          expect(res.status, `${path} ${limit}`).to.equal(400);
          expect(fields(res), `${path} ${limit}`).to.deep.equal(['limit']);
        }
      }
    });

    it('answers 404 naming token for a lease token with an out-of-range stream id', async () => {
      for (const token of [
        `${pullId}.99999999999999999999-0.abc`,
        `${pullId}.1-99999999999999999999.abc`,
        `${pullId}.18446744073709551616-0.abc`,
      ]) {
        for (const action of ['complete', 'retry', 'fail', 'extend', 'replace']) {
          const b =
            action === 'fail'
              ? { reason: 'r' }
              : action === 'replace'
                ? { messages: [{ topic: 'orders', payload: 1 }] }
                : {};
          const res = await call(api.app, 'POST', `/api/leases/${token}/${action}`, b);
          expect(res.status, `${action} ${token}`).to.equal(404);
          expect(res.body).to.deep.equal(errors({ token: ['lease not found'] }));
        }
      }
    });

    it('answers 404 for message ids that name nothing, whatever their form', async () => {
      for (const id of ['orders.99999999999999999999-0', 'orders.0-0', 'x', '1-0', '%7B%7D']) {
        const res = await call(api.app, 'GET', `/api/messages/${id}`);
        expect(res.status, id).to.equal(404);
        expect(res.body).to.deep.equal(errors({ id: ['message not found'] }));
        const search = await call(api.app, 'GET', `/api/messages?id=${id}`);
        expect(search.status, id).to.equal(200);
        expect((search.body as { data: unknown[] }).data).to.deep.equal([]);
      }
      const retry = await call(api.app, 'POST', `/api/publishers/${pullId}/failing/retry`, {
        ids: ['orders.99999999999999999999-0'],
      });
      expect(retry.status, retry.raw).to.equal(200);
      expect((retry.body as { data: { missing: string[] } }).data.missing).to.deep.equal([
        'orders.99999999999999999999-0',
      ]);
    });
  });

  describe('numeric settings', () => {
    it('refuses each setting outside the range the code can carry, naming it', async () => {
      const base = { topic: 'orders', type: 'http' };
      let n = 0;
      const create = (extra: Record<string, unknown>) =>
        call(api.app, 'POST', '/api/publishers', { ...base, target: `${hook}/${n++}`, ...extra });
      for (const [extra, field] of [
        [{ rate_limit: { per_second: 5e-324, burst: 1 } }, 'rate_limit'],
        [{ rate_limit: { per_second: 0.0009, burst: 1 } }, 'rate_limit'],
        [{ rate_limit: { per_second: 1_000_001, burst: 1 } }, 'rate_limit'],
        [{ rate_limit: { per_second: 1, burst: 0 } }, 'rate_limit'],
        [{ rate_limit: { per_second: 1, burst: 1_000_001 } }, 'rate_limit'],
        [{ seconds_timeout: 0.0001 }, 'seconds_timeout'],
        [{ seconds_timeout: 5e-324 }, 'seconds_timeout'],
        [{ seconds_retry: 0 }, 'seconds_retry'],
        [{ seconds_retry: 86_401 }, 'seconds_retry'],
        [{ seconds_retry: 1e308 }, 'seconds_retry'],
        [{ chunk_size: 0 }, 'chunk_size'],
        [{ concurrency: 1001 }, 'concurrency'],
        [{ parallelism: 101 }, 'parallelism'],
        [{ parallelism: 1.5 }, 'parallelism'],
      ] as const) {
        const res = await create(extra);
        expect(res.status, JSON.stringify(extra)).to.equal(400);
        expect(fields(res), JSON.stringify(extra)).to.deep.equal([field]);
      }
      const edges = await create({
        rate_limit: { per_second: 0.001, burst: 1_000_000 },
        seconds_timeout: 0.001,
        seconds_retry: 86_400,
        chunk_size: 1000,
        concurrency: 1000,
        parallelism: 100,
      });
      expect(edges.status, edges.raw).to.equal(201);
    });

    it('bounds the lease settings', async () => {
      for (const [b, field] of [
        [{ max: 1001 }, 'max'],
        [{ max: 0 }, 'max'],
        [{ lease_seconds: 0.0001 }, 'lease_seconds'],
        [{ lease_seconds: 43_201 }, 'lease_seconds'],
        [{ worker: { pid: -1 } }, 'worker.pid'],
        [{ worker: { host: 'h'.repeat(256) } }, 'worker.host'],
      ] as const) {
        const res = await call(api.app, 'POST', `/api/publishers/${pullId}/lease`, b);
        expect(res.status, JSON.stringify(b)).to.equal(400);
        expect(fields(res)).to.deep.equal([field]);
      }
      const token = `${pullId}.1-0.x`;
      for (const [action, b, field] of [
        ['retry', { in_seconds: -1 }, 'in_seconds'],
        ['retry', { in_seconds: 1e308 }, 'in_seconds'],
        ['extend', { lease_seconds: 0 }, 'lease_seconds'],
      ] as const) {
        const res = await call(api.app, 'POST', `/api/leases/${token}/${action}`, b);
        expect(res.status, `${action} ${JSON.stringify(b)}`).to.equal(400);
        expect(fields(res)).to.deep.equal([field]);
      }
    });
  });

  describe('strings', () => {
    it('caps origin_host at 2048 characters and a target at 2048', async () => {
      const long = await call(api.app, 'POST', '/api/topics', { name: 'hosts', origin_host: 'h'.repeat(2049) });
      expect(long.status).to.equal(400);
      expect(long.body).to.deep.equal(errors({ origin_host: ['must be at most 2048 characters'] }));
      expect(
        (await call(api.app, 'POST', '/api/topics', { name: 'hosts', origin_host: 'h'.repeat(2048) })).status,
      ).to.equal(201);
      const patched = await call(api.app, 'PATCH', '/api/topics/hosts', { origin_host: 'h'.repeat(2049) });
      expect(patched.status).to.equal(400);
      const target = await call(api.app, 'POST', '/api/publishers', {
        topic: 'orders',
        type: 'http',
        target: `https://long.test/${'p'.repeat(2048)}`,
      });
      expect(target.status).to.equal(400);
      expect(fields(target)).to.deep.equal(['target']);
    });

    it('caps search text, attribute filters and message ids', async () => {
      for (const [q, field] of [
        [`q=${'x'.repeat(1025)}`, 'q'],
        [`attributes.k=${'x'.repeat(1025)}`, 'attributes.k'],
        [`attributes.${'k'.repeat(257)}=v`, `attributes.${'k'.repeat(257)}`],
        [`id=${'x'.repeat(513)}`, 'id'],
        [`from=${'2030-01-01T00:00:00'.padEnd(65, '0')}Z`, 'from'],
        ['limit=1&limit=2', 'limit'],
      ] as const) {
        const res = await call(api.app, 'GET', `/api/messages?${q}`);
        expect(res.status, q).to.equal(400);
        expect(fields(res), q).to.deep.equal([field]);
      }
    });
  });

  describe('paginated lists', () => {
    let paged: Api;
    before(async () => {
      paged = await startApi();
      for (const name of ['t-e', 't-a', 't-d', 't-c', 't-b']) await createTopic(paged.app, name);
      for (let i = 0; i < 5; i++) await createPublisher(paged.app, { topic: 't-a', target: `${hook}/${i}` });
    });
    after(async () => {
      await paged.close();
    });

    async function pages(url: string, limit: number): Promise<{ items: string[][]; raw: Answer[] }> {
      const items: string[][] = [];
      const raw: Answer[] = [];
      let cursor: string | null = null;
      do {
        const res: Answer = await call(paged.app, 'GET', `${url}?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
        expect(res.status, res.raw).to.equal(200);
        raw.push(res);
        const body = res.body as { data: { name?: string; id?: string | number }[]; cursor: string | null };
        items.push(body.data.map((t) => String(t.name ?? t.id)));
        cursor = body.cursor;
      } while (cursor !== null && items.length < 10);
      return { items, raw };
    }

    it('pages topics by name and publishers by id, and the plain list stays whole and without a cursor', async () => {
      const topics = await pages('/api/topics', 2);
      expect(topics.items).to.deep.equal([['t-a', 't-b'], ['t-c', 't-d'], ['t-e']]);
      const publishers = await pages('/api/publishers', 3);
      expect(publishers.items).to.deep.equal([
        ['1', '2', '3'],
        ['4', '5'],
      ]);
      const whole = await call(paged.app, 'GET', '/api/topics');
      expect(Object.keys(whole.body as object)).to.deep.equal(['data']);
      expect((whole.body as { data: unknown[] }).data).to.have.length(5);
      const exact = await pages('/api/topics', 5);
      expect(exact.items).to.deep.equal([['t-a', 't-b', 't-c', 't-d', 't-e']]);
    });

    it('takes a cursor alone, and refuses a bad limit or cursor with 400', async () => {
      const first = (await call(paged.app, 'GET', '/api/publishers?limit=1')).body as { cursor: string };
      const rest = await call(paged.app, 'GET', `/api/publishers?cursor=${first.cursor}`);
      expect((rest.body as { data: unknown[] }).data).to.have.length(4);
      for (const q of ['limit=0', 'limit=1001', 'limit=x', 'cursor=nonsense', `cursor=${first.cursor}&limit=0`]) {
        for (const url of ['/api/topics', '/api/publishers']) {
          const res = await call(paged.app, 'GET', `${url}?${q}`);
          expect(res.status, `${url}?${q}`).to.equal(400);
        }
      }
      // A publisher cursor is not a topic cursor.
      expect((await call(paged.app, 'GET', `/api/topics?cursor=${first.cursor}`)).status).to.equal(400);
    });
  });
});
