/** update-topic.lua and delete-topic.lua on a private redis-server: the data each writes and every code. */
import { expect } from 'chai';
import { checkScriptResult, closeRedis, createRedis, Keys, type AppError, type ScriptClient } from '../src/index.js';
import { startRedis, type RedisServer } from '@postoffice/test-support';

describe('topic scripts', () => {
  let server: RedisServer;
  let redis: ScriptClient;
  let keys: Keys;
  let prefixes = 0;

  before(async () => {
    server = await startRedis();
    redis = createRedis(server.url, 'consumer');
  });

  after(async () => {
    if (redis) await closeRedis(redis);
    if (server) await server.stop();
  });

  beforeEach(() => {
    keys = new Keys(`topics${++prefixes}:`);
  });

  const codeOf = (n: unknown): string => {
    try {
      checkScriptResult(n);
    } catch (err) {
      return (err as AppError).code;
    }
    return 'none';
  };

  describe('update-topic', () => {
    it('sets the given fields and keeps the others and the received counter', async () => {
      const tk = keys.topic('orders');
      await redis.poCreateTopic(
        1,
        tk.meta,
        JSON.stringify({ id: 3, name: 'orders', origin_host: 'a', recovery_enabled: false }),
      );
      await redis.hincrby(tk.meta, 'received', 7);
      const json = (await redis.poUpdateTopic(1, tk.meta, JSON.stringify({ origin_host: 'b' }))) as string;
      const expected = { id: 3, name: 'orders', origin_host: 'b', recovery_enabled: false };
      expect(JSON.parse(json)).to.deep.equal(expected);
      expect(JSON.parse((await redis.hget(tk.meta, 'json'))!)).to.deep.equal(expected);
      expect(await redis.hget(tk.meta, 'received')).to.equal('7');
    });

    it('answers -8 (topic_not_found) and writes nothing for an unknown topic', async () => {
      const tk = keys.topic('ghost');
      const result = await redis.poUpdateTopic(1, tk.meta, '{"origin_host":"b"}');
      expect(result).to.equal(-8);
      expect(codeOf(result)).to.equal('topic_not_found');
      expect(await redis.exists(tk.meta)).to.equal(0);
    });
  });

  describe('delete-topic', () => {
    const run = (name: string): Promise<unknown> => {
      const tk = keys.topic(name);
      return redis.poDeleteTopic(
        8,
        tk.meta,
        tk.publishers,
        tk.stream,
        tk.ids,
        tk.targets,
        tk.scheduled,
        tk.scheduledData,
        tk.outbox,
      );
    };

    it('deletes the record, the stream, the id index, the scheduled messages and the outbox', async () => {
      const tk = keys.topic('old');
      await redis.poCreateTopic(1, tk.meta, '{"name":"old"}');
      await redis.xadd(tk.stream, '*', 'p', '1');
      await redis.hset(tk.ids, 'old.s1', '1-0');
      await redis.hset(tk.targets, 'http http://a', '1');
      await redis.zadd(tk.scheduled, 1, 'old.s1');
      await redis.hset(tk.scheduledData, 'old.s1', '{}');
      await redis.hset(tk.outbox, 'box-1', '[]');
      expect(await run('old')).to.equal(1);
      expect(
        await redis.exists(tk.meta, tk.stream, tk.ids, tk.targets, tk.scheduled, tk.scheduledData, tk.outbox),
      ).to.equal(0);
    });

    it('answers -7 (topic_has_publishers) and deletes nothing while a publisher exists', async () => {
      const tk = keys.topic('busy');
      await redis.poCreateTopic(1, tk.meta, '{"name":"busy"}');
      await redis.xadd(tk.stream, '*', 'p', '1');
      await redis.hset(tk.publishers, '1', '{}');
      const result = await run('busy');
      expect(result).to.equal(-7);
      expect(codeOf(result)).to.equal('topic_has_publishers');
      expect(await redis.exists(tk.meta, tk.stream, tk.publishers)).to.equal(3);
    });

    it('answers -8 (topic_not_found) for an unknown topic', async () => {
      const result = await run('never');
      expect(result).to.equal(-8);
      expect(codeOf(result)).to.equal('topic_not_found');
    });
  });
});
