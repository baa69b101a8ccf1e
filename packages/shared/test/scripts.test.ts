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
  SCRIPTS,
  checkScriptResult,
  createRedis,
  closeRedis,
  decodeItem,
  decodeRetryState,
  encodeRecords,
  encodeRetryState,
  RECORD_SPAN_MS,
  recordTag,
  scripts,
  scriptError,
  PUBLISHER_BUSY,
  SOURCE_BUSY,
  type Keys,
  type LoggedAttempt,
  type LogRecord,
  type ScriptClient,
  type TopicKeys,
} from '../src/index.js';
import { waitFor } from '@postoffice/test-support';
import { codeOf, createTopicRecord, scriptKeys, useScriptFixture } from './script-fixture.js';

const LUA_DIR = fileURLToPath(new URL('../lua/', import.meta.url));

/** take-retries' reply in the order of the script's Returns. */
type TakeResult = [string, readonly scripts.TakenRetry[]];

describe('Lua scripts', () => {
  const f = useScriptFixture('t');
  let redis: ScriptClient;
  let keys: Keys;

  beforeEach(() => {
    ({ redis, keys } = f);
  });

  async function createTopic(name: string): Promise<TopicKeys> {
    const fields = { id: 1, name, origin_host: 'example.com', created_at: '2024-01-01T00:00:00.000Z' };
    expect(await codeOf(createTopicRecord(redis, keys, name, fields))).to.equal('none');
    return keys.topic(name);
  }

  interface NewMessage {
    payload: string;
    attributes?: string;
  }

  /** The stream ids written. */
  async function ingest(tk: TopicKeys, messages: NewMessage[]): Promise<string[]> {
    const args = messages.flatMap((m) => [m.payload, m.attributes ?? '']);
    const reply = await scripts.ingest(
      redis,
      { topic: tk.meta, stream: tk.stream },
      { wake: '', topic: '', messages: args },
    );
    if (reply.replayed) throw new Error('replayed');
    return reply.streamIds;
  }

  function ingestN(tk: TopicKeys, n: number, from = 0): Promise<string[]> {
    const messages = Array.from({ length: n }, (_, i) => ({ payload: String(from + i) }));
    return ingest(tk, messages);
  }

  function createPublisher(
    topic: string,
    id: string,
    options: { start?: '$' | '0'; type?: string; target?: string } = {},
  ): Promise<void> {
    const type = options.type ?? 'http';
    const target = options.target ?? `http://example.com/${id}`;
    const json = JSON.stringify({ id, topic, type, target, active: true });
    return scripts.createPublisher(redis, scriptKeys(keys, topic, id), {
      id,
      publisherJson: json,
      uniqueness: `${type} ${target}`,
      start: options.start ?? '0',
    });
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
      expect(files).to.deep.equal(SCRIPTS.map((script) => script.file).sort());
      for (const file of files) {
        const lua = readFileSync(`${LUA_DIR}${file}.lua`, 'utf8');
        const header = /^--\[\[([\s\S]*?)\]\]/.exec(lua)?.[1] ?? '';
        expect(header, file).to.match(/KEYS\[1(\]|\.\.n\])/);
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
      expect(codeOf(-6)).to.equal('lease_stale');
      expect(codeOf(-7)).to.equal('topic_has_publishers');
      expect(codeOf(-8)).to.equal('no_such_topic');
      expect(codeOf(-9)).to.equal('idempotency_key_reused');
      expect(() => checkScriptResult(-9))
        .to.throw(AppError)
        .with.property('statusCode', 422);
      expect(codeOf(-99)).to.equal('script_failed');
      expect(checkScriptResult(1)).to.equal(1);
      expect(checkScriptResult(['1-0'])).to.deep.equal(['1-0']);
      // The races a caller retries, thrown by it when it gives up.
      expect(scriptError(PUBLISHER_BUSY).code).to.equal('publisher_busy');
      expect(scriptError(SOURCE_BUSY).code).to.equal('source_busy');
    });

    it('give each code one meaning and one HTTP status', () => {
      const seen = new Map<string, number>();
      for (const code of Object.keys(SCRIPT_CODES)) {
        const err = scriptError(Number(code));
        expect(seen.get(err.code), `${code} ${err.code}`).to.be.oneOf([undefined, err.statusCode]);
        expect([...seen.keys()], `${code} ${err.code}`).not.to.include(err.code);
        seen.set(err.code, err.statusCode);
      }
    });

    it('are each called with its KEYS in the order of its header', () => {
      for (const script of SCRIPTS) {
        const lua = readFileSync(`${LUA_DIR}${script.file}.lua`, 'utf8');
        const header = /^--\[\[([\s\S]*?)\]\]/.exec(lua)?.[1] ?? '';
        const numbered = [...header.matchAll(/KEYS\[(\d+)\]/g)].map((m) => Number(m[1]));
        const most = numbered.length > 0 ? Math.max(...numbered) : 0;
        if (script.keys) expect(script.keys, script.file).to.have.length(most);
        else expect(most, script.file).to.equal(0);
      }
    });
  });

  describe('create-topic', () => {
    it('writes the topic record with a zero received counter', async () => {
      const tk = keys.topic('orders');
      expect(await codeOf(createTopicRecord(redis, keys, 'orders', { name: 'orders' }))).to.equal('none');
      expect(await redis.hgetall(tk.meta)).to.deep.equal({ json: '{"name":"orders"}', received: '0' });
    });

    it('answers -4 when the name is taken and leaves the first record as it was', async () => {
      const tk = keys.topic('orders');
      await createTopicRecord(redis, keys, 'orders', { name: 'orders', v: 1 });
      await redis.hincrby(tk.meta, 'received', 3);
      expect(await codeOf(createTopicRecord(redis, keys, 'orders', { name: 'orders', v: 2 }))).to.equal('topic_exists');
      expect(await redis.hgetall(tk.meta)).to.deep.equal({ json: '{"name":"orders","v":1}', received: '3' });
    });
  });

  describe('ingest', () => {
    it('appends each message to the stream with its payload and attributes only, and counts it as received', async () => {
      const tk = await createTopic('orders');
      const sids = await ingest(tk, [{ payload: '{"n":1}', attributes: '{"k":"v"}' }, { payload: '"two"' }]);
      expect(sids).to.have.length(2);
      const entries = await redis.xrange(tk.stream, '-', '+');
      expect(entries).to.deep.equal([
        [sids[0], ['p', '{"n":1}', 'a', '{"k":"v"}']],
        [sids[1], ['p', '"two"']],
      ]);
      // A message's id is its topic and stream id: no index entry.
      expect(await redis.exists(tk.ids)).to.equal(0);
      expect(await redis.hget(tk.meta, 'received')).to.equal('2');

      await ingest(tk, [{ payload: '3' }]);
      expect(await redis.hget(tk.meta, 'received')).to.equal('3');
    });

    it('publishes the topic on the wake-up channel once written, and only then', async () => {
      const tk = await createTopic('woken');
      const subscriber = createRedis(f.server.url, 'consumer');
      try {
        const heard: string[] = [];
        subscriber.on('message', (_channel: string, message: string) => heard.push(message));
        await subscriber.subscribe(keys.wakeChannel);
        const write = (t: TopicKeys, wake: string, topic: string, payload: string) =>
          scripts.ingest(redis, { topic: t.meta, stream: t.stream }, { wake, topic, messages: [payload, ''] });
        expect(await write(tk, keys.wakeChannel, 'woken', '1'))
          .to.have.property('streamIds')
          .with.length(1);
        const unknown = keys.topic('nowhere');
        expect(await codeOf(write(unknown, keys.wakeChannel, 'nowhere', '1'))).to.equal('topic_not_found');
        expect(await write(tk, '', 'woken', '2'))
          .to.have.property('streamIds')
          .with.length(1);
        // A marker after the writes: once it arrives, every earlier message has.
        await redis.publish(keys.wakeChannel, 'marker');
        await waitFor(() => heard.includes('marker'), 'the marker');
        expect(heard).to.deep.equal(['woken', 'marker']);
      } finally {
        await closeRedis(subscriber);
      }
    });

    it('returns the stream ids in the order of the messages, also past 1000 in one call', async () => {
      const tk = await createTopic('bulk');
      const sids = await ingestN(tk, 2500);
      expect(sids).to.have.length(2500);
      expect(await redis.xlen(tk.stream)).to.equal(2500);
      const all = (await redis.xrange(tk.stream, '-', '+')).map(([sid]) => sid);
      expect(all).to.deep.equal(sids);
      const [entry] = await redis.xrange(tk.stream, sids[1234]!, sids[1234]!);
      expect(entry?.[1]).to.deep.equal(['p', '1234']);
      expect(await redis.exists(tk.ids)).to.equal(0);
      expect(await redis.hget(tk.meta, 'received')).to.equal('2500');
    });

    it('answers -1 for an unknown topic and writes nothing', async () => {
      const tk = keys.topic('nope');
      expect(await codeOf(ingest(tk, [{ payload: '1' }]))).to.equal('topic_not_found');
      expect(await redis.exists(tk.meta, tk.stream, tk.ids)).to.equal(0);
    });
  });

  describe('create-publisher', () => {
    it('records the publisher and its uniqueness key, and creates its group from the first retained entry', async () => {
      const tk = await createTopic('orders');
      const old = await ingestN(tk, 2);
      expect(await codeOf(createPublisher('orders', '7', { start: '0', target: 'http://x/hook' }))).to.equal('none');
      expect(JSON.parse((await redis.hget(tk.publishers, '7'))!)).to.include({ id: '7', target: 'http://x/hook' });
      expect(await redis.hgetall(tk.targets)).to.deep.equal({ 'http http://x/hook': '7' });
      expect(await readAll(tk.stream, '7')).to.deep.equal(old);
    });

    it("starts a group created with '$' after the entries already in the stream", async () => {
      const tk = await createTopic('orders');
      await ingestN(tk, 2);
      expect(await codeOf(createPublisher('orders', '8', { start: '$' }))).to.equal('none');
      expect(await readAll(tk.stream, '8')).to.deep.equal([]);
      const fresh = await ingestN(tk, 1, 2);
      expect(await readAll(tk.stream, '8')).to.deep.equal(fresh);
    });

    it('creates the stream when the topic has no message yet', async () => {
      const tk = await createTopic('empty');
      expect(await codeOf(createPublisher('empty', '1', { start: '$' }))).to.equal('none');
      expect(await redis.xlen(tk.stream)).to.equal(0);
      expect((await groupInfo(tk.stream)).map((g) => g.name)).to.deep.equal(['1']);
    });

    it('answers -1 for an unknown topic and writes nothing', async () => {
      const tk = keys.topic('nope');
      expect(await codeOf(createPublisher('nope', '1'))).to.equal('topic_not_found');
      expect(await redis.exists(tk.meta, tk.publishers, tk.targets, tk.stream)).to.equal(0);
    });

    it('answers -2 when the topic has a publisher of the same type and target, and writes nothing', async () => {
      const tk = await createTopic('orders');
      await createPublisher('orders', '1', { target: 'http://x/hook' });
      expect(await codeOf(createPublisher('orders', '2', { target: 'http://x/hook' }))).to.equal('publisher_exists');
      expect(await redis.hkeys(tk.publishers)).to.deep.equal(['1']);
      expect(await redis.hgetall(tk.targets)).to.deep.equal({ 'http http://x/hook': '1' });
      expect((await groupInfo(tk.stream)).map((g) => g.name)).to.deep.equal(['1']);
    });

    it('accepts the same target with another type', async () => {
      const tk = await createTopic('orders');
      await createPublisher('orders', '1', { type: 'http', target: 'same' });
      expect(await codeOf(createPublisher('orders', '2', { type: 'pubsub', target: 'same' }))).to.equal('none');
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
    ): Promise<string> {
      return codeOf(
        scripts
          .updatePublisher(
            redis,
            { publishers: tk.publishers, targets: tk.targets },
            { id, readJson: read, newJson: next, oldUniqueness: oldKey, newUniqueness: newKey },
          )
          .then((reply) => {
            if (reply === 'changed') throw scriptError(PUBLISHER_BUSY);
          }),
      );
    }

    it('replaces the JSON and keeps the uniqueness key when type and target stay', async () => {
      const { tk, json } = await setup();
      expect(await update(tk, '1', json, '{"v":2}', 'http http://a', 'http http://a')).to.equal('none');
      expect(await redis.hget(tk.publishers, '1')).to.equal('{"v":2}');
      expect(await redis.hgetall(tk.targets)).to.deep.equal({ 'http http://a': '1' });
    });

    it('moves the uniqueness key when the target changes', async () => {
      const { tk, json } = await setup();
      expect(await update(tk, '1', json, '{"v":2}', 'http http://a', 'http http://b')).to.equal('none');
      expect(await redis.hgetall(tk.targets)).to.deep.equal({ 'http http://b': '1' });
    });

    it('answers -3 for an unknown publisher and writes nothing', async () => {
      const { tk } = await setup();
      expect(await update(tk, '9', '{}', '{"v":2}', 'http http://z', 'http http://y')).to.equal('publisher_not_found');
      expect(await redis.hkeys(tk.publishers)).to.deep.equal(['1']);
      expect(await redis.hgetall(tk.targets)).to.deep.equal({ 'http http://a': '1' });
    });

    it('answers -5 when the JSON changed since it was read, and writes nothing', async () => {
      const { tk, json } = await setup();
      await redis.hset(tk.publishers, '1', '{"changed":true}');
      expect(await update(tk, '1', json, '{"v":2}', 'http http://a', 'http http://b')).to.equal('publisher_busy');
      expect(await redis.hget(tk.publishers, '1')).to.equal('{"changed":true}');
      expect(await redis.hgetall(tk.targets)).to.deep.equal({ 'http http://a': '1' });
    });

    it('answers -2 when another publisher has the new type and target, and writes nothing', async () => {
      const { tk, json } = await setup();
      await createPublisher('orders', '2', { target: 'http://b' });
      expect(await update(tk, '1', json, '{"v":2}', 'http http://a', 'http http://b')).to.equal('publisher_exists');
      expect(await redis.hget(tk.publishers, '1')).to.equal(json);
      expect(await redis.hgetall(tk.targets)).to.deep.equal({ 'http http://a': '1', 'http http://b': '2' });
    });
  });

  describe('delete-publisher', () => {
    /** Without the optional circuit key. */
    function remove(topic: string, id: string): Promise<string> {
      return codeOf(scripts.deletePublisher(redis, { ...scriptKeys(keys, topic, id), circuit: undefined }, { id }));
    }

    it("removes the record, its uniqueness key, its group, its retries, dead letters, leases, attempt log, notes, range records and counters, and nothing of the others'", async () => {
      const tk = await createTopic('orders');
      await ingestN(tk, 3);
      await createPublisher('orders', '1', { target: 'http://a' });
      await createPublisher('orders', '2', { target: 'http://b' });
      for (const id of ['1', '2']) {
        const pk = keys.publisher('orders', id);
        await redis.zadd(pk.retries, 1, '1-1');
        await redis.hset(pk.attempts, '1-1', 2);
        await redis.zadd(pk.dead, 1, '1-2');
        await redis.hset(pk.leases, '1-1', '{}');
        await redis.zadd(pk.log, 1, 'k.t|200;0-1:1:1');
        await redis.hset(pk.notes, '1-2', '{}');
        await redis.zadd(pk.ranges, 1, '{"kind":"purge"}');
        await redis.hset(pk.counts, 'skipped', 2);
      }
      expect(await remove('orders', '1')).to.equal('none');

      const gone = keys.publisher('orders', '1');
      expect(
        await redis.exists(
          gone.retries,
          gone.attempts,
          gone.dead,
          gone.leases,
          gone.log,
          gone.notes,
          gone.ranges,
          gone.counts,
        ),
      ).to.equal(0);
      expect(await redis.hkeys(tk.publishers)).to.deep.equal(['2']);
      expect(await redis.hgetall(tk.targets)).to.deep.equal({ 'http http://b': '2' });
      expect((await groupInfo(tk.stream)).map((g) => g.name)).to.deep.equal(['2']);
      expect(await redis.xlen(tk.stream)).to.equal(3);
      const kept = keys.publisher('orders', '2');
      expect(
        await redis.exists(
          kept.retries,
          kept.attempts,
          kept.dead,
          kept.leases,
          kept.log,
          kept.notes,
          kept.ranges,
          kept.counts,
        ),
      ).to.equal(8);
    });

    it('leaves a uniqueness key that names another publisher', async () => {
      const tk = await createTopic('orders');
      await createPublisher('orders', '1', { target: 'http://a' });
      await redis.hset(tk.targets, 'http http://a', '5');
      expect(await remove('orders', '1')).to.equal('none');
      expect(await redis.hgetall(tk.targets)).to.deep.equal({ 'http http://a': '5' });
    });

    it('deletes a publisher whose stream is gone', async () => {
      const tk = await createTopic('orders');
      await createPublisher('orders', '1');
      await redis.del(tk.stream);
      expect(await remove('orders', '1')).to.equal('none');
      expect(await redis.exists(tk.publishers, tk.targets)).to.equal(0);
    });

    it('answers -3 for an unknown publisher', async () => {
      const tk = await createTopic('orders');
      await createPublisher('orders', '1');
      expect(await remove('orders', '2')).to.equal('publisher_not_found');
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
      return scripts
        .takeRetries(
          redis,
          { stream: tk.stream, retries: pk.retries, attempts: pk.attempts },
          { now, leaseEnd, max: count, force },
        )
        .then(({ next, taken }) => [next === undefined ? '' : String(next), taken]);
    }

    it('takes only the entries that are due, with their retry state and fields, and leases them', async () => {
      const { tk, retries, attempts, sids } = await setup();
      const [s0, s1, s2, s3] = sids as [string, string, string, string];
      await redis.zadd(retries, 100, s0, 200, s1, 150, s3, 5000, s2);
      const state = encodeRetryState(3, { startedAt: 90, durationMs: 12, status: 503, error: 'HTTP 503' });
      await redis.hset(attempts, s0, state, s3, '2');

      const [next, taken] = await take(tk, 250, 1000, 10);
      expect(taken).to.deep.equal([
        [s0, state, ['p', '0']],
        [s3, '2', ['p', '3']],
        [s1, '0', ['p', '1']],
      ]);
      expect(decodeRetryState(taken[0]![1])).to.deep.equal({
        count: 3,
        last: { startedAt: 90, durationMs: 12, status: 503, error: 'HTTP 503' },
      });
      // A bare count, as written before the retry state had the last attempt.
      expect(decodeRetryState(taken[1]![1])).to.deep.equal({ count: 2 });
      expect(await zsetWithScores(retries)).to.deep.equal({ [s0]: 1000, [s1]: 1000, [s3]: 1000, [s2]: 5000 });
      expect(await redis.hget(attempts, s0)).to.equal(state);
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

  describe('take-ordered', () => {
    /** take-ordered's reply in the order of the script's Returns. */
    type OrderedResult = [string, readonly scripts.TakenRetry[], string[], number];

    /** Messages of publisher 1 with the given `c` attributes (undefined: none), all read by the group. */
    async function setup(
      keysOf: (string | undefined)[],
    ): Promise<{ tk: TopicKeys; sids: string[]; pk: ReturnType<Keys['publisher']> }> {
      const tk = await createTopic('orders');
      const sids = await ingest(
        tk,
        keysOf.map((c, i) => ({
          payload: String(i),
          ...(c === undefined ? {} : { attributes: JSON.stringify({ c }) }),
        })),
      );
      return { tk, sids, pk: keys.publisher('orders', '1') };
    }

    function take(
      tk: TopicKeys,
      now: number,
      options: { max?: number; scan?: number; force?: boolean; busy?: string[]; attribute?: string } = {},
    ): Promise<OrderedResult> {
      const pk = keys.publisher('orders', '1');
      return scripts
        .takeOrdered(
          redis,
          { stream: tk.stream, retries: pk.retries, attempts: pk.attempts },
          {
            now,
            leaseEnd: now + 1000,
            attribute: options.attribute ?? 'c',
            max: options.max ?? 10,
            scan: options.scan ?? 100,
            force: options.force ?? false,
            busy: options.busy ?? [],
          },
        )
        .then((r) => [r.next === undefined ? '' : String(r.next), r.taken, r.waiting, r.truncated ? 1 : 0]);
    }

    it("takes each key's earliest entry once due, never a later one of the same key, and leases it", async () => {
      const { tk, sids, pk } = await setup(['a', 'b', 'a', undefined, 'b']);
      const [a1, b1, a2, n1, b2] = sids as [string, string, string, string, string];
      // a2 is due before a1, but a1 comes first in the stream: a2 waits behind it.
      await redis.zadd(pk.retries, 50, a1, 10, a2, 20, b2, 500, b1, 30, n1);
      await redis.hset(pk.attempts, a1, '2');
      const [next, taken, waiting, truncated] = await take(tk, 100);
      expect(taken.map(([sid, state]) => [sid, state])).to.deep.equal([
        [n1, '0'],
        [a1, '2'],
      ]);
      expect(taken[1]![2]).to.deep.equal(['p', '0', 'a', '{"c":"a"}']);
      expect([...waiting].sort()).to.deep.equal(['', 'a', 'b']);
      expect(next).to.equal('500');
      expect(truncated).to.equal(0);
      expect(await zsetWithScores(pk.retries)).to.deep.equal({ [a1]: 1100, [n1]: 1100, [a2]: 10, [b1]: 500, [b2]: 20 });
    });

    it('leaves the heads of busy keys, takes at most the given number, and takes heads not due when forced', async () => {
      const { tk, sids, pk } = await setup(['a', 'b', 'c']);
      const [a, b, c] = sids as [string, string, string];
      await redis.zadd(pk.retries, 10, a, 20, b, 5000, c);
      const [next, taken] = await take(tk, 100, { busy: ['a'], max: 1 });
      expect(taken.map(([sid]) => sid)).to.deep.equal([b]);
      expect(next).to.equal('5000');
      const [, forced] = await take(tk, 100, { busy: ['a', 'b'], force: true });
      expect(forced.map(([sid]) => sid)).to.deep.equal([c]);
    });

    it('with no attribute, keeps the whole publisher one key', async () => {
      const { tk, sids, pk } = await setup(['a', 'b']);
      await redis.zadd(pk.retries, 10, sids[1]!, 20, sids[0]!);
      const [, taken, waiting] = await take(tk, 100, { attribute: '' });
      expect(taken.map(([sid]) => sid)).to.deep.equal([sids[0]]);
      expect(waiting).to.deep.equal(['']);
    });

    it('drops entries whose message was trimmed, and says when the retry set holds more than it looked at', async () => {
      const { tk, sids, pk } = await setup(['a', 'a', 'b']);
      await redis.zadd(pk.retries, 10, sids[0]!, 20, sids[1]!, 30, sids[2]!);
      await redis.xdel(tk.stream, sids[0]!);
      const [, taken, , truncated] = await take(tk, 100, { scan: 2 });
      expect(taken.map(([sid]) => sid)).to.deep.equal([sids[1]]);
      expect(truncated).to.equal(1);
      expect(await redis.zscore(pk.retries, sids[0]!)).to.equal(null);
      expect(await take(tk, 100, { scan: 5 })).to.deep.include.members([0]);
    });

    it('answers an empty next time and no key when the retry set is empty', async () => {
      const { tk } = await setup(['a']);
      expect(await take(tk, 100)).to.deep.equal(['', [], [], 0]);
    });
  });

  describe('settle', () => {
    const NOW = 1_700_000_100_000;

    interface Batch {
      records?: LogRecord[];
      /** A record the first of `records` replaces. */
      replaced?: string;
      acked?: string[];
      cleared?: string[];
      retries?: [string, number, string][];
      dead?: [string, number, string][];
    }

    /** Without the optional counters. */
    function settle(tk: TopicKeys, group: string, b: Batch): Promise<number> {
      return scripts.settle(redis, { ...scriptKeys(keys, 'orders', group), counts: undefined }, settleArgs(group, b));
    }

    function settleArgs(group: string, b: Batch & { skipped?: number }): scripts.SettleArgs {
      return {
        group,
        replaces: b.replaced ?? '',
        records: b.records ?? [],
        acked: b.acked ?? [],
        cleared: b.cleared ?? [],
        retries: (b.retries ?? []).flat(),
        dead: (b.dead ?? []).flat(),
        ...(b.skipped === undefined ? {} : { skipped: b.skipped }),
      };
    }

    const delivered = (sid: string, durationMs = 5): LoggedAttempt => ({
      streamId: sid,
      startedAt: NOW - 20,
      durationMs,
      status: 200,
      outcome: 'delivered',
    });

    async function setup(): Promise<{ tk: TopicKeys; sids: string[]; pk: ReturnType<Keys['publisher']> }> {
      const tk = await createTopic('orders');
      const sids = await ingestN(tk, 3);
      await createPublisher('orders', '1');
      expect(await readAll(tk.stream, '1')).to.deep.equal(sids);
      return { tk, sids, pk: keys.publisher('orders', '1') };
    }

    it('acknowledges first-attempt deliveries with one attempt record for the batch, and writes nothing per message', async () => {
      const { tk, sids, pk } = await setup();
      const attempts = sids.map((sid, i) => delivered(sid, i + 1));
      const records = encodeRecords(attempts, NOW, recordTag);
      expect(records).to.have.length(1);

      expect(await settle(tk, '1', { records, acked: sids })).to.equal(3);
      expect(await pendingOf(tk.stream, '1')).to.deep.equal([]);
      expect(await zsetWithScores(pk.log)).to.deep.equal({ [records[0]!.member]: Number(sids[0]!.split('-')[0]) });
      expect(await redis.exists(pk.retries, pk.attempts, pk.dead, pk.notes, tk.ids)).to.equal(0);
      for (const [i, sid] of sids.entries()) {
        expect(await attemptsOf('orders', ['1'], sid), sid).to.deep.equal([[attempts[i]]]);
      }
    });

    it('replaces a record with one holding its attempts and those of the batch, when asked to', async () => {
      const { tk, sids, pk } = await setup();
      const first = encodeRecords([delivered(sids[0]!, 1)], NOW, recordTag);
      await settle(tk, '1', { records: first, acked: [sids[0]!] });
      const merged = encodeRecords([delivered(sids[0]!, 1), delivered(sids[1]!, 2)], NOW + 5, recordTag);
      expect(await settle(tk, '1', { records: merged, replaced: first[0]!.member, acked: [sids[1]!] })).to.equal(1);
      expect(Object.keys(await zsetWithScores(pk.log))).to.deep.equal([merged[0]!.member]);
      expect(await attemptsOf('orders', ['1'], sids[0]!)).to.have.nested.property('[0].length', 1);
      expect(await attemptsOf('orders', ['1'], sids[1]!)).to.have.nested.property('[0].length', 1);
    });

    it('schedules a retry: the entry stays pending, due at its time with its retry state, and the attempt is logged', async () => {
      const { tk, sids, pk } = await setup();
      const s1 = sids[1]!;
      const attempt: LoggedAttempt = {
        streamId: s1,
        startedAt: NOW - 40,
        durationMs: 30,
        status: 503,
        outcome: 'retry',
        error: 'HTTP 503',
      };
      const state = encodeRetryState(1, attempt);

      const acked = await settle(tk, '1', {
        records: encodeRecords([attempt], NOW, recordTag),
        retries: [[s1, 90_000, state]],
      });
      expect(acked).to.equal(0);
      expect((await pendingOf(tk.stream, '1')).map((p) => p.sid)).to.deep.equal(sids);
      expect(await zsetWithScores(pk.retries)).to.deep.equal({ [s1]: 90_000 });
      expect(await redis.hgetall(pk.attempts)).to.deep.equal({ [s1]: state });
      expect(decodeRetryState(await redis.hget(pk.attempts, s1))).to.deep.equal({
        count: 1,
        last: { startedAt: NOW - 40, durationMs: 30, status: 503, error: 'HTTP 503' },
      });
      expect(await redis.exists(pk.dead, pk.notes)).to.equal(0);
      expect(await attemptsOf('orders', ['1'], s1)).to.deep.equal([[attempt]]);
    });

    it('takes a retried message that is delivered out of the retry set and forgets its retry state', async () => {
      const { tk, sids, pk } = await setup();
      const s0 = sids[0]!;
      await redis.zadd(pk.retries, 10, s0);
      await redis.hset(pk.attempts, s0, encodeRetryState(2, { startedAt: 1, durationMs: 1, status: 500 }));

      const records = encodeRecords([delivered(s0)], NOW, recordTag);
      expect(await settle(tk, '1', { records, acked: [s0], cleared: [s0] })).to.equal(1);
      expect((await pendingOf(tk.stream, '1')).map((p) => p.sid)).to.deep.equal(sids.slice(1));
      expect(await redis.exists(pk.retries, pk.attempts, pk.dead, pk.notes)).to.equal(0);
    });

    it('makes an entry a dead letter: acknowledged, out of the retry set, in the dead set with its time and a note', async () => {
      const { tk, sids, pk } = await setup();
      const s2 = sids[2]!;
      await redis.zadd(pk.retries, 10, s2);
      await redis.hset(pk.attempts, s2, '4');
      const attempt: LoggedAttempt = {
        streamId: s2,
        startedAt: NOW - 10,
        durationMs: 3,
        status: 410,
        outcome: 'dead',
        error: 'HTTP 410',
      };
      const note = JSON.stringify({ dead_reason: 'max attempts (5)', attempt_count: 5 });

      const acked = await settle(tk, '1', {
        records: encodeRecords([attempt], NOW, recordTag),
        acked: [s2],
        cleared: [s2],
        dead: [[s2, 1234, note]],
      });
      expect(acked).to.equal(1);
      expect((await pendingOf(tk.stream, '1')).map((p) => p.sid)).not.to.include(s2);
      expect(await redis.exists(pk.retries, pk.attempts)).to.equal(0);
      expect(await zsetWithScores(pk.dead)).to.deep.equal({ [s2]: 1234 });
      expect(await redis.hgetall(pk.notes)).to.deep.equal({ [s2]: note });
      expect(await attemptsOf('orders', ['1'], s2)).to.deep.equal([[attempt]]);
    });

    it("settles a batch of deliveries, retries and dead letters in one call, beside another publisher's records", async () => {
      const { tk, sids, pk } = await setup();
      const [s0, s1, s2] = sids as [string, string, string];
      await createPublisher('orders', '2', { target: 'http://example.com/other' });
      await readAll(tk.stream, '2');
      const other = keys.publisher('orders', '2');
      await redis.zadd(other.log, 1, 'k.x|200;0-0:1:1');
      await redis.zadd(other.retries, 5, s1);

      const attempts: LoggedAttempt[] = [
        delivered(s0),
        { streamId: s1, startedAt: NOW - 9, durationMs: 2, status: 500, outcome: 'retry', error: 'HTTP 500' },
        { streamId: s2, startedAt: NOW - 9, durationMs: 2, status: 400, outcome: 'dead', error: 'HTTP 400' },
      ];
      const n = await settle(tk, '1', {
        records: encodeRecords(attempts, NOW, recordTag),
        acked: [s0, s2],
        retries: [[s1, 777, encodeRetryState(1, attempts[1]!)]],
        dead: [[s2, 888, '{"dead_reason":"HTTP 400"}']],
      });
      expect(n).to.equal(2);
      expect((await pendingOf(tk.stream, '1')).map((p) => p.sid)).to.deep.equal([s1]);
      expect(await zsetWithScores(pk.retries)).to.deep.equal({ [s1]: 777 });
      expect(await zsetWithScores(pk.dead)).to.deep.equal({ [s2]: 888 });
      expect(await redis.zcard(pk.log)).to.equal(1);
      for (const a of attempts) expect(await attemptsOf('orders', ['1'], a.streamId)).to.deep.equal([[a]]);
      // Publisher 2 is untouched.
      expect(await pendingOf(tk.stream, '2')).to.have.length(3);
      expect(await zsetWithScores(other.retries)).to.deep.equal({ [s1]: 5 });
      expect(await redis.zrange(other.log, 0, -1)).to.deep.equal(['k.x|200;0-0:1:1']);
    });

    it('writes the records of a batch that spans more than RECORD_SPAN_MS, and each message is found in its own', async () => {
      const tk = await createTopic('orders');
      const T = 1_700_000_000_000;
      const sids = [`${T}-0`, `${T + 1500}-0`, `${T + RECORD_SPAN_MS + 1}-0`, `${T + 3 * RECORD_SPAN_MS}-0`];
      for (const sid of sids) await redis.xadd(tk.stream, sid, 'p', '1');
      await createPublisher('orders', '1');
      await readAll(tk.stream, '1');
      const attempts = sids.map((sid) => delivered(sid));
      const records = encodeRecords(attempts, NOW, recordTag);

      expect(await settle(tk, '1', { records, acked: sids })).to.equal(4);
      const log = await zsetWithScores(keys.publisher('orders', '1').log);
      expect(Object.values(log).sort()).to.deep.equal([T, T + RECORD_SPAN_MS + 1, T + 3 * RECORD_SPAN_MS]);
      for (const [i, sid] of sids.entries()) {
        expect(await attemptsOf('orders', ['1'], sid), sid).to.deep.equal([[attempts[i]]]);
      }
    });

    it('writes no retry and no dead letter for an entry no longer pending (purged or deleted while in flight), but logs its attempt', async () => {
      const { tk, sids, pk } = await setup();
      const [s0, s1, s2] = sids as [string, string, string];
      // s0 and s1 were acknowledged by an operator's action while their attempts were in flight.
      await redis.xack(tk.stream, '1', s0, s1);
      const attempts: LoggedAttempt[] = [
        { streamId: s0, startedAt: NOW - 9, durationMs: 2, status: 500, outcome: 'retry', error: 'HTTP 500' },
        { streamId: s1, startedAt: NOW - 9, durationMs: 2, status: 400, outcome: 'dead', error: 'HTTP 400' },
        { streamId: s2, startedAt: NOW - 9, durationMs: 2, status: 500, outcome: 'retry', error: 'HTTP 500' },
      ];
      const n = await settle(tk, '1', {
        records: encodeRecords(attempts, NOW, recordTag),
        acked: [s1],
        retries: [
          [s0, 777, encodeRetryState(1, attempts[0]!)],
          [s2, 778, encodeRetryState(1, attempts[2]!)],
        ],
        dead: [[s1, 888, '{"dead_reason":"HTTP 400"}']],
      });
      expect(n).to.equal(0);
      expect(await zsetWithScores(pk.retries)).to.deep.equal({ [s2]: 778 });
      expect(await redis.hkeys(pk.attempts)).to.deep.equal([s2]);
      expect(await redis.exists(pk.dead, pk.notes)).to.equal(0);
      for (const a of attempts) expect(await attemptsOf('orders', ['1'], a.streamId)).to.deep.equal([[a]]);
    });

    it('adds the skipped messages of the batch to the counters, when given the counters key', async () => {
      const { sids, pk } = await setup();
      const skipped: LoggedAttempt[] = sids.map((sid) => ({
        streamId: sid,
        startedAt: NOW,
        durationMs: 0,
        outcome: 'skipped',
      }));
      const args = settleArgs('1', { records: encodeRecords(skipped, NOW, recordTag), acked: sids, skipped: 3 });
      const run = (counts: string | undefined) =>
        scripts.settle(redis, { ...scriptKeys(keys, 'orders', '1'), counts }, args);
      expect(await run(pk.counts)).to.equal(3);
      expect(await redis.hgetall(pk.counts)).to.deep.equal({ skipped: '3' });
      // Without the key (callers before the counters), nothing is counted.
      expect(await run(undefined)).to.equal(0);
      expect(await redis.hgetall(pk.counts)).to.deep.equal({ skipped: '3' });
    });

    it('counts only the entries the group had pending, and with nothing to settle writes nothing', async () => {
      const { tk, sids, pk } = await setup();
      await redis.xack(tk.stream, '1', sids[0]!);
      expect(await settle(tk, '1', { acked: sids })).to.equal(2);
      expect(await settle(tk, '1', {})).to.equal(0);
      expect(await redis.exists(pk.log, pk.retries, pk.attempts, pk.dead, pk.notes)).to.equal(0);
    });
  });

  /** A message's attempts in the logs of `groups`, through attempts.lua, decoded. */
  async function attemptsOf(topic: string, groups: string[], sid: string): Promise<LoggedAttempt[][]> {
    const logs = groups.map((g) => keys.publisher(topic, g).log);
    const [ms, seq] = sid.split('-') as [string, string];
    const reply = await scripts.attempts(redis, { logs }, { receivedAt: ms, sequence: seq, span: RECORD_SPAN_MS });
    return reply.map((flat) => {
      const out: LoggedAttempt[] = [];
      for (let k = 0; k + 2 < flat.length; k += 3) {
        const a = decodeItem(Number(flat[k]), flat[k + 1]!, flat[k + 2]!);
        expect(a, flat[k + 2]).not.to.equal(undefined);
        out.push(a!);
      }
      return out;
    });
  }

  describe('attempts', () => {
    const T = 1_700_000_000_000;
    const SETTLED = T + 10_000;
    const attempt = (
      sid: string,
      outcome: LoggedAttempt['outcome'] = 'delivered',
      startedAt = SETTLED - 5,
    ): LoggedAttempt => ({
      streamId: sid,
      startedAt,
      durationMs: 2,
      status: outcome === 'delivered' ? 200 : 503,
      outcome,
      ...(outcome === 'delivered' ? {} : { error: 'HTTP 503' }),
    });

    async function log(group: string, attempts: LoggedAttempt[], settledAt = SETTLED): Promise<void> {
      const records = encodeRecords(attempts, settledAt, recordTag);
      await redis.zadd(keys.publisher('orders', group).log, ...records.flatMap((r) => [r.score, r.member]));
    }

    it("finds a message's attempts in each publisher's log, one list per log, with each record's score and header", async () => {
      const x = `${T + 10}-0`;
      const first = attempt(x, 'retry', SETTLED - 900);
      const second = attempt(x, 'delivered', SETTLED + 100);
      await log('1', [attempt(`${T}-0`), attempt(x), attempt(`${T + 20}-0`)]);
      await log('2', [first], SETTLED - 800);
      await log('2', [second], SETTLED + 200);
      expect(await attemptsOf('orders', ['1', '2', '3'], x)).to.deep.equal([[attempt(x)], [first, second], []]);

      const pk = keys.publisher('orders', '1');
      const [flat] = await scripts.attempts(
        redis,
        { logs: [pk.log] },
        { receivedAt: String(T + 10), sequence: '0', span: RECORD_SPAN_MS },
      );
      const [member] = await redis.zrange(pk.log, 0, -1);
      expect(flat).to.deep.equal([String(T), member!.split(';')[0], '10-0:3:2']);
    });

    it('finds a message in a record whose oldest message is up to RECORD_SPAN_MS older, and not in records scored later or further back', async () => {
      const x = `${T + RECORD_SPAN_MS}-1`;
      // Base T: the message is RECORD_SPAN_MS younger than the record's oldest, at the edge.
      await log('1', [attempt(`${T}-0`), attempt(x)]);
      // Base T - 1: the same item text ("2000-1") names another message there.
      await log('1', [attempt(`${T - 1}-0`), attempt(`${T + RECORD_SPAN_MS - 1}-1`)]);
      // Base T + SPAN + 1: younger than the message.
      await log('1', [attempt(`${T + RECORD_SPAN_MS + 1}-1`)]);
      // Base the message's own millisecond: siblings whose sequence starts with its own.
      const retry = attempt(x, 'retry', SETTLED + 50);
      await log('1', [attempt(`${T + RECORD_SPAN_MS}-10`), attempt(`${T + RECORD_SPAN_MS}-11`), retry], SETTLED + 100);

      expect(await attemptsOf('orders', ['1'], x)).to.deep.equal([[attempt(x), retry]]);
      expect(await attemptsOf('orders', ['1'], `${T + RECORD_SPAN_MS - 1}-1`)).to.deep.equal([
        [attempt(`${T + RECORD_SPAN_MS - 1}-1`)],
      ]);
      expect(await attemptsOf('orders', ['1'], `${T + RECORD_SPAN_MS}-10`)).to.deep.equal([
        [attempt(`${T + RECORD_SPAN_MS}-10`)],
      ]);
    });

    it('finds every item of a message that a record holds more than once', async () => {
      const x = `${T + 5}-0`;
      const a1 = attempt(x, 'retry', SETTLED - 30);
      const a2 = attempt(x, 'delivered', SETTLED - 10);
      await log('1', [attempt(`${T}-0`), a1, a2]);
      expect(await attemptsOf('orders', ['1'], x)).to.deep.equal([[a1, a2]]);
    });

    it('finds nothing for a message that has no attempt, or in a log that does not exist', async () => {
      await log('1', [attempt(`${T}-0`)]);
      expect(await attemptsOf('orders', ['1', '9'], `${T}-1`)).to.deep.equal([[], []]);
      expect(await attemptsOf('orders', ['1'], `${T - 1}-0`)).to.deep.equal([[]]);
    });
  });

  describe('reclaim', () => {
    const NOW = 1_000_000;

    /** The reply in the order of the script's Returns. */
    async function reclaim(
      tk: TopicKeys,
      gone: string,
      max: number,
      group = '1',
      retries = keys.publisher('orders', '1').retries,
    ): Promise<[number, number]> {
      const r = await scripts.reclaim(
        redis,
        { stream: tk.stream, retries },
        { group, from: gone, to: 'reclaimed', now: NOW, max },
      );
      return [r.scheduled, r.done ? 1 : 0];
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
      expect(await reclaim(tk, 'x', 10, 'no-group')).to.deep.equal([0, 1]);
      const missing = keys.topic('missing');
      const missingRetries = keys.publisher('missing', '1').retries;
      expect(await reclaim(missing, 'x', 10, '1', missingRetries)).to.deep.equal([0, 1]);
      expect(await redis.exists(missing.stream)).to.equal(0);
    });
  });

  describe('trim', () => {
    /** A stream with entries at 1000-0, 2000-0, ... carrying ids given up front (m-1000, m-2000, ...), and their index. */
    async function setup(times: number[]): Promise<TopicKeys> {
      const tk = await createTopic('orders');
      for (const t of times) {
        await redis.xadd(tk.stream, `${t}-0`, 'id', `m-${t}`, 'p', '1');
        await redis.hset(tk.ids, `m-${t}`, `${t}-0`);
      }
      return tk;
    }

    /** The reply in the order of the script's Returns. */
    async function trim(tk: TopicKeys, cutoff: number, max = 1000): Promise<[number, number]> {
      const r = await scripts.trim(redis, { stream: tk.stream, ids: tk.ids }, { cutoff, max });
      return [r.removed, r.more ? 1 : 0];
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

    it('trims entries without an id field (ids that name their entry) beside ones with an index entry', async () => {
      const tk = await createTopic('orders');
      await redis.xadd(tk.stream, '1000-0', 'p', '1');
      await redis.xadd(tk.stream, '2000-0', 'id', 'orders.s-given', 'p', '2');
      await redis.hset(tk.ids, 'orders.s-given', '2000-0');
      for (const t of [3000, 4000]) await redis.xadd(tk.stream, `${t}-0`, 'p', '1', 'a', '{"k":"v"}');
      expect(await trim(tk, 1500)).to.deep.equal([1, 0]);
      expect(await redis.hlen(tk.ids)).to.equal(1);
      expect(await trim(tk, 3500)).to.deep.equal([2, 0]);
      expect(await remaining(tk)).to.deep.equal(['4000-0']);
      expect(await redis.exists(tk.ids)).to.equal(0);
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
    /** The reply as the script gives it: the stream ids, or '=' and what the key holds. */
    async function once(tk: TopicKeys, key: string, payloads: string[], fingerprint: string, ttl = 60) {
      const reply = await scripts.ingest(
        redis,
        { topic: tk.meta, stream: tk.stream, series: `${tk.meta}:series`, idempotency: key },
        {
          wake: '',
          topic: '',
          messages: payloads.flatMap((p) => [p, '']),
          minute: 0,
          seriesTtl: 60,
          fingerprint,
          idempotencyTtl: ttl,
        },
      );
      return reply.replayed ? ['=', reply.kept] : reply.streamIds;
    }

    it("keeps the request's fingerprint and stream ids under the key, with its time to live", async () => {
      const tk = await createTopic('idem');
      const key = keys.idempotency('idem', 'k1');
      const sids = await once(tk, key, ['1', '2'], 'fp-1');
      expect(sids).to.have.length(2);
      expect(await redis.get(key)).to.equal(`fp-1 ${sids.join(',')}`);
      expect(await redis.ttl(key)).to.be.within(1, 60);
      expect(await redis.xlen(tk.stream)).to.equal(2);
      expect(await redis.exists(tk.ids)).to.equal(0);
    });

    it('answers a repeat of the same request with the first stream ids and writes nothing', async () => {
      const tk = await createTopic('idem');
      const key = keys.idempotency('idem', 'k1');
      const sids = await once(tk, key, ['1', '2'], 'fp-1');
      expect(await once(tk, key, ['1', '2'], 'fp-1')).to.deep.equal(['=', sids.join(',')]);
      expect(await redis.xlen(tk.stream)).to.equal(2);
      expect(await redis.hget(tk.meta, 'received')).to.equal('2');
      expect(await redis.get(key)).to.equal(`fp-1 ${sids.join(',')}`);
    });

    it('answers -9 (idempotency_key_reused) for another request under the same key, and writes nothing', async () => {
      const tk = await createTopic('idem');
      const key = keys.idempotency('idem', 'k1');
      const sids = await once(tk, key, ['1'], 'fp-1');
      expect(await codeOf(once(tk, key, ['other'], 'fp-2'))).to.equal('idempotency_key_reused');
      expect(await redis.xlen(tk.stream)).to.equal(1);
      expect(await redis.hget(tk.meta, 'received')).to.equal('1');
      expect(await redis.get(key)).to.equal(`fp-1 ${sids[0]}`);
    });

    it('answers -9 for a key that holds no fingerprint (written by hand)', async () => {
      const tk = await createTopic('idem');
      const key = keys.idempotency('idem', 'k1');
      await redis.set(key, 'fp-1');
      expect(await codeOf(once(tk, key, ['1'], 'fp-1'))).to.equal('idempotency_key_reused');
      expect(await redis.exists(tk.stream)).to.equal(0);
    });

    it('gives back, as it is, an answer kept by the version before fingerprints, and writes nothing', async () => {
      const tk = await createTopic('idem-old');
      const key = keys.idempotency('idem-old', 'k1');
      const old = JSON.stringify({ kind: 'single', ids: ['00000000-0000-4000-8000-000000000000'] });
      await redis.set(key, old);
      expect(await once(tk, key, ['1'], 'fp-1')).to.deep.equal(['=', old]);
      expect(await redis.exists(tk.stream)).to.equal(0);
    });

    it('answers -1 for an unknown topic and keeps no key', async () => {
      const tk = keys.topic('nope');
      const key = keys.idempotency('nope', 'k1');
      expect(await codeOf(once(tk, key, ['1'], 'fp-1'))).to.equal('topic_not_found');
      expect(await redis.exists(key, tk.stream)).to.equal(0);
    });
  });

  describe('schedule and release-scheduled', () => {
    const data = (p: string) => JSON.stringify({ p, a: '', at: '', created_at: '' });
    const schedule = (topic: string, id: string, dueAt: number, messageJson: string) =>
      scripts.schedule(redis, scriptKeys(keys, topic), { id, dueAt, messageJson });

    it('keeps messages aside, then moves the due ones into the stream with their ids', async () => {
      const tk = await createTopic('later');
      expect(await codeOf(schedule('later', 'a', 100, data('"a"')))).to.equal('none');
      const withAttrs = JSON.stringify({ p: '"b"', a: '{"k":"v"}', at: '', created_at: '' });
      expect(await codeOf(schedule('later', 'b', 200, withAttrs))).to.equal('none');
      expect(await codeOf(schedule('later', 'c', 900, data('"c"')))).to.equal('none');
      const release = (now: number, max: number) =>
        scripts.releaseScheduled(redis, scriptKeys(keys, 'later'), { now, max });
      expect(await release(50, 10)).to.deep.equal({ moved: 0, next: 100 });
      expect(await release(500, 1)).to.deep.equal({ moved: 1, next: 200 });
      expect(await release(500, 10)).to.deep.equal({ moved: 1, next: 900 });
      const entries = await redis.xrange(tk.stream, '-', '+');
      expect(entries.map(([, f]) => f)).to.deep.equal([
        ['id', 'a', 'p', '"a"'],
        ['id', 'b', 'p', '"b"', 'a', '{"k":"v"}'],
      ]);
      expect(await redis.hget(tk.ids, 'b')).to.equal(entries[1]![0]);
      expect(await redis.hget(tk.meta, 'received')).to.equal('2');
      expect(await redis.hkeys(tk.scheduledData)).to.deep.equal(['c']);
      expect(await release(1000, 10)).to.deep.equal({ moved: 1, next: undefined });
    });

    it('answers -1 for an unknown topic and keeps nothing', async () => {
      const tk = keys.topic('nope');
      expect(await codeOf(schedule('nope', 'a', 1, data('1')))).to.equal('topic_not_found');
      expect(await redis.exists(tk.scheduled, tk.scheduledData)).to.equal(0);
    });
  });

  describe('failing', () => {
    const AT = '2024-05-01T12:00:00.000Z';
    /** The reply in the order of the script's Returns. */
    type FailingReply = [number, readonly scripts.FailingActedOn[], readonly string[]];

    /** The script's ARGV in order, without the optional counters. */
    async function failing(
      topic: string,
      action: scripts.FailingArgs['action'],
      group: string,
      score: number,
      selection: 'ids' | 'all',
      max: number,
      now: number,
      note: string,
      at: string,
      ...ids: string[]
    ): Promise<FailingReply> {
      const r = await scripts.failing(
        redis,
        { ...scriptKeys(keys, topic), counts: undefined },
        { action, group, score, ids: selection === 'ids' ? ids : undefined, max, now, note, at },
      );
      return [r.more ? 1 : 0, r.done, r.notFound];
    }

    /** Four messages of publisher 1: sids[0] and [1] retrying (due 5000, 6000), [2] and [3] dead (since 100, 200). */
    async function setup(topic: string): Promise<{ sids: string[]; pk: ReturnType<Keys['publisher']> }> {
      const tk = await createTopic(topic);
      await createPublisher(topic, '1');
      const sids = await ingestN(tk, 4);
      await readAll(tk.stream, '1');
      const pk = keys.publisher(topic, '1');
      await redis.zadd(pk.retries, 5000, sids[0]!, 6000, sids[1]!);
      await redis.hset(pk.attempts, sids[0]!, '1|1000|5|503|', sids[1]!, '2');
      await redis.xack(tk.stream, '1', sids[2]!, sids[3]!);
      await redis.zadd(pk.dead, 100, sids[2]!, 200, sids[3]!);
      await redis.hset(pk.notes, sids[2]!, JSON.stringify({ dead_reason: 'HTTP 410', attempt_count: 3 }));
      return { sids, pk };
    }

    async function note(pk: ReturnType<Keys['publisher']>, sid: string): Promise<Record<string, unknown>> {
      return JSON.parse((await redis.hget(pk.notes, sid))!) as Record<string, unknown>;
    }

    it('retry with stream ids moves retrying and dead entries to the given time, notes the action and reports the rest', async () => {
      const { sids, pk } = await setup('f1');
      const [s0, s1, s2, s3] = sids as [string, string, string, string];
      const [more, done, missing] = await failing(
        'f1',
        'retry',
        '1',
        10,
        'ids',
        500,
        10,
        'retry_now',
        AT,
        s0,
        s2,
        '1-1',
      );
      expect(more).to.equal(0);
      expect(done).to.deep.equal([
        [s0, 'retrying', ''],
        [s2, 'dead', ''],
      ]);
      expect(missing).to.deep.equal(['1-1']);
      expect(await zsetWithScores(pk.retries)).to.deep.equal({ [s0]: 10, [s2]: 10, [s1]: 6000 });
      expect(await zsetWithScores(pk.dead)).to.deep.equal({ [s3]: 200 });
      // The retry state stays: the next attempt counts on from it.
      expect(await redis.hget(pk.attempts, s0)).to.equal('1|1000|5|503|');
      expect(await note(pk, s0)).to.deep.equal({ last_action: { action: 'retry_now', at: AT } });
      // A dead letter given another go keeps what its note said, but no longer a dead reason.
      expect(await note(pk, s2)).to.deep.equal({ attempt_count: 3, last_action: { action: 'retry_now', at: AT } });
      expect(await redis.hexists(pk.notes, s1)).to.equal(0);
      expect(await redis.hexists(pk.notes, '1-1')).to.equal(0);
    });

    it('retry all moves retries due later than now and every dead letter, in batches', async () => {
      const { sids, pk } = await setup('f2');
      const [, s1, s2, s3] = sids as [string, string, string, string];
      const first = await failing('f2', 'retry', '1', 5500, 'all', 2, 5500, 'rescheduled', AT);
      expect(first[0]).to.equal(1);
      expect(first[1]).to.deep.equal([
        [s1, 'retrying', ''],
        [s2, 'dead', ''],
      ]);
      const second = await failing('f2', 'retry', '1', 5500, 'all', 2, 5500, 'rescheduled', AT);
      expect(second[1]).to.deep.equal([[s3, 'dead', '']]);
      expect(second[0]).to.equal(0);
      expect(await redis.zcard(pk.dead)).to.equal(0);
      expect(await redis.zcount(pk.retries, '-inf', 5500)).to.equal(4);
      expect((await note(pk, s3)).last_action).to.deep.equal({ action: 'rescheduled', at: AT });
    });

    it('recover moves the dead letters that died at or after the time into the retry set, due now', async () => {
      const { sids, pk } = await setup('f3');
      const [, , s2, s3] = sids as [string, string, string, string];
      const [more, done] = await failing('f3', 'recover', '1', 150, 'all', 500, 7000, 'recovered', AT);
      expect(more).to.equal(0);
      expect(done).to.deep.equal([[s3, 'dead', '']]);
      expect(await zsetWithScores(pk.dead)).to.deep.equal({ [s2]: 100 });
      expect(await redis.zscore(pk.retries, s3)).to.equal('7000');
      expect(await note(pk, s3)).to.deep.equal({ last_action: { action: 'recovered', at: AT } });
      expect((await note(pk, s2)).dead_reason).to.equal('HTTP 410');
    });

    it('recover says when there are more dead letters than its budget', async () => {
      const { pk } = await setup('f3b');
      const [more, done] = await failing('f3b', 'recover', '1', 0, 'all', 1, 7000, 'recovered', AT);
      expect(more).to.equal(1);
      expect(done).to.have.length(1);
      expect(await redis.zcard(pk.dead)).to.equal(1);
    });

    it('delete acknowledges and forgets the entries and notes them deleted; a trimmed entry is dropped and reported missing', async () => {
      const { sids, pk } = await setup('f4');
      const tk = keys.topic('f4');
      const [s0, s1, s2] = sids as [string, string, string];
      await redis.hset(pk.notes, s1, '{"last_action":{"action":"rescheduled","at":"x"}}');
      await redis.xdel(tk.stream, s1);
      const [, done, missing] = await failing('f4', 'delete', '1', 0, 'ids', 500, 0, 'deleted', AT, s0, s1, s2);
      expect(done).to.deep.equal([
        [s0, 'retrying', ''],
        [s2, 'dead', ''],
      ]);
      expect(missing).to.deep.equal([s1]);
      expect(await redis.exists(pk.retries, pk.attempts)).to.equal(0);
      expect(await zsetWithScores(pk.dead)).to.deep.equal({ [sids[3]!]: 200 });
      expect(await pendingOf(tk.stream, '1')).to.deep.equal([]);
      expect(await note(pk, s0)).to.deep.equal({ last_action: { action: 'deleted', at: AT }, deleted: true });
      expect(await note(pk, s2)).to.deep.equal({
        dead_reason: 'HTTP 410',
        attempt_count: 3,
        last_action: { action: 'deleted', at: AT },
        deleted: true,
      });
      expect(await redis.hexists(pk.notes, s1)).to.equal(0);
    });

    it('delete counts the deleted messages when given the counters key', async () => {
      const { sids, pk } = await setup('f4b');
      await scripts.failing(redis, scriptKeys(keys, 'f4b'), {
        action: 'delete',
        group: '1',
        score: 0,
        ids: [sids[0]!, sids[2]!],
        max: 500,
        now: 0,
        note: 'deleted',
        at: AT,
      });
      expect(await redis.hget(pk.counts, 'deleted')).to.equal('2');
    });

    it('delete all takes the retrying entries first, then the dead letters', async () => {
      const { sids, pk } = await setup('f5');
      const [, done] = await failing('f5', 'delete', '1', 0, 'all', 3, 0, 'deleted', AT);
      expect(done.map(([sid, state]) => [sid, state])).to.deep.equal([
        [sids[0], 'retrying'],
        [sids[1], 'retrying'],
        [sids[2], 'dead'],
      ]);
      expect(await zsetWithScores(pk.dead)).to.deep.equal({ [sids[3]!]: 200 });
      expect(await redis.hlen(pk.notes)).to.equal(3);
    });

    it("answers the id an entry carries (a scheduled or replacement message's) beside its stream id", async () => {
      const tk = await createTopic('f6');
      await createPublisher('f6', '1');
      const sid = await redis.xadd(tk.stream, '*', 'id', 'f6.s-given', 'p', '1');
      await readAll(tk.stream, '1');
      const pk = keys.publisher('f6', '1');
      await redis.zadd(pk.retries, 5000, sid!);
      const [, done] = await failing('f6', 'retry', '1', 10, 'ids', 500, 0, 'retry_now', AT, sid!);
      expect(done).to.deep.equal([[sid, 'retrying', 'f6.s-given']]);
    });

    it('keeps a note that is not JSON from breaking the action: it is replaced', async () => {
      const { sids, pk } = await setup('f7');
      await redis.hset(pk.notes, sids[0]!, 'not json');
      await failing('f7', 'retry', '1', 10, 'ids', 500, 0, 'retry_now', AT, sids[0]!);
      expect(await note(pk, sids[0]!)).to.deep.equal({ last_action: { action: 'retry_now', at: AT } });
    });
  });

  describe('renew-lock and release-lock', () => {
    it('extends a lease only for the token that holds it', async () => {
      const key = keys.lock('janitor');
      await redis.set(key, 'token-a', 'PX', 10_000);
      expect(await scripts.renewLock(redis, { lease: key }, { token: 'token-b', ttlMs: 60_000 })).to.equal(false);
      expect(await redis.pttl(key)).to.be.at.most(10_000);
      expect(await scripts.renewLock(redis, { lease: key }, { token: 'token-a', ttlMs: 60_000 })).to.equal(true);
      expect(await redis.pttl(key)).to.be.greaterThan(10_000);
      expect(await redis.get(key)).to.equal('token-a');
    });

    it('does not renew a lease that has expired or was never taken', async () => {
      const key = keys.lock('gone');
      expect(await scripts.renewLock(redis, { lease: key }, { token: 'token-a', ttlMs: 60_000 })).to.equal(false);
      expect(await redis.exists(key)).to.equal(0);
    });

    it('releases a lease only for the token that holds it', async () => {
      const key = keys.lock('janitor');
      await redis.set(key, 'token-a', 'PX', 10_000);
      expect(await scripts.releaseLock(redis, { lease: key }, { token: 'token-b' })).to.equal(false);
      expect(await redis.get(key)).to.equal('token-a');
      expect(await scripts.releaseLock(redis, { lease: key }, { token: 'token-a' })).to.equal(true);
      expect(await redis.exists(key)).to.equal(0);
      expect(await scripts.releaseLock(redis, { lease: key }, { token: 'token-a' })).to.equal(false);
    });
  });

  describe('take-lease', () => {
    it("takes a free lease, keeps one already held, and takes a dead holder's only if it is still theirs", async () => {
      const key = keys.slotLease('orders', '7', 0);
      const takeLease = (expected: string, value: string) =>
        scripts.takeLease(redis, { lease: key }, { expected, value });
      expect(await takeLease('', 'node-a t1')).to.equal(true);
      expect(await redis.get(key)).to.equal('node-a t1');
      expect(await takeLease('', 'node-a t1')).to.equal(true);
      // node-b read the lease as free, but node-a took it meanwhile.
      expect(await takeLease('', 'node-b t2')).to.equal(false);
      // node-b saw node-a dead: compare and set.
      expect(await takeLease('node-a t1', 'node-b t2')).to.equal(true);
      // node-c saw node-a dead too, but node-b was first.
      expect(await takeLease('node-a t1', 'node-c t3')).to.equal(false);
      expect(await redis.get(key)).to.equal('node-b t2');
      expect(await redis.ttl(key)).to.equal(-1);
    });
  });

  describe('rate-limit', () => {
    /** The reply in the order of the script's Returns. */
    const take = async (
      bucket: string,
      perSecond: number,
      burst: number,
      tokens: number,
    ): Promise<[number, number]> => {
      const r = await scripts.rateLimit(redis, { bucket }, { perSecond, burst, tokens });
      return [r.granted, r.waitMs];
    };

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
