/**
 * `GET /api/stats`: the figures of the web UI's dashboard. Per publisher:
 * `unread` (entries its group has not read yet), `pending` (read, not
 * settled: in flight or waiting for a retry), `retrying`, `leased` (pull
 * publishers: held by a worker, not counted as retrying), `dead`, `skipped`
 * (not sent: the filter did not match), `deleted` (from the failing list),
 * `backlog` (unread + pending: not delivered yet), `delivered`
 * (acknowledged entries that are none of dead, skipped or deleted) and the
 * receipt time of its oldest undelivered message. Read-only.
 *
 * Cost: the topic and publisher records (`Store.listTopicsAndPublishers`,
 * one pipeline after the topic list), then one round trip with an
 * `XINFO GROUPS` per topic and two `ZCARD`s and an `HMGET` of the counters
 * per publisher (and the leases of each pull publisher), then one with an
 * `XPENDING` for each publisher with pending entries and an
 * `XRANGE … COUNT 1` for each with unread ones (nothing for an idle
 * publisher). On one Redis each round trip is one pipeline; on a cluster,
 * one pipeline per topic. An answer is kept for `STATS_CACHE_MS` and shared
 * by the requests that arrive while it is computed, so any number
 * of open dashboards costs one computation per interval.
 */
import { execBySlot, isCluster, type ScriptClient } from '@postoffice/shared';
import type { FastifyInstance } from 'fastify';
import type { ChainableCommander } from 'ioredis';
import type { ApiContext } from '../types.js';
import { data, responses, statsView } from '../schemas.js';

export interface PublisherStats {
  readonly id: string;
  readonly topic: string;
  readonly type: string;
  readonly target: string;
  readonly active: boolean;
  readonly unread: number;
  readonly pending: number;
  readonly retrying: number;
  readonly leased: number;
  readonly dead: number;
  readonly skipped: number;
  readonly deleted: number;
  readonly backlog: number;
  readonly delivered: number;
  /** When the oldest message not yet delivered was received (null: none). */
  readonly oldest_undelivered_at: string | null;
  readonly oldest_undelivered_age_seconds: number | null;
}

export interface Stats {
  readonly topics: number;
  readonly publishers: number;
  readonly active_publishers: number;
  readonly received: number;
  readonly delivered: number;
  readonly pending: number;
  readonly retrying: number;
  readonly leased: number;
  readonly dead: number;
  readonly skipped: number;
  readonly deleted: number;
  readonly backlog: number;
  readonly per_publisher: PublisherStats[];
}

type Reply = [Error | null, unknown][];

function fields(row: unknown): Map<string, unknown> {
  const m = new Map<string, unknown>();
  if (Array.isArray(row)) for (let i = 0; i + 1 < row.length; i += 2) m.set(String(row[i]), row[i + 1]);
  return m;
}

/** The millisecond part of a stream entry id (`<ms>-<seq>`). */
function entryMs(id: unknown): number | undefined {
  if (typeof id !== 'string') return undefined;
  const ms = Number(id.split('-')[0]);
  return Number.isFinite(ms) && ms > 0 ? ms : undefined;
}

function count(v: unknown): number {
  const n = Number(v ?? 0);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

/**
 * Runs the batches in one round trip: one pipeline on a single Redis, one
 * pipeline per batch on a cluster (each batch touches one topic's slot).
 */
async function inOneRoundTrip(
  redis: ScriptClient,
  batches: readonly ((pipeline: ChainableCommander) => void)[],
): Promise<Reply> {
  if (isCluster(redis)) return execBySlot(redis, batches);
  if (batches.length === 0) return [];
  const pipeline = redis.pipeline();
  for (const fill of batches) fill(pipeline);
  return (await pipeline.exec()) ?? [];
}

/** Leases (JSON values of a leases hash) that have not ended by `now`. */
function liveLeases(values: unknown, now: number): number {
  if (!Array.isArray(values)) return 0;
  let n = 0;
  for (const v of values) {
    const m = /"expires_at":(\d+)/.exec(String(v));
    if (m && Number(m[1]) > now) n++;
  }
  return n;
}

/** What computing the figures needs. */
export type StatsContext = Pick<ApiContext, 'redis' | 'keys' | 'store'>;

export async function stats(ctx: StatsContext, now = Date.now()): Promise<Stats> {
  const { redis, keys, store } = ctx;
  const { topics, publishers } = await store.listTopicsAndPublishers();
  const byTopic = new Map<string, typeof publishers>();
  for (const pub of publishers) {
    const list = byTopic.get(pub.topic);
    if (list) list.push(pub);
    else byTopic.set(pub.topic, [pub]);
  }
  const names = [...byTopic.keys()];

  // Round trip 1, per topic: its groups (lag, pending, last read id, entries read), then each of its
  // publishers' retry and dead-letter set sizes.
  const first = await inOneRoundTrip(
    redis,
    names.map((t) => (p: ChainableCommander) => {
      p.xinfo('GROUPS', keys.topic(t).stream);
      for (const pub of byTopic.get(t)!) {
        const pk = keys.publisher(t, pub.id);
        p.zcard(pk.retries);
        p.zcard(pk.dead);
        p.hmget(pk.counts, 'skipped', 'deleted');
        if (pub.type === 'pull') p.hvals(pk.leases);
      }
    }),
  );
  const groups = new Map<string, Map<string, unknown>>();
  const sizes = new Map<string, { retrying: number; leased: number; dead: number; skipped: number; deleted: number }>();
  let at = 0;
  for (const t of names) {
    const [err, list] = first[at++] ?? [null, []];
    if (!err && Array.isArray(list)) {
      for (const row of list) {
        const f = fields(row);
        groups.set(`${t}\n${String(f.get('name'))}`, f);
      }
    }
    for (const pub of byTopic.get(t)!) {
      const inRetrySet = count(first[at++]?.[1]);
      const dead = count(first[at++]?.[1]);
      const counters = first[at++]?.[1];
      const [skipped, deleted] = Array.isArray(counters) ? counters.map(count) : [0, 0];
      // A pull publisher's leased messages wait in its retry set (scored at the lease's end): count them apart.
      const leased = pub.type === 'pull' ? liveLeases(first[at++]?.[1], now) : 0;
      sizes.set(pub.id, {
        retrying: Math.max(0, inRetrySet - leased),
        leased,
        dead,
        skipped: skipped ?? 0,
        deleted: deleted ?? 0,
      });
    }
  }

  // Round trip 2, only for publishers with something undelivered: the oldest pending entry (XPENDING's
  // summary) and the first entry after the group's last read one (its oldest unread message).
  const asked: { pending: boolean; unread: boolean }[] = [];
  const second = await inOneRoundTrip(
    redis,
    names.map((t) => (p: ChainableCommander) => {
      const stream = keys.topic(t).stream;
      for (const pub of byTopic.get(t)!) {
        const g = groups.get(`${t}\n${pub.id}`);
        const pending = count(g?.get('pending')) > 0;
        // Redis before 7 reports no lag: look whenever the group exists.
        const lag = g?.get('lag');
        const unread = g !== undefined && lag !== 0;
        if (pending) p.xpending(stream, pub.id);
        if (unread) {
          const last = g.get('last-delivered-id');
          p.xrange(stream, typeof last === 'string' ? `(${last}` : '-', '+', 'COUNT', 1);
        }
        asked.push({ pending, unread });
      }
    }),
  );

  const rows = new Map<string, PublisherStats>();
  at = 0;
  let i = 0;
  for (const t of names) {
    for (const pub of byTopic.get(t)!) {
      const { pending: askedPending, unread: askedUnread } = asked[i++]!;
      const summary = askedPending ? second[at++]?.[1] : undefined;
      const range = askedUnread ? second[at++]?.[1] : undefined;
      const g = groups.get(`${t}\n${pub.id}`);
      const pending = count(g?.get('pending'));
      const lag = g?.get('lag');
      const firstUnread = Array.isArray(range) && Array.isArray(range[0]) ? entryMs(range[0][0]) : undefined;
      // On Redis before 7 there is no lag: one unread entry found means at least one.
      const unread = lag === null || lag === undefined ? (firstUnread === undefined ? 0 : 1) : count(lag);
      const read = count(g?.get('entries-read'));
      const oldestPending = pending > 0 && Array.isArray(summary) ? entryMs(summary[1]) : undefined;
      const candidates = [oldestPending, unread > 0 ? firstUnread : undefined].filter(
        (v): v is number => v !== undefined,
      );
      const oldest = candidates.length > 0 ? Math.min(...candidates) : undefined;
      const { retrying, leased, dead, skipped, deleted } = sizes.get(pub.id)!;
      rows.set(pub.id, {
        id: pub.id,
        topic: pub.topic,
        type: pub.type,
        target: pub.target,
        active: pub.active,
        unread,
        pending,
        retrying,
        leased,
        dead,
        skipped,
        deleted,
        backlog: unread + pending,
        delivered: Math.max(0, read - pending - dead - skipped - deleted),
        oldest_undelivered_at: oldest === undefined ? null : new Date(oldest).toISOString(),
        oldest_undelivered_age_seconds: oldest === undefined ? null : Math.max(0, Math.round((now - oldest) / 1000)),
      });
    }
  }
  // In the order of the publisher list (by id).
  const per_publisher = publishers.map((pub) => rows.get(pub.id)!);
  const sum = (f: (p: PublisherStats) => number): number => per_publisher.reduce((n, p) => n + f(p), 0);
  return {
    topics: topics.length,
    publishers: publishers.length,
    active_publishers: publishers.filter((p) => p.active).length,
    received: topics.reduce((n, t) => n + t.received, 0),
    delivered: sum((p) => p.delivered),
    pending: sum((p) => p.pending),
    retrying: sum((p) => p.retrying),
    leased: sum((p) => p.leased),
    dead: sum((p) => p.dead),
    skipped: sum((p) => p.skipped),
    deleted: sum((p) => p.deleted),
    backlog: sum((p) => p.backlog),
    per_publisher,
  };
}

/**
 * `stats` kept for `ttlMs` and shared by concurrent callers: while one
 * computation runs, every request waits for it rather than start another.
 * `clear()` forgets the answer, and one being computed, at once.
 */
export class StatsCache {
  private cached: { at: number; value: Stats } | undefined;
  private running: Promise<Stats> | undefined;
  private generation = 0;

  constructor(
    private readonly ctx: StatsContext,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async get(): Promise<Stats> {
    if (this.cached && this.now() - this.cached.at < this.ttlMs) return this.cached.value;
    if (!this.running) {
      const started = this.now();
      const generation = this.generation;
      const run: Promise<Stats> = stats(this.ctx, started)
        .then((value) => {
          if (generation === this.generation) this.cached = { at: started, value };
          return value;
        })
        .finally(() => {
          if (this.running === run) this.running = undefined;
        });
      this.running = run;
    }
    return this.running;
  }

  clear(): void {
    this.generation++;
    this.cached = undefined;
    this.running = undefined;
  }
}

/** Routes that receive messages: frequent, and their effect on the figures can wait for the cache to expire. */
const INGEST_ROUTES = new Set(['/api/messages', '/api/bulk_messages', '/api/schedule_messages']);

export function registerStatsRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const cache = new StatsCache(ctx, ctx.config.statsCacheMs);
  app.get(
    '/api/stats',
    {
      schema: {
        tags: ['operations'],
        summary: 'The dashboard’s figures',
        response: responses({ 200: data(statsView, 'The figures.') }),
      },
    },
    async () => ({ data: await cache.get() }),
  );
  // A change made through this producer (a topic, a publisher, a repair) shows in the next answer, so that a page
  // opened right after it lists what was just made. Changes made through other replicas show within STATS_CACHE_MS.
  app.addHook('onResponse', (request, reply, done) => {
    const method = request.method;
    if (method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS' && reply.statusCode < 400) {
      if (!INGEST_ROUTES.has(request.routeOptions.url ?? '')) cache.clear();
    }
    done();
  });
}
