/**
 * The janitor: a singleton (one lease holder in the whole cluster) that
 *  - takes over the pending entries of nodes that died or left: after the
 *    claim timeout has passed since a dead node's last heartbeat (at once
 *    for a node that left on SIGTERM), every entry it had pending is
 *    scheduled for a new attempt and the node is forgotten;
 *  - trims streams below the oldest entry still needed (see trim.lua):
 *    topics that received messages since the last round, plus a few more
 *    each round so that every topic is visited in turn;
 *  - drops dead letters older than the retention period, and the attempt
 *    records, notes and range records of messages no longer in the stream;
 *  - re-indexes each visited topic's earliest scheduled message (a producer
 *    that died between scheduling and indexing left it unindexed).
 *  - adds the replacement messages that pull workers' `replace` left in a
 *    topic's outbox to their topics, when the API could not (see PullQueue).
 * Its idle cost is a few commands per heartbeat, whatever the number of
 * publishers; a reclaim costs a few commands per publisher, once per dead node.
 */
import {
  PullQueue,
  RECORD_SPAN_MS,
  scripts,
  streamIdTime,
  type Config,
  type Keys,
  type Logger,
  type ScriptClient,
  type Store,
} from '@postoffice/shared';
import type { Lease } from './cluster/lease.js';
import type { Membership } from './cluster/membership.js';
import type { RetryIndex } from './retry-index.js';
import type { Clock } from './types.js';
import { RECLAIMED_CONSUMER } from './pipeline/source.js';

export { RECLAIMED_CONSUMER };

const SWEEP_PER_ROUND = 20;
const TRIM_BUDGET = 2000;
const RECLAIM_BUDGET = 500;

export interface JanitorDeps {
  readonly redis: ScriptClient;
  readonly keys: Keys;
  readonly store: Store;
  readonly membership: Membership;
  readonly lease: Lease;
  readonly retryIndex: RetryIndex;
  readonly config: Pick<Config, 'claimTimeoutSeconds' | 'retentionSeconds' | 'trimIntervalSeconds' | 'nodeId'>;
  readonly logger: Logger;
  readonly now: Clock;
}

export class Janitor {
  private readonly dirty = new Set<string>();
  private sweepCursor = 0;
  private nextTrimAt = 0;
  private readonly pull: PullQueue;

  constructor(private readonly deps: JanitorDeps) {
    this.pull = new PullQueue(deps.redis, deps.keys, deps.now);
  }

  /** Whether this node holds the janitor lease (as of its last round). */
  get holdsLease(): boolean {
    return this.deps.lease.held;
  }

  /** A topic received messages: trim it in the next round. */
  markDirty(topic: string): void {
    this.dirty.add(topic);
  }

  /** One round; does nothing unless this node holds the janitor lease. */
  async tick(): Promise<void> {
    if (!(await this.deps.lease.acquireOrRenew())) return;
    await this.reclaimDeadNodes();
    if (this.deps.now() >= this.nextTrimAt) {
      this.nextTrimAt = this.deps.now() + this.deps.config.trimIntervalSeconds * 1000;
      await this.trimRound();
    }
  }

  async reclaimDeadNodes(): Promise<void> {
    const claimMs = this.deps.config.claimTimeoutSeconds * 1000;
    for (const node of await this.deps.membership.silent()) {
      if (node.id === this.deps.config.nodeId) continue;
      if (node.lastSeen !== 0 && this.deps.now() < node.lastSeen + claimMs) continue;
      const moved = await this.reclaimNode(node.id);
      await this.deps.membership.forget(node.id);
      this.deps.logger.info({ deadNode: node.id, moved }, 'took over the pending messages of a node that left');
    }
  }

  /** Schedules every entry `consumer` has pending, in every publisher, for a new attempt now. */
  async reclaimNode(consumer: string): Promise<number> {
    let total = 0;
    for (const publisher of await this.deps.store.listPublishers()) {
      const stream = this.deps.keys.topic(publisher.topic).stream;
      const retries = this.deps.keys.publisher(publisher.topic, publisher.id).retries;
      let moved = 0;
      for (;;) {
        const { scheduled, done } = await scripts.reclaim(
          this.deps.redis,
          { stream, retries },
          { group: publisher.id, from: consumer, to: RECLAIMED_CONSUMER, now: this.deps.now(), max: RECLAIM_BUDGET },
        );
        moved += scheduled;
        if (done) break;
      }
      if (moved > 0) await this.deps.retryIndex.lower(publisher.id, this.deps.now());
      total += moved;
    }
    return total;
  }

  async trimRound(): Promise<void> {
    const names = await this.deps.store.listTopicNames();
    const round = new Set(this.dirty);
    this.dirty.clear();
    for (let i = 0; i < Math.min(SWEEP_PER_ROUND, names.length); i++) {
      round.add(names[(this.sweepCursor + i) % names.length] as string);
    }
    this.sweepCursor = names.length === 0 ? 0 : (this.sweepCursor + SWEEP_PER_ROUND) % names.length;
    for (const topic of round) {
      await this.moveOutbox(topic);
      await this.trimTopic(topic);
    }
  }

  /** Adds replacement messages left in the topic's outbox to their topics. */
  async moveOutbox(topic: string): Promise<number> {
    if ((await this.pull.outboxSize(topic)) === 0) return 0;
    const moved = await this.pull.moveOutbox(topic);
    if (moved > 0) this.deps.logger.info({ topic, moved }, 'added replacement messages left in an outbox');
    return moved;
  }

  /** Trims one topic's stream as far as it safely can; returns the number of entries removed. */
  async trimTopic(topic: string): Promise<number> {
    const cutoff = this.deps.now() - this.deps.config.retentionSeconds * 1000;
    const tk = this.deps.keys.topic(topic);
    let removed = 0;
    for (let round = 0; round < 50; round++) {
      const trimmed = await scripts.trim(
        this.deps.redis,
        { stream: tk.stream, ids: tk.ids },
        { cutoff, max: TRIM_BUDGET },
      );
      removed += trimmed.removed;
      if (!trimmed.more) break;
    }
    const ids = await this.deps.redis.hkeys(tk.publishers);
    if (ids.length > 0) {
      // What the oldest retained message was received at: records and notes of older messages are of no use.
      const firstEntry = await this.deps.redis.xrange(tk.stream, '-', '+', 'COUNT', 1);
      const first = firstEntry[0];
      const floor = Math.min(cutoff, first ? streamIdTime(first[0]) : cutoff);
      const pipeline = this.deps.redis.pipeline();
      for (const id of ids) {
        const pk = this.deps.keys.publisher(topic, id);
        pipeline.zremrangebyscore(pk.dead, '-inf', cutoff);
        pipeline.zremrangebyscore(pk.log, '-inf', `(${floor - RECORD_SPAN_MS}`);
        // A purge's or seek's record whose newest message is gone covers nothing any more.
        pipeline.zremrangebyscore(pk.ranges, '-inf', `(${floor}`);
      }
      await pipeline.exec();
      for (const id of ids) await this.pruneNotes(this.deps.keys.publisher(topic, id).notes, floor);
    }
    const first = await this.deps.redis.zrange(tk.scheduled, 0, 0, 'WITHSCORES');
    if (first[1] !== undefined) await this.deps.redis.zadd(this.deps.keys.scheduleDue, 'LT', first[1], topic);
    if (removed > 0) this.deps.logger.debug({ topic, removed }, 'trimmed stream');
    return removed;
  }

  /** Drops the notes of messages received before `floor` (ms): no longer in the stream. */
  private async pruneNotes(key: string, floor: number): Promise<void> {
    let cursor = '0';
    do {
      const [next, fields] = await this.deps.redis.hscan(key, cursor, 'COUNT', 500);
      cursor = next;
      const old: string[] = [];
      for (let i = 0; i < fields.length; i += 2) {
        const sid = fields[i] as string;
        if (streamIdTime(sid) < floor) old.push(sid);
      }
      if (old.length > 0) await this.deps.redis.hdel(key, ...old);
    } while (cursor !== '0');
  }

  async close(): Promise<void> {
    await this.deps.lease.release();
  }
}
