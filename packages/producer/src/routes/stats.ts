/**
 * `GET /api/stats`: the figures of the web UI's dashboard in two round
 * trips (one pipeline per topic each), whatever the number of publishers.
 * Per publisher: `unread` (entries its group has not read yet), `pending`
 * (read, not settled: in flight or waiting for a retry), `retrying`,
 * `dead`, `backlog` (unread + pending: not delivered yet), `delivered`
 * (acknowledged entries that are not dead letters) and the receipt time of
 * its oldest undelivered message. Read-only.
 */
import { execBySlot } from '@postoffice/shared';
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
  readonly dead: number;
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
  readonly dead: number;
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

export async function stats(ctx: ApiContext, now = Date.now()): Promise<Stats> {
  const { redis, keys, store } = ctx;
  const [topics, publishers] = await Promise.all([store.listTopics(), store.listPublishers()]);
  const names = [...new Set(publishers.map((p) => p.topic))];

  // Round trip 1: every group (lag, pending, last read id, entries read), the oldest pending entry,
  // the retry and dead-letter sets' sizes.
  const first: Reply = await execBySlot(redis, [
    ...names.map((t) => (p: ChainableCommander) => void p.xinfo('GROUPS', keys.topic(t).stream)),
    ...publishers.map((pub) => (p: ChainableCommander) => {
      const pk = keys.publisher(pub.topic, pub.id);
      p.xpending(keys.topic(pub.topic).stream, pub.id);
      p.zcard(pk.retries);
      p.zcard(pk.dead);
    }),
  ]);
  const groups = new Map<string, Map<string, unknown>>();
  names.forEach((t, i) => {
    const [err, list] = first[i] ?? [null, []];
    if (err || !Array.isArray(list)) return;
    for (const row of list) {
      const f = fields(row);
      groups.set(`${t}\n${String(f.get('name'))}`, f);
    }
  });

  // Round trip 2: the first entry after each group's last read one (its oldest unread message).
  const second: Reply = await execBySlot(
    redis,
    publishers.map((pub) => (p: ChainableCommander) => {
      const last = groups.get(`${pub.topic}\n${pub.id}`)?.get('last-delivered-id');
      p.xrange(keys.topic(pub.topic).stream, typeof last === 'string' ? `(${last}` : '-', '+', 'COUNT', 1);
    }),
  );

  let at = names.length;
  const per_publisher = publishers.map((pub, i): PublisherStats => {
    const [, summary] = first[at++] ?? [null, null];
    const retrying = count(first[at++]?.[1]);
    const dead = count(first[at++]?.[1]);
    const g = groups.get(`${pub.topic}\n${pub.id}`);
    const pending = count(g?.get('pending'));
    const lag = g?.get('lag');
    const [, range] = second[i] ?? [null, []];
    const firstUnread = Array.isArray(range) && Array.isArray(range[0]) ? entryMs(range[0][0]) : undefined;
    // On Redis before 7 there is no lag: one unread entry found means at least one.
    const unread = lag === null || lag === undefined ? (firstUnread === undefined ? 0 : 1) : count(lag);
    const read = count(g?.get('entries-read'));
    const oldestPending = pending > 0 && Array.isArray(summary) ? entryMs(summary[1]) : undefined;
    const candidates = [oldestPending, unread > 0 ? firstUnread : undefined].filter(
      (v): v is number => v !== undefined,
    );
    const oldest = candidates.length > 0 ? Math.min(...candidates) : undefined;
    return {
      id: pub.id,
      topic: pub.topic,
      type: pub.type,
      target: pub.target,
      active: pub.active,
      unread,
      pending,
      retrying,
      dead,
      backlog: unread + pending,
      delivered: Math.max(0, read - pending - dead),
      oldest_undelivered_at: oldest === undefined ? null : new Date(oldest).toISOString(),
      oldest_undelivered_age_seconds: oldest === undefined ? null : Math.max(0, Math.round((now - oldest) / 1000)),
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
    dead: sum((p) => p.dead),
    backlog: sum((p) => p.backlog),
    per_publisher,
  };
}

export function registerStatsRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    '/api/stats',
    {
      schema: {
        tags: ['operations'],
        summary: 'The dashboard’s figures',
        response: responses({ 200: data(statsView, 'The figures.') }),
      },
    },
    async () => ({ data: await stats(ctx) }),
  );
}
