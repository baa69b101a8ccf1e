/**
 * purge.lua, seek.lua, count-range.lua and cancel-scheduled.lua on a
 * private redis-server (a three-master cluster with
 * POSTOFFICE_TEST_REDIS=cluster): the data each writes and every code it
 * answers with. Each test works under its own key prefix.
 */
import { expect } from 'chai';
import {
  checkScriptResult,
  closeRedis,
  createRedis,
  encodeRetryState,
  Keys,
  parseRangeRecords,
  type AppError,
  type PublisherKeys,
  type ScriptClient,
  type TopicKeys,
} from '../src/index.js';
import { startRedis, type RedisServer } from '@postoffice/test-support';

type PurgeReply = [string, string, number, number, number];

describe('flow scripts', () => {
  let server: RedisServer;
  let redis: ScriptClient;
  let keys: Keys;
  let tk: TopicKeys;
  let pk: PublisherKeys;
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
    keys = new Keys(`flow${++prefixes}:`);
    tk = keys.topic('orders');
    pk = keys.publisher('orders', '1');
    await redis.poCreateTopic(1, tk.meta, JSON.stringify({ id: 1, name: 'orders', origin_host: 'o' }));
  });

  const codeOf = (n: unknown): string => {
    try {
      checkScriptResult(n);
    } catch (err) {
      return (err as AppError).code;
    }
    return 'none';
  };

  /** Entries at the given receipt times (ms), as `<ms>-0`, and the group `1` before all of them. */
  async function stream(...times: number[]): Promise<string[]> {
    const sids: string[] = [];
    for (const t of times) sids.push((await redis.xadd(tk.stream, `${t}-0`, 'p', String(t))) as string);
    await redis.xgroup('CREATE', tk.stream, '1', '0');
    return sids;
  }

  async function read(count: number, consumer = 'node-a'): Promise<string[]> {
    const reply = (await redis.xreadgroup('GROUP', '1', consumer, 'COUNT', count, 'STREAMS', tk.stream, '>')) as
      [string, [string, string[]][]][] | null;
    return (reply?.[0]?.[1] ?? []).map(([sid]) => sid);
  }

  async function group(): Promise<Record<string, unknown>> {
    const groups = (await redis.xinfo('GROUPS', tk.stream)) as unknown[][];
    const g = groups.find((row) => row[1] === '1') ?? [];
    const out: Record<string, unknown> = {};
    for (let i = 0; i + 1 < g.length; i += 2) out[String(g[i])] = g[i + 1];
    return out;
  }

  async function pending(): Promise<string[]> {
    return ((await redis.xpending(tk.stream, '1', '-', '+', 100)) as [string][]).map(([sid]) => sid);
  }

  /** Everything purge and seek may write, to compare before and after a dry run. */
  async function snapshot(): Promise<unknown[]> {
    return [
      (await group())['last-delivered-id'],
      await pending(),
      await redis.zrange(pk.retries, 0, -1, 'WITHSCORES'),
      await redis.hgetall(pk.attempts),
      await redis.zrange(pk.dead, 0, -1, 'WITHSCORES'),
      await redis.hgetall(pk.notes),
      await redis.hgetall(pk.leases),
      await redis.zrange(pk.ranges, 0, -1, 'WITHSCORES'),
    ];
  }

  const purge = (before: number, dry = false, at = 50_000): Promise<unknown> =>
    redis.poPurge(
      7,
      tk.stream,
      pk.retries,
      pk.attempts,
      pk.dead,
      pk.notes,
      pk.leases,
      pk.ranges,
      '1',
      before,
      at,
      new Date(at).toISOString(),
      dry ? '1' : '0',
    );

  const seek = (to: number, dry = false, at = 60_000): Promise<unknown> =>
    redis.poSeek(6, tk.stream, pk.retries, pk.attempts, pk.dead, pk.leases, pk.ranges, '1', to, at, dry ? '1' : '0');

  /**
   * 1000 delivered, 2000 retrying (leased to a pull worker too), 3000 in flight, 4000 dead,
   * 5000 and 6000 not read yet, 9000 not read yet.
   */
  async function backlog(): Promise<string[]> {
    const sids = await stream(1000, 2000, 3000, 4000, 5000, 6000, 9000);
    expect(await read(4)).to.deep.equal(sids.slice(0, 4));
    await redis.xack(tk.stream, '1', '1000-0', '4000-0');
    await redis.zadd(pk.retries, 99_000, '2000-0');
    await redis.hset(pk.attempts, '2000-0', encodeRetryState(1, { startedAt: 1, durationMs: 1, status: 503 }));
    await redis.hset(pk.leases, '2000-0', '{"token":"t"}');
    await redis.zadd(pk.dead, 4500, '4000-0');
    await redis.hset(pk.notes, '4000-0', JSON.stringify({ dead_reason: 'HTTP 410', attempt_count: 1 }));
    return sids;
  }

  describe('purge', () => {
    it('skips the unread messages before the time with one move of the group and one range record, and acknowledges the pending and dead ones with a note each', async () => {
      await backlog();
      const reply = (await purge(7000)) as PurgeReply;
      // 5000 and 6000 skipped (counted by the caller: the skip stops before the stream's end), 2000 and 3000 acknowledged, 4000 dropped.
      expect(reply).to.deep.equal(['4000-0', '6000-0', -1, 2, 1]);

      expect((await group())['last-delivered-id']).to.equal('6000-0');
      expect(await pending()).to.deep.equal([]);
      expect(await redis.exists(pk.retries, pk.attempts, pk.dead, pk.leases)).to.equal(0);
      const notes = await redis.hgetall(pk.notes);
      expect(Object.keys(notes).sort()).to.deep.equal(['2000-0', '3000-0', '4000-0']);
      const action = { action: 'purged', at: new Date(50_000).toISOString() };
      expect(JSON.parse(notes['2000-0']!)).to.deep.equal({ purged: true, last_action: action });
      expect(JSON.parse(notes['4000-0']!)).to.deep.equal({
        dead_reason: 'HTTP 410',
        attempt_count: 1,
        purged: true,
        last_action: action,
      });
      const ranges = await redis.zrange(pk.ranges, 0, -1, 'WITHSCORES');
      expect(ranges[1]).to.equal('6000');
      expect(parseRangeRecords([ranges[0]!])).to.deep.equal([
        { kind: 'purge', at: 50_000, time: 7000, from: '4000-0', through: '6000-0' },
      ]);
      // What came later is read as before.
      expect(await read(10)).to.deep.equal(['9000-0']);
    });

    it('answers the same in a dry run and writes nothing', async () => {
      await backlog();
      const before = await snapshot();
      expect(await purge(7000, true)).to.deep.equal(['4000-0', '6000-0', -1, 2, 1]);
      expect(await snapshot()).to.deep.equal(before);
    });

    it("gives the number skipped when the skip reaches the stream's end (Redis 7's lag), and none when nothing is unread before the time", async () => {
      await backlog();
      const info = await redis.info('server');
      // XINFO GROUPS gives `lag` from Redis 7 on.
      const hasLag = Number(/redis_version:(\d+)/.exec(info)?.[1] ?? 0) >= 7;
      expect(await purge(10_000)).to.deep.equal(['4000-0', '9000-0', hasLag ? 3 : -1, 2, 1]);
      // Again: nothing unread, pending or dead before the time is left, and no record is added.
      expect(await purge(10_000, false, 51_000)).to.deep.equal(['9000-0', '9000-0', 0, 0, 0]);
      expect(await redis.zcard(pk.ranges)).to.equal(1);
    });

    it('leaves messages received at or after the time, pending and dead ones included', async () => {
      await backlog();
      const before = await snapshot();
      expect(await purge(1000)).to.deep.equal(['4000-0', '4000-0', 0, 0, 0]);
      expect(await snapshot()).to.deep.equal(before);
      expect(await purge(0)).to.deep.equal(['4000-0', '4000-0', 0, 0, 0]);
      expect(await purge(-5)).to.deep.equal(['4000-0', '4000-0', 0, 0, 0]);
      expect(await snapshot()).to.deep.equal(before);
    });

    it('purges more than one page of pending entries', async () => {
      const times = Array.from({ length: 1500 }, (_, i) => 1000 + i);
      await stream(...times);
      expect(await read(1500)).to.have.length(1500);
      expect(await purge(100_000)).to.deep.equal(['2499-0', '2499-0', 0, 1500, 0]);
      expect(await pending()).to.deep.equal([]);
      expect(await redis.hlen(pk.notes)).to.equal(1500);
    });

    it('answers zeros for a topic without a stream, and -3 (publisher_not_found) when the group is gone, writing nothing', async () => {
      expect(await purge(7000)).to.deep.equal(['0-0', '0-0', 0, 0, 0]);
      await redis.xadd(tk.stream, '1000-0', 'p', '1');
      const result = await purge(7000);
      expect(result).to.equal(-3);
      expect(codeOf(result)).to.equal('publisher_not_found');
      expect(await redis.exists(pk.notes, pk.ranges)).to.equal(0);
    });
  });

  describe('seek', () => {
    it('moves the group back before the time with one range record, and drops the retries, leases and dead letters after it', async () => {
      await backlog();
      expect(await read(2)).to.deep.equal(['5000-0', '6000-0']);
      await redis.xack(tk.stream, '1', '5000-0', '6000-0');

      expect(await seek(2000)).to.deep.equal(['1000-0', '6000-0', 1, 1]);
      expect((await group())['last-delivered-id']).to.equal('1000-0');
      expect(await redis.exists(pk.retries, pk.attempts, pk.leases, pk.dead)).to.equal(0);
      // The note of the dead letter stays: the read model sees the seek came after it.
      expect(await redis.hexists(pk.notes, '4000-0')).to.equal(1);
      const ranges = await redis.zrange(pk.ranges, 0, -1, 'WITHSCORES');
      expect(ranges[1]).to.equal('6000');
      expect(parseRangeRecords([ranges[0]!])).to.deep.equal([
        { kind: 'seek', at: 60_000, time: 2000, from: '1000-0', through: '6000-0' },
      ]);
      // Everything from 2000 is read again, pending ones included (taken over by the reader).
      expect(await read(10, 'node-b')).to.deep.equal(['2000-0', '3000-0', '4000-0', '5000-0', '6000-0', '9000-0']);
      const owners = (await redis.xpending(tk.stream, '1', '-', '+', 10)) as [string, string][];
      expect(owners.map(([sid, consumer]) => [sid, consumer])).to.deep.include(['3000-0', 'node-b']);
    });

    it('answers the same in a dry run and writes nothing', async () => {
      await backlog();
      const before = await snapshot();
      expect(await seek(2000, true)).to.deep.equal(['1000-0', '4000-0', 1, 1]);
      expect(await snapshot()).to.deep.equal(before);
    });

    it('goes back to the start for a time before every message, and moves nothing for a time after what was read', async () => {
      await backlog();
      const before = await snapshot();
      expect(await seek(5000)).to.deep.equal(['4000-0', '4000-0', 0, 0]);
      expect(await seek(100_000)).to.deep.equal(['4000-0', '4000-0', 0, 0]);
      expect(await snapshot()).to.deep.equal(before);
      expect(await seek(500)).to.deep.equal(['0-0', '4000-0', 1, 1]);
      expect((await group())['last-delivered-id']).to.equal('0-0');
      expect(await seek(0)).to.deep.equal(['0-0', '0-0', 0, 0]);
    });

    it('answers zeros for a topic without a stream, and -3 (publisher_not_found) when the group is gone, writing nothing', async () => {
      expect(await seek(2000)).to.deep.equal(['0-0', '0-0', 0, 0]);
      await redis.xadd(tk.stream, '1000-0', 'p', '1');
      const result = await seek(2000);
      expect(result).to.equal(-3);
      expect(codeOf(result)).to.equal('publisher_not_found');
      expect(await redis.exists(pk.ranges)).to.equal(0);
    });
  });

  describe('count-range', () => {
    it('counts the entries after one id up to another, a bounded number per call', async () => {
      const times = Array.from({ length: 2500 }, (_, i) => 1000 + i);
      await stream(...times);
      const count = (from: string, through: string, budget: number): Promise<unknown> =>
        redis.poCountRange(1, tk.stream, from, through, budget);
      expect(await count('0-0', '3499-0', 1000)).to.deep.equal([1000, '1999-0']);
      expect(await count('1999-0', '3499-0', 1000)).to.deep.equal([1000, '2999-0']);
      expect(await count('2999-0', '3499-0', 1000)).to.deep.equal([500, '']);
      expect(await count('0-0', '3499-0', 5000)).to.deep.equal([2500, '']);
      expect(await count('1000-0', '1500-0', 500)).to.deep.equal([500, '']);
      expect(await count('1000-0', '1000-0', 10)).to.deep.equal([0, '']);
      expect(await count('3499-0', '99999-0', 10)).to.deep.equal([0, '']);
      expect(await redis.xlen(tk.stream)).to.equal(2500);
    });
  });

  describe('cancel-scheduled', () => {
    const cancel = (id: string): Promise<unknown> =>
      redis.poCancelScheduled(3, tk.scheduled, tk.scheduledData, tk.ids, id);

    it('drops a message that waits for its time', async () => {
      await redis.poSchedule(3, tk.meta, tk.scheduled, tk.scheduledData, 'orders.sA', 5000, '{"p":"1","a":""}');
      await redis.poSchedule(3, tk.meta, tk.scheduled, tk.scheduledData, 'orders.sB', 6000, '{"p":"2","a":""}');
      expect(await cancel('orders.sA')).to.equal(1);
      expect(await redis.zrange(tk.scheduled, 0, -1)).to.deep.equal(['orders.sB']);
      expect(await redis.hkeys(tk.scheduledData)).to.deep.equal(['orders.sB']);
    });

    it('answers -10 (scheduled_message_released) once released and -11 (scheduled_message_not_found) for an unknown id, writing nothing', async () => {
      await redis.poSchedule(3, tk.meta, tk.scheduled, tk.scheduledData, 'orders.sA', 5000, '{"p":"1","a":""}');
      expect(await redis.poReleaseScheduled(5, tk.meta, tk.stream, tk.ids, tk.scheduled, tk.scheduledData, 9000, 10))
        .to.be.an('array')
        .with.property('0', 1);
      const released = await cancel('orders.sA');
      expect(released).to.equal(-10);
      expect(codeOf(released)).to.equal('scheduled_message_released');
      expect(await redis.hexists(tk.ids, 'orders.sA')).to.equal(1);
      const unknown = await cancel('orders.sZ');
      expect(unknown).to.equal(-11);
      expect(codeOf(unknown)).to.equal('scheduled_message_not_found');
      expect(await redis.xlen(tk.stream)).to.equal(1);
    });
  });
});
