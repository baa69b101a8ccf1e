/**
 * A publisher's failing messages: those waiting for a retry and its dead
 * letters, listed page by page, and the operator's actions on them (retry
 * now, set the next attempt, recover dead letters since a time, delete).
 *
 * Each action is one single-slot script call per batch (failing.lua, the
 * topic's keys only), then two steps that are safe to repeat: the delivery
 * history notes the action (note-history.lua), and the global retry index
 * is lowered (`ZADD LT`) so that a consumer node takes the retries when due.
 */
import {
  isStreamId,
  parseEntry,
  type DeliveryRecord,
  type Keys,
  type Publisher,
  type ScriptClient,
  type StoredMessage,
} from '@postoffice/shared';
import { execOrThrow, parsePayload } from './replies.js';

export type FailingState = 'retrying' | 'dead';

export interface FailingItem {
  readonly id: string;
  readonly topic: string;
  readonly state: FailingState;
  readonly received_at: string;
  /** Retrying: when the next attempt is due (or the end of the lease while an attempt is in flight). */
  readonly next_attempt_at?: string;
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
    private readonly historyTtlSeconds: number,
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
    options: { state?: FailingState; limit: number; cursor?: string },
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
    const p1 = this.redis.pipeline();
    for (const [sid] of rows) p1.xrange(stream, sid, sid);
    const entries = (await execOrThrow(p1)) as [string, string[]][][];
    const messages: (StoredMessage | undefined)[] = entries.map((e) =>
      e[0] ? parseEntry(e[0][0], e[0][1]) : undefined,
    );
    const p2 = this.redis.pipeline();
    for (const m of messages) p2.hget(this.keys.history(publisher.topic, m?.id ?? 'none'), publisher.id);
    const records = (await execOrThrow(p2)) as (string | null)[];
    const items: FailingItem[] = [];
    rows.forEach(([, score, s], i) => {
      const m = messages[i];
      if (!m) return; // trimmed meanwhile: the next action or take drops it
      let record: DeliveryRecord | undefined;
      try {
        record = records[i] ? (JSON.parse(records[i]) as DeliveryRecord) : undefined;
      } catch {
        record = undefined;
      }
      const attempts = Array.isArray(record?.attempts) ? record.attempts : [];
      const lastAttempt = attempts[attempts.length - 1];
      items.push({
        id: m.id,
        topic: publisher.topic,
        state: s === 'r' ? 'retrying' : 'dead',
        received_at: new Date(m.receivedAt).toISOString(),
        ...(s === 'r'
          ? { next_attempt_at: new Date(score).toISOString() }
          : { dead_at: new Date(score).toISOString() }),
        ...(s === 'x' && record?.dead_reason !== undefined ? { dead_reason: record.dead_reason } : {}),
        attempt_count: record?.attempt_count ?? attempts.length,
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
    const tk = this.keys.topic(publisher.topic);
    const pk = this.keys.publisher(publisher.topic, publisher.id);
    const keys = [tk.stream, tk.ids, pk.retries, pk.attempts, pk.dead];
    const score = action.kind === 'retry' ? action.at : action.kind === 'recover' ? action.since : 0;
    const ids: string[] = [];
    const missing: string[] = [];
    const batches: (readonly string[] | undefined)[] = [];
    if ('ids' in selection) {
      for (let i = 0; i < selection.ids.length; i += BATCH) batches.push(selection.ids.slice(i, i + BATCH));
    } else batches.push(undefined);
    for (const batch of batches) {
      for (;;) {
        const [more, done, notFound] = (await this.redis.poFailing(
          keys.length,
          ...keys,
          action.kind,
          publisher.id,
          score,
          batch ? 'ids' : 'all',
          BATCH,
          now,
          ...(batch ?? []),
        )) as [number, [string, string][], string[]];
        for (const [id] of done) ids.push(id);
        missing.push(...notFound);
        await this.note(publisher, action, done, now);
        if (more !== 1 || batch || ids.length >= MAX_ALL) break;
      }
    }
    if (action.kind !== 'delete' && ids.length > 0 && publisher.active) {
      const due = action.kind === 'retry' ? action.at : now;
      await this.redis.zadd(this.keys.retryDue, 'LT', due, publisher.id);
    }
    return { ids, missing };
  }

  private async note(
    publisher: Publisher,
    action: FailingAction,
    done: [string, string][],
    now: number,
  ): Promise<void> {
    const historyKeys = done.filter(([id]) => id !== '').map(([id]) => this.keys.history(publisher.topic, id));
    if (historyKeys.length === 0) return;
    const at = new Date(now).toISOString();
    const [state, next, note] =
      action.kind === 'delete'
        ? ['deleted', '', 'deleted']
        : action.kind === 'recover'
          ? ['retrying', at, 'recovered']
          : ['retrying', new Date(action.at).toISOString(), action.note];
    await this.redis.poNoteHistory(
      historyKeys.length,
      ...historyKeys,
      publisher.id,
      this.historyTtlSeconds,
      state,
      next,
      note,
      at,
    );
  }
}
