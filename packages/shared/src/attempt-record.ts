/**
 * The attempt log's compact text: how attempts are written once per settle
 * batch instead of once per message.
 *
 * A publisher's log (`PublisherKeys.log`) is a sorted set. Each member is
 * one record: the attempts of one settle batch whose messages were received
 * within `RECORD_SPAN_MS` of each other (a batch that spans more is cut into
 * several records), scored by the receipt time (ms) of its oldest message.
 * So the attempts of a message received at T are all in records scored from
 * T - RECORD_SPAN_MS to T, and `attempts.lua` finds them with one range.
 *
 * A record is `<header>;<item>;<item>...`, the header `<settled at, base 36>.<tag>|<status>`
 * (the tag makes members unique; `status` is the most common status of the
 * record, left out of its items) and each item
 *
 *     <ms - score>-<seq>:<settled at - ended at>:<duration ms>[:<status>[:<outcome>[:<error>[:<worker>[:<lease ms>[:<response>]]]]]]
 *
 * with trailing empty fields dropped (an empty status is the record's, `-` none). `response` is the
 * start of a failed attempt's answer (at most `MAX_RESPONSE_BYTES`). Error, worker and response are percent-encoded,
 * so `;`, `:` and `|` never appear inside a field. A first-attempt delivery
 * with the usual status costs about 10 bytes: `12-0:3:2`.
 */
import { randomBytes } from 'node:crypto';
import { streamIdTime } from './ids.js';
import type { LeaseWorker } from './types.js';

/** Most receipt-time span (ms) of the messages of one record. */
export const RECORD_SPAN_MS = 2000;

/** Bytes of a failed attempt's answer that are kept (its start, as text). */
export const MAX_RESPONSE_BYTES = 1024;

/**
 * How an attempt ended. Pushed deliveries: delivered, retry, dead, and skipped
 * (not sent: the publisher's filter did not match). Pull leases: the rest.
 */
export type LoggedOutcome =
  'delivered' | 'retry' | 'dead' | 'skipped' | 'completed' | 'replaced' | 'expired' | 'worker_retry' | 'failed';

const OUTCOME_CODES: Record<LoggedOutcome, string> = {
  delivered: '',
  retry: 'r',
  dead: 'x',
  skipped: 's',
  completed: 'c',
  replaced: 'p',
  expired: 'e',
  worker_retry: 'w',
  failed: 'f',
};
const OUTCOMES_BY_CODE = new Map<string, LoggedOutcome>(
  Object.entries(OUTCOME_CODES).map(([outcome, code]) => [code, outcome as LoggedOutcome]),
);

/** One attempt as the log keeps it. */
export interface LoggedAttempt {
  readonly streamId: string;
  readonly startedAt: number;
  readonly durationMs: number;
  readonly status?: number;
  readonly outcome: LoggedOutcome;
  /** Why it failed (left out when it is just `HTTP <status>`). */
  readonly error?: string;
  /** A failed attempt's answer: its first `MAX_RESPONSE_BYTES`, as text. */
  readonly response?: string;
  /** Pull: the worker that held the lease. */
  readonly worker?: LeaseWorker;
  /** Pull: when the lease was to end. */
  readonly leaseExpiresAt?: number;
}

/** A random tag that keeps this process's attempt records apart from other writers'. */
const RECORD_TAG = randomBytes(3).toString('base64url');
let recordCount = 0;

/** A header tag unique to this process and record (see `encodeRecords`). */
export function recordTag(): string {
  recordCount = (recordCount + 1) % 2_176_782_336;
  return RECORD_TAG + recordCount.toString(36);
}

export interface LogRecord {
  readonly score: number;
  readonly member: string;
}

/** Lone halves of a surrogate pair (an emoji cut in two): encodeURIComponent refuses them. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

const esc = (text: string): string => encodeURIComponent(text.replace(LONE_SURROGATE, '\uFFFD'));

/** An item's status field: empty for the record's common status, `-` for none where the record has one. */
function statusField(status: number | undefined, common: number | undefined): string {
  if (status === common) return '';
  return status === undefined ? '-' : String(status);
}

function item(a: LoggedAttempt, base: number, settledAt: number, defaultStatus: number | undefined): string {
  const sid = a.streamId;
  const dash = sid.indexOf('-');
  let text = `${Number(sid.slice(0, dash)) - base}${sid.slice(dash)}:${settledAt - a.startedAt - a.durationMs}:${a.durationMs}`;
  const tail = [
    statusField(a.status, defaultStatus),
    OUTCOME_CODES[a.outcome],
    a.error === undefined || (a.status !== undefined && a.error === `HTTP ${a.status}`) ? '' : esc(a.error),
    a.worker === undefined ? '' : esc(JSON.stringify(a.worker)),
    a.leaseExpiresAt === undefined ? '' : String(a.leaseExpiresAt - a.startedAt),
    a.response === undefined || a.response === '' ? '' : esc(a.response),
  ];
  let end = tail.length;
  while (end > 0 && tail[end - 1] === '') end--;
  for (let i = 0; i < end; i++) text += `:${tail[i] as string}`;
  return text;
}

/**
 * The records of one settle batch: attempts grouped by receipt time so that
 * no record spans more than `RECORD_SPAN_MS`. `tag` must make the header
 * unique (a per-writer random part and a counter).
 */
export function encodeRecords(attempts: readonly LoggedAttempt[], settledAt: number, tag: () => string): LogRecord[] {
  if (attempts.length === 0) return [];
  let sorted = attempts;
  for (let i = 1; i < attempts.length; i++) {
    if (
      streamIdTime((attempts[i] as LoggedAttempt).streamId) < streamIdTime((attempts[i - 1] as LoggedAttempt).streamId)
    ) {
      sorted = [...attempts].sort((x, y) => streamIdTime(x.streamId) - streamIdTime(y.streamId));
      break;
    }
  }
  const records: LogRecord[] = [];
  let start = 0;
  while (start < sorted.length) {
    const base = streamIdTime((sorted[start] as LoggedAttempt).streamId);
    let end = start + 1;
    while (end < sorted.length && streamIdTime((sorted[end] as LoggedAttempt).streamId) - base <= RECORD_SPAN_MS) end++;
    const status = commonStatus(sorted, start, end);
    let member = `${settledAt.toString(36)}.${tag()}|${status ?? ''}`;
    for (let i = start; i < end; i++) member += `;${item(sorted[i] as LoggedAttempt, base, settledAt, status)}`;
    records.push({ score: base, member });
    start = end;
  }
  return records;
}

function commonStatus(attempts: readonly LoggedAttempt[], start: number, end: number): number | undefined {
  const first = attempts[start]?.status;
  let same = 0;
  for (let i = start; i < end; i++) if (attempts[i]?.status === first) same++;
  return same * 2 >= end - start ? first : undefined;
}

/**
 * One item that `attempts.lua` found: the record's score, its header and the
 * item text, back as an attempt. Undefined when the text is not an item.
 */
export function decodeItem(score: number, header: string, text: string): LoggedAttempt | undefined {
  const bar = header.indexOf('|');
  const dot = header.indexOf('.');
  if (bar === -1 || dot === -1) return undefined;
  const settledAt = parseInt(header.slice(0, dot), 36);
  const defaultStatus = header.slice(bar + 1);
  const f = text.split(':');
  const [sid, ago, duration] = f;
  if (sid === undefined || ago === undefined || duration === undefined) return undefined;
  const dash = sid.indexOf('-');
  if (dash === -1) return undefined;
  const status = f[3] === '-' ? undefined : f[3] ? Number(f[3]) : defaultStatus ? Number(defaultStatus) : undefined;
  const outcome = OUTCOMES_BY_CODE.get(f[4] ?? '');
  if (outcome === undefined || !Number.isFinite(settledAt)) return undefined;
  const startedAt = settledAt - Number(ago) - Number(duration);
  let worker: LeaseWorker | undefined;
  if (f[6]) {
    try {
      worker = JSON.parse(decodeURIComponent(f[6])) as LeaseWorker;
    } catch {
      worker = undefined;
    }
  }
  const error = f[5]
    ? safeDecode(f[5])
    : outcome !== 'delivered' && status !== undefined && isFailure(outcome)
      ? `HTTP ${status}`
      : undefined;
  return {
    streamId: `${score + Number(sid.slice(0, dash))}${sid.slice(dash)}`,
    startedAt,
    durationMs: Number(duration),
    ...(status === undefined || Number.isNaN(status) ? {} : { status }),
    outcome,
    ...(error === undefined ? {} : { error }),
    ...(worker === undefined ? {} : { worker }),
    ...(f[7] ? { leaseExpiresAt: startedAt + Number(f[7]) } : {}),
    ...(f[8] ? { response: safeDecode(f[8]) } : {}),
  };
}

function isFailure(outcome: LoggedOutcome): boolean {
  return outcome === 'retry' || outcome === 'dead';
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * A message's attempt count and last attempt while it waits for a retry, as
 * kept in the publisher's attempts hash: `<count>|<started at>|<duration>|<status>|<error>[|<response>]`.
 * Values written before this format are a bare count.
 */
export interface RetryState {
  readonly count: number;
  readonly last?: {
    readonly startedAt: number;
    readonly durationMs: number;
    readonly status?: number;
    readonly error?: string;
    readonly response?: string;
  };
}

export function encodeRetryState(count: number, last: NonNullable<RetryState['last']>): string {
  const text = `${count}|${last.startedAt}|${last.durationMs}|${last.status ?? ''}|${last.error === undefined ? '' : esc(last.error)}`;
  return last.response ? `${text}|${esc(last.response)}` : text;
}

export function decodeRetryState(text: string | null | undefined): RetryState | undefined {
  if (text === null || text === undefined) return undefined;
  const f = text.split('|');
  const count = Number(f[0]);
  if (!Number.isFinite(count)) return undefined;
  if (f.length < 5) return { count };
  return {
    count,
    last: {
      startedAt: Number(f[1]),
      durationMs: Number(f[2]),
      ...(f[3] ? { status: Number(f[3]) } : {}),
      ...(f[4] ? { error: safeDecode(f[4]) } : {}),
      ...(f[5] ? { response: safeDecode(f[5]) } : {}),
    },
  };
}

/**
 * The stream ids that one record (a member of the log, scored `score`)
 * holds as skipped: the messages the publisher's filter kept from being sent.
 */
export function skippedIn(score: number, member: string): string[] {
  if (!member.includes(':s')) return [];
  const parts = member.split(';');
  const header = parts[0] ?? '';
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) {
    const a = decodeItem(score, header, parts[i] as string);
    if (a?.outcome === 'skipped') out.push(a.streamId);
  }
  return out;
}
