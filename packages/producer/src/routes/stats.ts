/**
 * `GET /api/stats`: the figures of the web UI's dashboard. Messages are
 * counted once per topic (`received`); everything else is per publisher,
 * so a message sent to two publishers counts as two deliveries. Per
 * publisher: `unread` (entries its group has not read yet), `pending` (read,
 * not settled: `in_flight`, `retrying` and `leased` together), `retrying`
 * (waiting in the retry set), `leased` (pull publishers: held by a worker,
 * not counted as retrying), `dead`, `skipped` (not sent: the filter did not
 * match), `deleted` (from the failing list), `backlog` (unread + pending:
 * not delivered yet), `delivered` (counted when a settle batch acknowledges
 * them, `counts.delivered`), the receipt time of its oldest undelivered
 * message, and its circuit breaker while it is open or probing (the
 * `circuit` key the consumer node writes when it moves). Read-only.
 *
 * Cost: the topic and publisher records (`Store.listTopicsAndPublishers`,
 * one pipeline after the topic list), then the two round trips of
 * `readBacklogs`: one with an
 * `XINFO GROUPS` per topic and two `ZCARD`s, an `HMGET` of the counters and
 * a `GET` of the circuit per publisher (and the leases of each pull
 * publisher), then one with an
 * `XPENDING` for each publisher with pending entries and an
 * `XRANGE … COUNT 1` for each with unread ones (nothing for an idle
 * publisher). On one Redis each round trip is one pipeline; on a cluster,
 * one pipeline per topic. An answer is kept for `STATS_CACHE_MS` and shared
 * by the requests that arrive while it is computed, so any number
 * of open dashboards costs one computation per interval.
 */
import { NotFoundError, ValidationError, readBacklogs } from '@postoffice/shared';
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../types.js';
import { data, publisherId, responses, seriesView, statsView, topicName } from '../schemas.js';
import { SeriesCache, readSeries, type SeriesScope, type SeriesWindow } from '../stats-series.js';

type SeriesQuery = { Querystring: { window?: SeriesWindow; topic?: string; publisher?: string } };

const seriesSchema = {
  tags: ['operations'],
  summary: 'Received, delivered and failed per minute; backlog samples',
  description:
    'Buckets of one minute over the last hour (`window=hour`) or of ten minutes over the last day (`window=day`): ' +
    'messages received by the topics in scope, messages delivered and failed attempts of the publishers in scope, ' +
    'and the backlog and oldest waiting age sampled once a minute. With `publisher`, that publisher and its topic; ' +
    'with `topic`, the topic and its publishers; with neither, everything.',
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      window: {
        type: 'string',
        enum: ['hour', 'day'],
        description: '`hour` (default): 60 one-minute buckets; `day`: 144 ten-minute buckets.',
        'x-error': 'must be hour or day',
      },
      topic: topicName('Only this topic and its publishers.'),
      publisher: {
        ...publisherId,
        description: 'Only this publisher (and its topic).',
        'x-error': 'is not a publisher id',
      },
    },
  },
  response: responses(
    { 200: data(seriesView, 'The buckets, oldest first.') },
    {
      400: 'A bad or unknown parameter, or a `publisher` not of `topic`.',
      404: 'No such topic (`topic`) or publisher (`publisher`).',
    },
  ),
};

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
  /** Read and not settled, neither retrying nor leased: an attempt under way (or its outcome not written yet). */
  readonly in_flight: number;
  readonly dead: number;
  readonly skipped: number;
  readonly deleted: number;
  readonly backlog: number;
  /** Messages this publisher delivered (counted by the consumer at each settle batch). */
  readonly delivered: number;
  /** The circuit breaker while it is not closed (null: closed). */
  readonly circuit: CircuitView | null;
  /** When the oldest message not yet delivered was received (null: none). */
  readonly oldest_undelivered_at: string | null;
  readonly oldest_undelivered_age_seconds: number | null;
}

export interface CircuitView {
  readonly state: 'open' | 'probing';
  readonly since: string;
  /** When the open circuit sends its next probe (null while probing). */
  readonly next_probe_at: string | null;
  readonly failures: number;
  /** The consumer node whose pipeline holds it. */
  readonly node: string;
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
  readonly in_flight: number;
  readonly unread: number;
  readonly dead: number;
  readonly skipped: number;
  readonly deleted: number;
  readonly backlog: number;
  /** Publishers whose circuit breaker is open or probing. */
  readonly circuits_open: number;
  readonly per_publisher: PublisherStats[];
}

function count(v: unknown): number {
  const n = Number(v ?? 0);
  return Number.isFinite(n) && n > 0 ? n : 0;
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

/** The circuit record the consumer node keeps (`CircuitStore`), or null. */
function circuitView(raw: unknown): CircuitView | null {
  if (typeof raw !== 'string') return null;
  try {
    const r = JSON.parse(raw) as Record<string, unknown>;
    if (r.state !== 'open' && r.state !== 'probing') return null;
    const iso = (v: unknown): string | null => (typeof v === 'number' ? new Date(v).toISOString() : null);
    return {
      state: r.state,
      since: iso(r.since) ?? new Date(0).toISOString(),
      next_probe_at: r.state === 'open' ? iso(r.next_probe_at) : null,
      failures: count(r.failures),
      node: typeof r.node === 'string' ? r.node : '',
    };
  } catch {
    return null;
  }
}

/** What computing the figures needs. */
export type StatsContext = Pick<ApiContext, 'redis' | 'keys' | 'store'>;

export async function stats(ctx: StatsContext, now = Date.now()): Promise<Stats> {
  const { redis, keys, store } = ctx;
  const { topics, publishers } = await store.listTopicsAndPublishers();
  // With each topic's groups: each of its publishers' retry and dead-letter set sizes, counters, circuit and leases.
  const backlogs = await readBacklogs(redis, keys, publishers, (p, pub) => {
    const pk = keys.publisher(pub.topic, pub.id);
    p.zcard(pk.retries);
    p.zcard(pk.dead);
    p.hmget(pk.counts, 'skipped', 'deleted', 'delivered');
    p.get(pk.circuit);
    if (pub.type === 'pull') p.hvals(pk.leases);
  });
  const per_publisher = backlogs.map(({ publisher: pub, backlog, replies }): PublisherStats => {
    const [[, retries] = [], [, deadLetters] = [], [, counters] = [], [, circuit] = [], [, leases] = []] = replies;
    const inRetrySet = count(retries);
    const [skipped = 0, deleted = 0, delivered = 0] = Array.isArray(counters) ? counters.map(count) : [];
    // A pull publisher's leased messages wait in its retry set (scored at the lease's end): count them apart.
    const leased = pub.type === 'pull' ? liveLeases(leases, now) : 0;
    const unread = backlog.unread ?? 1;
    const oldest = backlog.oldestMs;
    return {
      id: pub.id,
      topic: pub.topic,
      type: pub.type,
      target: pub.target,
      active: pub.active,
      unread,
      pending: backlog.pending,
      retrying: Math.max(0, inRetrySet - leased),
      leased,
      in_flight: Math.max(0, backlog.pending - inRetrySet),
      dead: count(deadLetters),
      skipped,
      deleted,
      backlog: unread + backlog.pending,
      delivered,
      circuit: circuitView(circuit),
      oldest_undelivered_at: oldest === null ? null : new Date(oldest).toISOString(),
      oldest_undelivered_age_seconds: oldest === null ? null : Math.max(0, Math.round((now - oldest) / 1000)),
    };
  });
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
    in_flight: sum((p) => p.in_flight),
    unread: sum((p) => p.unread),
    dead: sum((p) => p.dead),
    skipped: sum((p) => p.skipped),
    deleted: sum((p) => p.deleted),
    backlog: sum((p) => p.backlog),
    circuits_open: per_publisher.filter((p) => p.circuit !== null).length,
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
  const series = new SeriesCache(ctx.config.statsCacheMs);
  app.get<SeriesQuery>('/api/stats/series', { schema: seriesSchema }, async (request) => {
    const { window = 'hour', topic, publisher } = request.query;
    const key = `${window}\n${topic ?? ''}\n${publisher ?? ''}`;
    const data = await series.get(key, async () => {
      const scope = await seriesScope(ctx, topic, publisher);
      const figures = await cache.get();
      const current = new Map(figures.per_publisher.map((p) => [p.id, p]));
      return readSeries(ctx, window, scope, current);
    });
    return { data };
  });
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

/** The topics and publishers a series query covers; 404 for an unknown one. */
async function seriesScope(ctx: ApiContext, topic?: string, publisher?: string): Promise<SeriesScope> {
  if (publisher !== undefined) {
    const pub = await ctx.store.getPublisher(publisher);
    if (!pub) throw new NotFoundError('publisher_not_found', 'publisher', 'publisher not found');
    if (topic !== undefined && topic !== pub.topic) {
      throw new ValidationError({ topic: ["is not the publisher's topic"] });
    }
    return { topics: [pub.topic], publishers: [pub], everyPublisher: false, topic: pub.topic, publisher: pub.id };
  }
  const { topics, publishers } = await ctx.store.listTopicsAndPublishers();
  if (topic !== undefined) {
    if (!topics.some((t) => t.name === topic)) throw new NotFoundError('topic_not_found', 'topic', 'topic not found');
    return {
      topics: [topic],
      publishers: publishers.filter((p) => p.topic === topic),
      everyPublisher: true,
      topic,
      publisher: null,
    };
  }
  return { topics: topics.map((t) => t.name), publishers, everyPublisher: true, topic: null, publisher: null };
}
