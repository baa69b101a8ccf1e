/**
 * The retry index: one global sorted set, publisher id -> the earliest due
 * time among its retries. Each node polls it with one command per
 * interval, whatever the number of publishers, and wakes the pipelines
 * whose retries are due.
 *
 * Invariant: a publisher's index score is never later than its earliest
 * retry (early is harmless: a wake that finds nothing due re-sets it).
 * Lowering is a plain `ZADD LT`. Raising is done in two steps, set then
 * re-check: a writer that adds a retry meanwhile lowers after its own add,
 * so one of the two always sees the other's write.
 */
import type { Keys, ScriptClient } from '@postoffice/shared';

export class RetryIndex {
  constructor(
    private readonly redis: ScriptClient,
    private readonly keys: Keys,
  ) {}

  /** Makes sure the publisher is woken no later than `dueAt`. */
  async lower(publisherId: string, dueAt: number): Promise<void> {
    await this.redis.zadd(this.keys.retryDue, 'LT', dueAt, publisherId);
  }

  /**
   * Sets the publisher's score to `next` (the earliest retry left, as the
   * take script saw it; undefined when none), then re-reads the retry set
   * and lowers again if a retry was added meanwhile.
   */
  async raise(topic: string, publisherId: string, next: number | undefined): Promise<void> {
    if (next === undefined) await this.redis.zrem(this.keys.retryDue, publisherId);
    else await this.redis.zadd(this.keys.retryDue, next, publisherId);
    const first = await this.redis.zrange(this.keys.publisher(topic, publisherId).retries, 0, 0, 'WITHSCORES');
    const score = first[1];
    if (score !== undefined && (next === undefined || Number(score) < next)) {
      await this.lower(publisherId, Number(score));
    }
  }

  /**
   * Sets the publisher's score to `next` (undefined: removes it) without the
   * re-check of `raise`: for ordering-key publishers, whose retry set holds
   * entries that wait behind their key whatever their score. They lower the
   * index themselves after their own retries, and look again within a minute.
   */
  async set(publisherId: string, next: number | undefined): Promise<void> {
    if (next === undefined) await this.redis.zrem(this.keys.retryDue, publisherId);
    else await this.redis.zadd(this.keys.retryDue, next, publisherId);
  }

  /** Removes the publisher (it is inactive or deleted); `raise` puts it back. */
  async forget(publisherId: string): Promise<void> {
    await this.redis.zrem(this.keys.retryDue, publisherId);
  }

  /** Publisher ids whose retries are due at `now`. */
  async due(now: number, limit = 1000): Promise<string[]> {
    return this.redis.zrange(this.keys.retryDue, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit);
  }
}
