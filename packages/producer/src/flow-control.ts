/**
 * Operations on a publisher's whole flow, as NSQ and Pub/Sub offer them:
 * purge its backlog received before a time, or seek it back to a time so
 * that it receives again what came since. Each is one Lua script on the
 * topic's slot (`purge.lua`, `seek.lua`: the group's position moves with
 * one XGROUP SETID and one range record, and only messages that already
 * had a record of their own, retrying, leased or dead, are written one by
 * one), then a count of the stream entries the position moved past, in
 * bounded steps (`count-range.lua`), so that a backlog of millions never
 * holds Redis for long. A dry run writes nothing and answers the same
 * count: the web UI shows it before the operator confirms.
 */
import { scripts, type Keys, type Publisher, type ScriptClient } from '@postoffice/shared';

/** Entries one `count-range.lua` call counts at most. */
const COUNT_BUDGET = 20_000;

export interface PurgeResult {
  /** Messages purged (or, in a dry run, that would be): the sum of the three below. */
  readonly count: number;
  /** Not read yet: skipped without being read. */
  readonly unread: number;
  /** Read and not settled (in flight, waiting for a retry, leased): acknowledged. */
  readonly pending: number;
  /** Dead letters, dropped from the failing list. */
  readonly dead: number;
}

export interface SeekResult {
  /** Messages given to the publisher again (or, in a dry run, that would be). */
  readonly count: number;
  /** Of those, the ones waiting for a retry or leased, that are read again instead. */
  readonly retrying: number;
  /** Of those, dead letters, dropped from the failing list. */
  readonly dead: number;
  /** The time sought to (ms): never before a `from_now` publisher's creation. */
  readonly to: number;
}

export class FlowControl {
  constructor(
    private readonly redis: ScriptClient,
    private readonly keys: Keys,
    private readonly now: () => number = Date.now,
  ) {}

  /** Purges every message received before `before` (ms) that the publisher has not delivered. */
  async purge(publisher: Publisher, before: number, dryRun: boolean): Promise<PurgeResult> {
    const keys = scripts.publisherKeys(this.keys, publisher.topic, publisher.id);
    const at = this.now();
    const purged = await scripts.purge(this.redis, keys, {
      group: publisher.id,
      before: Math.floor(before),
      at,
      atIso: new Date(at).toISOString(),
      dryRun,
    });
    const { pending, dead } = purged;
    const unread = purged.unread >= 0 ? purged.unread : await this.countRange(keys.stream, purged.before, purged.after);
    return { count: unread + pending + dead, unread, pending, dead };
  }

  /**
   * Gives the publisher again every retained message received at or after
   * `to` (ms); for a `from_now` publisher, none received before it was created.
   */
  async seek(publisher: Publisher, requested: number, dryRun: boolean): Promise<SeekResult> {
    const to = publisher.from_now ? Math.max(requested, Date.parse(publisher.created_at)) : requested;
    const keys = scripts.publisherKeys(this.keys, publisher.topic, publisher.id);
    const { after, before, retrying, dead } = await scripts.seek(this.redis, keys, {
      group: publisher.id,
      to: Math.floor(to),
      at: this.now(),
      dryRun,
    });
    const count = await this.countRange(keys.stream, after, before);
    // The consumer nodes read again once woken (a pull publisher's workers read at their next lease).
    if (!dryRun && count > 0) await this.redis.publish(this.keys.wakeChannel, publisher.topic);
    return { count, retrying, dead, to };
  }

  /** The stream's entries after `from` up to `through`, counted in bounded steps. */
  private async countRange(stream: string, from: string, through: string): Promise<number> {
    if (from === through) return 0;
    let total = 0;
    let after = from;
    for (;;) {
      const { counted, next } = await scripts.countRange(this.redis, { stream }, { after, through, max: COUNT_BUDGET });
      total += counted;
      if (next === '') return total;
      after = next;
    }
  }
}
