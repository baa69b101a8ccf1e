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
import { randomBytes, randomUUID } from 'node:crypto';
import { checkScriptResult, NotFoundError, ValidationError } from './errors.js';
import type { Keys } from './keys.js';
import { parseEntry } from './message.js';
import { isStreamId } from './ids.js';
import type { ScriptClient } from './scripts.js';
import type { LeaseWorker, Publisher, StoredMessage } from './types.js';
import { MAX_ATTEMPTS_KEPT } from './types.js';

/** The consumer name the group records for messages handed to workers (never a node id). */
export const PULL_CONSUMER = 'postoffice-pull';

/** Most available messages one lease call looks at when it filters on attributes. */
export const LEASE_SCAN = 1000;

export interface LeaseRequest {
  readonly max: number;
  readonly leaseSeconds: number;
  readonly worker: LeaseWorker;
  /** Only messages with all these attributes. */
  readonly filter?: Readonly<Record<string, string>>;
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

type LeaseReply = [[string, string[], number, string, string][], [string, string, string][]];

export class PullQueue {
  constructor(
    private readonly redis: ScriptClient,
    private readonly keys: Keys,
    private readonly historyTtlSeconds: number,
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
    const call = () =>
      this.redis.poPullLease(
        5,
        tk.stream,
        pk.retries,
        pk.attempts,
        pk.leases,
        pk.dead,
        publisher.id,
        PULL_CONSUMER,
        now,
        leaseMs,
        request.max,
        filter ? LEASE_SCAN : request.max,
        filter,
        JSON.stringify(request.worker),
        randomBytes(9).toString('base64url'),
        Number.isFinite(this.maxAgeSeconds) ? this.maxAgeSeconds * 1000 : now,
      );
    let reply: LeaseReply;
    try {
      reply = (await call()) as LeaseReply;
    } catch (err) {
      // The group vanished (the stream was deleted by hand, or Redis lost data): as the consumer's
      // Source does, create it again from the oldest retained message rather than wedge.
      if (!(err instanceof Error) || !err.message.includes('NOGROUP')) throw err;
      if (!(await this.redis.hexists(tk.publishers, publisher.id))) return [];
      await this.redis.xgroup('CREATE', tk.stream, publisher.id, '0', 'MKSTREAM').catch((e: unknown) => {
        if (!(e instanceof Error) || !e.message.startsWith('BUSYGROUP')) throw e;
      });
      reply = (await call()) as LeaseReply;
    }
    const [taken, died] = reply;
    const leased = taken.map(([sid, fields, attempt, token, previous]) => ({
      token,
      message: parseEntry(sid, fields),
      attempt: Number(attempt),
      expiresAt: now + leaseMs,
      previous,
    }));
    if (leased.length + died.length > 0) {
      // The histories: informational, written right after the leases were taken.
      const keys = [
        ...leased.map((l) => this.keys.history(publisher.topic, l.message.id)),
        ...died.map(([, messageId]) => this.keys.history(publisher.topic, messageId)),
      ];
      const args: (string | number)[] = [publisher.id, this.historyTtlSeconds, MAX_ATTEMPTS_KEPT, keys.length];
      for (const l of leased) {
        const attempt = {
          token: l.token,
          worker: request.worker,
          at: now,
          lease_expires_at: l.expiresAt,
          outcome: 'leased',
        };
        const previousToken = l.previous ? (JSON.parse(l.previous) as { token?: string }).token : undefined;
        args.push('l', JSON.stringify(attempt), l.attempt, previousToken ?? '');
      }
      for (const [, , previous] of died) {
        const reason = `the lease ran out unanswered after the max age (${this.maxAgeSeconds} s)`;
        args.push('x', reason, '', (JSON.parse(previous) as { token?: string }).token ?? '');
      }
      await this.redis.poPullRecord(keys.length, ...keys, ...args);
    }
    return leased.map(({ previous: _previous, ...l }) => l);
  }

  /** Acknowledges the message: done for this publisher. */
  async complete(token: string): Promise<LeaseTarget> {
    const t = await this.resolve(token);
    await this.settle(t, 'complete', '', '', '');
    return t;
  }

  /** Gives the message back, to be leased again no earlier than `inSeconds` from now. */
  async retry(token: string, inSeconds: number, reason: string): Promise<LeaseTarget & { dueAt: number }> {
    const t = await this.resolve(token);
    const dueAt = this.now() + Math.round(inSeconds * 1000);
    await this.settle(t, 'retry', dueAt, reason, new Date(dueAt).toISOString());
    return { ...t, dueAt };
  }

  /** Fails the message for good: a dead letter. */
  async fail(token: string, reason: string): Promise<LeaseTarget> {
    const t = await this.resolve(token);
    await this.settle(t, 'fail', t.message.receivedAt, reason, '');
    return t;
  }

  /** Moves the lease's end to `leaseSeconds` from now. */
  async extend(token: string, leaseSeconds: number): Promise<LeaseTarget & { expiresAt: number }> {
    const t = await this.resolve(token);
    const expiresAt = this.now() + Math.round(leaseSeconds * 1000);
    await this.settle(t, 'extend', expiresAt, '', '');
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
      id: randomUUID(),
      topic: r.topic,
      p: JSON.stringify(r.payload),
      a: r.attributes && Object.keys(r.attributes).length > 0 ? JSON.stringify(r.attributes) : '',
    }));
    const ids = messages.map((m) => m.id);
    await this.settle(t, 'replace', randomUUID(), JSON.stringify(messages), JSON.stringify(ids));
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
        const result = await this.redis.poOutboxMove(3, dk.meta, dk.stream, dk.ids, m.id, m.p, m.a);
        // -1: the topic is gone. Kept in the outbox (and reported by the caller's logs) rather than dropped.
        if (result === -1) complete = false;
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
        .exec()) ?? [];
    for (const [err] of rows) if (err) throw err;
    const json = rows[0]?.[1] as string | null | undefined;
    const range = (rows[1]?.[1] ?? []) as [string, string[]][];
    const entry = range[0];
    if (!json || !entry) throw notFound();
    const publisher = JSON.parse(json) as Publisher;
    if (publisher.type !== 'pull') throw notFound();
    return { token, publisher, streamId, message: parseEntry(entry[0], entry[1]) };
  }

  private async settle(
    t: LeaseTarget,
    action: 'complete' | 'retry' | 'fail' | 'extend' | 'replace',
    arg: string | number,
    text: string,
    extra: string,
  ): Promise<number> {
    const { publisher } = t;
    const tk = this.keys.topic(publisher.topic);
    const pk = this.keys.publisher(publisher.topic, publisher.id);
    return checkScriptResult(
      (await this.redis.poPullSettle(
        7,
        tk.stream,
        pk.retries,
        pk.attempts,
        pk.dead,
        pk.leases,
        this.keys.history(publisher.topic, t.message.id),
        tk.outbox,
        publisher.id,
        t.streamId,
        t.token,
        this.now(),
        action,
        arg,
        text,
        extra,
        this.historyTtlSeconds,
        MAX_ATTEMPTS_KEPT,
      )) as number,
    );
  }
}

/** What a lease token names. */
export interface LeaseTarget {
  readonly token: string;
  readonly publisher: Publisher;
  readonly streamId: string;
  readonly message: StoredMessage;
}
