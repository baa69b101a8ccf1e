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
  scripts,
  sourceState,
  type AppError,
} from '../src/index.js';
import { codeOf, scriptKeys, useScriptFixture } from './script-fixture.js';

describe('source and recovery scripts', () => {
  const f = useScriptFixture('sources');
  let store: Store;

  beforeEach(async () => {
    store = new Store(f.redis, f.keys);
    await store.createTopic({ name: 'orders', origin_host: 'http://o.example/', recovery_enabled: true });
  });

  describe('create-source', () => {
    const create = (topic: string, sourceJson: string) =>
      scripts.createSource(f.redis, scriptKeys(f.keys, topic), { id: '1', sourceJson });

    it('adds the source to an existing topic', async () => {
      expect(await codeOf(create('orders', '{"id":"1"}'))).to.equal('none');
      expect(await f.redis.hget(f.keys.topic('orders').sources, '1')).to.equal('{"id":"1"}');
    });

    it('answers -1 (topic_not_found) and writes nothing for an unknown topic', async () => {
      expect(await codeOf(create('ghost', '{}'))).to.equal('topic_not_found');
      expect(await f.redis.exists(f.keys.topic('ghost').sources)).to.equal(0);
    });
  });

  describe('update-source', () => {
    it('replaces the JSON read, and answers -22 (changed: read again) when it changed, -21 (source_not_found) when gone', async () => {
      const tk = f.keys.topic('orders');
      const update = (id: string, readJson: string, newJson: string) =>
        scripts.updateSource(f.redis, { sources: tk.sources }, { id, readJson, newJson });
      await f.redis.hset(tk.sources, '1', 'v1');
      expect(await update('1', 'v1', 'v2')).to.equal('updated');
      expect(await f.redis.hget(tk.sources, '1')).to.equal('v2');
      expect(await update('1', 'v1', 'v3')).to.equal('changed');
      expect(await f.redis.hget(tk.sources, '1')).to.equal('v2');
      expect(await codeOf(update('9', 'v1', 'v3'))).to.equal('source_not_found');
      expect(await f.redis.hexists(tk.sources, '9')).to.equal(0);
    });
  });

  describe('delete-topic with sources', () => {
    it('answers -20 (topic_has_sources) and deletes nothing while the topic has a source', async () => {
      const tk = f.keys.topic('orders');
      await f.redis.hset(tk.sources, '1', '{}');
      const run = () => scripts.deleteTopic(f.redis, scriptKeys(f.keys, 'orders'));
      expect(await codeOf(run())).to.equal('topic_has_sources');
      expect(await f.redis.exists(tk.meta)).to.equal(1);
      await f.redis.del(tk.sources);
      expect(await codeOf(run())).to.equal('none');
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
      expect(
        await scripts.recordRecovery(f.redis, { topic: f.keys.topic('ghost').meta }, { roundJson: '{}', recovered: 1 }),
      ).to.equal(false);
      expect(await f.redis.exists(f.keys.topic('ghost').meta)).to.equal(0);
    });
  });

  describe('OnceWriter', () => {
    const message = { payload: '{"n":1}', attributes: { a: 'b' } };

    it('writes a message once under its origin, and gives the first ids back to a repeat', async () => {
      const writer = new OnceWriter(f.redis, f.keys, { redisMinReplicas: 0, redisWaitTimeoutMs: 100 });
      const [first] = await writer.write([{ topic: 'orders', origin: 'source 1 m-1', messages: [message] }]);
      expect(first).to.deep.include({ ok: true, replayed: false });
      const [again] = await writer.write([{ topic: 'orders', origin: 'source 1 m-1', messages: [message] }]);
      expect(again).to.deep.equal({ ok: true, replayed: true, ids: first!.ok ? first!.ids : [] });
      expect(await f.redis.xlen(f.keys.topic('orders').stream)).to.equal(1);
      expect((await store.getTopic('orders'))?.received).to.equal(1);
      // Named from the origin (KEYS would ask one node of a cluster only).
      const key = f.keys.once('orders', originDigest('source 1 m-1'));
      expect(await f.redis.ttl(key)).to.be.within(ONCE_TTL_SECONDS - 5, ONCE_TTL_SECONDS);
      await writer.settled([{ topic: 'orders', origin: 'source 1 m-1' }]);
      expect(await f.redis.ttl(key)).to.be.within(ONCE_SETTLED_TTL_SECONDS - 5, ONCE_SETTLED_TTL_SECONDS);
    });

    it('says which writes failed and why, and writes the others', async () => {
      const writer = new OnceWriter(f.redis, f.keys, { redisMinReplicas: 0, redisWaitTimeoutMs: 100 });
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
      expect(await f.redis.xlen(f.keys.topic('orders').stream)).to.equal(3);
    });

    it('fails a write that the replicas did not acknowledge in time (REDIS_MIN_REPLICAS), repeats included', async () => {
      const writer = new OnceWriter(f.redis, f.keys, { redisMinReplicas: 1, redisWaitTimeoutMs: 50 });
      const [out] = await writer.write([{ topic: 'orders', origin: 'o 9', messages: [message] }]);
      expect(out).to.deep.include({ ok: false, code: 'unavailable' });
      expect(out!.ok ? '' : out!.error.message).to.match(/only 0 of 1 replicas/);
      const [again] = await writer.write([{ topic: 'orders', origin: 'o 9', messages: [message] }]);
      expect(again).to.deep.include({ ok: false, code: 'unavailable' });
    });
  });

  describe('SourceStore', () => {
    it('creates, reads, lists, changes, records and deletes sources, one per queue', async () => {
      const sources = new SourceStore(f.redis, f.keys);
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
      expect(await f.redis.exists(f.keys.sourceStats('orders', s.id))).to.equal(0);
      // The queue is free again.
      expect((await sources.create(input)).id).to.not.equal(s.id);
    });
  });
});
