/**
 * Every Lua script under `lua/`, run directly on a private redis-server:
 * the data each one writes and every code it answers with. Each test works
 * under its own key prefix, so tests never see each other's keys.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import {
  AppError,
  SCRIPT_CODES,
  SCRIPT_NAMES,
  checkScriptResult,
  closeRedis,
  createRedis,
  Keys,
  type ScriptClient,
  type TopicKeys,
} from '../src/index.js';
import { startRedis, type RedisServer } from './support/redis-server.js';

const LUA_DIR = fileURLToPath(new URL('../lua/', import.meta.url));

type TakeResult = [string, [string, string, string[]][]];

describe('Lua scripts', () => {
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
    keys = new Keys(`t${++prefixes}:`);
  });

  async function createTopic(name: string): Promise<TopicKeys> {
    const tk = keys.topic(name);
    const json = JSON.stringify({ id: 1, name, origin_host: 'example.com', created_at: '2024-01-01T00:00:00.000Z' });
    expect(await redis.poCreateTopic(1, tk.meta, json)).to.equal(1);
    return tk;
  }

  interface NewMessage {
    id: string;
    payload: string;
    attributes?: string;
  }

  function ingest(tk: TopicKeys, messages: NewMessage[]): Promise<unknown> {
    const args = messages.flatMap((m) => [m.id, m.payload, m.attributes ?? '']);
    return redis.poIngest(3, tk.meta, tk.stream, tk.ids, messages.length, ...args);
  }

  async function ingestN(tk: TopicKeys, n: number, from = 0): Promise<string[]> {
    const messages = Array.from({ length: n }, (_, i) => ({ id: `m-${from + i}`, payload: String(from + i) }));
    return (await ingest(tk, messages)) as string[];
  }

  function createPublisher(
    topic: string,
    id: string,
    options: { start?: '$' | '0'; type?: string; target?: string } = {},
  ): Promise<unknown> {
    const tk = keys.topic(topic);
    const type = options.type ?? 'http';
    const target = options.target ?? `http://example.com/${id}`;
    const json = JSON.stringify({ id, topic, type, target, active: true });
    return redis.poCreatePublisher(
      4,
      tk.meta,
      tk.publishers,
      tk.targets,
      tk.stream,
      id,
      json,
      `${type} ${target}`,
      options.start ?? '0',
    );
  }

  /** Reads every new entry for the group as `consumer`, leaving them pending. */
  async function readAll(stream: string, group: string, consumer = 'node-a'): Promise<string[]> {
    const reply = (await redis.xreadgroup('GROUP', group, consumer, 'COUNT', 10_000, 'STREAMS', stream, '>')) as
      [string, [string, string[]][]][] | null;
    return (reply?.[0]?.[1] ?? []).map(([sid]) => sid);
  }

  async function groupInfo(stream: string): Promise<Record<string, string | number>[]> {
    const groups = (await redis.xinfo('GROUPS', stream)) as (string | number)[][];
    return groups.map((g) => {
      const info: Record<string, string | number> = {};
      for (let i = 0; i + 1 < g.length; i += 2) info[String(g[i])] = g[i + 1] as string | number;
      return info;
    });
  }

  async function pendingOf(stream: string, group: string): Promise<{ sid: string; consumer: string }[]> {
    const rows = (await redis.xpending(stream, group, '-', '+', 10_000)) as [string, string, number, number][];
    return rows.map(([sid, consumer]) => ({ sid, consumer }));
  }

  async function zsetWithScores(key: string): Promise<Record<string, number>> {
    const flat = await redis.zrange(key, 0, -1, 'WITHSCORES');
    const out: Record<string, number> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = Number(flat[i + 1]);
    return out;
  }

  describe('the script files', () => {
    it('are each defined as a command, and each opens with a header naming its KEYS, ARGV and returns', () => {
      const files = readdirSync(LUA_DIR)
        .filter((f) => f.endsWith('.lua'))
        .map((f) => f.slice(0, -4))
        .sort();
      expect(files).to.deep.equal(Object.values(SCRIPT_NAMES).sort());
      for (const file of files) {
        const lua = readFileSync(`${LUA_DIR}${file}.lua`, 'utf8');
        const header = /^--\[\[([\s\S]*?)\]\]/.exec(lua)?.[1] ?? '';
        expect(header, file).to.match(/KEYS\[1\]/);
        expect(header, file).to.match(/ARGV\[1\]/);
        expect(header, file).to.match(/Returns:/);
        expect(lua, `${file} builds no key of its own`).not.to.match(/['"]po:/);
      }
    });

    it('answer with negative codes that each map to a typed error', () => {
      for (const code of Object.keys(SCRIPT_CODES)) {
        expect(() => checkScriptResult(Number(code))).to.throw(AppError);
      }
      const codeOf = (n: number): string => {
        try {
          checkScriptResult(n);
        } catch (err) {
          return (err as AppError).code;
        }
        return 'none';
      };
      expect(codeOf(-1)).to.equal('topic_not_found');
      expect(codeOf(-2)).to.equal('publisher_exists');
      expect(codeOf(-3)).to.equal('publisher_not_found');
      expect(codeOf(-4)).to.equal('topic_exists');
      expect(codeOf(-5)).to.equal('publisher_busy');
      expect(codeOf(-99)).to.equal('script_failed');
      expect(checkScriptResult(1)).to.equal(1);
      expect(checkScriptResult(['1-0'])).to.deep.equal(['1-0']);
    });
  });

  describe('create-topic', () => {
    it('writes the topic record with a zero received counter', async () => {
      const tk = keys.topic('orders');
      expect(await redis.poCreateTopic(1, tk.meta, '{"name":"orders"}')).to.equal(1);
      expect(await redis.hgetall(tk.meta)).to.deep.equal({ json: '{"name":"orders"}', received: '0' });
    });

    it('answers -4 when the name is taken and leaves the first record as it was', async () => {
      const tk = keys.topic('orders');
      await redis.poCreateTopic(1, tk.meta, '{"name":"orders","v":1}');
      await redis.hincrby(tk.meta, 'received', 3);
      expect(await redis.poCreateTopic(1, tk.meta, '{"name":"orders","v":2}')).to.equal(-4);
      expect(await redis.hgetall(tk.meta)).to.deep.equal({ json: '{"name":"orders","v":1}', received: '3' });
    });
  });

  describe('ingest', () => {
    it('appends each message to the stream, indexes its id and counts it as received', async () => {
      const tk = await createTopic('orders');
      const sids = (await ingest(tk, [
        { id: 'a', payload: '{"n":1}', attributes: '{"k":"v"}' },
        { id: 'b', payload: '"two"' },
      ])) as string[];
      expect(sids).to.have.length(2);
      const entries = await redis.xrange(tk.stream, '-', '+');
      expect(entries).to.deep.equal([
        [sids[0], ['id', 'a', 'p', '{"n":1}', 'a', '{"k":"v"}']],
        [sids[1], ['id', 'b', 'p', '"two"']],
      ]);
      expect(await redis.hgetall(tk.ids)).to.deep.equal({ a: sids[0], b: sids[1] });
      expect(await redis.hget(tk.meta, 'received')).to.equal('2');

      await ingest(tk, [{ id: 'c', payload: '3' }]);
      expect(await redis.hget(tk.meta, 'received')).to.equal('3');
    });

    it('returns the stream ids in the order of the messages, also past 1000 in one call', async () => {
      const tk = await createTopic('bulk');
      const sids = await ingestN(tk, 2500);
      expect(sids).to.have.length(2500);
      expect(await redis.xlen(tk.stream)).to.equal(2500);
      expect(await redis.hlen(tk.ids)).to.equal(2500);
      expect(await redis.hget(tk.ids, 'm-0')).to.equal(sids[0]);
      expect(await redis.hget(tk.ids, 'm-1999')).to.equal(sids[1999]);
      expect(await redis.hget(tk.ids, 'm-2499')).to.equal(sids[2499]);
      const [first] = await redis.xrange(tk.stream, sids[1234]!, sids[1234]!);
      expect(first?.[1]).to.deep.equal(['id', 'm-1234', 'p', '1234']);
      expect(await redis.hget(tk.meta, 'received')).to.equal('2500');
    });

    it('answers -1 for an unknown topic and writes nothing', async () => {
      const tk = keys.topic('nope');
      expect(await ingest(tk, [{ id: 'a', payload: '1' }])).to.equal(-1);
      expect(await redis.exists(tk.meta, tk.stream, tk.ids)).to.equal(0);
    });
  });

  describe('create-publisher', () => {
    it('records the publisher and its uniqueness key, and creates its group from the first retained entry', async () => {
      const tk = await createTopic('orders');
      const old = await ingestN(tk, 2);
      expect(await createPublisher('orders', '7', { start: '0', target: 'http://x/hook' })).to.equal(1);
      expect(JSON.parse((await redis.hget(tk.publishers, '7'))!)).to.include({ id: '7', target: 'http://x/hook' });
      expect(await redis.hgetall(tk.targets)).to.deep.equal({ 'http http://x/hook': '7' });
      expect(await readAll(tk.stream, '7')).to.deep.equal(old);
    });

    it("starts a group created with '$' after the entries already in the stream", async () => {
      const tk = await createTopic('orders');
      await ingestN(tk, 2);
      expect(await createPublisher('orders', '8', { start: '$' })).to.equal(1);
      expect(await readAll(tk.stream, '8')).to.deep.equal([]);
      const fresh = await ingestN(tk, 1, 2);
      expect(await readAll(tk.stream, '8')).to.deep.equal(fresh);
    });

    it('creates the stream when the topic has no message yet', async () => {
      const tk = await createTopic('empty');
      expect(await createPublisher('empty', '1', { start: '$' })).to.equal(1);
      expect(await redis.xlen(tk.stream)).to.equal(0);
      expect((await groupInfo(tk.stream)).map((g) => g.name)).to.deep.equal(['1']);
    });

    it('answers -1 for an unknown topic and writes nothing', async () => {
      const tk = keys.topic('nope');
      expect(await createPublisher('nope', '1')).to.equal(-1);
      expect(await redis.exists(tk.meta, tk.publishers, tk.targets, tk.stream)).to.equal(0);
    });

    it('answers -2 when the topic has a publisher of the same type and target, and writes nothing', async () => {
      const tk = await createTopic('orders');
      await createPublisher('orders', '1', { target: 'http://x/hook' });
      expect(await createPublisher('orders', '2', { target: 'http://x/hook' })).to.equal(-2);
      expect(await redis.hkeys(tk.publishers)).to.deep.equal(['1']);
      expect(await redis.hgetall(tk.targets)).to.deep.equal({ 'http http://x/hook': '1' });
      expect((await groupInfo(tk.stream)).map((g) => g.name)).to.deep.equal(['1']);
    });

    it('accepts the same target with another type', async () => {
      const tk = await createTopic('orders');
      await createPublisher('orders', '1', { type: 'http', target: 'same' });
      expect(await createPublisher('orders', '2', { type: 'pubsub', target: 'same' })).to.equal(1);
      expect(await redis.hgetall(tk.targets)).to.deep.equal({ 'http same': '1', 'pubsub same': '2' });
    });

    it('fails without writing the record when a group of that name already exists', async () => {
      const tk = await createTopic('orders');
      await redis.xgroup('CREATE', tk.stream, '3', '$', 'MKSTREAM');
      let failure: unknown;
      try {
        await createPublisher('orders', '3');
      } catch (err) {
        failure = err;
      }
      expect(String(failure)).to.match(/BUSYGROUP/);
      expect(await redis.exists(tk.publishers, tk.targets)).to.equal(0);
    });
  });

  describe('update-publisher', () => {
    async function setup(): Promise<{ tk: TopicKeys; json: string }> {
      const tk = await createTopic('orders');
      await createPublisher('orders', '1', { target: 'http://a' });
      return { tk, json: (await redis.hget(tk.publishers, '1'))! };
    }

    function update(
      tk: TopicKeys,
      id: string,
      read: string,
      next: string,
      oldKey: string,
      newKey: string,
    ): Promise<unknown> {
      return redis.poUpdatePublisher(2, tk.publishers, tk.targets, id, read, next, oldKey, newKey);
    }

    it('replaces the JSON and keeps the uniqueness key when type and target stay', async () => {
      const { tk, json } = await setup();
      expect(await update(tk, '1', json, '{"v":2}', 'http http://a', 'http http://a')).to.equal(1);
      expect(await redis.hget(tk.publishers, '1')).to.equal('{"v":2}');
      expect(await redis.hgetall(tk.targets)).to.deep.equal({ 'http http://a': '1' });
    });

    it('moves the uniqueness key when the target changes', async () => {
      const { tk, json } = await setup();
      expect(await update(tk, '1', json, '{"v":2}', 'http http://a', 'http http://b')).to.equal(1);
      expect(await redis.hgetall(tk.targets)).to.deep.equal({ 'http http://b': '1' });
    });

    it('answers -3 for an unknown publisher and writes nothing', async () => {
      const { tk } = await setup();
      expect(await update(tk, '9', '{}', '{"v":2}', 'http http://z', 'http http://y')).to.equal(-3);
      expect(await redis.hkeys(tk.publishers)).to.deep.equal(['1']);
      expect(await redis.hgetall(tk.targets)).to.deep.equal({ 'http http://a': '1' });
    });

    it('answers -5 when the JSON changed since it was read, and writes nothing', async () => {
      const { tk, json } = await setup();
      await redis.hset(tk.publishers, '1', '{"changed":true}');
      expect(await update(tk, '1', json, '{"v":2}', 'http http://a', 'http http://b')).to.equal(-5);
      expect(await redis.hget(tk.publishers, '1')).to.equal('{"changed":true}');
      expect(await redis.hgetall(tk.targets)).to.deep.equal({ 'http http://a': '1' });
    });

    it('answers -2 when another publisher has the new type and target, and writes nothing', async () => {
      const { tk, json } = await setup();
      await createPublisher('orders', '2', { target: 'http://b' });
      expect(await update(tk, '1', json, '{"v":2}', 'http http://a', 'http http://b')).to.equal(-2);
      expect(await redis.hget(tk.publishers, '1')).to.equal(json);
      expect(await redis.hgetall(tk.targets)).to.deep.equal({ 'http http://a': '1', 'http http://b': '2' });
    });
  });

  describe('delete-publisher', () => {
    function remove(topic: string, id: string): Promise<unknown> {
      const tk = keys.topic(topic);
      const pk = keys.publisher(topic, id);
      return redis.poDeletePublisher(6, tk.publishers, tk.targets, tk.stream, pk.retries, pk.attempts, pk.dead, id);
    }

    it("removes the record, its uniqueness key, its group and its retry and dead-letter keys, and nothing of the others'", async () => {
      const tk = await createTopic('orders');
      await ingestN(tk, 3);
      await createPublisher('orders', '1', { target: 'http://a' });
      await createPublisher('orders', '2', { target: 'http://b' });
      for (const id of ['1', '2']) {
        const pk = keys.publisher('orders', id);
        await redis.zadd(pk.retries, 1, '1-1');
        await redis.hset(pk.attempts, '1-1', 2);
        await redis.zadd(pk.dead, 1, '1-2');
      }
      expect(await remove('orders', '1')).to.equal(1);

      const gone = keys.publisher('orders', '1');
      expect(await redis.exists(gone.retries, gone.attempts, gone.dead)).to.equal(0);
      expect(await redis.hkeys(tk.publishers)).to.deep.equal(['2']);
      expect(await redis.hgetall(tk.targets)).to.deep.equal({ 'http http://b': '2' });
      expect((await groupInfo(tk.stream)).map((g) => g.name)).to.deep.equal(['2']);
      expect(await redis.xlen(tk.stream)).to.equal(3);
      const kept = keys.publisher('orders', '2');
      expect(await redis.exists(kept.retries, kept.attempts, kept.dead)).to.equal(3);
    });

    it('leaves a uniqueness key that names another publisher', async () => {
      const tk = await createTopic('orders');
      await createPublisher('orders', '1', { target: 'http://a' });
      await redis.hset(tk.targets, 'http http://a', '5');
      expect(await remove('orders', '1')).to.equal(1);
      expect(await redis.hgetall(tk.targets)).to.deep.equal({ 'http http://a': '5' });
    });

    it('deletes a publisher whose stream is gone', async () => {
      const tk = await createTopic('orders');
      await createPublisher('orders', '1');
      await redis.del(tk.stream);
      expect(await remove('orders', '1')).to.equal(1);
      expect(await redis.exists(tk.publishers, tk.targets)).to.equal(0);
    });

    it('answers -3 for an unknown publisher', async () => {
      const tk = await createTopic('orders');
      await createPublisher('orders', '1');
      expect(await remove('orders', '2')).to.equal(-3);
      expect(await redis.hkeys(tk.publishers)).to.deep.equal(['1']);
      expect(await groupInfo(tk.stream)).to.have.length(1);
    });
  });

  describe('take-retries', () => {
    async function setup(): Promise<{ tk: TopicKeys; retries: string; attempts: string; sids: string[] }> {
      const tk = await createTopic('orders');
      const sids = await ingestN(tk, 4);
      const pk = keys.publisher('orders', '1');
      return { tk, retries: pk.retries, attempts: pk.attempts, sids };
    }

    function take(tk: TopicKeys, now: number, leaseEnd: number, count: number, force = false): Promise<TakeResult> {
      const pk = keys.publisher('orders', '1');
      return redis.poTakeRetries(
        3,
        tk.stream,
        pk.retries,
        pk.attempts,
        now,
        leaseEnd,
        count,
        force ? '1' : '0',
      ) as Promise<TakeResult>;
    }

    it('takes only the entries that are due, with their attempts and fields, and leases them', async () => {
      const { tk, retries, attempts, sids } = await setup();
      const [s0, s1, s2] = sids as [string, string, string];
      await redis.zadd(retries, 100, s0, 200, s1, 5000, s2);
      await redis.hset(attempts, s0, 3);

      const [next, taken] = await take(tk, 250, 1000, 10);
      expect(taken).to.deep.equal([
        [s0, '3', ['id', 'm-0', 'p', '0']],
        [s1, '0', ['id', 'm-1', 'p', '1']],
      ]);
      expect(await zsetWithScores(retries)).to.deep.equal({ [s0]: 1000, [s1]: 1000, [s2]: 5000 });
      expect(next).to.equal('1000');
    });

    it('takes at most the given number, earliest first', async () => {
      const { tk, retries, sids } = await setup();
      const [s0, s1, s2] = sids as [string, string, string];
      await redis.zadd(retries, 30, s0, 10, s1, 20, s2);
      const [next, taken] = await take(tk, 100, 1000, 2);
      expect(taken.map(([sid]) => sid)).to.deep.equal([s1, s2]);
      expect(next).to.equal('30');
      expect((await zsetWithScores(retries))[s0]).to.equal(30);
    });

    it('takes the earliest entries that are not due yet when forced (a probe)', async () => {
      const { tk, retries, sids } = await setup();
      const [s0, s1] = sids as [string, string];
      await redis.zadd(retries, 5000, s0, 6000, s1);
      const [nextUnforced, none] = await take(tk, 100, 1000, 1);
      expect(none).to.deep.equal([]);
      expect(nextUnforced).to.equal('5000');

      const [next, taken] = await take(tk, 100, 1000, 1, true);
      expect(taken.map(([sid]) => sid)).to.deep.equal([s0]);
      expect(await zsetWithScores(retries)).to.deep.equal({ [s0]: 1000, [s1]: 6000 });
      expect(next).to.equal('1000');
    });

    it('drops entries whose message was trimmed instead of taking them', async () => {
      const { tk, retries, attempts, sids } = await setup();
      const [s0, s1] = sids as [string, string];
      await redis.zadd(retries, 10, s0, 20, s1);
      await redis.hset(attempts, s0, 4, s1, 1);
      await redis.xdel(tk.stream, s0);

      const [next, taken] = await take(tk, 100, 1000, 10);
      expect(taken.map(([sid]) => sid)).to.deep.equal([s1]);
      expect(await zsetWithScores(retries)).to.deep.equal({ [s1]: 1000 });
      expect(await redis.hgetall(attempts)).to.deep.equal({ [s1]: '1' });
      expect(next).to.equal('1000');
    });

    it('answers an empty next score when nothing is left', async () => {
      const { tk, retries, sids } = await setup();
      expect(await take(tk, 100, 1000, 10)).to.deep.equal(['', []]);
      await redis.zadd(retries, 10, sids[0]!);
      await redis.xdel(tk.stream, sids[0]!);
      expect(await take(tk, 100, 1000, 10)).to.deep.equal(['', []]);
      expect(await redis.exists(retries)).to.equal(0);
    });
  });

  describe('settle', () => {
    const TTL = 3600;

    interface Item {
      sid: string;
      outcome: 'd' | 'r' | 'x';
      score?: number | string;
      attempt: object;
      extra?: string;
      history: string;
    }

    function settle(tk: TopicKeys, group: string, items: Item[], keep = 50): Promise<unknown> {
      const pk = keys.publisher('orders', group);
      const args = items.flatMap((i) => [i.sid, i.outcome, i.score ?? '', JSON.stringify(i.attempt), i.extra ?? '']);
      return redis.poSettle(
        4 + items.length,
        tk.stream,
        pk.retries,
        pk.attempts,
        pk.dead,
        ...items.map((i) => i.history),
        group,
        TTL,
        keep,
        items.length,
        ...args,
      );
    }

    async function setup(): Promise<{
      tk: TopicKeys;
      sids: string[];
      retries: string;
      attempts: string;
      dead: string;
    }> {
      const tk = await createTopic('orders');
      const sids = await ingestN(tk, 3);
      await createPublisher('orders', '1');
      expect(await readAll(tk.stream, '1')).to.deep.equal(sids);
      return { tk, sids, ...keys.publisher('orders', '1') };
    }

    async function record(history: string, group = '1'): Promise<Record<string, unknown>> {
      return JSON.parse((await redis.hget(history, group))!) as Record<string, unknown>;
    }

    it('acknowledges a delivered entry and records the attempt in its history with a TTL', async () => {
      const { tk, sids, retries, attempts } = await setup();
      const s0 = sids[0]!;
      const history = keys.history('orders', 'm-0');
      await redis.zadd(retries, 10, s0);
      await redis.hset(attempts, s0, 1);
      const attempt = { at: '2024-01-01T00:00:00.000Z', status: 200, duration_ms: 12 };

      expect(await settle(tk, '1', [{ sid: s0, outcome: 'd', attempt, history }])).to.equal(1);
      expect((await pendingOf(tk.stream, '1')).map((p) => p.sid)).to.deep.equal(sids.slice(1));
      expect(await redis.exists(retries, attempts)).to.equal(0);
      expect(await record(history)).to.deep.equal({ state: 'delivered', attempts: [attempt], attempt_count: 1 });
      const ttl = await redis.ttl(history);
      expect(ttl)
        .to.be.greaterThan(TTL - 10)
        .and.at.most(TTL);
    });

    it('schedules a retry: the entry stays pending, with its due time and attempt count', async () => {
      const { tk, sids, retries, attempts } = await setup();
      const s1 = sids[1]!;
      const history = keys.history('orders', 'm-1');
      const attempt = { at: '2024-01-01T00:00:00.000Z', status: 503, error: 'HTTP 503', duration_ms: 5 };

      await settle(tk, '1', [
        { sid: s1, outcome: 'r', score: 90_000, attempt, extra: '2024-01-01T00:01:30.000Z', history },
      ]);
      expect((await pendingOf(tk.stream, '1')).map((p) => p.sid)).to.include(s1);
      expect(await zsetWithScores(retries)).to.deep.equal({ [s1]: 90_000 });
      expect(await redis.hget(attempts, s1)).to.equal('1');
      expect(await record(history)).to.deep.equal({
        state: 'retrying',
        attempts: [attempt],
        attempt_count: 1,
        next_attempt_at: '2024-01-01T00:01:30.000Z',
      });
      expect(await redis.ttl(history)).to.be.greaterThan(0);
    });

    it('makes an entry a dead letter: acknowledged, out of the retry set, in the dead set with its score', async () => {
      const { tk, sids, retries, attempts, dead } = await setup();
      const s2 = sids[2]!;
      const history = keys.history('orders', 'm-2');
      await settle(tk, '1', [{ sid: s2, outcome: 'r', score: 50, attempt: { n: 1 }, extra: 'soon', history }]);
      await settle(tk, '1', [
        { sid: s2, outcome: 'x', score: 1234, attempt: { n: 2 }, extra: 'max attempts', history },
      ]);

      expect((await pendingOf(tk.stream, '1')).map((p) => p.sid)).not.to.include(s2);
      expect(await redis.exists(retries, attempts)).to.equal(0);
      expect(await zsetWithScores(dead)).to.deep.equal({ [s2]: 1234 });
      expect(await record(history)).to.deep.equal({
        state: 'dead',
        attempts: [{ n: 1 }, { n: 2 }],
        attempt_count: 2,
        dead_reason: 'max attempts',
      });
    });

    it('appends attempts across calls, counts them all and keeps only the newest', async () => {
      const { tk, sids } = await setup();
      const s0 = sids[0]!;
      const history = keys.history('orders', 'm-0');
      for (let n = 1; n <= 4; n++) {
        await settle(tk, '1', [{ sid: s0, outcome: 'r', score: n, attempt: { n }, extra: `t${n}`, history }], 3);
      }
      expect(await record(history)).to.deep.equal({
        state: 'retrying',
        attempts: [{ n: 2 }, { n: 3 }, { n: 4 }],
        attempt_count: 4,
        next_attempt_at: 't4',
      });
      await settle(tk, '1', [{ sid: s0, outcome: 'd', attempt: { n: 5 }, history }], 3);
      expect(await record(history)).to.deep.equal({
        state: 'delivered',
        attempts: [{ n: 3 }, { n: 4 }, { n: 5 }],
        attempt_count: 5,
      });
    });

    it("settles a batch of several messages in one call, each in its own history, beside other publishers' records", async () => {
      const { tk, sids, retries, dead } = await setup();
      const [s0, s1, s2] = sids as [string, string, string];
      const h = sids.map((_, i) => keys.history('orders', `m-${i}`));
      await redis.hset(h[0]!, '99', '{"state":"delivered"}');

      const n = await settle(tk, '1', [
        { sid: s0, outcome: 'd', attempt: { n: 0 }, history: h[0]! },
        { sid: s1, outcome: 'r', score: 777, attempt: { n: 1 }, extra: 'later', history: h[1]! },
        { sid: s2, outcome: 'x', score: 888, attempt: { n: 2 }, extra: 'too old', history: h[2]! },
      ]);
      expect(n).to.equal(3);
      expect((await pendingOf(tk.stream, '1')).map((p) => p.sid)).to.deep.equal([s1]);
      expect(await zsetWithScores(retries)).to.deep.equal({ [s1]: 777 });
      expect(await zsetWithScores(dead)).to.deep.equal({ [s2]: 888 });
      expect((await record(h[0]!)).state).to.equal('delivered');
      expect((await record(h[1]!)).state).to.equal('retrying');
      expect((await record(h[2]!)).state).to.equal('dead');
      expect(await redis.hget(h[0]!, '99')).to.equal('{"state":"delivered"}');
    });
  });

  describe('reclaim', () => {
    const NOW = 1_000_000;

    function reclaim(tk: TopicKeys, gone: string, budget: number): Promise<[number, number]> {
      const pk = keys.publisher('orders', '1');
      return redis.poReclaim(2, tk.stream, pk.retries, '1', gone, 'reclaimed', NOW, budget) as Promise<
        [number, number]
      >;
    }

    async function setup(): Promise<{ tk: TopicKeys; sids: string[]; retries: string }> {
      const tk = await createTopic('orders');
      await createPublisher('orders', '1');
      const sids = await ingestN(tk, 3);
      expect(await readAll(tk.stream, '1', 'dead-node')).to.deep.equal(sids);
      const other = await ingestN(tk, 1, 3);
      expect(await readAll(tk.stream, '1', 'live-node')).to.deep.equal(other);
      return { tk, sids, retries: keys.publisher('orders', '1').retries };
    }

    async function consumers(stream: string): Promise<string[]> {
      const rows = (await redis.xinfo('CONSUMERS', stream, '1')) as (string | number)[][];
      return rows.map((r) => String(r[r.indexOf('name') + 1])).sort();
    }

    it("moves a consumer's pending entries to the retry set, due now, and deletes the consumer", async () => {
      const { tk, sids, retries } = await setup();
      expect(await reclaim(tk, 'dead-node', 100)).to.deep.equal([3, 1]);
      const pending = await pendingOf(tk.stream, '1');
      expect(pending.filter((p) => p.consumer === 'reclaimed').map((p) => p.sid)).to.deep.equal(sids);
      expect(pending.filter((p) => p.consumer === 'live-node')).to.have.length(1);
      expect(await zsetWithScores(retries)).to.deep.equal(Object.fromEntries(sids.map((s) => [s, NOW])));
      expect(await consumers(tk.stream)).to.deep.equal(['live-node', 'reclaimed']);
    });

    it('keeps the due time of an entry already waiting for a retry', async () => {
      const { tk, sids, retries } = await setup();
      const [s0, s1, s2] = sids as [string, string, string];
      await redis.zadd(retries, NOW + 60_000, s1);
      expect(await reclaim(tk, 'dead-node', 100)).to.deep.equal([2, 1]);
      expect(await zsetWithScores(retries)).to.deep.equal({ [s0]: NOW, [s1]: NOW + 60_000, [s2]: NOW });
    });

    it('works through a long list in several calls, each within its budget', async () => {
      const { tk, retries } = await setup();
      expect(await reclaim(tk, 'dead-node', 2)).to.deep.equal([2, 0]);
      expect(await consumers(tk.stream)).to.include('dead-node');
      expect(await reclaim(tk, 'dead-node', 2)).to.deep.equal([1, 1]);
      expect(await consumers(tk.stream)).to.deep.equal(['live-node', 'reclaimed']);
      expect(await redis.zcard(retries)).to.equal(3);
    });

    it('does nothing when asked to take over from the taking consumer itself', async () => {
      const { tk, sids, retries } = await setup();
      await reclaim(tk, 'dead-node', 100);
      await redis.zrem(retries, sids[0]!);
      expect(await reclaim(tk, 'reclaimed', 100)).to.deep.equal([0, 1]);
      const pending = await pendingOf(tk.stream, '1');
      expect(pending.filter((p) => p.consumer === 'reclaimed').map((p) => p.sid)).to.deep.equal(sids);
      expect(await consumers(tk.stream)).to.deep.equal(['live-node', 'reclaimed']);
      expect(await redis.zcard(retries)).to.equal(2);
    });

    it('is done at once for a consumer, group or stream that does not exist', async () => {
      const { tk } = await setup();
      expect(await reclaim(tk, 'never-seen', 10)).to.deep.equal([0, 1]);
      const pk = keys.publisher('orders', '1');
      expect(await redis.poReclaim(2, tk.stream, pk.retries, 'no-group', 'x', 'reclaimed', NOW, 10)).to.deep.equal([
        0, 1,
      ]);
      const missing = keys.topic('missing');
      const missingRetries = keys.publisher('missing', '1').retries;
      expect(await redis.poReclaim(2, missing.stream, missingRetries, '1', 'x', 'reclaimed', NOW, 10)).to.deep.equal([
        0, 1,
      ]);
      expect(await redis.exists(missing.stream)).to.equal(0);
    });
  });

  describe('trim', () => {
    /** A stream with entries at 1000-0, 2000-0, ... (ids m-1000, m-2000, ...) and their index. */
    async function setup(times: number[]): Promise<TopicKeys> {
      const tk = await createTopic('orders');
      for (const t of times) {
        await redis.xadd(tk.stream, `${t}-0`, 'id', `m-${t}`, 'p', '1');
        await redis.hset(tk.ids, `m-${t}`, `${t}-0`);
      }
      return tk;
    }

    function trim(tk: TopicKeys, cutoff: number, budget = 1000): Promise<[number, number]> {
      return redis.poTrim(2, tk.stream, tk.ids, cutoff, budget) as Promise<[number, number]>;
    }

    async function remaining(tk: TopicKeys): Promise<string[]> {
      return (await redis.xrange(tk.stream, '-', '+')).map(([sid]) => sid);
    }

    it('trims entries received before the retention cutoff when no publisher needs them, with their index entries', async () => {
      const tk = await setup([1000, 2000, 3000, 4000]);
      expect(await trim(tk, 3000)).to.deep.equal([2, 0]);
      expect(await remaining(tk)).to.deep.equal(['3000-0', '4000-0']);
      expect(await redis.hgetall(tk.ids)).to.deep.equal({ 'm-3000': '3000-0', 'm-4000': '4000-0' });
      expect(await trim(tk, 3000)).to.deep.equal([0, 0]);
    });

    it('never trims an entry a group has not read yet', async () => {
      const tk = await setup([1000, 2000, 3000]);
      await createPublisher('orders', '1', { start: '0' });
      expect(await trim(tk, 10_000)).to.deep.equal([0, 0]);
      expect(await remaining(tk)).to.have.length(3);

      await redis.xreadgroup('GROUP', '1', 'n', 'COUNT', 2, 'STREAMS', tk.stream, '>');
      await redis.xack(tk.stream, '1', '1000-0', '2000-0');
      expect(await trim(tk, 10_000)).to.deep.equal([2, 0]);
      expect(await remaining(tk)).to.deep.equal(['3000-0']);
    });

    it('never trims an entry a group has pending (in flight or waiting for a retry)', async () => {
      const tk = await setup([1000, 2000, 3000, 4000]);
      await createPublisher('orders', '1', { start: '0' });
      await readAll(tk.stream, '1');
      await redis.xack(tk.stream, '1', '1000-0', '3000-0', '4000-0');
      expect(await trim(tk, 10_000)).to.deep.equal([1, 0]);
      expect(await remaining(tk)).to.deep.equal(['2000-0', '3000-0', '4000-0']);
      expect(await redis.hkeys(tk.ids)).to.have.members(['m-2000', 'm-3000', 'm-4000']);
    });

    it('keeps everything from the oldest entry some publisher needs', async () => {
      const tk = await setup([1000, 2000, 3000, 4000, 5000]);
      await createPublisher('orders', 'ahead', { start: '0', target: 'a' });
      await createPublisher('orders', 'behind', { start: '0', target: 'b' });
      await readAll(tk.stream, 'ahead');
      await redis.xack(tk.stream, 'ahead', '1000-0', '2000-0', '3000-0', '4000-0', '5000-0');
      await redis.xreadgroup('GROUP', 'behind', 'n', 'COUNT', 3, 'STREAMS', tk.stream, '>');
      await redis.xack(tk.stream, 'behind', '1000-0', '3000-0');

      expect(await trim(tk, 2500)).to.deep.equal([1, 0]);
      expect(await remaining(tk)).to.deep.equal(['2000-0', '3000-0', '4000-0', '5000-0']);
      await redis.xack(tk.stream, 'behind', '2000-0');
      expect(await trim(tk, 2500)).to.deep.equal([1, 0]);
      expect(await trim(tk, 10_000)).to.deep.equal([1, 0]);
      expect(await remaining(tk)).to.deep.equal(['4000-0', '5000-0']);
    });

    it('removes at most its budget per call and says when there is more', async () => {
      const tk = await setup([1000, 2000, 3000, 4000, 5000]);
      expect(await trim(tk, 4500, 2)).to.deep.equal([2, 1]);
      expect(await remaining(tk)).to.deep.equal(['3000-0', '4000-0', '5000-0']);
      expect(await redis.hkeys(tk.ids)).to.have.members(['m-3000', 'm-4000', 'm-5000']);
      expect(await trim(tk, 4500, 2)).to.deep.equal([2, 1]);
      expect(await trim(tk, 4500, 2)).to.deep.equal([0, 0]);
      expect(await remaining(tk)).to.deep.equal(['5000-0']);
    });

    it('does nothing for a topic without a stream', async () => {
      const tk = keys.topic('missing');
      expect(await trim(tk, 10_000)).to.deep.equal([0, 0]);
      expect(await redis.exists(tk.stream, tk.ids)).to.equal(0);
    });

    it('trims entries that share a millisecond only below the one still needed', async () => {
      const tk = await createTopic('orders');
      for (let seq = 0; seq < 3; seq++) {
        await redis.xadd(tk.stream, `1000-${seq}`, 'id', `m-${seq}`, 'p', '1');
        await redis.hset(tk.ids, `m-${seq}`, `1000-${seq}`);
      }
      await createPublisher('orders', '1', { start: '0' });
      await redis.xreadgroup('GROUP', '1', 'n', 'COUNT', 2, 'STREAMS', tk.stream, '>');
      await redis.xack(tk.stream, '1', '1000-0');
      expect(await trim(tk, 10_000)).to.deep.equal([1, 0]);
      expect(await remaining(tk)).to.deep.equal(['1000-1', '1000-2']);
      await redis.xack(tk.stream, '1', '1000-1');
      expect(await trim(tk, 10_000)).to.deep.equal([1, 0]);
      expect(await remaining(tk)).to.deep.equal(['1000-2']);
      expect(await redis.hkeys(tk.ids)).to.deep.equal(['m-2']);
    });
  });

  describe('ingest with an idempotency key', () => {
    it('keeps the answer under the key and, for a repeat, answers it and writes nothing', async () => {
      const tk = await createTopic('idem');
      const key = keys.idempotency('idem', 'k1');
      const first = (await redis.poIngest(
        4,
        tk.meta,
        tk.stream,
        tk.ids,
        key,
        1,
        'a',
        '1',
        '',
        'first',
        60,
      )) as string[];
      expect(first).to.have.length(1);
      expect(await redis.get(key)).to.equal('first');
      expect(await redis.ttl(key)).to.be.within(1, 60);
      const again = await redis.poIngest(4, tk.meta, tk.stream, tk.ids, key, 1, 'b', '2', '', 'second', 60);
      expect(again).to.deep.equal(['=', 'first']);
      expect(await redis.xlen(tk.stream)).to.equal(1);
      expect(await redis.hget(tk.meta, 'received')).to.equal('1');
    });

    it('answers -1 for an unknown topic and keeps no key', async () => {
      const tk = keys.topic('nope');
      const key = keys.idempotency('nope', 'k1');
      expect(await redis.poIngest(4, tk.meta, tk.stream, tk.ids, key, 1, 'a', '1', '', 'x', 60)).to.equal(-1);
      expect(await redis.exists(key)).to.equal(0);
    });
  });

  describe('schedule and release-scheduled', () => {
    const data = (p: string) => JSON.stringify({ p, a: '', at: '', created_at: '' });

    it('keeps messages aside, then moves the due ones into the stream with their ids', async () => {
      const tk = await createTopic('later');
      expect(await redis.poSchedule(3, tk.meta, tk.scheduled, tk.scheduledData, 'a', 100, data('"a"'))).to.equal(1);
      const withAttrs = JSON.stringify({ p: '"b"', a: '{"k":"v"}', at: '', created_at: '' });
      expect(await redis.poSchedule(3, tk.meta, tk.scheduled, tk.scheduledData, 'b', 200, withAttrs)).to.equal(1);
      expect(await redis.poSchedule(3, tk.meta, tk.scheduled, tk.scheduledData, 'c', 900, data('"c"'))).to.equal(1);
      const args = [5, tk.meta, tk.stream, tk.ids, tk.scheduled, tk.scheduledData] as const;
      expect(await redis.poReleaseScheduled(...args, 50, 10)).to.deep.equal([0, '100']);
      expect(await redis.poReleaseScheduled(...args, 500, 1)).to.deep.equal([1, '200']);
      expect(await redis.poReleaseScheduled(...args, 500, 10)).to.deep.equal([1, '900']);
      const entries = await redis.xrange(tk.stream, '-', '+');
      expect(entries.map(([, f]) => f)).to.deep.equal([
        ['id', 'a', 'p', '"a"'],
        ['id', 'b', 'p', '"b"', 'a', '{"k":"v"}'],
      ]);
      expect(await redis.hget(tk.ids, 'b')).to.equal(entries[1]![0]);
      expect(await redis.hget(tk.meta, 'received')).to.equal('2');
      expect(await redis.hkeys(tk.scheduledData)).to.deep.equal(['c']);
      expect(await redis.poReleaseScheduled(...args, 1000, 10)).to.deep.equal([1, '']);
    });

    it('answers -1 for an unknown topic and keeps nothing', async () => {
      const tk = keys.topic('nope');
      expect(await redis.poSchedule(3, tk.meta, tk.scheduled, tk.scheduledData, 'a', 1, data('1'))).to.equal(-1);
      expect(await redis.exists(tk.scheduled, tk.scheduledData)).to.equal(0);
    });
  });

  describe('failing and note-history', () => {
    async function failing(
      topic: string,
      ...args: (string | number)[]
    ): Promise<[number, [string, string][], string[]]> {
      const tk = keys.topic(topic);
      const pk = keys.publisher(topic, '1');
      return (await redis.poFailing(5, tk.stream, tk.ids, pk.retries, pk.attempts, pk.dead, ...args)) as [
        number,
        [string, string][],
        string[],
      ];
    }

    async function setup(topic: string): Promise<{ sids: string[]; pk: ReturnType<Keys['publisher']> }> {
      const tk = await createTopic(topic);
      await createPublisher(topic, '1');
      const sids = await ingestN(tk, 4);
      await readAll(tk.stream, '1');
      const pk = keys.publisher(topic, '1');
      await redis.zadd(pk.retries, 5000, sids[0]!, 6000, sids[1]!);
      await redis.hset(pk.attempts, sids[0]!, 1, sids[1]!, 2);
      await redis.xack(tk.stream, '1', sids[2]!, sids[3]!);
      await redis.zadd(pk.dead, 100, sids[2]!, 200, sids[3]!);
      return { sids, pk };
    }

    it('retry with ids moves retrying and dead entries to the given time and reports the rest', async () => {
      const { sids, pk } = await setup('f1');
      const [more, done, missing] = await failing('f1', 'retry', '1', 10, 'ids', 500, 10, 'm-0', 'm-2', 'zz');
      expect(more).to.equal(0);
      expect(done).to.deep.equal([
        ['m-0', 'retrying'],
        ['m-2', 'dead'],
      ]);
      expect(missing).to.deep.equal(['zz']);
      expect(await zsetWithScores(pk.retries)).to.deep.equal({ [sids[0]!]: 10, [sids[2]!]: 10, [sids[1]!]: 6000 });
      expect(await zsetWithScores(pk.dead)).to.deep.equal({ [sids[3]!]: 200 });
    });

    it('retry all moves retries due later than now and every dead letter, in batches', async () => {
      const { pk } = await setup('f2');
      const first = await failing('f2', 'retry', '1', 5500, 'all', 2, 5500);
      expect(first[0]).to.equal(1);
      expect(first[1].map(([id]) => id)).to.deep.equal(['m-1', 'm-2']);
      const second = await failing('f2', 'retry', '1', 5500, 'all', 2, 5500);
      expect(second[1].map(([id]) => id)).to.deep.equal(['m-3']);
      expect(second[0]).to.equal(0);
      expect(await redis.zcard(pk.dead)).to.equal(0);
      expect(await redis.zcount(pk.retries, '-inf', 5500)).to.equal(4);
    });

    it('recover moves the dead letters that died at or after the time, due now', async () => {
      const { sids, pk } = await setup('f3');
      const [, done] = await failing('f3', 'recover', '1', 150, 'all', 500, 7000);
      expect(done).to.deep.equal([['m-3', 'dead']]);
      expect(await zsetWithScores(pk.dead)).to.deep.equal({ [sids[2]!]: 100 });
      expect(await redis.zscore(pk.retries, sids[3]!)).to.equal('7000');
    });

    it('delete acknowledges and forgets the entries; a trimmed entry is dropped and reported missing', async () => {
      const { sids, pk } = await setup('f4');
      const tk = keys.topic('f4');
      await redis.xdel(tk.stream, sids[1]!);
      const [, done, missing] = await failing('f4', 'delete', '1', 0, 'ids', 500, 0, 'm-0', 'm-1');
      expect(done).to.deep.equal([['m-0', 'retrying']]);
      expect(missing).to.deep.equal(['m-1']);
      expect(await redis.zcard(pk.retries)).to.equal(0);
      expect(await redis.hlen(pk.attempts)).to.equal(0);
      expect(await pendingOf(tk.stream, '1')).to.deep.equal([]);
    });

    it('note-history changes existing records that are not delivered', async () => {
      const a = keys.history('f5', 'a');
      const b = keys.history('f5', 'b');
      const c = keys.history('f5', 'c');
      await redis.hset(
        a,
        '1',
        JSON.stringify({ state: 'dead', attempts: [{ at: 'x' }], attempt_count: 1, dead_reason: 'r' }),
      );
      await redis.hset(b, '1', JSON.stringify({ state: 'delivered', attempts: [{ at: 'x' }], attempt_count: 1 }));
      expect(await redis.poNoteHistory(3, a, b, c, '1', 60, 'retrying', 'T', 'retry_now', 'NOW')).to.equal(1);
      expect(JSON.parse((await redis.hget(a, '1'))!)).to.deep.equal({
        state: 'retrying',
        attempts: [{ at: 'x' }],
        attempt_count: 1,
        next_attempt_at: 'T',
        last_action: { action: 'retry_now', at: 'NOW' },
      });
      expect(JSON.parse((await redis.hget(b, '1'))!).state).to.equal('delivered');
      expect(await redis.exists(c)).to.equal(0);
      expect(await redis.ttl(a)).to.be.within(1, 60);
    });
  });

  describe('renew-lock and release-lock', () => {
    it('extends a lease only for the token that holds it', async () => {
      const key = keys.lock('janitor');
      await redis.set(key, 'token-a', 'PX', 10_000);
      expect(await redis.poRenewLock(1, key, 'token-b', 60_000)).to.equal(0);
      expect(await redis.pttl(key)).to.be.at.most(10_000);
      expect(await redis.poRenewLock(1, key, 'token-a', 60_000)).to.equal(1);
      expect(await redis.pttl(key)).to.be.greaterThan(10_000);
      expect(await redis.get(key)).to.equal('token-a');
    });

    it('does not renew a lease that has expired or was never taken', async () => {
      const key = keys.lock('gone');
      expect(await redis.poRenewLock(1, key, 'token-a', 60_000)).to.equal(0);
      expect(await redis.exists(key)).to.equal(0);
    });

    it('releases a lease only for the token that holds it', async () => {
      const key = keys.lock('janitor');
      await redis.set(key, 'token-a', 'PX', 10_000);
      expect(await redis.poReleaseLock(1, key, 'token-b')).to.equal(0);
      expect(await redis.get(key)).to.equal('token-a');
      expect(await redis.poReleaseLock(1, key, 'token-a')).to.equal(1);
      expect(await redis.exists(key)).to.equal(0);
      expect(await redis.poReleaseLock(1, key, 'token-a')).to.equal(0);
    });
  });

  describe('take-lease', () => {
    it("takes a free lease, keeps one already held, and takes a dead holder's only if it is still theirs", async () => {
      const key = keys.slotLease('orders', '7', 0);
      expect(await redis.poTakeLease(1, key, '', 'node-a t1')).to.equal(1);
      expect(await redis.get(key)).to.equal('node-a t1');
      expect(await redis.poTakeLease(1, key, '', 'node-a t1')).to.equal(1);
      // node-b read the lease as free, but node-a took it meanwhile.
      expect(await redis.poTakeLease(1, key, '', 'node-b t2')).to.equal(0);
      // node-b saw node-a dead: compare and set.
      expect(await redis.poTakeLease(1, key, 'node-a t1', 'node-b t2')).to.equal(1);
      // node-c saw node-a dead too, but node-b was first.
      expect(await redis.poTakeLease(1, key, 'node-a t1', 'node-c t3')).to.equal(0);
      expect(await redis.get(key)).to.equal('node-b t2');
      expect(await redis.ttl(key)).to.equal(-1);
    });
  });

  describe('rate-limit', () => {
    const take = async (key: string, rate: number, burst: number, n: number): Promise<[number, number]> =>
      (await redis.poRateLimit(1, key, rate, burst, n)) as [number, number];

    it('grants up to the burst at once, then one token per 1/rate, and says how long to wait', async () => {
      const key = keys.publisher('orders', '7').bucket;
      expect(await take(key, 10, 5, 3)).to.deep.equal([3, 0]);
      const [granted, wait] = await take(key, 10, 5, 10);
      expect(granted).to.equal(2);
      expect(wait).to.be.within(1, 100);
      expect((await take(key, 10, 5, 1))[0]).to.equal(0);
      await new Promise((r) => setTimeout(r, 250));
      const [later] = await take(key, 10, 5, 10);
      expect(later).to.be.within(1, 3);
      expect(await redis.pttl(key)).to.be.within(1, 2000);
    });

    it('takes back unused tokens, never above the burst', async () => {
      const key = keys.publisher('orders', '8').bucket;
      expect((await take(key, 1, 4, 4))[0]).to.equal(4);
      expect(await take(key, 1, 4, -3)).to.deep.equal([0, 0]);
      expect((await take(key, 1, 4, 10))[0]).to.equal(3);
      await take(key, 1, 4, -100);
      expect((await take(key, 1, 4, 10))[0]).to.equal(4);
    });

    it('applies a new rate and burst at the next call', async () => {
      const key = keys.publisher('orders', '9').bucket;
      expect((await take(key, 1, 1, 5))[0]).to.equal(1);
      expect((await take(key, 1, 1, 5))[0]).to.equal(0);
      await new Promise((r) => setTimeout(r, 100));
      // At 1000/s, 100 ms refill 100 tokens, capped by the new burst.
      expect((await take(key, 1000, 50, 500))[0]).to.equal(50);
    });
  });
});
