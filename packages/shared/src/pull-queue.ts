/**
 * Pull publishers: workers lease messages instead of having them pushed.
 *
 * A lease's life (per message and pull publisher):
 *   available -> leased        (lease: pull-lease.lua, token handed out)
 *   leased -> available        (the lease ends unanswered: given out again)
 *   leased -> leased           (extend: a later end)
 *   leased -> retrying         (retry in N s: available again at N)
 *   leased -> done             (complete; replace = complete + new messages)
 *   leased -> dead             (fail: a dead letter, as for http publishers)
 *
 * The publisher's consumer group on the topic's stream is its position, as
 * for any publisher; a leased or retrying message stays pending in the
 * group (so the janitor never trims it) and waits in the publisher's
 * retries set with its lease end or due time as score: whatever has a score
 * that has come is available. So an expired lease needs no sweeper.
 *
 * `replace` must publish to other topics, whose keys live in other hash
 * slots: one script cannot do it on Redis Cluster. It completes the lease
 * and records the replacements in the source topic's outbox in one script
 * (one slot), then moves each replacement into its topic with its id
 * assigned up front; a topic's id index makes a second move a no-op. Any
 * caller may move an outbox (the API right after the replace, the janitor
 * each round), as often as it likes: the replacements appear once, and
 * never without the lease being completed.
 */
import { randomBytes } from 'node:crypto';
import { encodeRecords, recordTag, type LoggedAttempt, type LoggedOutcome } from './attempt-record.js';
import { NotFoundError, ValidationError } from './errors.js';
import { isStreamId } from './ids.js';
import type { Keys } from './keys.js';
import { parseEntry } from './message.js';
import { scripts, type ScriptClient } from './scripts.js';
import { SERIES_TTL_SECONDS, seriesSlot } from './series.js';
import { parsePublisher } from './store.js';
import type { LeaseWorker, Publisher, StoredMessage } from './types.js';

/** The consumer name the group records for messages handed to workers (never a node id). */
export const PULL_CONSUMER = 'postoffice-pull';

/** Most available messages one lease call looks at when it filters on attributes. */
export const LEASE_SCAN = 1000;

export interface LeaseRequest {
  readonly max: number;
  readonly leaseSeconds: number;
  readonly worker: LeaseWorker;
  /** Only messages with all these attributes (each the value, or one of the list). */
  readonly filter?: Readonly<Record<string, string | readonly string[]>>;
  /** Most payload bytes to lease at once (at least one message is leased); no bound when absent. */
  readonly byteBudget?: number;
}

export interface LeasedMessage {
  readonly token: string;
  readonly message: StoredMessage;
  /** 1 for the first lease of this message. */
  readonly attempt: number;
  readonly expiresAt: number;
}

export interface Replacement {
  readonly topic: string;
  readonly payload: unknown;
  readonly attributes?: Readonly<Record<string, string>>;
}

interface OutboxMessage {
  readonly id: string;
  readonly topic: string;
  readonly p: string;
  readonly a: string;
}

/** A lease token: `<publisher id>.<stream id>.<random>`. */
const TOKEN = /^([1-9]\d{0,17})\.(\d{1,20}-\d{1,20})\.([A-Za-z0-9_-]{1,64})$/;

/** A lease as kept in the publisher's leases hash. */
export interface StoredLease {
  readonly token: string;
  readonly worker: LeaseWorker;
  readonly leased_at: number;
  readonly expires_at: number;
  readonly attempt: number;
}

function parseLease(json: string | null | undefined): StoredLease | undefined {
  if (!json) return undefined;
  try {
    const lease = JSON.parse(json) as StoredLease;
    return lease && typeof lease === 'object' && typeof lease.token === 'string' ? lease : undefined;
  } catch {
    return undefined;
  }
}

export class PullQueue {
  constructor(
    private readonly redis: ScriptClient,
    private readonly keys: Keys,
    private readonly now: () => number = Date.now,
    /** A lease that runs out on a message older than this makes it a dead letter (RETRY_MAX_AGE_SECONDS). */
    private readonly maxAgeSeconds = Infinity,
  ) {}

  /** Leases up to `max` available messages of the pull publisher. */
  async lease(publisher: Publisher, request: LeaseRequest): Promise<LeasedMessage[]> {
    if (!publisher.active) return [];
    const tk = this.keys.topic(publisher.topic);
    const pk = this.keys.publisher(publisher.topic, publisher.id);
    const now = this.now();
    const leaseMs = Math.round(request.leaseSeconds * 1000);
    const filter = request.filter && Object.keys(request.filter).length > 0 ? JSON.stringify(request.filter) : '';
    const maxAge = publisher.retry_max_age_seconds ?? this.maxAgeSeconds;
    const which = publisher.retry_max_age_seconds == null ? 'the max age' : 'retry_max_age_seconds';
    const reason = `the lease ran out unanswered after ${which} (${maxAge} s)`;
    const maxAttempts = publisher.retry_max_attempts ?? 0;
    const attemptsReason = `the lease ran out unanswered after ${maxAttempts} lease${maxAttempts === 1 ? '' : 's'} (retry_max_attempts ${maxAttempts})`;
    const ordered = publisher.ordered === true;
    const call = () =>
      scripts.pullLease(
        this.redis,
        {
          stream: tk.stream,
          retries: pk.retries,
          attempts: pk.attempts,
          leases: pk.leases,
          dead: pk.dead,
          notes: pk.notes,
        },
        {
          group: publisher.id,
          consumer: PULL_CONSUMER,
          now,
          leaseMs,
          max: request.max,
          scan: filter || ordered ? LEASE_SCAN : request.max,
          filter,
          workerJson: JSON.stringify(request.worker),
          nonce: randomBytes(9).toString('base64url'),
          maxAgeMs: Number.isFinite(maxAge) ? maxAge * 1000 : now,
          maxAgeNote: JSON.stringify({ dead_reason: reason }),
          maxAttempts,
          maxAttemptsNote: JSON.stringify({ dead_reason: attemptsReason, attempt_count: maxAttempts }),
          ordered,
          orderingAttribute: publisher.ordering_attribute ?? '',
          byteBudget: request.byteBudget ?? Number.MAX_SAFE_INTEGER,
        },
      );
    let reply: scripts.PullLeaseReply;
    try {
      reply = await call();
    } catch (err) {
      // The group vanished (the stream was deleted by hand, or Redis lost data): as the consumer's
      // Source does, create it again from the oldest retained message rather than wedge.
      if (!(err instanceof Error) || !err.message.includes('NOGROUP')) throw err;
      if (!(await this.redis.hexists(tk.publishers, publisher.id))) return [];
      await this.redis.xgroup('CREATE', tk.stream, publisher.id, '0', 'MKSTREAM').catch((e: unknown) => {
        if (!(e instanceof Error) || !e.message.startsWith('BUSYGROUP')) throw e;
      });
      reply = await call();
    }
    const { leased: taken, died } = reply;
    // Leases that ran out unanswered go to the attempt log as expired (informational, written right after).
    const expired: LoggedAttempt[] = [];
    for (const [sid, , , , previous] of taken) {
      const lease = parseLease(previous);
      if (lease) expired.push(leaseEnd(sid, lease, 'expired', lease.expires_at));
    }
    for (const [sid, previous] of died) {
      const lease = parseLease(previous);
      if (lease) expired.push(leaseEnd(sid, lease, 'expired', lease.expires_at));
    }
    await this.log(publisher, expired, now);
    return taken.map(([sid, fields, attempt, token]) => ({
      token,
      message: parseEntry(publisher.topic, sid, fields),
      attempt: Number(attempt),
      expiresAt: now + leaseMs,
    }));
  }

  private async log(publisher: Publisher, attempts: LoggedAttempt[], now: number): Promise<void> {
    if (attempts.length === 0) return;
    const records = encodeRecords(attempts, now, recordTag);
    await this.redis.zadd(
      this.keys.publisher(publisher.topic, publisher.id).log,
      ...records.flatMap((r) => [r.score, r.member]),
    );
  }

  /** Acknowledges the message: done for this publisher. */
  async complete(token: string): Promise<LeaseTarget> {
    const t = await this.resolve(token);
    await this.settle(t, { action: 'complete', outcome: 'completed' });
    return t;
  }

  /** Gives the message back, to be leased again no earlier than `inSeconds` from now. */
  async retry(token: string, inSeconds: number, reason: string): Promise<LeaseTarget & { dueAt: number }> {
    const t = await this.resolve(token);
    const dueAt = this.now() + Math.round(inSeconds * 1000);
    await this.settle(t, {
      action: 'retry',
      outcome: 'worker_retry',
      arg: dueAt,
      ...(reason ? { error: reason } : {}),
    });
    return { ...t, dueAt };
  }

  /** Fails the message for good: a dead letter. */
  async fail(token: string, reason: string): Promise<LeaseTarget> {
    const t = await this.resolve(token);
    await this.settle(t, {
      action: 'fail',
      outcome: 'failed',
      error: reason,
      note: { dead_reason: reason, attempt_count: t.lease?.attempt ?? 1 },
    });
    return t;
  }

  /** Moves the lease's end to `leaseSeconds` from now. */
  async extend(token: string, leaseSeconds: number): Promise<LeaseTarget & { expiresAt: number }> {
    const t = await this.resolve(token);
    const expiresAt = this.now() + Math.round(leaseSeconds * 1000);
    await this.settle(t, { action: 'extend', arg: expiresAt });
    return { ...t, expiresAt };
  }

  /**
   * Completes the message and publishes `replacements` in its place, all or
   * nothing: the lease is completed and the replacements recorded in one
   * step (refused as a whole when the lease is stale), then moved into
   * their topics (see `moveOutbox`). Unknown topics are refused before
   * anything is written. Returns the new messages' ids.
   */
  async replace(
    token: string,
    replacements: readonly Replacement[],
  ): Promise<LeaseTarget & { ids: string[]; moved: boolean }> {
    const t = await this.resolve(token);
    const topics = [...new Set(replacements.map((r) => r.topic))];
    const exists = await Promise.all(topics.map((name) => this.redis.exists(this.keys.topic(name).meta)));
    const errors: Record<string, string[]> = {};
    replacements.forEach((r, i) => {
      if (exists[topics.indexOf(r.topic)] === 0) errors[`messages[${i}].topic`] = ['is invalid'];
    });
    if (Object.keys(errors).length > 0) throw new ValidationError(errors, 400, 'topic_not_found');
    const messages: OutboxMessage[] = replacements.map((r) => ({
      id: `${r.topic}.r${randomBytes(12).toString('base64url')}`,
      topic: r.topic,
      p: JSON.stringify(r.payload),
      a: r.attributes && Object.keys(r.attributes).length > 0 ? JSON.stringify(r.attributes) : '',
    }));
    const ids = messages.map((m) => m.id);
    await this.settle(t, {
      action: 'replace',
      outcome: 'replaced',
      arg: randomBytes(12).toString('base64url'),
      outbox: JSON.stringify(messages),
      note: { replaced_by: ids },
    });
    // Committed: from here on the replacements will appear. A failed move is left for the next mover.
    const moved = await this.moveOutbox(t.publisher.topic).then(
      () => true,
      () => false,
    );
    return { ...t, ids, moved };
  }

  /**
   * Adds every replacement recorded in the topic's outbox to its topic,
   * once, then forgets the outbox entry. Safe to run at any time, by
   * anyone, concurrently. Returns the number of outbox entries done.
   */
  async moveOutbox(topic: string): Promise<number> {
    const outbox = this.keys.topic(topic).outbox;
    const entries = await this.redis.hgetall(outbox);
    let done = 0;
    for (const [outboxId, json] of Object.entries(entries)) {
      const messages = JSON.parse(json) as OutboxMessage[];
      const woken = new Set<string>();
      let complete = true;
      for (const m of messages) {
        const dk = this.keys.topic(m.topic);
        const streamId = await scripts.outboxMove(
          this.redis,
          { topic: dk.meta, stream: dk.stream, ids: dk.ids },
          { id: m.id, payloadJson: m.p, attributesJson: m.a },
        );
        // The topic is gone. Kept in the outbox (and reported by the caller's logs) rather than dropped.
        if (streamId === undefined) complete = false;
        else woken.add(m.topic);
      }
      for (const name of woken) await this.redis.publish(this.keys.wakeChannel, name);
      if (complete) {
        await this.redis.hdel(outbox, outboxId);
        done++;
      }
    }
    return done;
  }

  /** Outbox entries of the topic still to be moved. */
  async outboxSize(topic: string): Promise<number> {
    return this.redis.hlen(this.keys.topic(topic).outbox);
  }

  /** The publisher, message and stream id a token names; 404 when there is no such lease, 409 when it ended. */
  async resolve(token: string): Promise<LeaseTarget> {
    const notFound = () => new NotFoundError('lease_not_found', 'token', 'lease not found');
    const m = TOKEN.exec(token);
    if (!m) throw notFound();
    const [, publisherId, streamId] = m as unknown as [string, string, string];
    // An id Redis would refuse (a part beyond 2^64-1) names no lease.
    if (!isStreamId(streamId)) throw notFound();
    const topic = await this.redis.hget(this.keys.publisherIndex, publisherId);
    if (topic === null) throw notFound();
    const rows =
      (await this.redis
        .pipeline()
        .hget(this.keys.topic(topic).publishers, publisherId)
        .xrange(this.keys.topic(topic).stream, streamId, streamId)
        .hget(this.keys.publisher(topic, publisherId).leases, streamId)
        .exec()) ?? [];
    for (const [err] of rows) if (err) throw err;
    const json = rows[0]?.[1] as string | null | undefined;
    const range = (rows[1]?.[1] ?? []) as [string, string[]][];
    const entry = range[0];
    if (!json || !entry) throw notFound();
    const publisher = parsePublisher(json);
    if (publisher.type !== 'pull') throw notFound();
    const lease = parseLease(rows[2]?.[1] as string | null | undefined);
    return {
      token,
      publisher,
      streamId,
      message: parseEntry(topic, entry[0], entry[1]),
      ...(lease?.token === token ? { lease } : {}),
    };
  }

  private async settle(
    t: LeaseTarget,
    change: {
      readonly action: 'complete' | 'retry' | 'fail' | 'extend' | 'replace';
      readonly outcome?: LoggedOutcome;
      readonly arg?: string | number;
      readonly error?: string;
      readonly outbox?: string;
      readonly note?: Record<string, unknown>;
    },
  ): Promise<number> {
    const { publisher } = t;
    const tk = this.keys.topic(publisher.topic);
    const pk = this.keys.publisher(publisher.topic, publisher.id);
    const now = this.now();
    const slot = seriesSlot(now);
    const lease = t.lease;
    const record =
      change.outcome && lease
        ? encodeRecords(
            [{ ...leaseEnd(t.streamId, lease, change.outcome, now), ...(change.error ? { error: change.error } : {}) }],
            now,
            recordTag,
          )[0]
        : undefined;
    return scripts.pullSettle(
      this.redis,
      {
        stream: tk.stream,
        retries: pk.retries,
        attempts: pk.attempts,
        dead: pk.dead,
        leases: pk.leases,
        log: pk.log,
        notes: pk.notes,
        outbox: tk.outbox,
        counts: pk.counts,
        series: this.keys.series(publisher.topic, slot.hour),
      },
      {
        group: publisher.id,
        streamId: t.streamId,
        token: t.token,
        now,
        action: change.action,
        arg: change.arg ?? '',
        outbox: change.outbox ?? '',
        note: change.note ? JSON.stringify(change.note) : '',
        recordScore: record ? record.score : '',
        record: record ? record.member : '',
        minute: slot.minute,
        seriesTtl: SERIES_TTL_SECONDS,
      },
    );
  }
}

/** A lease's end as an attempt of the log. */
function leaseEnd(streamId: string, lease: StoredLease, outcome: LoggedOutcome, endedAt: number): LoggedAttempt {
  return {
    streamId,
    startedAt: lease.leased_at,
    durationMs: Math.max(0, endedAt - lease.leased_at),
    outcome,
    worker: lease.worker,
    leaseExpiresAt: lease.expires_at,
  };
}

/** What a lease token names. */
export interface LeaseTarget {
  readonly token: string;
  readonly publisher: Publisher;
  readonly streamId: string;
  readonly message: StoredMessage;
  /** The lease as stored, when the token is still its message's current lease. */
  readonly lease?: StoredLease;
}
