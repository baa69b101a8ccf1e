import { expect } from 'chai';
import {
  AppError,
  Keys,
  closeRedis,
  createRedis,
  masterNodes,
  parseEntry,
  type ScriptClient,
} from '@postoffice/shared';
import { Ingest, MAX_MESSAGES_PER_CALL } from '../src/ingest.js';
import { Metrics } from '../src/metrics.js';
import { commandsSince, startRedis, waitFor, type RedisServer } from '@postoffice/test-support';
import { createTopic, startApi, type Api } from './helpers.js';

describe('Ingest', () => {
  let server: RedisServer;
  let api: Api;
  let redis: ScriptClient;
  let ingest: Ingest;
  const keys = new Keys('po:');

  /** A write without an idempotency key: the ids of its messages. */
  const write = (...args: Parameters<Ingest['writeOnce']>) => ingest.writeOnce(...args).then((result) => result.ids);

  async function stream(topic: string) {
    const raw = await redis.xrange(keys.topic(topic).stream, '-', '+');
    return raw.map(([sid, fields]) => parseEntry(topic, sid, fields));
  }

  before(async () => {
    server = await startRedis();
    api = await startApi({}, server);
    await createTopic(api.app, 'orders');
    await createTopic(api.app, 'bulk');
    redis = createRedis(server.url, 'producer');
    await waitFor(() => redis.status === 'ready', 'the client to connect');
    ingest = new Ingest(redis, keys, { redisMinReplicas: 0, redisWaitTimeoutMs: 1000 }, new Metrics());
  });
  after(async () => {
    await closeRedis(redis);
    await api.close();
    await server.stop();
  });

  describe('when requests for one topic arrive in the same turn', () => {
    it('writes them with one script call and one wake-up, each request getting its own ids in order', async () => {
      await commandsSince(redis);
      const writes = Array.from({ length: 20 }, (_, i) =>
        write(
          'orders',
          [
            { n: i, k: 0 },
            { n: i, k: 1 },
          ],
          { source: `s${i}` },
          'single',
          undefined,
        ),
      );
      const ids = await Promise.all(writes);
      const commands = await commandsSince(redis);
      expect(commands.evalsha ?? commands.eval).to.equal(1);
      expect(commands.publish).to.equal(1);
      expect(commands.xadd).to.equal(40);
      const entries = await stream('orders');
      expect(entries.map((e) => e.id)).to.deep.equal(ids.flat());
      entries.forEach((e, j) => {
        const i = Math.floor(j / 2);
        expect(JSON.parse(e.payload)).to.deep.equal({ n: i, k: j % 2 });
        expect(e.attributes).to.deep.equal({ source: `s${i}` });
      });
    });
  });

  describe('when requests keep coming while writes of their topic are in flight', () => {
    it('keeps at most two writes in flight and gathers the rest into the next one, in order', async () => {
      await commandsSince(redis);
      // Redis holds its answers to writes for a moment: the first writes stay in flight.
      for (const node of masterNodes(redis)) await node.call('CLIENT', 'PAUSE', '300', 'WRITE');
      const turns: Promise<string[]>[][] = [];
      for (let turn = 0; turn < 5; turn++) {
        turns.push([0, 1, 2].map((k) => write('orders', [{ turn, k }], undefined, 'single', undefined)));
        await new Promise((resolve) => setImmediate(resolve));
      }
      const ids = await Promise.all(turns.flat());
      const commands = await commandsSince(redis);
      // Turns 1 and 2 are written at once; turns 3 to 5 wait for one of them, then go in one write.
      expect(commands.evalsha ?? commands.eval).to.equal(3);
      const entries = await stream('orders');
      expect(entries.slice(-15).map((e) => e.id)).to.deep.equal(ids.flat());
    });
  });

  describe('when one of them names a topic that does not exist', () => {
    it('fails only that request, with topic_not_found, and writes the others', async () => {
      const good = write('orders', [{ ok: 1 }], undefined, 'single', undefined);
      const bad = write('nowhere', [{ ok: 0 }], undefined, 'single', undefined);
      const [ok, failed] = await Promise.allSettled([good, bad]);
      expect(ok.status).to.equal('fulfilled');
      expect(failed.status).to.equal('rejected');
      const err = (failed as PromiseRejectedResult).reason as AppError;
      expect(err).to.be.instanceOf(AppError);
      expect(err.code).to.equal('topic_not_found');
      expect(await redis.exists(keys.topic('nowhere').stream)).to.equal(0);
    });
  });

  describe('when the requests of one turn carry more than one script call may', () => {
    it('splits them between requests, never inside one', async () => {
      await commandsSince(redis);
      const big = MAX_MESSAGES_PER_CALL + 200;
      const payloads = (n: number, tag: string) => Array.from({ length: n }, (_, i) => ({ tag, i }));
      const [a, b, c] = await Promise.all([
        write('bulk', payloads(600, 'a'), undefined, 'bulk', undefined),
        write('bulk', payloads(600, 'b'), undefined, 'bulk', undefined),
        write('bulk', payloads(big, 'c'), undefined, 'bulk', undefined),
      ]);
      const commands = await commandsSince(redis);
      expect(commands.evalsha ?? commands.eval).to.equal(3);
      expect(commands.publish).to.equal(1);
      const entries = await stream('bulk');
      expect(entries.map((e) => e.id)).to.deep.equal([...a, ...b, ...c]);
    });
  });
});
