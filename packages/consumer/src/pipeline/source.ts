/**
 * The source stage: reads a publisher's messages from Redis only as many as
 * downstream asked for. New messages come from the publisher's consumer
 * group (XREADGROUP, non-blocking: a wake-up says when to read); due
 * retries come from the publisher's retry set, leased so that a node that
 * dies mid-way gives them back by itself.
 */
import {
  decodeRetryState,
  parseEntry,
  scripts,
  type Keys,
  type Publisher,
  type ScriptClient,
} from '@postoffice/shared';
import type { Job } from '../types.js';

/** The consumer name that holds entries taken over from nodes that left (see reclaim.lua). */
export const RECLAIMED_CONSUMER = 'postoffice-reclaimed';
const ORPHAN_SCAN = 100;
const RECLAIM_BUDGET = 500;

type StreamReply = [string, [string, string[]][]][] | null;

/** Most retry-set entries one ordering-key take looks at (see take-ordered.lua). */
export const ORDERED_SCAN = 2000;

/** What `takeOrdered` found. */
export interface OrderedTake {
  readonly jobs: Job[];
  /** Earliest due time of a head left that may go later (not busy), or undefined. */
  readonly next: number | undefined;
  /** Every ordering key with an entry in the retry set. */
  readonly waiting: string[];
  /** The retry set holds more than `ORDERED_SCAN` entries: some keys were not seen. */
  readonly truncated: boolean;
}

export class Source {
  constructor(
    private readonly redis: ScriptClient,
    private readonly keys: Keys,
    private readonly consumerName: string,
    private readonly claimTimeoutMs: number,
  ) {}

  /**
   * Up to `count` messages the publisher's group has not given out yet.
   * A group that vanished while its publisher still exists (the stream was
   * deleted by hand, or Redis lost data) is created again from the start of
   * what the stream holds: a duplicate is better than a lost message, and a
   * pipeline must never wedge on NOGROUP.
   */
  async readNew(publisher: Publisher, count: number): Promise<Job[]> {
    try {
      return await this.readGroup(publisher, count);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOGROUP')) throw err;
      const tk = this.keys.topic(publisher.topic);
      if (!(await this.redis.hexists(tk.publishers, publisher.id))) return [];
      await this.redis.xgroup('CREATE', tk.stream, publisher.id, '0', 'MKSTREAM').catch((e: unknown) => {
        if (!(e instanceof Error) || !e.message.startsWith('BUSYGROUP')) throw e;
      });
      this.onGroupRecreated?.(publisher);
      return this.readGroup(publisher, count);
    }
  }

  /** Called when a vanished group was created again (for a log line). */
  onGroupRecreated: ((publisher: Publisher) => void) | undefined;

  private async readGroup(publisher: Publisher, count: number): Promise<Job[]> {
    const reply = (await this.redis.xreadgroup(
      'GROUP',
      publisher.id,
      this.consumerName,
      'COUNT',
      count,
      'STREAMS',
      this.keys.topic(publisher.topic).stream,
      '>',
    )) as StreamReply;
    const entries = reply?.[0]?.[1] ?? [];
    const topic = publisher.topic;
    const jobs: Job[] = new Array<Job>(entries.length);
    for (let i = 0; i < entries.length; i++) {
      const [streamId, fields] = entries[i] as [string, string[]];
      jobs[i] = { message: parseEntry(topic, streamId, fields), previousAttempts: 0, retry: false };
    }
    return jobs;
  }

  /**
   * Up to `count` retries that are due (or the earliest ones whatever their
   * time, when `force`), and the earliest due time left afterwards.
   */
  async takeRetries(
    publisher: Publisher,
    count: number,
    now: number,
    force = false,
  ): Promise<{ jobs: Job[]; next: number | undefined }> {
    const pk = this.keys.publisher(publisher.topic, publisher.id);
    const { next, taken } = await scripts.takeRetries(
      this.redis,
      { stream: this.keys.topic(publisher.topic).stream, retries: pk.retries, attempts: pk.attempts },
      { now, leaseEnd: now + this.claimTimeoutMs, max: count, force },
    );
    return {
      next,
      jobs: taken.map(([streamId, state, fields]) => ({
        message: parseEntry(publisher.topic, streamId, fields),
        previousAttempts: decodeRetryState(state)?.count ?? 0,
        retry: true,
      })),
    };
  }

  /**
   * The retries of an ordering-key publisher that may go now: each key's
   * earliest entry, once due, for keys not in `busy` (see take-ordered.lua).
   */
  async takeOrdered(
    publisher: Publisher,
    busy: Iterable<string>,
    count: number,
    now: number,
    force = false,
  ): Promise<OrderedTake> {
    const pk = this.keys.publisher(publisher.topic, publisher.id);
    const { next, taken, waiting, truncated } = await scripts.takeOrdered(
      this.redis,
      { stream: this.keys.topic(publisher.topic).stream, retries: pk.retries, attempts: pk.attempts },
      {
        now,
        leaseEnd: now + this.claimTimeoutMs,
        attribute: publisher.ordering_attribute ?? '',
        max: count,
        scan: ORDERED_SCAN,
        force,
        busy,
      },
    );
    return {
      next,
      jobs: taken.map(([streamId, state, fields]) => ({
        message: parseEntry(publisher.topic, streamId, fields),
        previousAttempts: decodeRetryState(state)?.count ?? 0,
        retry: true,
      })),
      waiting,
      truncated,
    };
  }

  /**
   * As `takeOverOrphans`, by consumer rather than by the first pending
   * entries, so that every earlier owner's entries are found however many
   * are pending (an ordering-key pipeline keeps read messages waiting
   * behind their key, so a node may leave many): each consumer other than
   * the reclaimed one that has entries pending and has been idle for the
   * claim timeout has them all scheduled now. Returns 0 when nothing is left
   * in the way, else the ms to wait before asking again.
   */
  async takeOverAllOrphans(publisher: Publisher, now: number): Promise<number> {
    const stream = this.keys.topic(publisher.topic).stream;
    let consumers: unknown[][];
    try {
      consumers = (await this.redis.xinfo('CONSUMERS', stream, publisher.id)) as unknown[][];
    } catch (err) {
      if (err instanceof Error && /NOGROUP|no such key/i.test(err.message)) return 0;
      throw err;
    }
    let waitMs = 0;
    const ripe: string[] = [];
    for (const row of consumers) {
      const info = new Map<string, unknown>();
      for (let k = 0; k + 1 < row.length; k += 2) info.set(String(row[k]), row[k + 1]);
      const name = String(info.get('name'));
      if (name === RECLAIMED_CONSUMER || Number(info.get('pending')) === 0) continue;
      const idle = Number(info.get('idle'));
      if (idle < this.claimTimeoutMs) waitMs = Math.max(waitMs, this.claimTimeoutMs - idle);
      else ripe.push(name);
    }
    await this.reclaim(publisher, ripe, now);
    return waitMs;
  }

  /**
   * Before an ordered publisher reads anything new on the node that just
   * took its slot: entries read by an earlier owner and never settled (its
   * in-flight head, when it was killed) must go first. Entries waiting in
   * the retry set are fine (they are taken before anything new). Any other
   * pending entry is scheduled for a new attempt now, once it has been idle
   * for the claim timeout (a delivery never outlasts that, so no one is
   * still sending it). Returns 0 when nothing is left in the way, else the
   * ms to wait before asking again.
   */
  async takeOverOrphans(publisher: Publisher, now: number): Promise<number> {
    const stream = this.keys.topic(publisher.topic).stream;
    const pk = this.keys.publisher(publisher.topic, publisher.id);
    let pending: [string, string, number, number][];
    try {
      pending = (await this.redis.xpending(stream, publisher.id, '-', '+', ORPHAN_SCAN)) as [
        string,
        string,
        number,
        number,
      ][];
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('NOGROUP')) return 0;
      throw err;
    }
    if (pending.length === 0) return 0;
    const check = this.redis.pipeline();
    for (const [id] of pending) check.zscore(pk.retries, id);
    const scores = (await check.exec()) ?? [];
    let waitMs = 0;
    const ripe = new Set<string>();
    pending.forEach(([, consumer, idle], i) => {
      if (scores[i]?.[1] !== null || consumer === RECLAIMED_CONSUMER) return;
      if (idle >= this.claimTimeoutMs) ripe.add(consumer);
      else waitMs = Math.max(waitMs, this.claimTimeoutMs - idle);
    });
    await this.reclaim(publisher, ripe, now);
    return waitMs;
  }

  /** Schedules every entry pending under each of `consumers` for a new attempt, a budget a script call. */
  private async reclaim(publisher: Publisher, consumers: Iterable<string>, now: number): Promise<void> {
    const stream = this.keys.topic(publisher.topic).stream;
    const pk = this.keys.publisher(publisher.topic, publisher.id);
    for (const consumer of consumers) {
      for (;;) {
        const { done } = await scripts.reclaim(
          this.redis,
          { stream, retries: pk.retries },
          { group: publisher.id, from: consumer, to: RECLAIMED_CONSUMER, now, max: RECLAIM_BUDGET },
        );
        if (done) break;
      }
    }
  }
}
