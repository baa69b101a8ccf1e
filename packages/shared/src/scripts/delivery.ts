/**
 * The scripts of a message's way: ingest (and scheduled messages), taking
 * retries, settling a batch, taking over a dead consumer's entries,
 * trimming, the rate limit, and reading the attempt log. See each
 * `lua/<file>.lua` for what it does.
 */
import { checkScriptResult } from '../errors.js';
import { count, defineScript, done, optionalTime, type ScriptArg, type ScriptKeys } from './script.js';

const INGEST_KEYS = ['topic', 'stream', 'series', 'idempotency'] as const;
export interface IngestArgs {
  /** The wake-up channel to publish the topic's name on once written, or '' for none. */
  readonly wake: string;
  readonly topic: string;
  /** Flat pairs: payload JSON, attributes JSON ('' when there are none). */
  readonly messages: readonly string[];
  /** With the `series` key: the minute of the hour and the counters' expiry (s). */
  readonly minute?: number | string;
  readonly seriesTtl?: number | string;
  /** With the `idempotency` key: the request's fingerprint and how long to keep the key (s). */
  readonly fingerprint?: string;
  readonly idempotencyTtl?: number | string;
}
export type IngestReply =
  /** Written: the stream ids, in order. */
  | { readonly replayed: false; readonly streamIds: string[] }
  /**
   * Nothing written: the idempotency key holds this request's answer,
   * '<stream id>,...', or one written before fingerprints, '{"kind":...,"ids":[...]}'.
   */
  | { readonly replayed: true; readonly kept: string };
export const ingest = defineScript<ScriptKeys<typeof INGEST_KEYS, 'series' | 'idempotency'>, IngestArgs, IngestReply>({
  file: 'ingest',
  keys: INGEST_KEYS,
  args: (a) => {
    const argv: ScriptArg[] = [a.wake, a.topic, a.messages.length / 2, ...a.messages];
    if (a.minute !== undefined) argv.push(a.minute, a.seriesTtl ?? '');
    if (a.fingerprint !== undefined) argv.push(a.fingerprint, a.idempotencyTtl ?? '');
    return argv;
  },
  reply: (raw) => {
    const reply = checkScriptResult(raw) as string[];
    return reply[0] === '=' ? { replayed: true, kept: String(reply[1]) } : { replayed: false, streamIds: reply };
  },
});

const SCHEDULE_KEYS = ['topic', 'scheduled', 'scheduledData'] as const;
export const schedule = defineScript<
  ScriptKeys<typeof SCHEDULE_KEYS>,
  {
    readonly id: string;
    readonly dueAt: number;
    /** {p: payload JSON, a: attributes JSON or '', at: ISO due time, created_at} */
    readonly messageJson: string;
  },
  void
>({
  file: 'schedule',
  keys: SCHEDULE_KEYS,
  args: (a) => [a.id, a.dueAt, a.messageJson],
  reply: done,
});

const RELEASE_SCHEDULED_KEYS = ['topic', 'stream', 'ids', 'scheduled', 'scheduledData'] as const;
export interface ReleaseScheduledReply {
  readonly moved: number;
  /** The earliest due time left (ms), if any. */
  readonly next: number | undefined;
}
export const releaseScheduled = defineScript<
  ScriptKeys<typeof RELEASE_SCHEDULED_KEYS>,
  { readonly now: number; readonly max: number },
  ReleaseScheduledReply
>({
  file: 'release-scheduled',
  keys: RELEASE_SCHEDULED_KEYS,
  args: (a) => [a.now, a.max],
  reply: (raw) => {
    const [moved, next] = raw as [number, string];
    return { moved, next: optionalTime(next) };
  },
});

const CANCEL_SCHEDULED_KEYS = ['scheduled', 'scheduledData', 'ids'] as const;
export const cancelScheduled = defineScript<ScriptKeys<typeof CANCEL_SCHEDULED_KEYS>, { readonly id: string }, void>({
  file: 'cancel-scheduled',
  keys: CANCEL_SCHEDULED_KEYS,
  args: (a) => [a.id],
  reply: done,
});

/** A retry taken: its stream id, its retry state ('0' when it has none) and the entry's fields. */
export type TakenRetry = readonly [streamId: string, state: string, fields: string[]];

const TAKE_RETRIES_KEYS = ['stream', 'retries', 'attempts'] as const;
export interface TakeRetriesReply {
  /** The earliest score left in the retry set after the lease. */
  readonly next: number | undefined;
  readonly taken: readonly TakenRetry[];
}
export const takeRetries = defineScript<
  ScriptKeys<typeof TAKE_RETRIES_KEYS>,
  {
    readonly now: number;
    readonly leaseEnd: number;
    readonly max: number;
    /** Take the earliest entries even if not due (a circuit breaker's probe). */
    readonly force: boolean;
  },
  TakeRetriesReply
>({
  file: 'take-retries',
  keys: TAKE_RETRIES_KEYS,
  args: (a) => [a.now, a.leaseEnd, a.max, a.force ? '1' : '0'],
  reply: (raw) => {
    const [next, taken] = raw as [string, TakenRetry[]];
    return { next: optionalTime(next), taken };
  },
});

const TAKE_ORDERED_KEYS = ['stream', 'retries', 'attempts'] as const;
export interface TakeOrderedReply extends TakeRetriesReply {
  /** Every key with an entry left in the retry set. */
  readonly waiting: string[];
  /** The retry set holds more entries than were looked at (some keys unseen). */
  readonly truncated: boolean;
}
export const takeOrdered = defineScript<
  ScriptKeys<typeof TAKE_ORDERED_KEYS>,
  {
    readonly now: number;
    readonly leaseEnd: number;
    /** The ordering attribute, or '' (one key for the whole publisher). */
    readonly attribute: string;
    readonly max: number;
    /** Most entries to look at. */
    readonly scan: number;
    /** Take the earliest heads whatever their due time (a probe). */
    readonly force: boolean;
    /** Keys with a message in flight on the node. */
    readonly busy: Iterable<string>;
  },
  TakeOrderedReply
>({
  file: 'take-ordered',
  keys: TAKE_ORDERED_KEYS,
  args: (a) => [a.now, a.leaseEnd, a.attribute, a.max, a.scan, a.force ? '1' : '0', ...a.busy],
  reply: (raw) => {
    const [next, taken, waiting, truncated] = raw as [string, TakenRetry[], (string | number)[], number];
    return { next: optionalTime(next), taken, waiting: waiting.map(String), truncated: truncated === 1 };
  },
});

const SETTLE_KEYS = ['stream', 'retries', 'attempts', 'dead', 'log', 'notes', 'counts', 'series'] as const;
export interface SettleArgs {
  /** The consumer group (the publisher id). */
  readonly group: string;
  /** A record of the log that the first of `records` replaces, or ''. */
  readonly replaces: string;
  /** Attempt records (attempt-record.ts). */
  readonly records: readonly { readonly score: number; readonly member: string }[];
  /** Stream ids to acknowledge (delivered and dead). */
  readonly acked: readonly string[];
  /** Stream ids that leave the retry set (delivered or dead after a retry). */
  readonly cleared: readonly string[];
  /** Flat triples: stream id, due ms, retry state (scheduled for a retry). */
  readonly retries: readonly ScriptArg[];
  /** Flat triples: stream id, dead since ms, note JSON (dead letters). */
  readonly dead: readonly ScriptArg[];
  /** With the `counts` key: how many of the acknowledged were skipped (the filter did not match). */
  readonly skipped?: number;
  /** With the `series` key: the batch's delivered messages and failed attempts, the minute of the hour, the expiry (s). */
  readonly delivered?: number;
  readonly failed?: number;
  readonly minute?: number;
  readonly seriesTtl?: number;
}
/** Replies with the number of entries acknowledged. */
export const settle = defineScript<ScriptKeys<typeof SETTLE_KEYS, 'counts' | 'series'>, SettleArgs, number>({
  file: 'settle',
  keys: SETTLE_KEYS,
  args: (a) => {
    const argv: ScriptArg[] = [a.group, a.replaces, a.records.length];
    for (const r of a.records) argv.push(r.score, r.member);
    argv.push(a.acked.length, ...a.acked, a.cleared.length, ...a.cleared);
    argv.push(a.retries.length / 3, ...a.retries, a.dead.length / 3, ...a.dead);
    if (a.skipped !== undefined) argv.push(a.skipped);
    if (a.delivered !== undefined) argv.push(a.delivered, a.failed ?? 0, a.minute ?? 0, a.seriesTtl ?? 0);
    return argv;
  },
  reply: count,
});

const RECLAIM_KEYS = ['stream', 'retries'] as const;
export interface ReclaimReply {
  /** Entries newly scheduled for a new attempt. */
  readonly scheduled: number;
  /** The consumer that left is gone (else call again). */
  readonly done: boolean;
}
export const reclaim = defineScript<
  ScriptKeys<typeof RECLAIM_KEYS>,
  {
    readonly group: string;
    /** The consumer that left. */
    readonly from: string;
    /** The consumer that takes the entries over. */
    readonly to: string;
    readonly now: number;
    readonly max: number;
  },
  ReclaimReply
>({
  file: 'reclaim',
  keys: RECLAIM_KEYS,
  args: (a) => [a.group, a.from, a.to, a.now, a.max],
  reply: (raw) => {
    const [scheduled, finished] = raw as [number, number];
    return { scheduled, done: finished === 1 };
  },
});

const TRIM_KEYS = ['stream', 'ids'] as const;
export interface TrimReply {
  readonly removed: number;
  /** More could be removed (call again). */
  readonly more: boolean;
}
export const trim = defineScript<
  ScriptKeys<typeof TRIM_KEYS>,
  { readonly cutoff: number; readonly max: number },
  TrimReply
>({
  file: 'trim',
  keys: TRIM_KEYS,
  args: (a) => [a.cutoff, a.max],
  reply: (raw) => {
    const [removed, more] = raw as [number, number];
    return { removed, more: more === 1 };
  },
});

const RATE_LIMIT_KEYS = ['bucket'] as const;
export interface RateLimitReply {
  readonly granted: number;
  /** Ms until the next token when fewer than asked were granted, else 0. */
  readonly waitMs: number;
}
export const rateLimit = defineScript<
  ScriptKeys<typeof RATE_LIMIT_KEYS>,
  {
    readonly perSecond: number;
    readonly burst: number;
    /** n > 0 takes up to n tokens, n < 0 gives -n back. */
    readonly tokens: number;
  },
  RateLimitReply
>({
  file: 'rate-limit',
  keys: RATE_LIMIT_KEYS,
  args: (a) => [a.perSecond, a.burst, a.tokens],
  reply: (raw) => {
    const [granted, waitMs] = raw as [number, number];
    return { granted, waitMs };
  },
});

/**
 * Per attempt log, flat: score, record header, item, score, header, item, ...
 * (attempt-record.ts).
 */
export type AttemptsReply = string[][];
export const attempts = defineScript<
  /** The attempt log of each publisher (KEYS[1..n]). */
  { readonly logs: readonly string[] },
  {
    /** The message's receipt time (ms, the stream id's first part) and the id's sequence part. */
    readonly receivedAt: string | number;
    readonly sequence: string | number;
    /** The record span (ms). */
    readonly span: number;
  },
  AttemptsReply
>({
  file: 'attempts',
  keys: (k) => k.logs,
  args: (a) => [a.receivedAt, a.sequence, a.span],
  reply: (raw) => raw as AttemptsReply,
});
