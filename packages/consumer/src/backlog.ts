/**
 * Counts every publisher's backlog in Redis for the metrics, at scrape time.
 *
 * Cost: one XINFO GROUPS per topic and two ZCARDs per publisher, plus one
 * XPENDING and one XRANGE (COUNT 1) for each publisher that has something
 * undelivered; sent in batches without waiting for each answer. Only the
 * node that holds the janitor lease reports (the numbers are cluster-wide,
 * so one reporter is enough), and a result is reused for `minIntervalMs`,
 * so several Prometheus servers scraping the same node cost one count.
 * Nothing runs while nobody scrapes: the idle cost is unchanged.
 */
import type { Keys, ScriptClient, Store } from '@postoffice/shared';
import type { PublisherBacklog } from './metrics.js';
import type { Clock } from './types.js';

const BATCH = 500;

interface GroupInfo {
  readonly pending: number;
  readonly lastDeliveredId: string;
  /** Entries not read yet; null when Redis cannot tell (Redis 6.2, or a group set to an arbitrary id). */
  readonly lag: number | null;
}

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
    const groups = new Map<string, Map<string, GroupInfo>>();
    await inBatches([...new Set(publishers.map((p) => p.topic))], async (topic) => {
      const reply = await redis.xinfo('GROUPS', keys.topic(topic).stream).catch(() => []);
      groups.set(topic, parseGroups(reply as unknown[]));
    });
    const rows: PublisherBacklog[] = [];
    const now = this.deps.now();
    await inBatches(publishers, async (p) => {
      const group = groups.get(p.topic)?.get(p.id);
      if (!group) return;
      const pk = keys.publisher(p.topic, p.id);
      const stream = keys.topic(p.topic).stream;
      const [retrying, dead, oldestPending, firstUnread] = await Promise.all([
        failing ? redis.zcard(pk.retries) : 0,
        failing ? redis.zcard(pk.dead) : 0,
        group.pending > 0 ? redis.xpending(stream, p.id).then((r) => r[1]) : undefined,
        group.lag !== 0
          ? redis.xrange(stream, `(${group.lastDeliveredId}`, '+', 'COUNT', 1).then((r) => r[0]?.[0])
          : undefined,
      ]);
      const oldest = [oldestPending, firstUnread]
        .filter((id): id is string => typeof id === 'string')
        .map((id) => Number(id.split('-')[0]));
      const unread = group.lag ?? (firstUnread === undefined ? 0 : null);
      rows.push({
        publisher: p.id,
        topic: p.topic,
        backlog: unread === null ? Number.NaN : unread + group.pending,
        oldestAgeSeconds: oldest.length === 0 ? 0 : Math.max(0, (now - Math.min(...oldest)) / 1000),
        retrying,
        dead,
        info: p,
      });
    });
    return rows;
  }
}

async function inBatches<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += BATCH) await Promise.all(items.slice(i, i + BATCH).map(fn));
}

function parseGroups(reply: unknown[]): Map<string, GroupInfo> {
  const out = new Map<string, GroupInfo>();
  for (const raw of reply) {
    const fields = raw as unknown[];
    const info = new Map<string, unknown>();
    for (let i = 0; i + 1 < fields.length; i += 2) info.set(String(fields[i]), fields[i + 1]);
    const lag = info.get('lag');
    const last = info.get('last-delivered-id');
    out.set(String(info.get('name')), {
      pending: Number(info.get('pending') ?? 0),
      lastDeliveredId: typeof last === 'string' ? last : '0-0',
      lag: typeof lag === 'number' ? lag : null,
    });
  }
  return out;
}
