import { expect } from 'chai';
import {
  closeRedis,
  createRedis,
  masterNodes,
  parseEntry,
  parseMessageId,
  streamIdTime,
  type ScriptClient,
} from '@postoffice/shared';
import { commandsSince } from '@postoffice/test-support';
import { settle } from '@postoffice/test-support/settle';
import { call, createPublisher, createTopic, errors, startApi, waitFor, type Api } from './helpers.js';

describe('messages API', () => {
  let api: Api;
  let subscriber: ScriptClient;
  const wakes: string[] = [];

  async function entries(topic: string): Promise<ReturnType<typeof parseEntry>[]> {
    const raw = await api.redis.xrange(api.keys.topic(topic).stream, '-', '+');
    return raw.map(([sid, fields]) => parseEntry(topic, sid, fields));
  }

  /**
   * Every wake-up published so far: publishes a marker through every master
   * and waits for them all, so all earlier ones have arrived (on a cluster,
   * messages published on one node arrive in order, but not in order with
   * those of another node).
   */
  async function wakesSoFar(): Promise<string[]> {
    const markers = masterNodes(api.redis).map(() => `marker-${Math.random()}`);
    await Promise.all(masterNodes(api.redis).map((node, i) => node.publish(api.keys.wakeChannel, markers[i] ?? '')));
    await waitFor(() => markers.every((m) => wakes.includes(m)), 'the marker wake-ups');
    return wakes.splice(0).filter((w) => !w.startsWith('marker-'));
  }

  before(async () => {
    api = await startApi({ MAX_BULK_MESSAGES: '5' });
    subscriber = createRedis(api.server.url, 'subscriber');
    subscriber.on('message', (_channel: string, topic: string) => wakes.push(topic));
    await subscriber.subscribe(api.keys.wakeChannel);
    await createTopic(api.app, 'orders');
    await createTopic(api.app, 'empty');
  });
  after(async () => {
    await closeRedis(subscriber);
    await api.close();
  });

  describe('POST /api/messages', () => {
    it('answers 201 with an id naming the topic and entry once the message is in the stream, and wakes consumers once', async () => {
      const res = await call(api.app, 'POST', '/api/messages', {
        topic: 'orders',
        payload: { order: 7, lines: [1, 2] },
        attributes: { source: 'shop', region: 'eu' },
      });
      expect(res.status).to.equal(201);
      const id = (res.body as { data: { id: string } }).data.id;
      const [entry] = await entries('orders');
      // The id names the topic and the stream entry; nothing but the entry is written for the message.
      expect(id).to.equal(`orders.${entry?.streamId}`);
      expect(entry).to.include({ id });
      expect(JSON.parse(entry?.payload ?? '')).to.deep.equal({ order: 7, lines: [1, 2] });
      expect(entry?.attributes).to.deep.equal({ source: 'shop', region: 'eu' });
      expect(await api.redis.exists(api.keys.topic('orders').ids)).to.equal(0);
      expect(await api.redis.hget(api.keys.topic('orders').meta, 'received')).to.equal('1');
      expect(await wakesSoFar()).to.deep.equal(['orders']);
    });

    it('stores no attributes field when there are none', async () => {
      for (const attributes of [undefined, {}, null]) {
        const res = await call(api.app, 'POST', '/api/messages', { topic: 'orders', payload: 'x', attributes });
        expect(res.status).to.equal(201);
        const [[, fields]] = (await api.redis.xrevrange(api.keys.topic('orders').stream, '+', '-', 'COUNT', 1)) as [
          [string, string[]],
        ];
        expect(fields).to.deep.equal(['p', '"x"']);
      }
    });

    it('accepts any JSON payload but null', async () => {
      for (const payload of ['text', 0, false, [1, 2], { nested: { deep: [null] } }, '']) {
        const res = await call(api.app, 'POST', '/api/messages', { topic: 'orders', payload });
        expect(res.status, JSON.stringify(payload)).to.equal(201);
      }
    });

    it('counts accepted messages in the metrics', async () => {
      const res = await call(api.app, 'GET', '/metrics');
      expect(res.status).to.equal(200);
      expect(res.headers['content-type']).to.match(/^text\/plain/);
      const count = (await entries('orders')).length;
      expect(res.raw).to.include(`postoffice_messages_received_total{topic="orders"} ${count}`);
      expect(res.raw).to.include('postoffice_ingest_duration_seconds_bucket');
      expect(res.raw).to.include('process_cpu_user_seconds_total');
    });

    it('answers 400 naming the field when attributes are not strings', async () => {
      for (const attributes of [{ n: 1 }, { ok: 'yes', nested: { a: 'b' } }, ['a'], 'a=b', true]) {
        const res = await call(api.app, 'POST', '/api/messages', { topic: 'orders', payload: {}, attributes });
        expect(res.status, JSON.stringify(attributes)).to.equal(400);
        expect(res.body).to.deep.equal(errors({ attributes: ['must be a map of strings'] }));
      }
    });

    it('answers 400 when the payload is missing or null', async () => {
      for (const body of [{ topic: 'orders' }, { topic: 'orders', payload: null }]) {
        const res = await call(api.app, 'POST', '/api/messages', body);
        expect(res.status).to.equal(400);
        expect(res.body).to.deep.equal(errors({ payload: ["can't be blank"] }));
      }
    });

    it('answers 400 when the topic is missing, not a string, malformed or unknown', async () => {
      const cases: [unknown, string][] = [
        [undefined, "can't be blank"],
        ['', "can't be blank"],
        [42, 'is invalid'],
        ['a{b}', 'is invalid'],
        ['nothing', 'is invalid'],
      ];
      for (const [topic, why] of cases) {
        const res = await call(api.app, 'POST', '/api/messages', { topic, payload: {} });
        expect(res.status, String(topic)).to.equal(400);
        expect(res.body, String(topic)).to.deep.equal(errors({ topic: [why] }));
      }
      expect(await api.redis.exists(api.keys.topic('nothing').stream, api.keys.topic('nothing').ids)).to.equal(0);
    });

    it('names every bad field at once', async () => {
      const res = await call(api.app, 'POST', '/api/messages', { attributes: { a: 1 } });
      expect(res.status).to.equal(400);
      expect(res.body).to.deep.equal(
        errors({ topic: ["can't be blank"], payload: ["can't be blank"], attributes: ['must be a map of strings'] }),
      );
    });

    it('writes nothing and wakes nobody on a 400', async () => {
      const before = (await entries('orders')).length;
      await wakesSoFar();
      await call(api.app, 'POST', '/api/messages', { topic: 'orders', payload: null });
      await call(api.app, 'POST', '/api/messages', { topic: 'orders', payload: 1, attributes: { a: 2 } });
      expect((await entries('orders')).length).to.equal(before);
      expect(await wakesSoFar()).to.deep.equal([]);
    });
  });

  describe('POST /api/bulk_messages', () => {
    it('writes every message with the shared attributes in one script call and wakes consumers once', async () => {
      await wakesSoFar();
      await commandsSince(api.redis);
      const res = await call(api.app, 'POST', '/api/bulk_messages', {
        topic: 'empty',
        attributes: { batch: 'b1' },
        payload: [{ n: 1 }, { n: 2 }, { n: 3 }],
      });
      expect(res.status).to.equal(201);
      const ids = (res.body as { data: { ids: string[] } }).data.ids;
      const commands = await commandsSince(api.redis);
      expect(ids).to.have.length(3);
      const stored = await entries('empty');
      expect(ids).to.deep.equal(stored.map((e) => `empty.${e.streamId}`));
      expect(stored.map((e) => e.id)).to.deep.equal(ids);
      expect(stored.map((e) => JSON.parse(e.payload) as unknown)).to.deep.equal([{ n: 1 }, { n: 2 }, { n: 3 }]);
      for (const e of stored) expect(e.attributes).to.deep.equal({ batch: 'b1' });
      expect((commands.evalsha ?? 0) + (commands.eval ?? 0)).to.equal(1);
      expect(commands.xadd).to.equal(3);
      expect(commands.publish).to.equal(1);
      expect(await wakesSoFar()).to.deep.equal(['empty']);
      expect(await api.redis.hget(api.keys.topic('empty').meta, 'received')).to.equal('3');
    });

    it('answers 406 topic "is invalid" for an unknown or malformed topic and writes nothing', async () => {
      for (const topic of ['nothing', 'a b']) {
        const res = await call(api.app, 'POST', '/api/bulk_messages', { topic, payload: [1, 2] });
        expect(res.status, topic).to.equal(406);
        expect(res.body).to.deep.equal(errors({ topic: ['is invalid'] }));
      }
      expect(await api.redis.exists(api.keys.topic('nothing').stream)).to.equal(0);
    });

    it('answers 406 for more than MAX_BULK_MESSAGES messages and writes nothing', async () => {
      const before = (await entries('empty')).length;
      const res = await call(api.app, 'POST', '/api/bulk_messages', { topic: 'empty', payload: [1, 2, 3, 4, 5, 6] });
      expect(res.status).to.equal(406);
      expect(res.body).to.deep.equal(errors({ payload: ['has more than 5 messages'] }));
      expect((await entries('empty')).length).to.equal(before);
      const five = await call(api.app, 'POST', '/api/bulk_messages', { topic: 'empty', payload: [1, 2, 3, 4, 5] });
      expect(five.status).to.equal(201);
    });

    it('answers 400 when payload is not a non-empty list without nulls, and writes nothing', async () => {
      const before = (await entries('empty')).length;
      const cases: [unknown, string][] = [
        [undefined, "can't be blank"],
        [{ n: 1 }, 'must be a list of payloads'],
        [[], 'must not be empty'],
        [[1, null, 3], 'must not contain null (element 1)'],
      ];
      for (const [payload, why] of cases) {
        const res = await call(api.app, 'POST', '/api/bulk_messages', { topic: 'empty', payload });
        expect(res.status, JSON.stringify(payload)).to.equal(400);
        expect(res.body).to.deep.equal(errors({ payload: [why] }));
      }
      const attrs = await call(api.app, 'POST', '/api/bulk_messages', {
        topic: 'empty',
        payload: [1],
        attributes: { a: [] },
      });
      expect(attrs.status).to.equal(400);
      expect(attrs.body).to.deep.equal(errors({ attributes: ['must be a map of strings'] }));
      const topic = await call(api.app, 'POST', '/api/bulk_messages', { payload: [1] });
      expect(topic.body).to.deep.equal(errors({ topic: ["can't be blank"] }));
      expect((await entries('empty')).length).to.equal(before);
    });
  });

  describe('GET /api/messages/:id', () => {
    let id: string;
    let streamId: string;
    const publishers: Record<string, string> = {};

    before(async () => {
      await createTopic(api.app, 'shipments');
      publishers.delivered = (await createPublisher(api.app, { topic: 'shipments', target: 'https://a.test/hook' }))
        .id as string;
      publishers.retrying = (await createPublisher(api.app, { topic: 'shipments', target: 'https://b.test/hook' }))
        .id as string;
      publishers.pending = (
        await createPublisher(api.app, { topic: 'shipments', target: 'https://c.test/hook', from_now: true })
      ).id as string;
      const res = await call(api.app, 'POST', '/api/messages', {
        topic: 'shipments',
        payload: { parcel: 'p-1' },
        attributes: { carrier: 'dhl' },
      });
      id = (res.body as { data: { id: string } }).data.id;
      streamId = parseMessageId(id)!.streamId!;
      // Created "from now" strictly after the message arrived: it never sees it.
      await waitFor(() => Date.now() > streamIdTime(streamId), 'the clock to move past the receipt');
      publishers.later = (
        await createPublisher(api.app, { topic: 'shipments', target: 'https://d.test/hook', from_now: true })
      ).id as string;
      // Not "from now": a publisher created later still delivers retained messages.
      publishers.backfill = (await createPublisher(api.app, { topic: 'shipments', target: 'https://e.test/hook' }))
        .id as string;

      // What a consumer node writes: read by each group, then settled in batches.
      const stream = api.keys.topic('shipments').stream;
      for (const pid of [publishers.delivered, publishers.retrying]) {
        await api.redis.xreadgroup('GROUP', pid, 'node', 'COUNT', 10, 'STREAMS', stream, '>');
      }
      const t0 = Date.parse('2030-01-01T00:00:00.000Z');
      await settle(api.redis, api.keys, 'shipments', publishers.delivered, [
        { streamId, outcome: 'd', status: 200, startedAt: t0 },
      ]);
      await settle(api.redis, api.keys, 'shipments', publishers.retrying, [
        { streamId, outcome: 'r', status: 503, startedAt: t0, score: t0 + 30_000 },
      ]);
      await settle(api.redis, api.keys, 'shipments', publishers.retrying, [
        {
          streamId,
          outcome: 'r',
          error: 'timeout',
          startedAt: t0 + 30_000,
          score: t0 + 90_000,
          previous: 1,
          retry: true,
        },
      ]);
    });

    it('answers the message with the state of every delivery from its history', async () => {
      const res = await call(api.app, 'GET', `/api/messages/${id}`);
      expect(res.status).to.equal(200);
      expect(res.body).to.deep.equal({
        data: {
          id,
          topic: 'shipments',
          payload: { parcel: 'p-1' },
          attributes: { carrier: 'dhl' },
          received_at: new Date(streamIdTime(streamId)).toISOString(),
          deliveries: [
            {
              publisher_id: publishers.delivered,
              target: 'https://a.test/hook',
              type: 'http',
              state: 'delivered',
              attempt_count: 1,
              attempts: [{ at: '2030-01-01T00:00:00.000Z', status: 200, duration_ms: 1 }],
            },
            {
              publisher_id: publishers.retrying,
              target: 'https://b.test/hook',
              type: 'http',
              state: 'retrying',
              attempt_count: 2,
              attempts: [
                { at: '2030-01-01T00:00:00.000Z', status: 503, error: 'HTTP 503', duration_ms: 1 },
                { at: '2030-01-01T00:00:30.000Z', status: 500, error: 'timeout', duration_ms: 1 },
              ],
              next_attempt_at: '2030-01-01T00:01:30.000Z',
            },
            {
              publisher_id: publishers.pending,
              target: 'https://c.test/hook',
              type: 'http',
              state: 'pending',
              attempt_count: 0,
              attempts: [],
            },
            {
              publisher_id: publishers.backfill,
              target: 'https://e.test/hook',
              type: 'http',
              state: 'pending',
              attempt_count: 0,
              attempts: [],
            },
          ],
        },
      });
    });

    it('shows a dead letter with its reason', async () => {
      const t0 = Date.parse('2030-01-01T00:00:00.000Z');
      await settle(api.redis, api.keys, 'shipments', publishers.retrying!, [
        {
          streamId,
          outcome: 'x',
          status: 500,
          startedAt: t0 + 90_000,
          previous: 99,
          retry: true,
          reason: 'max attempts',
        },
      ]);
      const res = await call(api.app, 'GET', `/api/messages/${id}`);
      const deliveries = (res.body as { data: { deliveries: Record<string, unknown>[] } }).data.deliveries;
      expect(deliveries[1]).to.deep.include({
        publisher_id: publishers.retrying,
        target: 'https://b.test/hook',
        type: 'http',
        state: 'dead',
        attempt_count: 100,
        dead_reason: 'max attempts',
      });
      expect(deliveries[1]!.attempts).to.have.length(3);
    });

    it('answers 404 naming id for an unknown id', async () => {
      for (const unknown of ['00000000-0000-4000-8000-000000000000', 'x'.repeat(250)]) {
        const res = await call(api.app, 'GET', `/api/messages/${unknown}`);
        expect(res.status).to.equal(404);
        expect(res.body).to.deep.equal(errors({ id: ['message not found'] }));
      }
    });

    it('answers 414 naming path for an absurdly long id', async () => {
      const res = await call(api.app, 'GET', `/api/messages/${'x'.repeat(300)}`);
      expect(res.status).to.equal(414);
      expect(res.body).to.deep.equal(errors({ path: ['is too long'] }));
    });

    it('answers 404 when the message was trimmed from the stream', async () => {
      await api.redis.xdel(api.keys.topic('shipments').stream, streamId);
      const res = await call(api.app, 'GET', `/api/messages/${id}`);
      expect(res.status).to.equal(404);
      expect(res.body).to.deep.equal(errors({ id: ['message not found'] }));
    });
  });
});
