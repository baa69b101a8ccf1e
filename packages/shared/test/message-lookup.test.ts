/**
 * findMessage, the read model of one message, against what the scripts
 * write on a private redis-server: its state for each publisher (pending
 * unread or in flight, delivered, retrying, dead, deleted, leased, purged;
 * after a seek) and its attempts from the attempt logs; and a message
 * written before the attempt log (a UUID, the id index and an old history
 * key), found after the upgrade with its old attempts.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import {
  encodeRecords,
  encodeRetryState,
  findMessage,
  messageId,
  PUBLISHER_DEFAULTS,
  PULL_CONSUMER,
  RECORD_SPAN_MS,
  recordTag,
  Store,
  scripts,
  type Keys,
  type LoggedAttempt,
  type Publisher,
  type ScriptClient,
} from '../src/index.js';
import { scriptKeys, useScriptFixture } from './script-fixture.js';

describe('findMessage', () => {
  const f = useScriptFixture('ml');
  let redis: ScriptClient;
  let keys: Keys;
  let store: Store;
  const TOPIC = 'orders';

  beforeEach(async () => {
    ({ redis, keys } = f);
    store = new Store(redis, keys);
    await store.createTopic({ name: TOPIC, origin_host: 'example.com' });
  });

  const iso = (ms: number): string => new Date(ms).toISOString();

  function publisher(target: string, type: Publisher['type'] = 'http'): Promise<Publisher> {
    return store.createPublisher({ ...PUBLISHER_DEFAULTS, topic: TOPIC, target, type });
  }

  async function ingest(payload: string, attributes = ''): Promise<string> {
    const tk = keys.topic(TOPIC);
    const written = await scripts.ingest(
      redis,
      { topic: tk.meta, stream: tk.stream },
      { wake: '', topic: '', messages: [payload, attributes] },
    );
    return written.replayed ? '' : written.streamIds[0]!;
  }

  /** A publisher of http://a.test/hook that has read one message: it, and the time after the read. */
  async function readOne(): Promise<{ p: Publisher; sid: string; t: number }> {
    const p = await publisher('http://a.test/hook');
    const sid = await ingest('1');
    await read(p);
    return { p, sid, t: Date.now() };
  }

  async function read(p: Publisher): Promise<string[]> {
    const reply = (await redis.xreadgroup(
      'GROUP',
      p.id,
      'node-a',
      'COUNT',
      100,
      'STREAMS',
      keys.topic(TOPIC).stream,
      '>',
    )) as [string, [string, string[]][]][] | null;
    return (reply?.[0]?.[1] ?? []).map(([sid]) => sid);
  }

  interface Batch {
    attempts: LoggedAttempt[];
    acked?: string[];
    cleared?: string[];
    retries?: [string, number, string][];
    dead?: [string, number, string][];
  }

  /** What the consumer's ack stage writes for a batch. */
  async function settle(p: Publisher, b: Batch, settledAt = Date.now()): Promise<void> {
    // Without the optional counters.
    await scripts.settle(
      redis,
      { ...scriptKeys(keys, TOPIC, p.id), counts: undefined },
      {
        group: p.id,
        replaces: '',
        records: encodeRecords(b.attempts, settledAt, recordTag),
        acked: b.acked ?? [],
        cleared: b.cleared ?? [],
        retries: (b.retries ?? []).flat(),
        dead: (b.dead ?? []).flat(),
      },
    );
  }

  const find = (id: string, now?: number) => findMessage(redis, keys, store, id, now);

  it('gives the message with its payload and attributes, and pending for a publisher that has not read it', async () => {
    const p = await publisher('http://a.test/hook');
    const sid = await ingest('{"n":1}', '{"k":"v"}');
    const view = await find(messageId(TOPIC, sid));
    expect(view).to.deep.equal({
      id: `${TOPIC}.${sid}`,
      topic: TOPIC,
      payload: { n: 1 },
      attributes: { k: 'v' },
      received_at: iso(Number(sid.split('-')[0])),
      deliveries: [
        {
          publisher_id: p.id,
          target: 'http://a.test/hook',
          type: 'http',
          state: 'pending',
          attempt_count: 0,
          attempts: [],
        },
      ],
    });
  });

  it('is pending while a delivery is in flight (read, not settled)', async () => {
    const p = await publisher('http://a.test/hook');
    const sid = await ingest('1');
    expect(await read(p)).to.deep.equal([sid]);
    const [delivery] = (await find(messageId(TOPIC, sid)))!.deliveries;
    expect(delivery).to.deep.include({ state: 'pending', attempt_count: 0, attempts: [] });
  });

  it('is delivered once settled, with the attempt from the batch record', async () => {
    const p = await publisher('http://a.test/hook');
    const sids = [await ingest('1'), await ingest('2')];
    await read(p);
    const started = Date.now() - 20;
    await settle(p, {
      attempts: sids.map((sid, i) => ({
        streamId: sid,
        startedAt: started + i,
        durationMs: 4,
        status: 200,
        outcome: 'delivered',
      })),
      acked: sids,
    });
    const [delivery] = (await find(messageId(TOPIC, sids[1]!)))!.deliveries;
    expect(delivery).to.deep.equal({
      publisher_id: p.id,
      target: 'http://a.test/hook',
      type: 'http',
      state: 'delivered',
      attempt_count: 1,
      attempts: [{ at: iso(started + 1), status: 200, duration_ms: 4 }],
    });
  });

  it('is retrying with its next attempt time, then delivered with both attempts', async () => {
    const { p, sid, t } = await readOne();
    const failed: LoggedAttempt = {
      streamId: sid,
      startedAt: t - 50,
      durationMs: 30,
      status: 503,
      outcome: 'retry',
      error: 'HTTP 503',
    };
    const due = t + 60_000;
    await settle(p, { attempts: [failed], retries: [[sid, due, encodeRetryState(1, failed)]] });

    const [retrying] = (await find(messageId(TOPIC, sid)))!.deliveries;
    expect(retrying).to.deep.include({ state: 'retrying', attempt_count: 1, next_attempt_at: iso(due) });
    expect(retrying!.attempts).to.deep.equal([{ at: iso(t - 50), status: 503, error: 'HTTP 503', duration_ms: 30 }]);

    const ok: LoggedAttempt = { streamId: sid, startedAt: t + 10, durationMs: 5, status: 204, outcome: 'delivered' };
    await settle(p, { attempts: [ok], acked: [sid], cleared: [sid] }, t + 20);
    const [delivered] = (await find(messageId(TOPIC, sid)))!.deliveries;
    expect(delivered).to.deep.equal({
      publisher_id: p.id,
      target: 'http://a.test/hook',
      type: 'http',
      state: 'delivered',
      attempt_count: 2,
      attempts: [
        { at: iso(t - 50), status: 503, error: 'HTTP 503', duration_ms: 30 },
        { at: iso(t + 10), status: 204, duration_ms: 5 },
      ],
    });
  });

  it("shows a failed attempt's answer as its response", async () => {
    const { p, sid, t } = await readOne();
    const failed: LoggedAttempt = {
      streamId: sid,
      startedAt: t - 50,
      durationMs: 30,
      status: 422,
      outcome: 'retry',
      error: 'HTTP 422',
      response: '{"error":"customer_id is missing"}',
    };
    await settle(p, { attempts: [failed], retries: [[sid, t + 60_000, encodeRetryState(1, failed)]] });
    const [retrying] = (await find(messageId(TOPIC, sid)))!.deliveries;
    expect(retrying!.attempts).to.deep.equal([
      {
        at: iso(t - 50),
        status: 422,
        error: 'HTTP 422',
        response: '{"error":"customer_id is missing"}',
        duration_ms: 30,
      },
    ]);
  });

  it('is skipped when the filter kept it from being sent: not delivered, and not counted as an attempt', async () => {
    const { p, sid, t } = await readOne();
    const skipped: LoggedAttempt = { streamId: sid, startedAt: t, durationMs: 0, outcome: 'skipped' };
    await settle(p, { attempts: [skipped], acked: [sid] });
    const [delivery] = (await find(messageId(TOPIC, sid)))!.deliveries;
    expect(delivery).to.deep.include({ state: 'skipped', attempt_count: 0 });
    expect(delivery!.attempts).to.deep.equal([{ at: iso(t), duration_ms: 0, outcome: 'skipped' }]);
  });

  it('is dead with its dead reason and attempt count from the note', async () => {
    const { p, sid, t } = await readOne();
    const last: LoggedAttempt = {
      streamId: sid,
      startedAt: t - 9,
      durationMs: 2,
      status: 410,
      outcome: 'dead',
      error: 'HTTP 410',
    };
    // Four earlier attempts are counted in the retry state; their records are not looked at here.
    const note = JSON.stringify({ dead_reason: 'the target answered 410', attempt_count: 5 });
    await settle(p, { attempts: [last], acked: [sid], cleared: [sid], dead: [[sid, t, note]] });
    const [delivery] = (await find(messageId(TOPIC, sid)))!.deliveries;
    expect(delivery).to.deep.include({ state: 'dead', attempt_count: 5, dead_reason: 'the target answered 410' });
    expect(delivery!.attempts).to.deep.equal([{ at: iso(t - 9), status: 410, error: 'HTTP 410', duration_ms: 2 }]);
  });

  it('is deleted after the failing list deletes it, with the action', async () => {
    const { p, sid, t } = await readOne();
    const failed: LoggedAttempt = {
      streamId: sid,
      startedAt: t - 9,
      durationMs: 2,
      outcome: 'retry',
      error: 'timeout after 5 s',
    };
    await settle(p, { attempts: [failed], retries: [[sid, t + 60_000, encodeRetryState(1, failed)]] });
    const at = iso(t);
    // Without the optional counters.
    await scripts.failing(
      redis,
      { ...scriptKeys(keys, TOPIC, p.id), counts: undefined },
      { action: 'delete', group: p.id, score: 0, ids: [sid], max: 10, now: t, note: 'deleted', at },
    );
    const [delivery] = (await find(messageId(TOPIC, sid)))!.deliveries;
    expect(delivery).to.deep.equal({
      publisher_id: p.id,
      target: 'http://a.test/hook',
      type: 'http',
      state: 'deleted',
      attempt_count: 1,
      attempts: [{ at: iso(t - 9), error: 'timeout after 5 s', duration_ms: 2 }],
      last_action: { action: 'deleted', at },
    });
  });

  describe('after a purge or a seek', () => {
    function purge(p: Publisher, before: number, at: number): Promise<unknown> {
      return scripts.purge(redis, scriptKeys(keys, TOPIC, p.id), {
        group: p.id,
        before,
        at,
        atIso: iso(at),
        dryRun: false,
      });
    }

    function seek(p: Publisher, to: number, at: number): Promise<unknown> {
      return scripts.seek(redis, scriptKeys(keys, TOPIC, p.id), { group: p.id, to, at, dryRun: false });
    }

    const stateOf = async (sid: string, p: Publisher) =>
      (await find(messageId(TOPIC, sid)))!.deliveries.find((d) => d.publisher_id === p.id)!;

    it('shows purged the messages skipped unread, retrying and dead ones, with the purge as last action, delivered ones as delivered, and leaves other publishers alone', async () => {
      const p = await publisher('http://a.test/hook');
      const other = await publisher('http://b.test/hook');
      const [delivered, retrying, dead, unread] = [
        await ingest('1'),
        await ingest('2'),
        await ingest('3'),
        await ingest('4'),
      ];
      // Received a second after the others: the purge's time falls between.
      const later = (await redis.xadd(keys.topic(TOPIC).stream, `${Number(unread.split('-')[0]) + 1000}-0`, 'p', '5'))!;
      await redis.xreadgroup('GROUP', p.id, 'node-a', 'COUNT', 3, 'STREAMS', keys.topic(TOPIC).stream, '>');
      const t = Date.now();
      const failed = (sid: string, outcome: 'retry' | 'dead'): LoggedAttempt => ({
        streamId: sid,
        startedAt: t - 9,
        durationMs: 2,
        status: 500,
        outcome,
      });
      await settle(p, {
        attempts: [
          { streamId: delivered, startedAt: t - 9, durationMs: 2, status: 200, outcome: 'delivered' },
          failed(retrying, 'retry'),
          failed(dead, 'dead'),
        ],
        acked: [delivered, dead],
        retries: [[retrying, t + 60_000, encodeRetryState(1, failed(retrying, 'retry'))]],
        dead: [[dead, t, JSON.stringify({ dead_reason: 'HTTP 500', attempt_count: 1 })]],
      });
      const at = t + 5;
      await purge(p, Number(later.split('-')[0]), at);

      const purged = { action: 'purged', at: iso(at) };
      expect(await stateOf(delivered, p)).to.deep.include({ state: 'delivered', attempt_count: 1 });
      expect(await stateOf(delivered, p)).not.to.have.property('last_action');
      expect(await stateOf(retrying, p)).to.deep.include({ state: 'purged', attempt_count: 1, last_action: purged });
      expect(await stateOf(retrying, p)).not.to.have.property('next_attempt_at');
      expect(await stateOf(dead, p)).to.deep.include({ state: 'purged', last_action: purged });
      expect(await stateOf(dead, p)).not.to.have.property('dead_reason');
      expect(await stateOf(unread, p)).to.deep.include({ state: 'purged', attempt_count: 0, last_action: purged });
      expect(await stateOf(later, p)).to.deep.include({ state: 'pending' });
      for (const sid of [delivered, unread, later]) expect((await stateOf(sid, other)).state).to.equal('pending');
    });

    it('shows pending again what a later seek gave back, purged or deleted before, then delivered with the seek as last action', async () => {
      const p = await publisher('http://a.test/hook');
      const [first, second] = [await ingest('1'), await ingest('2')];
      const t = Date.now();
      await purge(p, Number(second.split('-')[0]) + 1, t);
      expect((await stateOf(first, p)).state).to.equal('purged');
      // A note that says deleted, older than the seek.
      await redis.hset(
        keys.publisher(TOPIC, p.id).notes,
        second,
        JSON.stringify({ deleted: true, last_action: { action: 'deleted', at: iso(t) } }),
      );
      expect((await stateOf(second, p)).state).to.equal('deleted');

      await seek(p, Number(first.split('-')[0]), t + 10);
      const sought = { action: 'sought', at: iso(t + 10) };
      for (const sid of [first, second]) {
        expect(await stateOf(sid, p)).to.deep.include({ state: 'pending', last_action: sought });
      }
      expect(await read(p)).to.deep.equal([first, second]);
      await settle(p, {
        attempts: [first, second].map((sid) => ({
          streamId: sid,
          startedAt: t + 20,
          durationMs: 1,
          status: 200,
          outcome: 'delivered' as const,
        })),
        acked: [first, second],
      });
      for (const sid of [first, second]) {
        expect(await stateOf(sid, p)).to.deep.include({ state: 'delivered', attempt_count: 1, last_action: sought });
      }
      // A purge after the seek wins again, for what it skips.
      const third = await ingest('3');
      await purge(p, Number(third.split('-')[0]) + 1, t + 30);
      expect(await stateOf(third, p)).to.deep.include({
        state: 'purged',
        last_action: { action: 'purged', at: iso(t + 30) },
      });
      expect((await stateOf(second, p)).state).to.equal('delivered');
    });
  });

  it('gives each publisher its own state and attempts', async () => {
    const a = await publisher('http://a.test/hook');
    const b = await publisher('http://b.test/hook');
    const c = await publisher('projects/p/topics/t', 'pubsub');
    const sid = await ingest('1');
    await read(a);
    await read(b);
    const t = Date.now();
    await settle(a, {
      attempts: [{ streamId: sid, startedAt: t, durationMs: 1, status: 200, outcome: 'delivered' }],
      acked: [sid],
    });
    const failed: LoggedAttempt = {
      streamId: sid,
      startedAt: t,
      durationMs: 1,
      status: 500,
      outcome: 'retry',
      error: 'HTTP 500',
    };
    await settle(b, { attempts: [failed], retries: [[sid, t + 1000, encodeRetryState(1, failed)]] });
    const view = await find(messageId(TOPIC, sid));
    expect(view!.deliveries.map((d) => [d.publisher_id, d.state, d.attempts.length])).to.deep.equal([
      [a.id, 'delivered', 1],
      [b.id, 'retrying', 1],
      [c.id, 'pending', 0],
    ]);
  });

  it('finds an attempt logged in a record of messages received up to RECORD_SPAN_MS before this one', async () => {
    const p = await publisher('http://a.test/hook');
    const tk = keys.topic(TOPIC);
    const T = Date.now() - 10_000;
    const older = `${T}-0`;
    const sid = `${T + RECORD_SPAN_MS}-0`;
    await redis.xadd(tk.stream, older, 'p', '1');
    await redis.xadd(tk.stream, sid, 'p', '2');
    await read(p);
    const attempts: LoggedAttempt[] = [older, sid].map((s) => ({
      streamId: s,
      startedAt: T + 5000,
      durationMs: 3,
      status: 200,
      outcome: 'delivered',
    }));
    await settle(p, { attempts, acked: [older, sid] });
    // One record, scored by the older message.
    const log = await redis.zrange(keys.publisher(TOPIC, p.id).log, 0, -1, 'WITHSCORES');
    expect(log.filter((_, i) => i % 2 === 1)).to.deep.equal([String(T)]);
    const [delivery] = (await find(messageId(TOPIC, sid)))!.deliveries;
    expect(delivery).to.deep.include({ state: 'delivered', attempt_count: 1 });
    expect(delivery!.attempts).to.deep.equal([{ at: iso(T + 5000), status: 200, duration_ms: 3 }]);
  });

  describe('for a pull publisher', () => {
    const WORKER = { host: 'w-1', name: 'resizer' };

    async function lease(p: Publisher, now: number, leaseMs: number): Promise<string> {
      const {
        leased: [taken],
      } = await scripts.pullLease(redis, scriptKeys(keys, TOPIC, p.id), {
        group: p.id,
        consumer: PULL_CONSUMER,
        now,
        leaseMs,
        max: 1,
        scan: 1,
        filter: '',
        workerJson: JSON.stringify(WORKER),
        nonce: 'r',
        maxAgeMs: now,
        maxAgeNote: '{}',
        maxAttempts: 0,
        maxAttemptsNote: '',
        ordered: false,
        orderingAttribute: '',
      });
      return taken![0];
    }

    it('is leased while a worker holds it, with the lease among the attempts, and pending again once the lease ran out', async () => {
      const p = await publisher('workers', 'pull');
      const sid = await ingest('1');
      const t = Date.now();
      expect(await lease(p, t, 30_000)).to.equal(sid);
      const [leased] = (await find(messageId(TOPIC, sid), t + 1000))!.deliveries;
      expect(leased).to.deep.equal({
        publisher_id: p.id,
        target: 'workers',
        type: 'pull',
        state: 'leased',
        attempt_count: 1,
        attempts: [{ at: iso(t), worker: WORKER, lease_expires_at: iso(t + 30_000), outcome: 'leased' }],
      });

      const [expired] = (await find(messageId(TOPIC, sid), t + 31_000))!.deliveries;
      expect(expired).to.deep.include({ state: 'pending', attempt_count: 1 });
      expect(expired!.attempts).to.deep.equal([
        {
          at: iso(t),
          worker: WORKER,
          lease_expires_at: iso(t + 30_000),
          outcome: 'expired',
          ended_at: iso(t + 30_000),
        },
      ]);
    });
  });

  it('finds a scheduled message by the id it was given, before and after it enters the stream', async () => {
    const p = await publisher('http://a.test/hook');
    const id = `${TOPIC}.s${randomUUID().replaceAll('-', '')}`;
    const at = iso(Date.now() + 60_000);
    const data = JSON.stringify({ p: '{"later":true}', a: '', at, created_at: iso(Date.now()) });
    await scripts.schedule(redis, scriptKeys(keys, TOPIC), { id, dueAt: 1000, messageJson: data });
    expect(await find(id)).to.deep.equal({
      id,
      topic: TOPIC,
      payload: { later: true },
      attributes: {},
      state: 'scheduled',
      schedule_at: at,
      deliveries: [],
    });
    await scripts.releaseScheduled(redis, scriptKeys(keys, TOPIC), { now: 2000, max: 10 });
    const view = await find(id);
    expect(view).to.deep.include({ id, payload: { later: true } });
    expect(view!.deliveries.map((d) => [d.publisher_id, d.state])).to.deep.equal([[p.id, 'pending']]);
  });

  it('finds nothing for an unknown, malformed or trimmed id', async () => {
    await publisher('http://a.test/hook');
    const sid = await ingest('1');
    expect(await find(messageId(TOPIC, '1-0'))).to.equal(undefined);
    expect(await find(messageId('nope', sid))).to.equal(undefined);
    expect(await find(randomUUID())).to.equal(undefined);
    expect(await find('not an id')).to.equal(undefined);
    expect(await find(`${TOPIC}.`)).to.equal(undefined);
    await redis.xdel(keys.topic(TOPIC).stream, sid);
    expect(await find(messageId(TOPIC, sid))).to.equal(undefined);
  });

  describe('after an upgrade from the version with history keys', () => {
    /** A message as the old version wrote it: a UUID in the entry, the id index, and a history key. */
    async function oldMessage(p: Publisher, record: object): Promise<{ id: string; sid: string }> {
      const tk = keys.topic(TOPIC);
      const id = randomUUID();
      const sid = (await redis.xadd(tk.stream, '*', 'id', id, 'p', '{"old":true}'))!;
      await redis.hset(tk.ids, id, sid);
      const history = keys.history(TOPIC, id);
      await redis.hset(history, p.id, JSON.stringify(record));
      await redis.expire(history, 3600);
      return { id, sid };
    }

    it('finds a delivered message by its UUID, with its old attempts', async () => {
      const p = await publisher('http://a.test/hook');
      const at = '2024-03-01T10:00:00.000Z';
      const { id, sid } = await oldMessage(p, {
        state: 'delivered',
        attempts: [{ at, status: 200, duration_ms: 3 }],
        attempt_count: 1,
      });
      await read(p);
      await redis.xack(keys.topic(TOPIC).stream, p.id, sid);
      expect(await find(id)).to.deep.equal({
        id,
        topic: TOPIC,
        payload: { old: true },
        attributes: {},
        received_at: iso(Number(sid.split('-')[0])),
        deliveries: [
          {
            publisher_id: p.id,
            target: 'http://a.test/hook',
            type: 'http',
            state: 'delivered',
            attempt_count: 1,
            attempts: [{ at, status: 200, duration_ms: 3 }],
          },
        ],
      });
    });

    it('shows a message retrying across the upgrade with its old attempts followed by the new ones', async () => {
      const p = await publisher('http://a.test/hook');
      const old = { at: '2024-03-01T10:00:00.000Z', status: 502, error: 'HTTP 502', duration_ms: 8 };
      const { id, sid } = await oldMessage(p, {
        state: 'retrying',
        attempts: [old],
        attempt_count: 1,
        next_attempt_at: '2024-03-01T10:00:30.000Z',
      });
      await read(p);
      const pk = keys.publisher(TOPIC, p.id);
      // The old version kept a bare count in the attempts hash.
      await redis.zadd(pk.retries, 10, sid);
      await redis.hset(pk.attempts, sid, '1');
      const t = Date.now();
      await settle(p, {
        attempts: [{ streamId: sid, startedAt: t, durationMs: 4, status: 200, outcome: 'delivered' }],
        acked: [sid],
        cleared: [sid],
      });
      const [delivery] = (await find(id))!.deliveries;
      expect(delivery).to.deep.include({ state: 'delivered', attempt_count: 2 });
      expect(delivery!.attempts).to.deep.equal([old, { at: iso(t), status: 200, duration_ms: 4 }]);
    });
  });
});
