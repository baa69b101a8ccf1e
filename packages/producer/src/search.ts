/**
 * Message search: walks the topics' streams newest first (XREVRANGE in
 * batches, one cursor position per topic, merged by stream id across
 * topics) and keeps the entries that pass every filter. The delivery state
 * of an entry for a publisher comes from its group: dead (in the dead set),
 * retrying (in the retry set), pending (in flight, or not read yet: after
 * the group's last-delivered id), delivered otherwise, unless its note or a
 * purge's range record says deleted or purged (`rangeRuling`, as the
 * message's own page says); and, only for publishers whose counters say
 * they have skipped messages, skipped (its attempt log says so).
 *
 * Work per request is bounded: at most `budget` entries are examined; a
 * search cut short says `truncated` and gives a cursor to go on. The cursor
 * holds, per topic, the last entry examined, and the time of the first page
 * as the upper bound, so pages stay stable while new messages arrive.
 */
import {
  RECORD_SPAN_MS,
  deliveryState,
  execBySlot,
  isStreamId,
  lastDeliveredIds,
  parseEntry,
  parsePublisher,
  parseRangeRecords,
  rangeRuling,
  skippedIn,
  type RuledNote,
  type DeliveryStateName,
  type Keys,
  type Publisher,
  type ScriptClient,
  type StoredMessage,
  type Store,
} from '@postoffice/shared';
import type { ChainableCommander } from 'ioredis';
import { decodeCursor, encodeCursor } from './failing.js';
import { parsePayload } from './replies.js';

/** A delivery state search shows: the read model's, and `deleted` (from the failing list). */
export type SearchState = DeliveryStateName | 'deleted';

export interface SearchFilters {
  readonly topic?: string;
  readonly publisher?: Publisher;
  readonly state?: SearchState;
  /** Received at or after (ms). */
  readonly from?: number;
  /** Received at or before (ms). */
  readonly to?: number;
  readonly attributes: Readonly<Record<string, string>>;
  /** A substring of the payload's JSON text. */
  readonly q?: string;
}

export interface SearchItem {
  readonly id: string;
  readonly topic: string;
  readonly received_at: string;
  readonly payload: unknown;
  readonly attributes: Readonly<Record<string, string>>;
  /** With a state or publisher filter: each publisher's delivery state. */
  readonly deliveries?: { publisher_id: string; state: SearchState }[];
}

export interface SearchPage {
  readonly items: SearchItem[];
  readonly cursor: string | null;
  /** Whether the scan budget ran out before the page was full. */
  readonly truncated: boolean;
  readonly scanned: number;
}

/** Per topic: the last stream id examined (exclusive bound of the next page), '' not started, null done. */
interface Cursor {
  readonly top: number;
  readonly p: Record<string, string | null>;
}

const BATCH = 200;
/**
 * The first read of a topic asks for few entries: payloads may be megabytes
 * each, and what is read is held in memory. Reads grow fourfold while a
 * read's payloads stay well inside the page's byte budget.
 */
const FIRST_BATCH = 4;

/**
 * Whether `text` is a cursor `run` gave. Each position is an exclusive upper
 * bound of XREVRANGE, `(<id>`: a stream id Redis accepts, and not 0-0 (there
 * is nothing below it, and Redis refuses the bound).
 */
export function validSearchCursor(text: string): boolean {
  const c = decodeCursor(text) as Partial<Cursor> | undefined;
  if (!c || typeof c !== 'object' || !Number.isSafeInteger(c.top) || (c.top as number) < 0) return false;
  if (!c.p || typeof c.p !== 'object' || Array.isArray(c.p)) return false;
  return Object.values(c.p).every(
    (v) => v === null || v === '' || (typeof v === 'string' && isStreamId(v) && v !== '0-0'),
  );
}

function compare(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  if (am !== bm) return am < bm ? -1 : 1;
  return as === bs ? 0 : as < bs ? -1 : 1;
}

interface TopicScan {
  readonly topic: string;
  /** Last examined stream id ('' none yet). */
  last: string;
  buffer: StoredMessage[];
  exhausted: boolean;
  /** Entries the next read asks for: small at first, grown while payloads are small (see `fill`). */
  batch: number;
  publishers?: Publisher[];
  lastDelivered?: Map<string, string>;
  /** Publisher id -> whether it ever skipped / deleted messages (its counters), read once per scan. */
  exceptions?: Map<string, { skipped: boolean; deleted: boolean }>;
  states: Map<string, Map<string, SearchState>>;
}

export class Search {
  constructor(
    private readonly redis: ScriptClient,
    private readonly keys: Keys,
    private readonly store: Store,
    private readonly budget: number,
    /** Most payload bytes one page carries (it stops there, with at least one message, and gives a cursor). */
    private readonly byteBudget = Number.POSITIVE_INFINITY,
  ) {}

  async run(filters: SearchFilters, limit: number, cursorText?: string, now = Date.now()): Promise<SearchPage> {
    const cursor: Cursor = cursorText ? (decodeCursor(cursorText) as Cursor) : { top: now, p: {} };
    let names: string[];
    if (filters.publisher) names = [filters.publisher.topic];
    else if (filters.topic !== undefined) names = [filters.topic];
    else names = await this.store.listTopicNames();
    if (filters.topic !== undefined && !names.includes(filters.topic)) names = [];
    const scans: TopicScan[] = [];
    for (const topic of names) {
      const at = Object.hasOwn(cursor.p, topic) ? cursor.p[topic] : '';
      // Nothing comes before 0-0: a cursor there is done with the topic.
      if (at === null || at === undefined || /^0+-0+$/.test(at)) continue;
      scans.push({ topic, last: at, buffer: [], exhausted: false, batch: FIRST_BATCH, states: new Map() });
    }
    const needStates = filters.state !== undefined || filters.publisher !== undefined;
    const upper = Math.min(cursor.top, filters.to ?? Number.POSITIVE_INFINITY);
    // Nothing was received before the epoch.
    if (upper < 0) return { items: [], cursor: null, truncated: false, scanned: 0 };
    const items: SearchItem[] = [];
    let scanned = 0;
    let truncated = false;
    let bytes = 0;
    for (;;) {
      if (items.length >= limit) break;
      if (bytes >= this.byteBudget) {
        truncated = true;
        break;
      }
      if (scanned >= this.budget) {
        truncated = true;
        break;
      }
      // fill empty buffers (one pipelined round trip for all that need it)
      const empty = scans.filter((s) => s.buffer.length === 0 && !s.exhausted);
      if (empty.length > 0) {
        // What is read but not examined is bounded too: the budget left, shared among the topics read.
        const active = scans.filter((s) => !s.exhausted || s.buffer.length > 0).length;
        const share = Math.ceil((this.budget - scanned) / Math.max(1, active));
        await this.fill(empty, upper, filters, Math.max(1, Math.min(BATCH, share)));
      }
      let best: TopicScan | undefined;
      for (const s of scans) {
        const head = s.buffer[0];
        if (head && (!best || compare(head.streamId, (best.buffer[0] as StoredMessage).streamId) > 0)) best = s;
      }
      if (!best) break;
      const message = best.buffer.shift() as StoredMessage;
      best.last = message.streamId;
      scanned++;
      if (!this.matches(message, filters)) continue;
      if (needStates) {
        const states = best.states.get(message.streamId);
        const wanted = filters.publisher ? states?.get(filters.publisher.id) : undefined;
        if (filters.state !== undefined) {
          if (filters.publisher ? wanted !== filters.state : ![...(states?.values() ?? [])].includes(filters.state))
            continue;
        } else if (filters.publisher && wanted === undefined) continue;
        items.push(this.item(best.topic, message, states));
      } else items.push(this.item(best.topic, message));
      bytes += message.payload.length;
    }
    const done = scans.every((s) => s.exhausted && s.buffer.length === 0);
    let next: string | null = null;
    if (!done) {
      const p: Record<string, string | null> = {};
      for (const topic of names) p[topic] = null;
      for (const s of scans) p[s.topic] = s.exhausted && s.buffer.length === 0 ? null : s.last;
      next = encodeCursor({ top: cursor.top, p });
    }
    return { items, cursor: next, truncated, scanned };
  }

  private item(topic: string, m: StoredMessage, states?: Map<string, SearchState>): SearchItem {
    return {
      id: m.id,
      topic,
      received_at: new Date(m.receivedAt).toISOString(),
      payload: parsePayload(m.payload),
      attributes: m.attributes,
      ...(states ? { deliveries: [...states].map(([publisher_id, state]) => ({ publisher_id, state })) } : {}),
    };
  }

  private matches(m: StoredMessage, f: SearchFilters): boolean {
    if (f.from !== undefined && m.receivedAt < f.from) return false;
    for (const [k, v] of Object.entries(f.attributes)) if (m.attributes[k] !== v) return false;
    if (f.q !== undefined && !m.payload.includes(f.q)) return false;
    return true;
  }

  /** Reads the next batch of each scan, newest first, and the delivery states of what it read when needed. */
  private async fill(scans: TopicScan[], upper: number, filters: SearchFilters, count: number): Promise<void> {
    const lower = filters.from === undefined || filters.from <= 0 ? '-' : String(filters.from);
    const needStates = filters.state !== undefined || filters.publisher !== undefined;
    // One pipeline per topic (one hash slot each), all sent at once.
    const sizes = scans.map((s) => Math.max(1, Math.min(count, s.batch)));
    const batches = scans.map((s, k) => (p: ChainableCommander) => {
      const end = s.last === '' ? (Number.isFinite(upper) ? String(upper) : '+') : `(${s.last}`;
      p.xrevrange(this.keys.topic(s.topic).stream, end, lower, 'COUNT', sizes[k] as number);
      if (needStates && !s.publishers) {
        p.hvals(this.keys.topic(s.topic).publishers);
        p.xinfo('GROUPS', this.keys.topic(s.topic).stream);
      }
    });
    // XINFO on a stream that does not exist yet fails: no messages, no groups.
    const replies = (await execBySlot(this.redis, batches)).map(([err, value]) => {
      if (err && !(err instanceof Error && /no such key/i.test(err.message))) throw err;
      return err ? [] : value;
    });
    let i = 0;
    for (const [k, s] of scans.entries()) {
      const entries = replies[i++] as [string, string[]][];
      s.buffer = entries.map(([sid, fields]) => parseEntry(s.topic, sid, fields));
      if (entries.length < (sizes[k] as number)) s.exhausted = true;
      let bytes = 0;
      for (const m of s.buffer) bytes += m.payload.length;
      s.batch = bytes * 4 < this.byteBudget ? Math.min(BATCH, s.batch * 4) : Math.max(1, s.batch >> 1);
      if (needStates && !s.publishers) {
        const json = replies[i++] as string[];
        const groups = replies[i++];
        s.publishers = json
          .map(parsePublisher)
          .filter((pub) => !filters.publisher || pub.id === filters.publisher.id)
          .sort((a, b) => Number(a.id) - Number(b.id));
        s.lastDelivered = lastDeliveredIds(groups);
      }
    }
    if (needStates) await this.loadStates(scans);
  }

  /** Which publishers of the scans ever skipped or deleted messages: one HMGET of counters each, once per scan. */
  private async loadExceptions(scans: TopicScan[]): Promise<void> {
    const todo = scans.filter((s) => s.exceptions === undefined && (s.publishers ?? []).length > 0);
    if (todo.length === 0) return;
    const replies = (
      await execBySlot(
        this.redis,
        todo.map((s) => (p: ChainableCommander) => {
          for (const pub of s.publishers ?? [])
            p.hmget(this.keys.publisher(s.topic, pub.id).counts, 'skipped', 'deleted');
        }),
      )
    ).map(([err, value]) => {
      if (err) throw err;
      return value as (string | null)[];
    });
    let i = 0;
    for (const s of todo) {
      s.exceptions = new Map();
      for (const pub of s.publishers ?? []) {
        const [skipped, deleted] = replies[i++] ?? [];
        s.exceptions.set(pub.id, { skipped: Number(skipped ?? 0) > 0, deleted: Number(deleted ?? 0) > 0 });
      }
    }
  }

  private async loadStates(scans: TopicScan[]): Promise<void> {
    const now = Date.now();
    await this.loadExceptions(scans);
    const batches: ((p: ChainableCommander) => void)[] = [];
    const plan: [TopicScan, Publisher, { skipped: boolean; deleted: boolean }][] = [];
    for (const s of scans) {
      if (s.buffer.length === 0 || (s.publishers ?? []).length === 0) continue;
      const sids = s.buffer.map((m) => m.streamId);
      const stream = this.keys.topic(s.topic).stream;
      const newest = sids[0] as string;
      const oldest = sids[sids.length - 1] as string;
      const newestMs = (s.buffer[0] as StoredMessage).receivedAt;
      const oldestMs = (s.buffer[s.buffer.length - 1] as StoredMessage).receivedAt;
      // One pipeline per topic (one hash slot each), all sent at once.
      batches.push((p) => {
        for (const pub of s.publishers ?? []) {
          const pk = this.keys.publisher(s.topic, pub.id);
          const ex = s.exceptions?.get(pub.id);
          if (s.lastDelivered?.has(pub.id)) p.xpending(stream, pub.id, oldest, newest, sids.length);
          else p.echo('nogroup');
          p.zmscore(pk.retries, ...sids);
          p.zmscore(pk.dead, ...sids);
          p.hmget(pk.notes, ...sids);
          p.zrange(pk.ranges, oldest.slice(0, oldest.indexOf('-')), '+inf', 'BYSCORE');
          // A pull publisher's leases: a leased message waits in the retry set too, until its lease ends.
          if (pub.type === 'pull') p.hmget(pk.leases, ...sids);
          // The attempt log's records of these messages: which were skipped.
          if (ex?.skipped) p.zrange(pk.log, oldestMs - RECORD_SPAN_MS, newestMs, 'BYSCORE', 'WITHSCORES');
        }
      });
      for (const pub of s.publishers ?? [])
        plan.push([s, pub, s.exceptions?.get(pub.id) ?? { skipped: false, deleted: false }]);
    }
    if (plan.length === 0) return;
    const replies = (await execBySlot(this.redis, batches)).map(([err, value]) => {
      if (err) throw err;
      return value;
    });
    let i = 0;
    for (const [s, pub, ex] of plan) {
      const pending = replies[i++];
      const retries = replies[i++] as (string | null)[];
      const dead = replies[i++] as (string | null)[];
      const notes = replies[i++] as (string | null)[];
      const ranges = parseRangeRecords(replies[i++] as string[]);
      const pull = pub.type === 'pull';
      const leases = pull ? (replies[i++] as (string | null)[]) : [];
      const skipped = new Set<string>();
      if (ex.skipped) {
        const records = replies[i++] as string[];
        for (let r = 0; r + 1 < records.length; r += 2)
          for (const sid of skippedIn(Number(records[r + 1]), records[r] as string)) skipped.add(sid);
      }
      const inFlight = new Set(Array.isArray(pending) ? (pending as [string][]).map(([sid]) => sid) : []);
      const last = s.lastDelivered?.get(pub.id);
      const created = Date.parse(pub.created_at);
      s.buffer.forEach((m, k) => {
        if (pub.from_now && created > m.receivedAt) return;
        const note = notes[k];
        const ruling =
          note || ranges.length > 0 ? rangeRuling(m.streamId, note ? noteOf(note) : undefined, ranges) : undefined;
        const retryAt = retries[k];
        const state: SearchState = deliveryState({
          ruling: ruling ?? { deleted: false, purged: false },
          dead: dead[k] !== null,
          pull,
          leaseExpiresAt: pull ? leaseEnd(leases[k]) : undefined,
          retryAt: retryAt === null || retryAt === undefined ? undefined : Number(retryAt),
          unsettled: inFlight.has(m.streamId) || last === undefined || compare(m.streamId, last) > 0,
          skipped: skipped.has(m.streamId),
          now,
        });
        let map = s.states.get(m.streamId);
        if (!map) s.states.set(m.streamId, (map = new Map<string, SearchState>()));
        map.set(pub.id, state);
      });
    }
  }
}

/** When a stored lease (its JSON) ends; undefined for none. */
function leaseEnd(json: string | null | undefined): number | undefined {
  if (!json) return undefined;
  try {
    const lease = JSON.parse(json) as { expires_at?: unknown };
    return typeof lease?.expires_at === 'number' ? lease.expires_at : undefined;
  } catch {
    return undefined;
  }
}

/** A note's JSON, as far as search needs it; nothing for one that does not parse. */
function noteOf(json: string): RuledNote | undefined {
  try {
    const note = JSON.parse(json) as RuledNote;
    return note && typeof note === 'object' ? note : undefined;
  } catch {
    return undefined;
  }
}
