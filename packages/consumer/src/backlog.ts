/**
 * Counts every publisher's backlog in Redis for the metrics, at scrape time.
 *
 * Cost (`readBacklogs`, two round trips): one XINFO GROUPS per topic and
 * two ZCARDs per publisher, plus one XPENDING and one XRANGE (COUNT 1) for
 * each publisher that has something undelivered. Only the
 * node that holds the janitor lease reports (the numbers are cluster-wide,
 * so one reporter is enough), and a result is reused for `minIntervalMs`,
 * so several Prometheus servers scraping the same node cost one count.
 * Nothing runs while nobody scrapes: the idle cost is unchanged.
 */
import { readBacklogs, type Keys, type ScriptClient, type Store } from '@postoffice/shared';
import type { PublisherBacklog } from './metrics.js';
import type { Clock } from './types.js';

export interface BacklogCounterDeps {
  readonly redis: ScriptClient;
  readonly keys: Keys;
  readonly store: Store;
  /** Whether this node should report (it holds the janitor lease). */
  readonly reporting: () => boolean;
  readonly now: Clock;
  readonly minIntervalMs?: number;
}

export class BacklogCounter {
  private cached: { at: number; rows: readonly PublisherBacklog[] } | undefined;
  private running: Promise<readonly PublisherBacklog[]> | undefined;

  constructor(private readonly deps: BacklogCounterDeps) {}

  /** A BacklogSource for Metrics.reportBacklog. */
  readonly source = async (): Promise<readonly PublisherBacklog[] | undefined> => {
    if (!this.deps.reporting()) return undefined;
    const now = this.deps.now();
    if (this.cached && now - this.cached.at < (this.deps.minIntervalMs ?? 10_000)) return this.cached.rows;
    this.running ??= this.count().finally(() => (this.running = undefined));
    const rows = await this.running;
    this.cached = { at: now, rows };
    return rows;
  };

  /**
   * Every publisher's backlog, or only those of `topics`; without `failing`,
   * `retrying` and `dead` are left at 0 (two ZCARDs a publisher saved).
   */
  async count(topics?: ReadonlySet<string>, failing = true): Promise<readonly PublisherBacklog[]> {
    const { redis, keys } = this.deps;
    const publishers = topics
      ? (await Promise.all([...topics].map((t) => this.deps.store.listPublishersOfTopic(t)))).flat()
      : await this.deps.store.listPublishers();
    const read = await readBacklogs(redis, keys, publishers, (pipeline, p) => {
      if (!failing) return;
      const pk = keys.publisher(p.topic, p.id);
      pipeline.zcard(pk.retries);
      pipeline.zcard(pk.dead);
    });
    const now = this.deps.now();
    const rows: PublisherBacklog[] = [];
    for (const { publisher: p, group, backlog, replies, error } of read) {
      if (error) throw error;
      if (!group) continue;
      const [[, retrying = 0] = [], [, dead = 0] = []] = replies;
      rows.push({
        publisher: p.id,
        topic: p.topic,
        backlog: backlog.unread === null ? Number.NaN : backlog.unread + backlog.pending,
        oldestAgeSeconds: backlog.oldestMs === null ? 0 : Math.max(0, (now - backlog.oldestMs) / 1000),
        retrying: Number(retrying),
        dead: Number(dead),
        info: p,
      });
    }
    return rows;
  }
}
