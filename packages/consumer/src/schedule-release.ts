/**
 * Moves scheduled messages into their topic's stream once due. One global
 * sorted set maps each topic to its earliest scheduled time; every node
 * polls it with the retry index (same interval), and for each due topic
 * runs release-scheduled.lua until nothing due is left, then sets the
 * topic's index score to its next scheduled time and wakes the topic's
 * pipelines. Several nodes may release the same topic at once: the script
 * moves each message once.
 *
 * The index is raised like the retry index (set, then re-read the topic's
 * set and lower again), so a message scheduled meanwhile is never missed.
 */
import { scripts, type Keys, type ScriptClient } from '@postoffice/shared';

const RELEASE_BUDGET = 500;

export class ScheduleRelease {
  constructor(
    private readonly redis: ScriptClient,
    private readonly keys: Keys,
  ) {}

  /** Topics with scheduled messages due at `now`. */
  async due(now: number, limit = 100): Promise<string[]> {
    return this.redis.zrange(this.keys.scheduleDue, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit);
  }

  /** Moves every due message of `topic` into its stream; returns how many were moved. */
  async release(topic: string, now: number): Promise<number> {
    const tk = this.keys.topic(topic);
    let moved = 0;
    let next: number | undefined;
    for (;;) {
      const released = await scripts.releaseScheduled(
        this.redis,
        { topic: tk.meta, stream: tk.stream, ids: tk.ids, scheduled: tk.scheduled, scheduledData: tk.scheduledData },
        { now, max: RELEASE_BUDGET },
      );
      moved += released.moved;
      next = released.next;
      if (next === undefined || next > now) break;
    }
    if (next === undefined) await this.redis.zrem(this.keys.scheduleDue, topic);
    else await this.redis.zadd(this.keys.scheduleDue, next, topic);
    await this.reindex(topic, next);
    if (moved > 0) await this.redis.publish(this.keys.wakeChannel, topic);
    return moved;
  }

  /** Lowers the topic's index score to its earliest scheduled message if that is earlier than `known`. */
  async reindex(topic: string, known?: number): Promise<void> {
    const first = await this.redis.zrange(this.keys.topic(topic).scheduled, 0, 0, 'WITHSCORES');
    const score = first[1];
    if (score !== undefined && (known === undefined || Number(score) < known)) {
      await this.redis.zadd(this.keys.scheduleDue, 'LT', score, topic);
    }
  }
}
