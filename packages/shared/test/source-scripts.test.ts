/**
 * create-source.lua, update-source.lua, record-recovery.lua and the sources
 * check of delete-topic.lua on a private redis-server (the data each writes
 * and every code); the OnceWriter and the SourceStore over them.
 */
import { expect } from 'chai';
import {
  ONCE_SETTLED_TTL_SECONDS,
  ONCE_TTL_SECONDS,
  OnceWriter,
  originDigest,
  SourceStore,
  Store,
  checkScriptResult,
  closeRedis,
  createRedis,
  Keys,
  sourceState,
  type AppError,
  type ScriptClient,
} from '../src/index.js';
import { startRedis, type RedisServer } from '@postoffice/test-support';

describe('source and recovery scripts', () => {
  let server: RedisServer;
  let redis: ScriptClient;
  let keys: Keys;
  let store: Store;
  let prefixes = 0;

  before(async () => {
    server = await startRedis();
    redis = createRedis(server.url, 'consumer');
  });
  after(async () => {
    if (redis) await closeRedis(redis);
    if (server) await server.stop();
  });
  beforeEach(async () => {
    keys = new Keys(`sources${++prefixes}:`);
    store = new Store(redis, keys);
    await store.createTopic({ name: 'orders', origin_host: 'http://o.example/', recovery_enabled: true });
  });

  const codeOf = (n: unknown): string => {
    try {
      checkScriptResult(n);
    } catch (err) {
      return (err as AppError).code;
    }
    return 'none';
  };

  describe('create-source', () => {
    it('adds the source to an existing topic', async () => {
      const tk = keys.topic('orders');
      expect(await redis.poCreateSource(2, tk.meta, tk.sources, '1', '{"id":"1"}')).to.equal(1);
      expect(await redis.hget(tk.sources, '1')).to.equal('{"id":"1"}');
    });

    it('answers -1 (topic_not_found) and writes nothing for an unknown topic', async () => {
      const tk = keys.topic('ghost');
      const result = await redis.poCreateSource(2, tk.meta, tk.sources, '1', '{}');
      expect(codeOf(result)).to.equal('topic_not_found');
      expect(await redis.exists(tk.sources)).to.equal(0);
    });
  });

  describe('update-source', () => {
    it('replaces the JSON read, and answers -22 (source_busy) when it changed, -21 (source_not_found) when gone', async () => {
      const tk = keys.topic('orders');
      await redis.hset(tk.sources, '1', 'v1');
      expect(await redis.poUpdateSource(1, tk.sources, '1', 'v1', 'v2')).to.equal(1);
      expect(await redis.hget(tk.sources, '1')).to.equal('v2');
      const stale = await redis.poUpdateSource(1, tk.sources, '1', 'v1', 'v3');
      expect(codeOf(stale)).to.equal('source_busy');
      expect(await redis.hget(tk.sources, '1')).to.equal('v2');
      expect(codeOf(await redis.poUpdateSource(1, tk.sources, '9', 'v1', 'v3'))).to.equal('source_not_found');
      expect(await redis.hexists(tk.sources, '9')).to.equal(0);
    });
  });

  describe('delete-topic with sources', () => {
    it('answers -20 (topic_has_sources) and deletes nothing while the topic has a source', async () => {
      const tk = keys.topic('orders');
      await redis.hset(tk.sources, '1', '{}');
      const args = [tk.meta, tk.publishers, tk.stream, tk.ids, tk.targets, tk.scheduled, tk.scheduledData, tk.outbox];
      const result = await redis.poDeleteTopic(9, ...args, tk.sources);
      expect(codeOf(result)).to.equal('topic_has_sources');
      expect(await redis.exists(tk.meta)).to.equal(1);
      await redis.del(tk.sources);
      expect(await redis.poDeleteTopic(9, ...args, tk.sources)).to.equal(1);
    });
  });

  describe('record-recovery', () => {
    it('keeps the last round and adds to the recovered count, and never brings back a deleted topic', async () => {
      await store.recordRecovery('orders', new Date('2026-01-01T00:00:00Z'), 'boom', 2);
      await store.recordRecovery('orders', new Date('2026-01-01T00:00:30Z'), null, 1);
      expect(await store.getTopic('orders')).to.deep.include({
        recovered: 3,
        last_recovery_at: '2026-01-01T00:00:30.000Z',
        last_recovery_error: null,
      });
      expect(await redis.poRecordRecovery(1, keys.topic('ghost').meta, '{}', 1)).to.equal(0);
      expect(await redis.exists(keys.topic('ghost').meta)).to.equal(0);
    });
  });

  describe('OnceWriter', () => {
    const message = { payload: '{"n":1}', attributes: { a: 'b' } };

    it('writes a message once under its origin, and gives the first ids back to a repeat', async () => {
      const writer = new OnceWriter(redis, keys, { redisMinReplicas: 0, redisWaitTimeoutMs: 100 });
      const [first] = await writer.write([{ topic: 'orders', origin: 'source 1 m-1', messages: [message] }]);
      expect(first).to.deep.include({ ok: true, replayed: false });
      const [again] = await writer.write([{ topic: 'orders', origin: 'source 1 m-1', messages: [message] }]);
      expect(again).to.deep.equal({ ok: true, replayed: true, ids: first!.ok ? first!.ids : [] });
      expect(await redis.xlen(keys.topic('orders').stream)).to.equal(1);
      expect((await store.getTopic('orders'))?.received).to.equal(1);
      // Named from the origin (KEYS would ask one node of a cluster only).
      const key = keys.once('orders', originDigest('source 1 m-1'));
      expect(await redis.ttl(key)).to.be.within(ONCE_TTL_SECONDS - 5, ONCE_TTL_SECONDS);
      await writer.settled([{ topic: 'orders', origin: 'source 1 m-1' }]);
      expect(await redis.ttl(key)).to.be.within(ONCE_SETTLED_TTL_SECONDS - 5, ONCE_SETTLED_TTL_SECONDS);
    });

    it('says which writes failed and why, and writes the others', async () => {
      const writer = new OnceWriter(redis, keys, { redisMinReplicas: 0, redisWaitTimeoutMs: 100 });
      await writer.write([{ topic: 'orders', origin: 'o 1', messages: [message] }]);
      const out = await writer.write([
        { topic: 'ghost', origin: 'o 2', messages: [message] },
        { topic: 'orders', origin: 'o 1', messages: [{ payload: '{"n":2}', attributes: {} }] },
        { topic: 'orders', origin: 'o 3', messages: [message, message] },
      ]);
      expect(out.map((o) => (o.ok ? `ok ${o.ids.length}` : o.code))).to.deep.equal([
        'topic_not_found',
        'changed',
        'ok 2',
      ]);
      expect(await redis.xlen(keys.topic('orders').stream)).to.equal(3);
    });

    it('fails a write that the replicas did not acknowledge in time (REDIS_MIN_REPLICAS), repeats included', async () => {
      const writer = new OnceWriter(redis, keys, { redisMinReplicas: 1, redisWaitTimeoutMs: 50 });
      const [out] = await writer.write([{ topic: 'orders', origin: 'o 9', messages: [message] }]);
      expect(out).to.deep.include({ ok: false, code: 'unavailable' });
      expect(out!.ok ? '' : out!.error.message).to.match(/only 0 of 1 replicas/);
      const [again] = await writer.write([{ topic: 'orders', origin: 'o 9', messages: [message] }]);
      expect(again).to.deep.include({ ok: false, code: 'unavailable' });
    });
  });

  describe('SourceStore', () => {
    it('creates, reads, lists, changes, records and deletes sources, one per queue', async () => {
      const sources = new SourceStore(redis, keys);
      const input = {
        topic: 'orders',
        type: 'sqs' as const,
        active: true,
        queue_url: 'https://q/1/a',
        batch_size: 10,
        wait_seconds: 20,
      };
      const s = await sources.create(input);
      expect(await sources.get(s.id)).to.deep.equal(s);
      try {
        await sources.create(input);
        expect.fail('a second source of the queue');
      } catch (err) {
        expect((err as AppError).code).to.equal('source_exists');
      }
      try {
        await sources.create({ ...input, topic: 'ghost', queue_url: 'https://q/1/b' });
        expect.fail('a source of an unknown topic');
      } catch (err) {
        expect((err as AppError).code).to.equal('topic_not_found');
      }
      expect((await sources.list()).map((x) => x.id)).to.deep.equal([s.id]);
      const [fresh] = await sources.stats([s]);
      expect(sourceState(s, fresh!)).to.equal('waiting');
      await sources.record(s, { at: new Date(), node: 'n1', read: 3, ingested: 2, failed: 1, error: 'x', lag: 4 });
      const [stats] = await sources.stats([s]);
      expect(stats).to.deep.include({ read: 3, ingested: 2, failed: 1, lag: 4, last_error: 'x', failing: true });
      const off = await sources.update(s.id, (c) => ({ ...c, active: false }));
      expect(sourceState(off, stats!)).to.equal('inactive');
      await sources.delete(s.id);
      expect(await sources.get(s.id)).to.equal(undefined);
      expect(await redis.exists(keys.sourceStats('orders', s.id))).to.equal(0);
      // The queue is free again.
      expect((await sources.create(input)).id).to.not.equal(s.id);
    });
  });
});
