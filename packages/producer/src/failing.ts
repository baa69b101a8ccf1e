/**
 * A publisher's failing messages: those waiting for a retry and its dead
 * letters, listed page by page, and the operator's actions on them (retry
 * now, set the next attempt, recover dead letters since a time, delete).
 *
 * Each action is one single-slot script call per batch (failing.lua, the
 * topic's keys only, which also notes the action on each message), then
 * the global retry index is lowered (`ZADD LT`, safe to repeat) so that a
 * consumer node takes the retries when due.
 *
 * What the list shows of each message comes from its exception records: a
 * retry's attempt count and last attempt (attempts hash), a dead letter's
 * note (reason, attempts, last attempt).
 */
import {
  decodeRetryState,
  isStreamId,
  messageId,
  parseEntry,
  parseMessageId,
  type Attempt,
  type DeliveryRecord,
  type Keys,
  type Publisher,
  type ScriptClient,
  type StoredMessage,
  scripts,
} from '@postoffice/shared';
import type { Note } from '@postoffice/shared';
import { execOrThrow, parsePayload } from './replies.js';

/** `leased`: a pull publisher's message that a worker holds (it is in the retry set until its lease ends). */
export type FailingState = 'retrying' | 'dead' | 'leased';

export interface FailingItem {
  readonly id: string;
  readonly topic: string;
  readonly state: FailingState;
  readonly received_at: string;
  /** Retrying: when the next attempt is due (or the end of the lease while an attempt is in flight). */
  readonly next_attempt_at?: string;
  /** Leased: when the worker's lease ends. */
  readonly lease_expires_at?: string;
  /** Dead: when it became a dead letter. */
  readonly dead_at?: string;
  readonly dead_reason?: string;
  readonly attempt_count: number;
  readonly last_attempt?: DeliveryRecord['attempts'][number];
  readonly payload: unknown;
  readonly attributes: Readonly<Record<string, string>>;
}

export interface FailingPage {
  readonly items: FailingItem[];
  /** Give it back to get the next page; null on the last one. */
  readonly cursor: string | null;
}

/** Where a page ended: the section (retry set or dead set), and the last entry's score and stream id. */
interface Position {
  readonly s: 'r' | 'x';
  readonly score: number;
  readonly sid: string;
}

export type FailingAction =
  | { readonly kind: 'retry'; readonly at: number; readonly note: 'retry_now' | 'rescheduled' }
  | { readonly kind: 'recover'; readonly since: number }
  | { readonly kind: 'delete' };

export type Selection = { readonly ids: readonly string[] } | { readonly all: true };

export interface ActionResult {
  /** Message ids acted on. */
  readonly ids: string[];
  /** Message ids given that were neither retrying nor dead (delivered, unknown or trimmed). */
  readonly missing: string[];
}

const BATCH = 500;
/** Most entries one "all" action touches (a safety net against a loop that never ends). */
const MAX_ALL = 1_000_000;

export function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** The decoded cursor, or undefined when it is not one of ours. */
export function decodeCursor(text: string): unknown {
  try {
    return JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function isPosition(v: unknown): v is Position {
  if (v === null || typeof v !== 'object') return false;
  const p = v as Record<string, unknown>;
  return (
    (p.s === 'r' || p.s === 'x') &&
    typeof p.score === 'number' &&
    Number.isFinite(p.score) &&
    typeof p.sid === 'string' &&
    isStreamId(p.sid)
  );
}

export class Failing {
  constructor(
    private readonly redis: ScriptClient,
    private readonly keys: Keys,
    /** Most payload bytes one page carries (it stops there, with at least one message, and gives a cursor). */
    private readonly byteBudget = Number.POSITIVE_INFINITY,
  ) {}

  /** Whether `text` is a cursor `list` gave. */
  static validCursor(text: string): boolean {
    return isPosition(decodeCursor(text));
  }

  /**
   * One page: retrying messages first (soonest next attempt first), then
   * dead letters (most recent first). `state` keeps one of the two.
   */
  async list(
    publisher: Publisher,
    options: { state?: 'retrying' | 'dead'; limit: number; cursor?: string },
  ): Promise<FailingPage> {
    const pk = this.keys.publisher(publisher.topic, publisher.id);
    const position = options.cursor === undefined ? undefined : (decodeCursor(options.cursor) as Position);
    const sections: ('r' | 'x')[] = [];
    if (options.state !== 'dead' && (position === undefined || position.s === 'r')) sections.push('r');
    if (options.state !== 'retrying') sections.push('x');
    const rows: [string, number, 'r' | 'x'][] = [];
    let last: Position | undefined;
    for (const s of sections) {
      const want = options.limit - rows.length;
      if (want <= 0) break;
      const key = s === 'r' ? pk.retries : pk.dead;
      const rev = s === 'x';
      const from = position?.s === s ? position : undefined;
      const got = await this.range(key, rev, want, from);
      for (const [sid, score] of got) rows.push([sid, score, s]);
      if (got.length === want) {
        const end = got[got.length - 1] as [string, number];
        last = { s, score: end[1], sid: end[0] };
        break;
      }
    }
    if (rows.length === 0) return { items: [], cursor: null };
    const stream = this.keys.topic(publisher.topic).stream;
    // The entries, a few at first (payloads may be megabytes each), until the page's bytes reach the budget.
    const pull = publisher.type === 'pull';
    const per = pull ? 3 : 2;
    const messages: (StoredMessage | undefined)[] = [];
    const extra: (string | null)[] = [];
    const leaseEnds: (number | undefined)[] = [];
    const now = Date.now();
    let bytes = 0;
    let chunk = 4;
    while (messages.length < rows.length && (messages.length === 0 || bytes < this.byteBudget)) {
      const part = rows.slice(messages.length, messages.length + chunk);
      const p1 = this.redis.pipeline();
      for (const [sid, , s] of part) {
        p1.xrange(stream, sid, sid);
        if (s === 'r') p1.hget(pk.attempts, sid);
        else p1.hget(pk.notes, sid);
        // A pull publisher's leased messages wait in its retry set too: they show as leased.
        if (pull) p1.hget(pk.leases, sid);
      }
      const replies = await execOrThrow(p1);
      let partBytes = 0;
      for (let i = 0; i < part.length; i++) {
        if (messages.length > 0 && bytes >= this.byteBudget) break;
        const e = replies[per * i] as [string, string[]][];
        const m = e[0] ? parseEntry(publisher.topic, e[0][0], e[0][1]) : undefined;
        messages.push(m);
        extra.push(replies[per * i + 1] as string | null);
        const lease =
          pull && (part[i] as [string, number, 'r' | 'x'])[2] === 'r'
            ? /"expires_at":(\d+)/.exec(String(replies[per * i + 2]))
            : null;
        leaseEnds.push(lease && Number(lease[1]) > now ? Number(lease[1]) : undefined);
        bytes += m?.payload.length ?? 0;
        partBytes += m?.payload.length ?? 0;
      }
      if (partBytes * 4 < this.byteBudget) chunk = Math.min(64, chunk * 4);
    }
    if (messages.length < rows.length) {
      // The byte budget cut the page: the cursor goes on after the last message given.
      rows.length = messages.length;
      const end = rows[rows.length - 1] as [string, number, 'r' | 'x'];
      last = { s: end[2], score: end[1], sid: end[0] };
    }
    // Messages written before the attempt log: their old history, until it expires.
    const legacy = new Map<number, DeliveryRecord>();
    const p2 = this.redis.pipeline();
    const asked: number[] = [];
    messages.forEach((m, i) => {
      if (m?.storedId) {
        p2.hget(this.keys.history(publisher.topic, m.id), publisher.id);
        asked.push(i);
      }
    });
    if (asked.length > 0) {
      const old = await execOrThrow(p2);
      asked.forEach((i, k) => {
        const record = parseRecord(old[k]);
        if (record) legacy.set(i, record);
      });
    }
    const items: FailingItem[] = [];
    rows.forEach(([, score, s], i) => {
      const m = messages[i];
      if (!m) return; // trimmed meanwhile: the next action or take drops it
      const old = legacy.get(i);
      const oldAttempts = Array.isArray(old?.attempts) ? old.attempts : [];
      let attemptCount = old?.attempt_count ?? oldAttempts.length;
      let lastAttempt: Attempt | undefined = oldAttempts[oldAttempts.length - 1];
      let deadReason = old?.dead_reason;
      if (s === 'r') {
        const state = decodeRetryState(extra[i]);
        if (state) attemptCount = Math.max(attemptCount, state.count);
        if (state?.last) {
          lastAttempt = {
            at: new Date(state.last.startedAt).toISOString(),
            ...(state.last.status === undefined ? {} : { status: state.last.status }),
            ...(state.last.error === undefined ? {} : { error: state.last.error }),
            ...(state.last.response === undefined ? {} : { response: state.last.response }),
            duration_ms: state.last.durationMs,
          };
        }
      } else {
        const note = parseRecord(extra[i]) as Note | undefined;
        if (note?.attempt_count !== undefined) attemptCount = Math.max(attemptCount, note.attempt_count);
        if (note?.last_attempt) lastAttempt = note.last_attempt;
        if (note?.dead_reason !== undefined) deadReason = note.dead_reason;
      }
      const leaseEnd = leaseEnds[i];
      items.push({
        id: m.id,
        topic: publisher.topic,
        state: s === 'x' ? 'dead' : leaseEnd !== undefined ? 'leased' : 'retrying',
        received_at: new Date(m.receivedAt).toISOString(),
        ...(s === 'x'
          ? { dead_at: new Date(score).toISOString() }
          : leaseEnd !== undefined
            ? { lease_expires_at: new Date(leaseEnd).toISOString() }
            : { next_attempt_at: new Date(score).toISOString() }),
        ...(s === 'x' && deadReason !== undefined ? { dead_reason: deadReason } : {}),
        attempt_count: attemptCount,
        ...(lastAttempt ? { last_attempt: lastAttempt } : {}),
        payload: parsePayload(m.payload),
        attributes: m.attributes,
      });
    });
    return { items, cursor: last ? encodeCursor(last) : null };
  }

  /**
   * Up to `count` members with scores after `from` (ascending, or
   * descending when `rev`). Resumes right after `from` when it is still in
   * the set with the same score (stable among equal scores), else after its score.
   */
  private async range(key: string, rev: boolean, count: number, from?: Position): Promise<[string, number][]> {
    let flat: string[];
    if (from === undefined) {
      flat = rev
        ? await this.redis.zrange(key, 0, count - 1, 'REV', 'WITHSCORES')
        : await this.redis.zrange(key, 0, count - 1, 'WITHSCORES');
    } else {
      const [rank, score] = (await execOrThrow(
        this.redis.pipeline()[rev ? 'zrevrank' : 'zrank'](key, from.sid).zscore(key, from.sid),
      )) as [number | null, string | null];
      if (rank !== null && score !== null && Number(score) === from.score) {
        flat = rev
          ? await this.redis.zrange(key, rank + 1, rank + count, 'REV', 'WITHSCORES')
          : await this.redis.zrange(key, rank + 1, rank + count, 'WITHSCORES');
      } else {
        flat = rev
          ? await this.redis.zrange(key, `(${from.score}`, '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, count, 'WITHSCORES')
          : await this.redis.zrange(key, `(${from.score}`, '+inf', 'BYSCORE', 'LIMIT', 0, count, 'WITHSCORES');
      }
    }
    const out: [string, number][] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i] as string, Number(flat[i + 1])]);
    return out;
  }

  /** Applies `action` to the selected failing messages of `publisher`. */
  async act(
    publisher: Publisher,
    action: FailingAction,
    selection: Selection,
    now = Date.now(),
  ): Promise<ActionResult> {
    const keys = scripts.publisherKeys(this.keys, publisher.topic, publisher.id);
    const score = action.kind === 'retry' ? action.at : action.kind === 'recover' ? action.since : 0;
    const note = action.kind === 'delete' ? 'deleted' : action.kind === 'recover' ? 'recovered' : action.note;
    const at = new Date(now).toISOString();
    const ids: string[] = [];
    const missing: string[] = [];
    const batches: (readonly string[] | undefined)[] = [];
    // Message ids -> stream ids (ids of another topic, or unknown, are missing).
    const bySid = new Map<string, string>();
    if ('ids' in selection) {
      const sids = await this.streamIds(publisher.topic, selection.ids);
      selection.ids.forEach((id, i) => {
        const sid = sids[i];
        if (sid === undefined) missing.push(id);
        else bySid.set(sid, id);
      });
      const known = [...bySid.keys()];
      for (let i = 0; i < known.length; i += BATCH) batches.push(known.slice(i, i + BATCH));
    } else batches.push(undefined);
    for (const batch of batches) {
      for (;;) {
        const { more, done, notFound } = await scripts.failing(this.redis, keys, {
          action: action.kind,
          group: publisher.id,
          score,
          ids: batch,
          max: BATCH,
          now,
          note,
          at,
        });
        for (const [sid, , stored] of done) ids.push(bySid.get(sid) ?? (stored || messageId(publisher.topic, sid)));
        for (const sid of notFound) missing.push(bySid.get(sid) ?? messageId(publisher.topic, sid));
        if (!more || batch || ids.length >= MAX_ALL) break;
      }
    }
    if (action.kind !== 'delete' && ids.length > 0 && publisher.active) {
      const due = action.kind === 'retry' ? action.at : now;
      await this.redis.zadd(this.keys.retryDue, 'LT', due, publisher.id);
    }
    return { ids, missing };
  }

  /** The stream id of each message id of the topic, undefined for an id that names none. */
  private async streamIds(topic: string, ids: readonly string[]): Promise<(string | undefined)[]> {
    const out: (string | undefined)[] = [];
    const aliases: number[] = [];
    ids.forEach((id, i) => {
      const ref = parseMessageId(id);
      if (ref?.streamId !== undefined && ref.topic === topic) out[i] = ref.streamId;
      else if (ref !== undefined && (ref.topic === undefined || ref.topic === topic)) aliases.push(i);
      else out[i] = undefined;
    });
    if (aliases.length > 0) {
      const found = await this.redis.hmget(this.keys.topic(topic).ids, ...aliases.map((i) => ids[i] as string));
      aliases.forEach((i, k) => (out[i] = found[k] ?? undefined));
    }
    return out;
  }
}

function parseRecord(json: unknown): DeliveryRecord | undefined {
  if (typeof json !== 'string') return undefined;
  try {
    const record = JSON.parse(json) as DeliveryRecord;
    return record && typeof record === 'object' ? record : undefined;
  } catch {
    return undefined;
  }
}
