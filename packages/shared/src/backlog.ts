/**
 * Publishers' backlogs, read from their topics' streams: what `GET /api/stats`
 * shows, what `GET /api/cluster` shows (the groups alone), and what the
 * consumer node reports as metrics and samples for the charts.
 *
 * A publisher's backlog is its group's unread entries (XINFO's `lag`) and
 * its pending ones (read, not settled). The receipt time of its oldest
 * undelivered message is the older of its oldest pending entry (XPENDING's
 * summary) and the first entry after the group's last read one.
 *
 * Cost, in two round trips (one pipeline on a single Redis, one per topic
 * on a cluster): one XINFO GROUPS per topic, with whatever the caller asks
 * per publisher in the same pipeline; then an XPENDING for each publisher
 * with pending entries and an XRANGE … COUNT 1 for each that may have
 * unread ones. An idle publisher costs nothing in the second round trip.
 */
import type { ChainableCommander } from 'ioredis';
import type { Keys } from './keys.js';
import { inOneRoundTrip } from './redis.js';
import type { ScriptClient } from './scripts.js';
import type { Publisher } from './types.js';

/** One consumer group of a topic's stream, as XINFO GROUPS tells it. */
export interface GroupInfo {
  /** Entries read and not settled yet. */
  readonly pending: number;
  /** The last entry the group read, or null when Redis did not say. */
  readonly lastDeliveredId: string | null;
  /** Entries not read yet; null when Redis cannot tell (before Redis 7, or a group set to an arbitrary id). */
  readonly lag: number | null;
}

/** The groups of one stream by name, from its XINFO GROUPS reply (none from an error or anything else). */
export function parseGroups(reply: unknown): Map<string, GroupInfo> {
  const out = new Map<string, GroupInfo>();
  if (!Array.isArray(reply)) return out;
  for (const row of reply) {
    if (!Array.isArray(row)) continue;
    const info = new Map<string, unknown>();
    for (let i = 0; i + 1 < row.length; i += 2) info.set(String(row[i]), row[i + 1]);
    const pending = Number(info.get('pending') ?? 0);
    const lag = info.get('lag');
    const last = info.get('last-delivered-id');
    out.set(String(info.get('name')), {
      pending: Number.isFinite(pending) && pending > 0 ? pending : 0,
      lastDeliveredId: typeof last === 'string' ? last : null,
      lag: typeof lag === 'number' ? Math.max(0, lag) : null,
    });
  }
  return out;
}

/** The last entry each group of a stream read, by group name, from its XINFO GROUPS reply. */
export function lastDeliveredIds(reply: unknown): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, g] of parseGroups(reply)) out.set(name, g.lastDeliveredId ?? '0-0');
  return out;
}

/** A publisher's backlog. */
export interface Backlog {
  /** Entries its group has not read; null when Redis cannot tell how many but found one. */
  readonly unread: number | null;
  /** Entries read and not settled. */
  readonly pending: number;
  /** When the oldest message not delivered yet was received (ms since the epoch), or null: none. */
  readonly oldestMs: number | null;
}

/** One publisher's backlog, and the replies to what the caller asked about it in the first round trip. */
export interface BacklogRow<P> {
  readonly publisher: P;
  /** Its group; undefined when the stream has none of its name (the backlog is then empty). */
  readonly group: GroupInfo | undefined;
  readonly backlog: Backlog;
  /** The replies to the commands `alsoAsk` queued for it, in order. */
  readonly replies: readonly [Error | null, unknown][];
  /** The first command about it that failed, if one did. */
  readonly error: Error | null;
}

const NONE: Backlog = { unread: 0, pending: 0, oldestMs: null };

/**
 * The backlog of each publisher, in the order given. `alsoAsk` may queue
 * more commands about a publisher into the first round trip (keys of its
 * topic's hash slot only); their replies come back in its row.
 */
export async function readBacklogs<P extends Pick<Publisher, 'id' | 'topic'>>(
  redis: ScriptClient,
  keys: Keys,
  publishers: readonly P[],
  alsoAsk?: (pipeline: ChainableCommander, publisher: P) => void,
): Promise<BacklogRow<P>[]> {
  const byTopic = new Map<string, P[]>();
  for (const p of publishers) {
    const list = byTopic.get(p.topic);
    if (list) list.push(p);
    else byTopic.set(p.topic, [p]);
  }
  const topics = [...byTopic.keys()];

  // Round trip 1, per topic: its groups, then what the caller asks about each of its publishers.
  const asked = new Map<P, number>();
  const first = await inOneRoundTrip(
    redis,
    topics.map((t) => (pipeline: ChainableCommander) => {
      pipeline.xinfo('GROUPS', keys.topic(t).stream);
      for (const p of byTopic.get(t) ?? []) {
        const before = pipeline.length;
        alsoAsk?.(pipeline, p);
        asked.set(p, pipeline.length - before);
      }
    }),
  );
  const groups = new Map<P, GroupInfo | undefined>();
  const replies = new Map<P, [Error | null, unknown][]>();
  let at = 0;
  for (const t of topics) {
    const [err, list] = first[at++] ?? [null, []];
    const found = err ? new Map<string, GroupInfo>() : parseGroups(list);
    for (const p of byTopic.get(t) ?? []) {
      groups.set(p, found.get(p.id));
      const n = asked.get(p) ?? 0;
      replies.set(p, first.slice(at, at + n));
      at += n;
    }
  }

  // Round trip 2, only for publishers with something undelivered: the oldest pending entry and the first
  // entry after the group's last read one. Redis before 7 reports no lag: look whenever the group exists.
  const oldest = new Map<P, { pending: boolean; unread: boolean }>();
  const second = await inOneRoundTrip(
    redis,
    topics.map((t) => (pipeline: ChainableCommander) => {
      const stream = keys.topic(t).stream;
      for (const p of byTopic.get(t) ?? []) {
        const g = groups.get(p);
        const pending = g !== undefined && g.pending > 0;
        const unread = g !== undefined && g.lag !== 0;
        if (pending) pipeline.xpending(stream, p.id);
        if (unread)
          pipeline.xrange(stream, g.lastDeliveredId === null ? '-' : `(${g.lastDeliveredId}`, '+', 'COUNT', 1);
        oldest.set(p, { pending, unread });
      }
    }),
  );
  const rows = new Map<P, BacklogRow<P>>();
  at = 0;
  for (const t of topics) {
    for (const p of byTopic.get(t) ?? []) {
      const g = groups.get(p);
      const ask = oldest.get(p) ?? { pending: false, unread: false };
      const [summaryErr, summary] = ask.pending ? (second[at++] ?? [null, null]) : [null, null];
      const [rangeErr, range] = ask.unread ? (second[at++] ?? [null, null]) : [null, null];
      const own = replies.get(p) ?? [];
      rows.set(p, {
        publisher: p,
        group: g,
        backlog: g === undefined ? NONE : backlogOf(g, summary, range),
        replies: own,
        error: own.find(([err]) => err !== null)?.[0] ?? summaryErr ?? rangeErr,
      });
    }
  }
  return publishers.map((p) => rows.get(p) as BacklogRow<P>);
}

/** A group's backlog from its XPENDING summary and its first unread entry (XRANGE … COUNT 1), each if asked. */
function backlogOf(group: GroupInfo, summary: unknown, range: unknown): Backlog {
  const firstUnread = Array.isArray(range) && Array.isArray(range[0]) ? entryMs(range[0][0]) : undefined;
  const oldestPending = group.pending > 0 && Array.isArray(summary) ? entryMs(summary[1]) : undefined;
  const candidates = [oldestPending, firstUnread].filter((v): v is number => v !== undefined);
  return {
    // Without a lag, one unread entry found means at least one.
    unread: group.lag ?? (firstUnread === undefined ? 0 : null),
    pending: group.pending,
    oldestMs: candidates.length > 0 ? Math.min(...candidates) : null,
  };
}

/** The millisecond part of a stream entry id (`<ms>-<seq>`). */
function entryMs(id: unknown): number | undefined {
  if (typeof id !== 'string') return undefined;
  const ms = Number(id.split('-')[0]);
  return Number.isFinite(ms) && ms > 0 ? ms : undefined;
}
