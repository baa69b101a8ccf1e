/**
 * The pull publishers' Lua scripts (pull-lease, pull-settle, outbox-move)
 * run directly on a private redis-server: the data each one writes and
 * every code it answers with; and what PullQueue writes around them.
 */
import { expect } from 'chai';
import {
  compareStreamIds,
  AppError,
  decodeItem,
  encodeRecords,
  normalisePublisher,
  PULL_CONSUMER,
  PUBLISHER_DEFAULTS,
  PullQueue,
  RECORD_SPAN_MS,
  checkScriptResult,
  recordTag,
  scripts,
  type LoggedAttempt,
  type Publisher,
  type Keys,
  type PublisherKeys,
  type ScriptClient,
  type TopicKeys,
} from '../src/index.js';
import { codeOf, createTopicRecord, scriptKeys, useScriptFixture } from './script-fixture.js';

type Leased = readonly scripts.LeasedEntry[];

describe('pull Lua scripts', () => {
  const f = useScriptFixture('p');
  let redis: ScriptClient;
  let keys: Keys;
  let tk: TopicKeys;
  let pk: PublisherKeys;
  const group = '1';
  const NOW = 1_700_000_000_000;
  const WORKER = { host: 'h' };
  const DEAD_NOTE = JSON.stringify({ dead_reason: 'the lease ran out unanswered after the max age (120 s)' });
  const ATTEMPTS_NOTE = JSON.stringify({
    dead_reason: 'the lease ran out unanswered after 2 leases',
    attempt_count: 2,
  });

  beforeEach(async () => {
    ({ redis, keys } = f);
    tk = keys.topic('jobs');
    pk = keys.publisher('jobs', group);
    await createTopicRecord(redis, keys, 'jobs', { id: 1, name: 'jobs' });
    await redis.xgroup('CREATE', tk.stream, group, '0', 'MKSTREAM');
  });

  async function add(payload: string, attributes?: Record<string, string>): Promise<string> {
    const written = await scripts.ingest(
      redis,
      { topic: tk.meta, stream: tk.stream },
      { wake: '', topic: '', messages: [JSON.stringify(payload), attributes ? JSON.stringify(attributes) : ''] },
    );
    return written.replayed ? '' : written.streamIds[0]!;
  }

  async function lease(now: number, max: number, filter = '', leaseMs = 1000, maxAgeMs = now): Promise<Leased> {
    return (await leaseWithDead(now, max, filter, leaseMs, maxAgeMs))[0];
  }

  interface LeaseMode {
    maxAttempts?: number;
    ordered?: boolean;
    attribute?: string;
    /** Most payload bytes to lease. */
    budget?: number;
  }

  /** The leased entries and the new dead letters. */
  async function leaseWithDead(
    now: number,
    max: number,
    filter: string,
    leaseMs: number,
    maxAgeMs: number,
    mode: LeaseMode = {},
  ): Promise<[Leased, scripts.PullLeaseReply['died']]> {
    const { leased, died } = await scripts.pullLease(redis, scriptKeys(keys, 'jobs', group), {
      group,
      consumer: PULL_CONSUMER,
      now,
      leaseMs,
      max,
      scan: filter || mode.ordered ? 1000 : max,
      filter,
      workerJson: JSON.stringify(WORKER),
      nonce: 'r',
      maxAgeMs,
      maxAgeNote: DEAD_NOTE,
      maxAttempts: mode.maxAttempts ?? 0,
      maxAttemptsNote: ATTEMPTS_NOTE,
      ordered: mode.ordered ?? false,
      orderingAttribute: mode.attribute ?? '',
      ...(mode.budget === undefined ? {} : { byteBudget: mode.budget }),
    });
    return [leased, died];
  }

  /** An ordered lease call (one key, or a key per value of `attribute`). */
  async function leaseOrdered(now: number, max: number, attribute = '', filter = ''): Promise<Leased> {
    return (await leaseWithDead(now, max, filter, 1000, now, { ordered: true, attribute }))[0];
  }

  interface SettleOptions {
    arg?: string | number;
    outbox?: string;
    note?: string;
    attempt?: LoggedAttempt;
  }

  /** Without the optional counters. */
  function settle(
    sid: string,
    token: string,
    now: number,
    action: scripts.PullSettleArgs['action'],
    o: SettleOptions = {},
  ): Promise<number> {
    const record = o.attempt ? encodeRecords([o.attempt], now, recordTag)[0] : undefined;
    return scripts.pullSettle(
      redis,
      { ...scriptKeys(keys, 'jobs', group), counts: undefined },
      {
        group,
        streamId: sid,
        token,
        now,
        action,
        arg: o.arg ?? '',
        outbox: o.outbox ?? '',
        note: o.note ?? '',
        recordScore: record ? record.score : '',
        record: record ? record.member : '',
      },
    );
  }

  /** The end of the lease taken at NOW for 1 s, as PullQueue logs it. */
  function ended(sid: string, outcome: LoggedAttempt['outcome'], at: number, error?: string): LoggedAttempt {
    return {
      streamId: sid,
      startedAt: NOW,
      durationMs: at - NOW,
      outcome,
      worker: WORKER,
      leaseExpiresAt: NOW + 1000,
      ...(error === undefined ? {} : { error }),
    };
  }

  /** The message's attempts in the publisher's log, through attempts.lua. */
  async function logged(sid: string): Promise<LoggedAttempt[]> {
    const [ms, seq] = sid.split('-') as [string, string];
    const [flat] = await scripts.attempts(
      redis,
      { logs: [pk.log] },
      { receivedAt: ms, sequence: seq, span: RECORD_SPAN_MS },
    );
    const out: LoggedAttempt[] = [];
    for (let k = 0; k + 2 < flat!.length; k += 3) out.push(decodeItem(Number(flat![k]), flat![k + 1]!, flat![k + 2]!)!);
    return out;
  }

  describe('pull-lease', () => {
    it('stops at the byte budget with at least one message, reading new ones a few at a time; the rest stays available', async () => {
      const sids: string[] = [];
      for (let i = 0; i < 40; i++) sids.push(await add('x'.repeat(100)));
      // Each payload is 102 bytes of JSON: a budget of 250 takes three (102, 204, 306).
      const [first] = await leaseWithDead(NOW, 1000, '', 1000, NOW, { budget: 250 });
      expect(first.map(([sid]) => sid)).to.deep.equal(sids.slice(0, 3));
      // New entries are read 16 at a time: the rest of that read stays available at once.
      const available = await redis.zrange(pk.retries, '-inf', NOW, 'BYSCORE');
      // (One score for all: Redis orders them by member, `…-10` before `…-3` when they share a millisecond.)
      expect([...available].sort(compareStreamIds)).to.deep.equal(sids.slice(3, 16));
      const [one] = await leaseWithDead(NOW, 1000, '', 1000, NOW, { budget: 1 });
      expect(one).to.have.length(1);
      expect(sids.slice(3, 16)).to.include(one[0]![0]);
    });

    it('leases new messages: pending in the group, scored at the lease end, with a lease record', async () => {
      const sid = await add('m1');
      await add('m2');
      const [first, ...rest] = await lease(NOW, 1);
      expect(rest).to.have.length(0);
      expect(first).to.deep.equal([sid, ['p', '"m1"'], 1, `${group}.${sid}.r1`, '']);
      expect(await redis.zscore(pk.retries, sid)).to.equal(String(NOW + 1000));
      expect(await redis.hget(pk.attempts, sid)).to.equal('1');
      expect(JSON.parse((await redis.hget(pk.leases, sid))!)).to.deep.equal({
        token: `${group}.${sid}.r1`,
        worker: WORKER,
        leased_at: NOW,
        expires_at: NOW + 1000,
        attempt: 1,
      });
      const pending = (await redis.xpending(tk.stream, group, '-', '+', 10)) as [string, string][];
      expect(pending.map((p) => [p[0], p[1]])).to.deep.equal([[sid, PULL_CONSUMER]]);
      expect(await redis.exists(pk.log, pk.notes, pk.dead)).to.equal(0);
    });

    it('gives an expired lease out again with the previous lease, and drops entries that are gone', async () => {
      const sid = await add('m1');
      await lease(NOW, 1);
      expect(await lease(NOW + 999, 1)).to.have.length(0);
      const [again] = await lease(NOW + 1000, 1);
      expect(again![2]).to.equal(2);
      expect(again![3]).to.equal(`${group}.${sid}.r1`);
      expect(JSON.parse(again![4])).to.deep.include({
        token: `${group}.${sid}.r1`,
        attempt: 1,
        expires_at: NOW + 1000,
      });
      expect(JSON.parse((await redis.hget(pk.leases, sid))!)).to.deep.include({ attempt: 2, leased_at: NOW + 1000 });
      await redis.xdel(tk.stream, sid);
      expect(await lease(NOW + 5000, 1)).to.have.length(0);
      expect(await redis.exists(pk.retries, pk.attempts, pk.leases)).to.equal(0);
    });

    it('makes a dead letter with a note of an expired lease on a message past the max age, and gives a retry its last go', async () => {
      const sid = await add('m1');
      const received = Number(sid.split('-')[0]);
      const late = received + 60_000;
      await lease(late, 1, '', 1000, 120_000);
      const previous = await redis.hget(pk.leases, sid);
      // The lease ran out, and the message is now older than the max age: dead, not given out.
      const [taken, died] = await leaseWithDead(late + 61_000, 1, '', 1000, 120_000);
      expect(taken).to.have.length(0);
      expect(died).to.deep.equal([[sid, previous]]);
      expect(await redis.zscore(pk.dead, sid)).to.equal(String(late + 61_000));
      expect(await redis.hget(pk.notes, sid)).to.equal(DEAD_NOTE);
      expect((await redis.xpending(tk.stream, group))[0]).to.equal(0);
      expect(await redis.exists(pk.leases, pk.attempts, pk.retries)).to.equal(0);
      // A retry (no lease left) past the max age gets its last go.
      const sid2 = await add('m2');
      await redis.zadd(pk.retries, 0, sid2);
      await redis.xreadgroup('GROUP', group, PULL_CONSUMER, 'STREAMS', tk.stream, '>');
      const [again, none] = await leaseWithDead(Number(sid2.split('-')[0]) + 200_000, 1, '', 1000, 120_000);
      expect(again.map((l) => l[0])).to.deep.equal([sid2]);
      expect(none).to.deep.equal([]);
    });

    it('with a filter, leases matching messages and leaves the others available now', async () => {
      await add('a', { k: 'a' });
      const b = await add('b', { k: 'b', x: 'y' });
      await add('c');
      const got = await lease(NOW, 5, '{"k":"b"}');
      expect(got.map((g) => g[0])).to.deep.equal([b]);
      expect(await redis.zrange(pk.retries, 0, -1, 'WITHSCORES')).to.have.length(6);
      expect(await redis.zscore(pk.retries, b)).to.equal(String(NOW + 1000));
      expect((await lease(NOW, 5)).map((g) => g[1][1])).to.deep.equal(['"a"', '"c"']);
    });

    it('matches a filter value given as a list when the attribute is any of its values', async () => {
      const eu = await add('eu', { region: 'eu' });
      await add('asia', { region: 'asia' });
      const us = await add('us', { region: 'us' });
      const got = await lease(NOW, 5, '{"region":["eu","us"]}');
      expect(got.map((g) => g[0])).to.deep.equal([eu, us]);
    });

    it('makes a dead letter of an expired lease once the message was leased the max attempts', async () => {
      const sid = await add('m1');
      const mode = { maxAttempts: 2 };
      await leaseWithDead(NOW, 1, '', 1000, NOW, mode);
      const [second] = await leaseWithDead(NOW + 1000, 1, '', 1000, NOW, mode);
      expect(second.map((l) => l[2])).to.deep.equal([2]);
      const [none, died] = await leaseWithDead(NOW + 2000, 1, '', 1000, NOW, mode);
      expect(none).to.deep.equal([]);
      expect(died.map(([d]) => d)).to.deep.equal([sid]);
      expect(await redis.hget(pk.notes, sid)).to.equal(ATTEMPTS_NOTE);
      expect(await redis.zscore(pk.dead, sid)).to.equal(String(NOW + 2000));
    });

    it('ordered: gives out one message at a time, in stream order, the next once the first is completed', async () => {
      const a = await add('a');
      const b = await add('b');
      const first = await leaseOrdered(NOW, 5);
      expect(first.map((l) => l[0])).to.deep.equal([a]);
      // The rest waits behind it in the retry set, and nothing more goes out while it is leased.
      expect(await redis.zscore(pk.retries, b)).to.equal(String(NOW));
      expect(await leaseOrdered(NOW + 10, 5)).to.deep.equal([]);
      expect(await settle(a, first[0]![3], NOW + 20, 'complete')).to.equal(1);
      expect((await leaseOrdered(NOW + 30, 5)).map((l) => l[0])).to.deep.equal([b]);
    });

    it('ordered: an expired lease and a retry keep their key: the head goes out again before anything after it', async () => {
      const a = await add('a');
      await add('b');
      const [first] = await leaseOrdered(NOW, 1);
      expect(await leaseOrdered(NOW + 999, 1)).to.deep.equal([]);
      const [again] = await leaseOrdered(NOW + 1000, 1);
      expect(again![0]).to.equal(a);
      expect(first![0]).to.equal(a);
      await settle(a, again![3], NOW + 1100, 'retry', { arg: NOW + 5000 });
      expect(await leaseOrdered(NOW + 2000, 1)).to.deep.equal([]);
      expect((await leaseOrdered(NOW + 5000, 1)).map((l) => l[0])).to.deep.equal([a]);
    });

    it('ordered by an attribute: one lease out per key, keys in parallel, in stream order within each', async () => {
      const a1 = await add('a1', { c: 'a' });
      const b1 = await add('b1', { c: 'b' });
      const a2 = await add('a2', { c: 'a' });
      const none1 = await add('n1');
      const b2 = await add('b2', { c: 'b' });
      const first = await leaseOrdered(NOW, 10, 'c');
      expect(first.map((l) => l[0])).to.deep.equal([a1, b1, none1]);
      await settle(b1, first[1]![3], NOW + 5, 'complete');
      expect((await leaseOrdered(NOW + 10, 10, 'c')).map((l) => l[0])).to.deep.equal([b2]);
      await settle(a1, first[0]![3], NOW + 15, 'fail', { note: '{"dead_reason":"no"}' });
      expect((await leaseOrdered(NOW + 20, 10, 'c')).map((l) => l[0])).to.deep.equal([a2]);
    });

    it('ordered: a message past the max age whose lease ran out dies, and its key moves on', async () => {
      const a = await add('a');
      const b = await add('b');
      const received = Number(a.split('-')[0]);
      await leaseWithDead(received + 1000, 1, '', 1000, 120_000, { ordered: true });
      const [taken, died] = await leaseWithDead(received + 200_000, 1, '', 1000, 120_000, { ordered: true });
      expect(died.map(([d]) => d)).to.deep.equal([a]);
      expect(taken).to.deep.equal([]);
      expect(
        (await leaseWithDead(received + 200_001, 1, '', 1000, 1e12, { ordered: true }))[0].map((l) => l[0]),
      ).to.deep.equal([b]);
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
      const o = { attempt: ended(sid, 'completed', NOW), note: '{"x":1}' };
      expect(await codeOf(settle('1-1', token, NOW, 'complete', o))).to.equal('lease_stale');
      expect(await codeOf(settle(sid, `${token}x`, NOW, 'complete', o))).to.equal('lease_stale');
      expect(await codeOf(settle(sid, token, NOW + 1000, 'complete', o))).to.equal('lease_stale');
      expect(() => checkScriptResult(-6))
        .to.throw(AppError)
        .with.property('code', 'lease_stale');
      expect(await redis.zscore(pk.retries, sid)).to.equal(String(NOW + 1000));
      expect((await redis.xpending(tk.stream, group))[0]).to.equal(1);
      expect(await redis.exists(pk.log, pk.notes, pk.dead)).to.equal(0);
    });

    it('complete acknowledges, forgets the lease and logs its end', async () => {
      const [sid, token] = await leased();
      const attempt = ended(sid, 'completed', NOW + 10);
      expect(await settle(sid, token, NOW + 10, 'complete', { attempt })).to.equal(1);
      expect(await redis.xpending(tk.stream, group)).to.deep.equal([0, null, null, null]);
      expect(await redis.exists(pk.retries, pk.leases, pk.attempts, pk.notes, pk.dead)).to.equal(0);
      expect(await logged(sid)).to.deep.equal([attempt]);
      expect(await codeOf(settle(sid, token, NOW + 20, 'complete', { attempt }))).to.equal('lease_stale');
      expect(await redis.zcard(pk.log)).to.equal(1);
    });

    it('retry keeps the entry pending and its lease count, due at the given time, and logs the reason', async () => {
      const [sid, token] = await leased();
      const attempt = ended(sid, 'worker_retry', NOW, 'busy');
      expect(await settle(sid, token, NOW, 'retry', { arg: NOW + 5000, attempt })).to.equal(1);
      expect(await redis.zscore(pk.retries, sid)).to.equal(String(NOW + 5000));
      expect((await redis.xpending(tk.stream, group))[0]).to.equal(1);
      expect(await redis.hget(pk.attempts, sid)).to.equal('1');
      expect(await redis.exists(pk.leases, pk.notes)).to.equal(0);
      expect(await logged(sid)).to.deep.equal([attempt]);
    });

    it('fail acknowledges and makes a dead letter with its note', async () => {
      const [sid, token] = await leased();
      const attempt = ended(sid, 'failed', NOW + 5, 'broken');
      const note = JSON.stringify({ dead_reason: 'broken', attempt_count: 1 });
      expect(await settle(sid, token, NOW + 5, 'fail', { note, attempt })).to.equal(1);
      expect(await redis.zscore(pk.dead, sid)).to.equal(String(NOW + 5));
      expect((await redis.xpending(tk.stream, group))[0]).to.equal(0);
      expect(await redis.exists(pk.retries, pk.leases, pk.attempts)).to.equal(0);
      expect(await redis.hget(pk.notes, sid)).to.equal(note);
      expect(await logged(sid)).to.deep.equal([attempt]);
    });

    it('extend moves the lease end and answers it, logging nothing', async () => {
      const [sid, token] = await leased();
      expect(await settle(sid, token, NOW + 500, 'extend', { arg: NOW + 9000 })).to.equal(NOW + 9000);
      expect(await redis.zscore(pk.retries, sid)).to.equal(String(NOW + 9000));
      expect(JSON.parse((await redis.hget(pk.leases, sid))!)).to.deep.include({ token, expires_at: NOW + 9000 });
      expect(await redis.exists(pk.log, pk.notes)).to.equal(0);
      expect(await settle(sid, token, NOW + 5000, 'complete')).to.equal(1);
    });

    it('replace completes, records the replacements in the outbox and notes them', async () => {
      const [sid, token] = await leased();
      const attempt = ended(sid, 'replaced', NOW + 1);
      const note = JSON.stringify({ replaced_by: ['jobs.rn1'] });
      const outbox = '[{"id":"jobs.rn1","topic":"jobs","p":"1","a":""}]';
      expect(await settle(sid, token, NOW + 1, 'replace', { arg: 'box-1', outbox, note, attempt })).to.equal(1);
      expect(await redis.hgetall(tk.outbox)).to.deep.equal({ 'box-1': outbox });
      expect((await redis.xpending(tk.stream, group))[0]).to.equal(0);
      expect(await redis.exists(pk.retries, pk.leases, pk.attempts, pk.dead)).to.equal(0);
      expect(await redis.hget(pk.notes, sid)).to.equal(note);
      expect(await logged(sid)).to.deep.equal([attempt]);
    });
  });

  describe('outbox-move', () => {
    it('adds a message once with the id it was given, answering the same entry id the second time', async () => {
      const move = () =>
        scripts.outboxMove(redis, scriptKeys(keys, 'jobs'), {
          id: 'jobs.rn1',
          payloadJson: '"p"',
          attributesJson: '{"a":"b"}',
        });
      const first = await move();
      const second = await move();
      expect(second).to.equal(first);
      expect(await redis.xrange(tk.stream, '-', '+')).to.deep.equal([
        [first, ['id', 'jobs.rn1', 'p', '"p"', 'a', '{"a":"b"}']],
      ]);
      expect(await redis.hget(tk.ids, 'jobs.rn1')).to.equal(first);
      expect(await redis.hget(tk.meta, 'received')).to.equal('1');
    });

    it('answers -1 (undefined) for a topic that does not exist, writing nothing', async () => {
      const other = keys.topic('nowhere');
      const moved = scripts.outboxMove(redis, scriptKeys(keys, 'nowhere'), {
        id: 'nowhere.rn1',
        payloadJson: '1',
        attributesJson: '',
      });
      expect(await moved).to.equal(undefined);
      expect(await redis.exists(other.stream, other.ids)).to.equal(0);
    });
  });

  describe('PullQueue', () => {
    const publisher: Publisher = normalisePublisher({
      id: group,
      topic: 'jobs',
      type: 'pull',
      target: 'w',
      ...PUBLISHER_DEFAULTS,
      created_at: '',
      updated_at: '',
    });

    beforeEach(async () => {
      await redis.hset(tk.publishers, group, JSON.stringify(publisher));
      await redis.hset(keys.publisherIndex, group, 'jobs');
    });

    it('creates a vanished group again instead of failing', async () => {
      const sid = await add('m1');
      await redis.xgroup('DESTROY', tk.stream, group);
      const queue = new PullQueue(redis, keys);
      const got = await queue.lease(publisher, { max: 5, leaseSeconds: 10, worker: {} });
      expect(got.map((l) => l.message.id)).to.deep.equal([`jobs.${sid}`]);
    });

    it('logs a lease that ran out when it gives the message out again, and the next lease when it is completed', async () => {
      const sid = await add('m1');
      let now = NOW;
      const queue = new PullQueue(redis, keys, () => now);
      const [first] = await queue.lease(publisher, { max: 1, leaseSeconds: 1, worker: WORKER });
      expect(first!.attempt).to.equal(1);
      expect(first!.token.startsWith(`${group}.${sid}.`)).to.equal(true);
      expect(await redis.exists(pk.log)).to.equal(0);

      now = NOW + 1500;
      const [second] = await queue.lease(publisher, { max: 1, leaseSeconds: 1, worker: { name: 'other' } });
      expect(second!.attempt).to.equal(2);
      expect(await logged(sid)).to.deep.equal([
        {
          streamId: sid,
          startedAt: NOW,
          durationMs: 1000,
          outcome: 'expired',
          worker: WORKER,
          leaseExpiresAt: NOW + 1000,
        },
      ]);

      now = NOW + 1600;
      await queue.complete(second!.token);
      expect((await logged(sid)).map((a) => [a.outcome, a.worker, a.startedAt, a.durationMs])).to.deep.equal([
        ['expired', WORKER, NOW, 1000],
        ['completed', { name: 'other' }, NOW + 1500, 100],
      ]);
      expect((await redis.xpending(tk.stream, group))[0]).to.equal(0);
    });

    it('logs the expired lease of a message that dies of old age', async () => {
      const sid = await add('m1');
      const received = Number(sid.split('-')[0]);
      let now = received + 60_000;
      const queue = new PullQueue(redis, keys, () => now, 120);
      await queue.lease(publisher, { max: 1, leaseSeconds: 1, worker: WORKER });
      now = received + 121_000;
      expect(await queue.lease(publisher, { max: 1, leaseSeconds: 1, worker: WORKER })).to.deep.equal([]);
      expect(await redis.zscore(pk.dead, sid)).to.equal(String(now));
      expect(JSON.parse((await redis.hget(pk.notes, sid))!)).to.deep.equal({
        dead_reason: 'the lease ran out unanswered after the max age (120 s)',
      });
      expect((await logged(sid)).map((a) => a.outcome)).to.deep.equal(['expired']);
    });
  });
});
