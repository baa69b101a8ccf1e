/** update-topic.lua and delete-topic.lua on a private redis-server: the data each writes and every code. */
import { expect } from 'chai';
import { scripts } from '../src/index.js';
import { codeOf, createTopicRecord, scriptKeys, useScriptFixture } from './script-fixture.js';

describe('topic scripts', () => {
  const f = useScriptFixture('topics');

  describe('update-topic', () => {
    it('sets the given fields and keeps the others and the received counter', async () => {
      const { redis, keys } = f;
      const tk = keys.topic('orders');
      await createTopicRecord(redis, keys, 'orders', {
        id: 3,
        name: 'orders',
        origin_host: 'a',
        recovery_enabled: false,
      });
      await redis.hincrby(tk.meta, 'received', 7);
      const json = await scripts.updateTopic(
        redis,
        { topic: tk.meta },
        { changesJson: JSON.stringify({ origin_host: 'b' }) },
      );
      const expected = { id: 3, name: 'orders', origin_host: 'b', recovery_enabled: false };
      expect(JSON.parse(json)).to.deep.equal(expected);
      expect(JSON.parse((await redis.hget(tk.meta, 'json'))!)).to.deep.equal(expected);
      expect(await redis.hget(tk.meta, 'received')).to.equal('7');
    });

    it('answers -8 (no_such_topic) and writes nothing for an unknown topic', async () => {
      const { redis, keys } = f;
      const tk = keys.topic('ghost');
      const result = scripts.updateTopic(redis, { topic: tk.meta }, { changesJson: '{"origin_host":"b"}' });
      expect(await codeOf(result)).to.equal('no_such_topic');
      expect(await redis.exists(tk.meta)).to.equal(0);
    });
  });

  describe('delete-topic', () => {
    /** Without the optional sources key. */
    const run = (name: string): Promise<void> =>
      scripts.deleteTopic(f.redis, { ...scriptKeys(f.keys, name), sources: undefined });

    it('deletes the record, the stream, the id index, the scheduled messages and the outbox', async () => {
      const { redis, keys } = f;
      const tk = keys.topic('old');
      await createTopicRecord(redis, keys, 'old', { name: 'old' });
      await redis.xadd(tk.stream, '*', 'p', '1');
      await redis.hset(tk.ids, 'old.s1', '1-0');
      await redis.hset(tk.targets, 'http http://a', '1');
      await redis.zadd(tk.scheduled, 1, 'old.s1');
      await redis.hset(tk.scheduledData, 'old.s1', '{}');
      await redis.hset(tk.outbox, 'box-1', '[]');
      expect(await codeOf(run('old'))).to.equal('none');
      expect(
        await redis.exists(tk.meta, tk.stream, tk.ids, tk.targets, tk.scheduled, tk.scheduledData, tk.outbox),
      ).to.equal(0);
    });

    it('answers -7 (topic_has_publishers) and deletes nothing while a publisher exists', async () => {
      const { redis, keys } = f;
      const tk = keys.topic('busy');
      await createTopicRecord(redis, keys, 'busy', { name: 'busy' });
      await redis.xadd(tk.stream, '*', 'p', '1');
      await redis.hset(tk.publishers, '1', '{}');
      expect(await codeOf(run('busy'))).to.equal('topic_has_publishers');
      expect(await redis.exists(tk.meta, tk.stream, tk.publishers)).to.equal(3);
    });

    it('answers -8 (no_such_topic) for an unknown topic', async () => {
      expect(await codeOf(run('never'))).to.equal('no_such_topic');
    });
  });
});
