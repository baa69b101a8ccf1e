/**
 * Reads one message by its id, with the state of its delivery to each
 * publisher of its topic. Three round trips whatever the number of topics:
 * the topic names; the id index of every topic (all sent at once, one
 * command per topic: on Redis Cluster the topics live on different nodes,
 * which one pipeline cannot span); then the stream entry, the message's
 * history and the topic's publishers (pipelined: one topic, one slot).
 */
import {
  parseEntry,
  type Attempt,
  type DeliveryRecord,
  type LeaseAttempt,
  type DeliveryStateName,
  type Keys,
  type Publisher,
  type ScriptClient,
  type Store,
} from '@postoffice/shared';
import { execOrThrow, parsePayload } from './replies.js';

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

export interface DeliveryView {
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
}

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

function parseRecord(json: string | undefined): DeliveryRecord | undefined {
  if (json === undefined) return undefined;
  try {
    const record = JSON.parse(json) as DeliveryRecord;
    return record && typeof record === 'object' && typeof record.state === 'string' ? record : undefined;
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

/** The record's state as of now: a pull message whose lease ran out is pending again. */
function stateNow(record: DeliveryRecord, attempts: (Attempt | LeaseView)[]): DeliveryRecord['state'] | 'pending' {
  if (record.state !== 'leased') return record.state;
  const last = attempts[attempts.length - 1] as LeaseView | undefined;
  return last?.outcome === 'expired' ? 'pending' : 'leased';
}

export async function findMessage(
  redis: ScriptClient,
  keys: Keys,
  store: Store,
  id: string,
): Promise<MessageView | undefined> {
  const topics = await store.listTopicNames();
  if (topics.length === 0) return undefined;
  const streamIds = await Promise.all(topics.map((topic) => redis.hget(keys.topic(topic).ids, id)));
  const at = streamIds.findIndex((sid) => typeof sid === 'string');
  const topic = topics[at];
  const sid = streamIds[at];
  if (topic === undefined || typeof sid !== 'string') return findScheduled(redis, keys, topics, id);

  const tk = keys.topic(topic);
  const [range, history, publisherJson] = (await execOrThrow(
    redis.pipeline().xrange(tk.stream, sid, sid).hgetall(keys.history(topic, id)).hvals(tk.publishers),
  )) as [[string, string[]][], Record<string, string>, string[]];
  const entry = range[0];
  // Indexed but no longer in the stream: trimmed after delivery and retention.
  if (!entry) return undefined;
  const message = parseEntry(entry[0], entry[1]);

  const publishers = publisherJson
    .map((json) => JSON.parse(json) as Publisher)
    .sort((a, b) => Number(a.id) - Number(b.id));
  const deliveries: DeliveryView[] = [];
  for (const p of publishers) {
    const record = parseRecord(Object.hasOwn(history, p.id) ? history[p.id] : undefined);
    const base = { publisher_id: p.id, target: p.target, type: p.type };
    if (record) {
      const now = Date.now();
      // An empty list may come back from Lua's cjson as {}.
      const stored = (Array.isArray(record.attempts) ? record.attempts : []) as (Attempt | LeaseAttempt)[];
      const attempts = stored.map((a) => (isLease(a) ? leaseView(a, now) : a));
      deliveries.push({
        ...base,
        state: stateNow(record, attempts),
        attempt_count: record.attempt_count ?? record.attempts?.length ?? 0,
        attempts,
        ...(record.next_attempt_at === undefined ? {} : { next_attempt_at: record.next_attempt_at }),
        ...(record.dead_reason === undefined ? {} : { dead_reason: record.dead_reason }),
        ...(record.last_action === undefined ? {} : { last_action: record.last_action }),
        ...(record.replaced_by === undefined ? {} : { replaced_by: record.replaced_by }),
      });
    } else if (!(p.from_now && Date.parse(p.created_at) > message.receivedAt)) {
      // A publisher created "from now" after the message arrived never sees it.
      deliveries.push({ ...base, state: 'pending', attempt_count: 0, attempts: [] });
    }
  }
  return {
    id: message.id || id,
    topic,
    payload: parsePayload(message.payload),
    attributes: message.attributes,
    received_at: new Date(message.receivedAt).toISOString(),
    deliveries,
  };
}

/** A message that waits for its `schedule_at` (one command per topic, all sent at once: one slot each). */
async function findScheduled(
  redis: ScriptClient,
  keys: Keys,
  topics: readonly string[],
  id: string,
): Promise<MessageView | undefined> {
  const found = await Promise.all(topics.map((topic) => redis.hget(keys.topic(topic).scheduledData, id)));
  const at = found.findIndex((v) => typeof v === 'string');
  const topic = topics[at];
  const raw = found[at];
  if (topic === undefined || typeof raw !== 'string') return undefined;
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
