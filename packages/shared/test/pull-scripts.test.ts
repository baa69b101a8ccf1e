/**
 * The pull publishers' Lua scripts (pull-lease, pull-settle, pull-record,
 * outbox-move) run directly on a private redis-server: the data each one
 * writes and every code it answers with.
 */
import { expect } from 'chai';
import {
  AppError,
  Keys,
  PULL_CONSUMER,
  PullQueue,
  checkScriptResult,
  closeRedis,
  createRedis,
  type PublisherKeys,
  type ScriptClient,
  type TopicKeys,
} from '../src/index.js';
import { startRedis, type RedisServer } from './support/redis-server.js';

type Leased = [string, string[], number, string, string][];
type LeaseReply = [Leased, [string, string, string][]];

describe('pull Lua scripts', () => {
  let server: RedisServer;
  let redis: ScriptClient;
  let keys: Keys;
  let tk: TopicKeys;
  let pk: PublisherKeys;
  let prefixes = 0;
  const group = '1';
  const NOW = 1_700_000_000_000;

  before(async () => {
    server = await startRedis();
    redis = createRedis(server.url, 'consumer');
  });
  after(async () => {
    if (redis) await closeRedis(redis);
    if (server) await server.stop();
  });

  beforeEach(async () => {
    keys = new Keys(`p${++prefixes}:`);
    tk = keys.topic('jobs');
    pk = keys.publisher('jobs', group);
    await redis.poCreateTopic(1, tk.meta, JSON.stringify({ id: 1, name: 'jobs' }));
    await redis.xgroup('CREATE', tk.stream, group, '0', 'MKSTREAM');
  });

  async function add(id: string, attributes?: Record<string, string>): Promise<string> {
    const sids = (await redis.poIngest(
      3,
      tk.meta,
      tk.stream,
      tk.ids,
      1,
      id,
      JSON.stringify(id),
      attributes ? JSON.stringify(attributes) : '',
    )) as string[];
    return sids[0]!;
  }

  async function lease(now: number, max: number, filter = '', leaseMs = 1000, maxAgeMs = now): Promise<Leased> {
    return (await leaseWithDead(now, max, filter, leaseMs, maxAgeMs))[0];
  }

  function leaseWithDead(now: number, max: number, filter: string, leaseMs: number, maxAgeMs: number) {
    return redis.poPullLease(
      5,
      tk.stream,
      pk.retries,
      pk.attempts,
      pk.leases,
      pk.dead,
      group,
      PULL_CONSUMER,
      now,
      leaseMs,
      max,
      filter ? 1000 : max,
      filter,
      '{"host":"h"}',
      'r',
      maxAgeMs,
    ) as Promise<LeaseReply>;
  }

  function settle(sid: string, token: string, now: number, action: string, arg: string | number = '', text = '') {
    return redis.poPullSettle(
      7,
      tk.stream,
      pk.retries,
      pk.attempts,
      pk.dead,
      pk.leases,
      keys.history('jobs', 'm1'),
      tk.outbox,
      group,
      sid,
      token,
      now,
      action,
      arg,
      text,
      action === 'replace' ? '["n1"]' : action === 'retry' ? 'ISO' : '',
      60,
      50,
    );
  }

  describe('pull-lease', () => {
    it('leases new messages: pending in the group, scored at the lease end, with a lease record', async () => {
      const sid = await add('m1');
      await add('m2');
      const [first, ...rest] = await lease(NOW, 1);
      expect(rest).to.have.length(0);
      expect(first![0]).to.equal(sid);
      expect(first![2]).to.equal(1);
      expect(first![3]).to.equal(`${group}.${sid}.r1`);
      expect(first![4]).to.equal('');
      expect(await redis.zscore(pk.retries, sid)).to.equal(String(NOW + 1000));
      expect(await redis.hget(pk.attempts, sid)).to.equal('1');
      expect(JSON.parse((await redis.hget(pk.leases, sid))!)).to.deep.include({
        token: `${group}.${sid}.r1`,
        message_id: 'm1',
        expires_at: NOW + 1000,
      });
      const pending = (await redis.xpending(tk.stream, group, '-', '+', 10)) as [string, string][];
      expect(pending.map((p) => [p[0], p[1]])).to.deep.equal([[sid, PULL_CONSUMER]]);
    });

    it('gives an expired lease out again with the previous lease, and drops entries that are gone', async () => {
      const sid = await add('m1');
      await lease(NOW, 1);
      expect(await lease(NOW + 999, 1)).to.have.length(0);
      const [again] = await lease(NOW + 1000, 1);
      expect(again![2]).to.equal(2);
      expect(JSON.parse(again![4]).token).to.equal(`${group}.${sid}.r1`);
      await redis.xdel(tk.stream, sid);
      expect(await lease(NOW + 5000, 1)).to.have.length(0);
      expect(await redis.zcard(pk.retries)).to.equal(0);
      expect(await redis.hlen(pk.leases)).to.equal(0);
    });

    it('makes a dead letter of an expired lease on a message past the max age, and gives a retry its last go', async () => {
      const sid = await add('m1');
      const received = Number(sid.split('-')[0]);
      const late = received + 60_000;
      await lease(late, 1, '', 1000, 120_000);
      // the lease ran out, and the message is now older than the max age: dead, not given out
      const [taken, died] = await leaseWithDead(late + 61_000, 1, '', 1000, 120_000);
      expect(taken).to.have.length(0);
      expect(died.map((d) => [d[0], d[1]])).to.deep.equal([[sid, 'm1']]);
      expect(JSON.parse(died[0]![2]).token).to.equal(`${group}.${sid}.r1`);
      expect(await redis.zscore(pk.dead, sid)).to.equal(String(received));
      expect((await redis.xpending(tk.stream, group))[0]).to.equal(0);
      expect(await redis.hlen(pk.leases)).to.equal(0);
      // a retry (no lease left) past the max age gets its last go
      const sid2 = await add('m2');
      await redis.zadd(pk.retries, 0, sid2);
      await redis.xreadgroup('GROUP', group, PULL_CONSUMER, 'STREAMS', tk.stream, '>');
      const [again] = await leaseWithDead(Number(sid2.split('-')[0]) + 200_000, 1, '', 1000, 120_000);
      expect(again.map((l) => l[0])).to.deep.equal([sid2]);
    });

    it('with a filter, leases matching messages and leaves the others available now', async () => {
      await add('a', { k: 'a' });
      const b = await add('b', { k: 'b', x: 'y' });
      await add('c');
      const got = await lease(NOW, 5, '{"k":"b"}');
      expect(got.map((g) => g[0])).to.deep.equal([b]);
      expect(await redis.zrange(pk.retries, 0, -1, 'WITHSCORES')).to.have.length(6);
      expect(await redis.zscore(pk.retries, b)).to.equal(String(NOW + 1000));
      expect((await lease(NOW, 5)).map((g) => g[1][1])).to.deep.equal(['a', 'c']);
    });
  });

  describe('pull-settle', () => {
    async function leased(): Promise<[string, string]> {
      const sid = await add('m1');
      const [l] = await lease(NOW, 1);
      return [sid, l![3]];
    }

    it('answers -6 for no lease, another token and an expired lease, writing nothing', async () => {
      const [sid, token] = await leased();
      expect(await settle('1-1', token, NOW, 'complete')).to.equal(-6);
      expect(await settle(sid, `${token}x`, NOW, 'complete')).to.equal(-6);
      expect(await settle(sid, token, NOW + 1000, 'complete')).to.equal(-6);
      expect(() => checkScriptResult(-6))
        .to.throw(AppError)
        .with.property('code', 'lease_stale');
      expect(await redis.zscore(pk.retries, sid)).to.equal(String(NOW + 1000));
      expect(await redis.exists(keys.history('jobs', 'm1'))).to.equal(0);
    });

    it('complete acknowledges and forgets the lease', async () => {
      const [sid, token] = await leased();
      expect(await settle(sid, token, NOW + 10, 'complete')).to.equal(1);
      expect(await redis.xpending(tk.stream, group)).to.deep.equal([0, null, null, null]);
      expect(await redis.zcard(pk.retries)).to.equal(0);
      expect(await redis.hlen(pk.leases)).to.equal(0);
      expect(await redis.hlen(pk.attempts)).to.equal(0);
      const rec = JSON.parse((await redis.hget(keys.history('jobs', 'm1'), group))!);
      expect(rec.state).to.equal('delivered');
      expect(rec.attempts[0]).to.include({ outcome: 'completed', duration_ms: 10 });
      expect(await settle(sid, token, NOW + 20, 'complete')).to.equal(-6);
    });

    it('retry keeps the entry pending, due at the given time', async () => {
      const [sid, token] = await leased();
      expect(await settle(sid, token, NOW, 'retry', NOW + 5000, 'busy')).to.equal(1);
      expect(await redis.zscore(pk.retries, sid)).to.equal(String(NOW + 5000));
      expect((await redis.xpending(tk.stream, group))[0]).to.equal(1);
      const rec = JSON.parse((await redis.hget(keys.history('jobs', 'm1'), group))!);
      expect(rec).to.deep.include({ state: 'retrying', next_attempt_at: 'ISO' });
      expect(rec.attempts[0]).to.include({ outcome: 'retry', error: 'busy' });
    });

    it('fail acknowledges and makes a dead letter', async () => {
      const [sid, token] = await leased();
      expect(await settle(sid, token, NOW, 'fail', 42, 'broken')).to.equal(1);
      expect(await redis.zscore(pk.dead, sid)).to.equal('42');
      expect((await redis.xpending(tk.stream, group))[0]).to.equal(0);
      const rec = JSON.parse((await redis.hget(keys.history('jobs', 'm1'), group))!);
      expect(rec).to.deep.include({ state: 'dead', dead_reason: 'broken' });
    });

    it('extend moves the lease end and answers it', async () => {
      const [sid, token] = await leased();
      expect(await settle(sid, token, NOW + 500, 'extend', NOW + 9000)).to.equal(NOW + 9000);
      expect(await redis.zscore(pk.retries, sid)).to.equal(String(NOW + 9000));
      expect(await settle(sid, token, NOW + 5000, 'complete')).to.equal(1);
    });

    it('replace completes and records the replacements in the outbox', async () => {
      const [sid, token] = await leased();
      expect(await settle(sid, token, NOW, 'replace', 'box-1', '[{"id":"n1"}]')).to.equal(1);
      expect(await redis.hgetall(tk.outbox)).to.deep.equal({ 'box-1': '[{"id":"n1"}]' });
      expect((await redis.xpending(tk.stream, group))[0]).to.equal(0);
      const rec = JSON.parse((await redis.hget(keys.history('jobs', 'm1'), group))!);
      expect(rec).to.deep.include({ state: 'delivered', replaced_by: ['n1'] });
    });
  });

  describe('pull-record', () => {
    it('marks the previous lease expired and appends the new one', async () => {
      const h = keys.history('jobs', 'm1');
      const first = { token: 't1', at: 1, lease_expires_at: 2, outcome: 'leased', worker: {} };
      const second = { token: 't2', at: 3, lease_expires_at: 4, outcome: 'leased', worker: {} };
      expect(await redis.poPullRecord(1, h, group, 60, 50, 1, 'l', JSON.stringify(first), 1, '')).to.equal(1);
      expect(await redis.poPullRecord(1, h, group, 60, 50, 1, 'l', JSON.stringify(second), 2, 't1')).to.equal(1);
      const rec = JSON.parse((await redis.hget(h, group))!);
      expect(rec.state).to.equal('leased');
      expect(rec.attempt_count).to.equal(2);
      expect(rec.attempts.map((a: { outcome: string }) => a.outcome)).to.deep.equal(['expired', 'leased']);
      expect(await redis.ttl(h)).to.be.within(1, 60);
      expect(await redis.poPullRecord(1, h, group, 60, 50, 1, 'x', 'too old', '', 't2')).to.equal(1);
      const dead = JSON.parse((await redis.hget(h, group))!);
      expect(dead).to.deep.include({ state: 'dead', dead_reason: 'too old', attempt_count: 2 });
      expect(dead.attempts.map((a: { outcome: string }) => a.outcome)).to.deep.equal(['expired', 'expired']);
    });
  });

  describe('outbox-move', () => {
    it('adds a message once, answering the same entry id the second time', async () => {
      const first = await redis.poOutboxMove(3, tk.meta, tk.stream, tk.ids, 'n1', '"p"', '{"a":"b"}');
      const second = await redis.poOutboxMove(3, tk.meta, tk.stream, tk.ids, 'n1', '"p"', '{"a":"b"}');
      expect(second).to.equal(first);
      expect(await redis.xlen(tk.stream)).to.equal(1);
      expect(await redis.hget(tk.ids, 'n1')).to.equal(first);
      expect(await redis.hget(tk.meta, 'received')).to.equal('1');
    });

    it('answers -1 for a topic that does not exist, writing nothing', async () => {
      const other = keys.topic('nowhere');
      expect(await redis.poOutboxMove(3, other.meta, other.stream, other.ids, 'n1', '1', '')).to.equal(-1);
      expect(await redis.exists(other.stream, other.ids)).to.equal(0);
    });
  });

  it('PullQueue creates a vanished group again instead of failing', async () => {
    await add('m1');
    const publisher = {
      id: group,
      topic: 'jobs',
      type: 'pull' as const,
      target: 'w',
      active: true,
      from_now: false,
      seconds_timeout: 5,
      seconds_retry: 30,
      chunk_size: 100,
      concurrency: 25,
      parallelism: 1,
      ordered: false,
      rate_limit: null,
      created_at: '',
      updated_at: '',
    };
    await redis.hset(tk.publishers, group, JSON.stringify(publisher));
    await redis.xgroup('DESTROY', tk.stream, group);
    const queue = new PullQueue(redis, keys, 60);
    const got = await queue.lease(publisher, { max: 5, leaseSeconds: 10, worker: {} });
    expect(got.map((l) => l.message.id)).to.deep.equal(['m1']);
  });
});
