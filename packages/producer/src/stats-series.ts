/**
 * `GET /api/stats/series`: the per-minute counters (`@postoffice/shared`'s
 * `series.ts`) read back as buckets: one a minute over the last hour, one
 * every ten minutes over the last day. Each bucket sums the received
 * messages of the topics in scope, the delivered messages and failed
 * attempts of the publishers in scope, and takes the highest backlog
 * sample (summed over the publishers) and the oldest waiting age sample
 * (highest over the publishers) it holds; a bucket without a sample has
 * `null` there (the janitor's node samples once a minute).
 *
 * Cost: one round trip with one `HGETALL` per topic in scope per hour the
 * window touches (2 for the hour, 25 for the day), one pipeline per topic
 * on a cluster. Nothing is written.
 */
import { MINUTE_MS, inOneRoundTrip, seriesSlot, type Publisher } from '@postoffice/shared';
import type { StatsContext } from './routes/stats.js';

export type SeriesWindow = 'hour' | 'day';

export const WINDOWS: Record<SeriesWindow, { readonly buckets: number; readonly bucketMinutes: number }> = {
  hour: { buckets: 60, bucketMinutes: 1 },
  day: { buckets: 144, bucketMinutes: 10 },
};

export interface SeriesPoint {
  /** The bucket's start. */
  readonly at: string;
  readonly received: number;
  readonly delivered: number;
  readonly failed: number;
  readonly backlog: number | null;
  readonly oldest_age_seconds: number | null;
}

export interface PublisherSeries {
  readonly id: string;
  readonly topic: string;
  /** Now (from `GET /api/stats`'s figures): deliveries not made yet, and the oldest one's age. */
  readonly backlog: number;
  readonly oldest_undelivered_age_seconds: number | null;
  readonly points: {
    readonly at: string;
    readonly backlog: number | null;
    readonly oldest_age_seconds: number | null;
  }[];
}

export interface Series {
  readonly window: SeriesWindow;
  readonly bucket_seconds: number;
  readonly from: string;
  readonly to: string;
  readonly topic: string | null;
  readonly publisher: string | null;
  readonly points: SeriesPoint[];
  readonly publishers: PublisherSeries[];
}

export interface SeriesScope {
  /** Topics whose received counts are summed. */
  readonly topics: readonly string[];
  /** Publishers whose deliveries, failures and samples are counted (by id). */
  readonly publishers: readonly Pick<Publisher, 'id' | 'topic'>[];
  /** Count deliveries and failures of every publisher, deleted ones too (no filter given). */
  readonly everyPublisher: boolean;
  readonly topic: string | null;
  readonly publisher: string | null;
}

/** A bucket's sums while reading; samples per minute per publisher. */
interface Acc {
  received: number;
  delivered: number;
  failed: number;
  backlog: Map<number, Map<string, number>>;
  age: Map<number, Map<string, number>>;
}

export async function readSeries(
  ctx: Pick<StatsContext, 'redis' | 'keys'>,
  window: SeriesWindow,
  scope: SeriesScope,
  current: ReadonlyMap<string, { backlog: number; oldest_undelivered_age_seconds: number | null }>,
  now = Date.now(),
): Promise<Series> {
  const { buckets, bucketMinutes } = WINDOWS[window];
  const nowMinute = Math.floor(now / MINUTE_MS);
  const lastStart = Math.floor(nowMinute / bucketMinutes) * bucketMinutes;
  const firstMinute = lastStart - (buckets - 1) * bucketMinutes;
  const firstHour = seriesSlot(firstMinute * MINUTE_MS).hour;
  const lastHour = seriesSlot(now).hour;
  const hours: number[] = [];
  for (let hr = firstHour; hr <= lastHour; hr++) hours.push(hr);

  const inScope = new Set(scope.publishers.map((p) => p.id));
  const accs: Acc[] = Array.from({ length: buckets }, () => ({
    received: 0,
    delivered: 0,
    failed: 0,
    backlog: new Map(),
    age: new Map(),
  }));
  // Per publisher, per bucket: its highest samples.
  const perPublisher = new Map<string, { backlog: (number | null)[]; age: (number | null)[] }>();
  for (const p of scope.publishers) {
    perPublisher.set(p.id, { backlog: new Array<null>(buckets).fill(null), age: new Array<null>(buckets).fill(null) });
  }

  const replies = await inOneRoundTrip(
    ctx.redis,
    scope.topics.map((topic) => (p) => {
      for (const hr of hours) p.hgetall(ctx.keys.series(topic, hr));
    }),
  );
  const sampled: { topic: string; minute: number; b: number }[] = [];
  let at = 0;
  for (let t = 0; t < scope.topics.length; t++) {
    for (const hr of hours) {
      const [err, reply] = replies[at++] ?? [null, null];
      if (err) throw err;
      if (!reply || typeof reply !== 'object') continue;
      for (const [field, raw] of Object.entries(reply as Record<string, string>)) {
        const first = field.indexOf(':');
        if (first < 0) continue;
        const minuteOfHour = Number(field.slice(0, first));
        const kind = field.slice(first + 1, first + 2);
        const publisher = field.length > first + 3 ? field.slice(first + 3) : undefined;
        const minute = hr * 60 + minuteOfHour;
        if (!Number.isInteger(minuteOfHour) || minute < firstMinute || minute > nowMinute) continue;
        const b = Math.floor((minute - firstMinute) / bucketMinutes);
        const acc = accs[b];
        const value = Number(raw);
        if (!acc || !Number.isFinite(value)) continue;
        if (kind === 'r') {
          if (publisher === undefined) acc.received += value;
          continue;
        }
        if (kind === 's') {
          // Sampled: the topic's publishers without a backlog field had nothing waiting.
          sampled.push({ topic: scope.topics[t]!, minute, b });
          continue;
        }
        if (publisher === undefined || (!scope.everyPublisher && !inScope.has(publisher))) continue;
        if (kind === 'd') acc.delivered += value;
        else if (kind === 'f') acc.failed += value;
        else if ((kind === 'b' || kind === 'a') && inScope.has(publisher)) {
          const samples = kind === 'b' ? acc.backlog : acc.age;
          let byPublisher = samples.get(minute);
          if (!byPublisher) samples.set(minute, (byPublisher = new Map<string, number>()));
          byPublisher.set(publisher, value);
          const row = perPublisher.get(publisher)!;
          const list = kind === 'b' ? row.backlog : row.age;
          list[b] = Math.max(list[b] ?? 0, value);
        }
      }
    }
  }

  for (const { topic, minute, b } of sampled) {
    const acc = accs[b]!;
    for (const p of scope.publishers) {
      if (p.topic !== topic) continue;
      for (const [samples, list] of [
        [acc.backlog, perPublisher.get(p.id)!.backlog],
        [acc.age, perPublisher.get(p.id)!.age],
      ] as const) {
        let byPublisher = samples.get(minute);
        if (!byPublisher) samples.set(minute, (byPublisher = new Map<string, number>()));
        if (!byPublisher.has(p.id)) byPublisher.set(p.id, 0);
        list[b] ??= 0;
      }
    }
  }

  const iso = (minute: number): string => new Date(minute * MINUTE_MS).toISOString();
  const points: SeriesPoint[] = accs.map((acc, b) => {
    // The bucket's highest total backlog over its sampled minutes, and its oldest waiting age.
    let backlog: number | null = null;
    for (const byPublisher of acc.backlog.values()) {
      let total = 0;
      for (const v of byPublisher.values()) total += v;
      backlog = Math.max(backlog ?? 0, total);
    }
    let age: number | null = null;
    for (const byPublisher of acc.age.values()) for (const v of byPublisher.values()) age = Math.max(age ?? 0, v);
    return {
      at: iso(firstMinute + b * bucketMinutes),
      received: acc.received,
      delivered: acc.delivered,
      failed: acc.failed,
      backlog,
      oldest_age_seconds: age,
    };
  });
  return {
    window,
    bucket_seconds: bucketMinutes * 60,
    from: iso(firstMinute),
    to: new Date(now).toISOString(),
    topic: scope.topic,
    publisher: scope.publisher,
    points,
    publishers: scope.publishers.map((p) => {
      const row = perPublisher.get(p.id)!;
      const live = current.get(p.id);
      return {
        id: p.id,
        topic: p.topic,
        backlog: live?.backlog ?? 0,
        oldest_undelivered_age_seconds: live?.oldest_undelivered_age_seconds ?? null,
        points: points.map((pt, b) => ({
          at: pt.at,
          backlog: row.backlog[b] ?? null,
          oldest_age_seconds: row.age[b] ?? null,
        })),
      };
    }),
  };
}

/**
 * Answers kept for `ttlMs` per query and shared by the requests that arrive
 * while one is computed, as `StatsCache` does for `GET /api/stats`: any
 * number of open dashboards cost one read per query and interval. Holds at
 * most `max` queries (the oldest answer goes first).
 */
export class SeriesCache {
  private readonly entries = new Map<string, { at: number; value: Promise<Series> }>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
    private readonly max = 500,
  ) {}

  get(key: string, compute: () => Promise<Series>): Promise<Series> {
    const now = this.now();
    const kept = this.entries.get(key);
    if (kept && now - kept.at < this.ttlMs) return kept.value;
    // Expired answers go; beyond `max`, the oldest.
    for (const [k, e] of this.entries) if (now - e.at >= this.ttlMs) this.entries.delete(k);
    while (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    const value = compute();
    this.entries.set(key, { at: now, value });
    // A failure is not kept: the next request tries again.
    value.catch(() => {
      if (this.entries.get(key)?.value === value) this.entries.delete(key);
    });
    return value;
  }
}
