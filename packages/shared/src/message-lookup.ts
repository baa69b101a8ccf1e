/**
 * Reads one message by its id, with the state of its delivery to each
 * publisher of its topic and every attempt. The id names the topic and the
 * stream entry (see `messageId`), so a lookup is two round trips in the
 * topic's hash slot, whatever the number of topics: the entry, the topic's
 * publishers and their groups; then, per publisher, what the message has
 * in the exception records (retry, dead letter, lease, note) and its
 * attempts in the attempt logs (one `attempts.lua` call for all publishers).
 *
 * Delivered needs no record of its own: a message is delivered to a
 * publisher when its group has read it (at or below the last-delivered id),
 * it is not pending, and no exception record names it, nor a purge that
 * skipped it (a range record, `flow-ranges.ts`).
 *
 * Messages written before ids named their entry (UUIDs) are found through
 * the topics' id index, and their delivery history keys (`h:<id>`) are read
 * until they expire.
 */
import { lastDeliveredIds } from './backlog.js';
import { RECORD_SPAN_MS, decodeItem, decodeRetryState, type LoggedAttempt } from './attempt-record.js';
import { parseRangeRecords, rangeRuling, type RangeRecord } from './flow-ranges.js';
import { compareStreamIds, parseMessageId } from './ids.js';
import type { Keys } from './keys.js';
import { parseEntry } from './message.js';
import type { StoredLease } from './pull-queue.js';
import { scripts, type ScriptClient } from './scripts.js';
import { parsePublisher, type Store } from './store.js';
import type { Attempt, DeliveryRecord, DeliveryStateName, LeaseAttempt, Publisher } from './types.js';

/** Runs a pipeline; throws the first command's error, returns the replies in order. */
async function execOrThrow(pipeline: ReturnType<ScriptClient['pipeline']>): Promise<unknown[]> {
  const results = (await pipeline.exec()) ?? [];
  return results.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}

/** A stored payload as JSON; the raw text when it is not JSON (it always is when Postoffice wrote it). */
function parsePayload(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** One lease of a pull publisher's message, as shown: times in ISO, no token. */
export interface LeaseView {
  readonly at: string;
  readonly worker: LeaseAttempt['worker'];
  readonly lease_expires_at: string;
  readonly outcome: LeaseAttempt['outcome'];
  readonly ended_at?: string;
  readonly duration_ms?: number;
  readonly error?: string;
}

export type DeliveryView = {
  readonly publisher_id: string;
  readonly target: string;
  readonly type: string;
  readonly state: DeliveryStateName | 'deleted';
  readonly attempt_count: number;
  /** Delivery attempts; for a pull publisher, every lease with its worker and outcome. */
  readonly attempts: (Attempt | LeaseView)[];
  readonly next_attempt_at?: string;
  readonly dead_reason?: string;
  readonly last_action?: DeliveryRecord['last_action'];
  readonly replaced_by?: string[];
};

export interface MessageView {
  readonly id: string;
  readonly topic: string;
  readonly payload: unknown;
  readonly attributes: Readonly<Record<string, string>>;
  /** Absent for a message in its stream; `scheduled` while it waits for its `schedule_at`. */
  readonly state?: 'scheduled';
  readonly schedule_at?: string;
  readonly received_at?: string;
  readonly deliveries: DeliveryView[];
}

/** What a note (notes hash) may say about one message and publisher. */
export interface Note {
  readonly dead_reason?: string;
  readonly attempt_count?: number;
  readonly last_attempt?: Attempt;
  readonly last_action?: { readonly action: string; readonly at: string };
  readonly deleted?: boolean;
  /** Acknowledged by a purge while pending or dead: never delivered. */
  readonly purged?: boolean;
  readonly replaced_by?: string[];
}

function parseJson<T>(json: unknown): T | undefined {
  if (typeof json !== 'string') return undefined;
  try {
    const value = JSON.parse(json) as T;
    return value && typeof value === 'object' ? value : undefined;
  } catch {
    return undefined;
  }
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** A pull lease for display: a lease whose end has passed unanswered shows as expired. */
function leaseView(a: LeaseAttempt, now: number): LeaseView {
  const expired = a.outcome === 'leased' && a.lease_expires_at <= now;
  return {
    at: iso(a.at),
    worker: a.worker,
    lease_expires_at: iso(a.lease_expires_at),
    outcome: expired ? 'expired' : a.outcome,
    ...(a.ended_at !== undefined
      ? { ended_at: iso(a.ended_at) }
      : expired
        ? { ended_at: iso(a.lease_expires_at) }
        : {}),
    ...(a.duration_ms !== undefined ? { duration_ms: a.duration_ms } : {}),
    ...(a.error !== undefined ? { error: a.error } : {}),
  };
}

function isLease(a: Attempt | LeaseAttempt): a is LeaseAttempt {
  return typeof (a as LeaseAttempt).token === 'string';
}

const LEASE_OUTCOMES: Partial<Record<LoggedAttempt['outcome'], LeaseAttempt['outcome']>> = {
  completed: 'completed',
  replaced: 'replaced',
  expired: 'expired',
  worker_retry: 'retry',
  failed: 'failed',
};

/** A logged attempt as the API shows it. */
function attemptView(a: LoggedAttempt): Attempt | LeaseView {
  const lease = LEASE_OUTCOMES[a.outcome];
  if (lease !== undefined || a.worker !== undefined) {
    return {
      at: iso(a.startedAt),
      worker: a.worker ?? {},
      lease_expires_at: iso(a.leaseExpiresAt ?? a.startedAt + a.durationMs),
      outcome: lease ?? 'expired',
      ended_at: iso(a.startedAt + a.durationMs),
      duration_ms: a.durationMs,
      ...(a.error !== undefined ? { error: a.error } : {}),
    };
  }
  if (a.outcome === 'skipped') return { at: iso(a.startedAt), duration_ms: a.durationMs, outcome: 'skipped' };
  return {
    at: iso(a.startedAt),
    ...(a.status !== undefined ? { status: a.status } : {}),
    ...(a.error !== undefined ? { error: a.error } : a.outcome !== 'delivered' ? { error: 'failed' } : {}),
    ...(a.response !== undefined ? { response: a.response } : {}),
    duration_ms: a.durationMs,
  };
}

/** The message (and the stream entry id it has), found from its id; undefined when there is none. */
async function locate(
  redis: ScriptClient,
  keys: Keys,
  store: Store,
  id: string,
): Promise<{ topic: string; streamId: string } | { topic: string; scheduled: true } | undefined> {
  const ref = parseMessageId(id);
  if (!ref) return undefined;
  if (ref.streamId !== undefined) return { topic: ref.topic, streamId: ref.streamId };
  const topics = ref.topic !== undefined ? [ref.topic] : await store.listTopicNames();
  if (topics.length === 0) return undefined;
  // One command per topic, all sent at once (on Redis Cluster each topic may live on another node).
  const found = await Promise.all(topics.map((topic) => redis.hget(keys.topic(topic).ids, id)));
  const at = found.findIndex((sid) => typeof sid === 'string');
  if (at !== -1) return { topic: topics[at] as string, streamId: found[at] as string };
  const scheduled = await Promise.all(topics.map((topic) => redis.hexists(keys.topic(topic).scheduledData, id)));
  const s = scheduled.findIndex((n) => n === 1);
  return s === -1 ? undefined : { topic: topics[s] as string, scheduled: true };
}

export async function findMessage(
  redis: ScriptClient,
  keys: Keys,
  store: Store,
  id: string,
  now = Date.now(),
): Promise<MessageView | undefined> {
  const where = await locate(redis, keys, store, id);
  if (!where) return undefined;
  if ('scheduled' in where) return findScheduled(redis, keys, where.topic, id);
  const { topic, streamId: sid } = where;
  const tk = keys.topic(topic);

  const first = await redis
    .pipeline()
    .xrange(tk.stream, sid, sid)
    .hvals(tk.publishers)
    .xinfo('GROUPS', tk.stream)
    .exec();
  if (!first) return undefined;
  const [rangeReply, publishersReply, groupsReply] = first as [
    [Error | null, [string, string[]][]],
    [Error | null, string[]],
    [Error | null, unknown[][]],
  ];
  if (rangeReply[0]) throw rangeReply[0];
  if (publishersReply[0]) throw publishersReply[0];
  const entry = rangeReply[1][0];
  // Not in the stream: trimmed after delivery and retention, or never there.
  if (!entry) return undefined;
  const message = parseEntry(topic, entry[0], entry[1]);
  // XINFO fails only when the stream is gone, which the XRANGE above ruled out; no groups is an empty list.
  const lastDelivered = groupsReply[0] ? new Map<string, string>() : lastDeliveredIds(groupsReply[1]);
  const publishers = publishersReply[1]
    .map(parsePublisher)
    .filter((p) => !(p.from_now && Date.parse(p.created_at) > message.receivedAt))
    .sort((a, b) => Number(a.id) - Number(b.id));

  const pipeline = redis.pipeline();
  for (const p of publishers) {
    const pk = keys.publisher(topic, p.id);
    if (lastDelivered.has(p.id)) pipeline.xpending(tk.stream, p.id, sid, sid, 1);
    else pipeline.echo('');
    pipeline.zscore(pk.retries, sid);
    pipeline.hget(pk.attempts, sid);
    pipeline.zscore(pk.dead, sid);
    pipeline.hget(pk.notes, sid);
    pipeline.hget(pk.leases, sid);
    pipeline.zrange(pk.ranges, sid.slice(0, sid.indexOf('-')), '+inf', 'BYSCORE');
  }
  const dash = sid.indexOf('-');
  if (publishers.length > 0) {
    const logs = publishers.map((p) => keys.publisher(topic, p.id).log);
    scripts.attempts.queue(
      pipeline,
      { logs },
      { receivedAt: sid.slice(0, dash), sequence: sid.slice(dash + 1), span: RECORD_SPAN_MS },
    );
  }
  // Written before the attempt log: the message's old history, until it expires.
  if (message.storedId) pipeline.hgetall(keys.history(topic, message.id));
  else pipeline.echo('');
  const replies = await execOrThrow(pipeline);
  const perPublisher = 7;
  const logged = publishers.length > 0 ? scripts.attempts.parse(replies[publishers.length * perPublisher]) : [];
  const legacy = (replies[replies.length - 1] ?? {}) as Record<string, string> | string;

  const deliveries: DeliveryView[] = publishers.map((p, i) => {
    const r = replies.slice(i * perPublisher, (i + 1) * perPublisher);
    const [pendingReply, retryScore, retryState, deadScore, noteJson, leaseJson, ranges] = r as [
      unknown[] | string,
      string | null,
      string | null,
      string | null,
      string | null,
      string | null,
      string[],
    ];
    const found = logged[i] ?? [];
    const items: LoggedAttempt[] = [];
    for (let k = 0; k + 2 < found.length; k += 3) {
      const a = decodeItem(Number(found[k]), found[k + 1] as string, found[k + 2] as string);
      if (a && a.streamId === sid) items.push(a);
    }
    items.sort((a, b) => a.startedAt - b.startedAt);
    return deliveryView({
      publisher: p,
      sid,
      now,
      pending: Array.isArray(pendingReply) && pendingReply.length > 0,
      lastDelivered: lastDelivered.get(p.id),
      retryAt: retryScore === null ? undefined : Number(retryScore),
      retryCount: decodeRetryState(retryState)?.count,
      dead: deadScore !== null,
      note: parseJson<Note>(noteJson),
      lease: parseJson<StoredLease>(leaseJson),
      ranges: parseRangeRecords(ranges),
      logged: items,
      legacy: typeof legacy === 'object' ? parseJson<DeliveryRecord>(legacy[p.id]) : undefined,
    });
  });
  return {
    id: message.id,
    topic,
    payload: parsePayload(message.payload),
    attributes: message.attributes,
    received_at: iso(message.receivedAt),
    deliveries,
  };
}

interface Found {
  readonly publisher: Publisher;
  readonly sid: string;
  readonly now: number;
  readonly pending: boolean;
  readonly lastDelivered: string | undefined;
  readonly retryAt: number | undefined;
  readonly retryCount: number | undefined;
  readonly dead: boolean;
  readonly note: Note | undefined;
  readonly lease: StoredLease | undefined;
  /** Purges and seeks that may cover the message (`flow-ranges.ts`). */
  readonly ranges?: readonly RangeRecord[];
  readonly logged: readonly LoggedAttempt[];
  readonly legacy: DeliveryRecord | undefined;
}

/** What decides a message's state for one publisher (see `deliveryState`). */
export interface StateFacts {
  /** The message's note and the publisher's purge and seek records, ruled (`rangeRuling`). */
  readonly ruling: { readonly deleted: boolean; readonly purged: boolean };
  /** In the dead set. */
  readonly dead: boolean;
  readonly pull: boolean;
  /** A pull publisher's lease on it: when it ends (ms). */
  readonly leaseExpiresAt: number | undefined;
  /** In the retry set: due at (ms). A pull lease also waits there, due at its end. */
  readonly retryAt: number | undefined;
  /** In flight (pending in the group), or not read by the group yet. */
  readonly unsettled: boolean;
  /** The attempt log says the publisher's filter skipped it. */
  readonly skipped: boolean;
  readonly now: number;
}

/**
 * The one rule for a delivery's state, shared by a message's page
 * (`findMessage`) and search, so the two never disagree: deleted (its note,
 * unless a seek gave it again), dead, leased (pull, a lease that runs),
 * retrying (pull: pending once due, a worker may lease it at once), pending
 * (in flight or not read yet), then purged, skipped or delivered.
 */
export function deliveryState(f: StateFacts): DeliveryView['state'] {
  if (f.ruling.deleted) return 'deleted';
  if (f.dead) return 'dead';
  if (f.pull && f.leaseExpiresAt !== undefined && f.leaseExpiresAt > f.now) return 'leased';
  if (f.retryAt !== undefined) return f.pull && f.retryAt <= f.now ? 'pending' : 'retrying';
  if (f.unsettled) return 'pending';
  if (f.ruling.purged) return 'purged';
  return f.skipped ? 'skipped' : 'delivered';
}

/** One publisher's delivery of the message, from what Redis holds about it. */
export function deliveryView(f: Found): DeliveryView {
  const { publisher: p, now, note, lease, legacy } = f;
  const pull = p.type === 'pull';
  const ruling = rangeRuling(f.sid, note, f.ranges ?? []);
  const state = deliveryState({
    ruling,
    dead: f.dead,
    pull,
    leaseExpiresAt: lease?.expires_at,
    retryAt: f.retryAt,
    unsettled: f.pending || f.lastDelivered === undefined || compareStreamIds(f.sid, f.lastDelivered) > 0,
    skipped: f.logged[f.logged.length - 1]?.outcome === 'skipped',
    now,
  });

  const oldAttempts = (Array.isArray(legacy?.attempts) ? legacy.attempts : []) as (Attempt | LeaseAttempt)[];
  const attempts: (Attempt | LeaseView)[] = oldAttempts.map((a) => (isLease(a) ? leaseView(a, now) : a));
  for (const a of f.logged) attempts.push(attemptView(a));
  if (pull && lease !== undefined) {
    attempts.push(
      leaseView(
        {
          token: lease.token,
          worker: lease.worker,
          at: lease.leased_at,
          lease_expires_at: lease.expires_at,
          outcome: 'leased',
        },
        now,
      ),
    );
  }
  let skips = 0;
  for (const a of f.logged) if (a.outcome === 'skipped') skips++;
  const counted = (legacy?.attempt_count ?? oldAttempts.length) + f.logged.length - skips + (pull && lease ? 1 : 0);
  const attemptCount = Math.max(counted, f.retryCount ?? 0, note?.attempt_count ?? 0, pull ? (lease?.attempt ?? 0) : 0);
  const deadReason = note?.dead_reason ?? legacy?.dead_reason;
  const lastAction = ruling.lastAction ?? legacy?.last_action;
  const replacedBy = note?.replaced_by ?? legacy?.replaced_by;
  return {
    publisher_id: p.id,
    target: p.target,
    type: p.type,
    state,
    attempt_count: attemptCount,
    attempts,
    ...(state === 'retrying' && f.retryAt !== undefined ? { next_attempt_at: iso(f.retryAt) } : {}),
    ...(state === 'dead' && deadReason !== undefined ? { dead_reason: deadReason } : {}),
    ...(lastAction === undefined ? {} : { last_action: lastAction }),
    ...(replacedBy === undefined ? {} : { replaced_by: replacedBy }),
  };
}

/** A message that waits for its `schedule_at`. */
async function findScheduled(
  redis: ScriptClient,
  keys: Keys,
  topic: string,
  id: string,
): Promise<MessageView | undefined> {
  const raw = await redis.hget(keys.topic(topic).scheduledData, id);
  if (typeof raw !== 'string') return undefined;
  const data = JSON.parse(raw) as { p: string; a: string; at: string };
  return {
    id,
    topic,
    payload: parsePayload(data.p),
    attributes: data.a === '' ? {} : (JSON.parse(data.a) as Record<string, string>),
    state: 'scheduled',
    schedule_at: new Date(Date.parse(data.at)).toISOString(),
    deliveries: [],
  };
}
