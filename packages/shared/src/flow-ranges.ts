/**
 * Range records: an operator's action on many of one publisher's messages
 * at once, kept as one record instead of one per message (written by
 * purge.lua and seek.lua, in the publisher's `ranges` sorted set). A
 * record covers the stream entries after `from` up to `through`:
 *  - purge: entries the group had not read yet, skipped (never delivered);
 *  - seek: entries the group had read, given to the publisher again.
 *
 * The read model (`message-lookup.ts`, the producer's search) asks which
 * records cover a message. The latest one decides: a message the group
 * counts as settled is purged when it is a purge, delivered otherwise. A
 * seek also voids an older note's `deleted` or `purged` (the message was
 * given again since), and each record is the message's `last_action` when
 * it is later than the note's.
 */
import { compareStreamIds } from './ids.js';

export type RangeKind = 'purge' | 'seek';

export interface RangeRecord {
  readonly kind: RangeKind;
  /** When the operator acted (ms). */
  readonly at: number;
  /** The time the operator gave (ms): purge `before`, seek `to`. */
  readonly time: number;
  /** The record covers the entries after this id (exclusive)... */
  readonly from: string;
  /** ...up to this one (inclusive). */
  readonly through: string;
}

/** The action a record stands for, as `last_action` shows it. */
export const RANGE_ACTIONS: Readonly<Record<RangeKind, string>> = { purge: 'purged', seek: 'sought' };

/** The records of a `ranges` sorted set's members; unreadable ones are left out. */
export function parseRangeRecords(members: readonly string[]): RangeRecord[] {
  const out: RangeRecord[] = [];
  for (const member of members) {
    try {
      const r = JSON.parse(member) as Record<string, unknown>;
      if ((r.kind !== 'purge' && r.kind !== 'seek') || typeof r.from !== 'string' || typeof r.through !== 'string')
        continue;
      out.push({ kind: r.kind, at: Number(r.at), time: Number(r.time), from: r.from, through: r.through });
    } catch {
      // Not a record: ignored.
    }
  }
  return out;
}

/** Whether the record covers the stream entry `sid`. */
export function covers(r: RangeRecord, sid: string): boolean {
  return compareStreamIds(sid, r.from) > 0 && compareStreamIds(sid, r.through) <= 0;
}

/** What a note says that range records may overrule. */
export interface RuledNote {
  readonly deleted?: boolean;
  readonly purged?: boolean;
  readonly last_action?: { readonly action: string; readonly at: string };
}

export interface RangeRuling {
  /** The note's `deleted` holds (no later seek gave the message again). */
  readonly deleted: boolean;
  /** A message the group counts as settled was purged, not delivered. */
  readonly purged: boolean;
  /** The latest operator action: the note's, or a record's when later. */
  readonly lastAction?: { readonly action: string; readonly at: string };
}

/** How the range records covering `sid` and its note rule on a message for one publisher. */
export function rangeRuling(sid: string, note: RuledNote | undefined, records: readonly RangeRecord[]): RangeRuling {
  let latest: RangeRecord | undefined;
  for (const r of records) if (covers(r, sid) && (!latest || r.at >= latest.at)) latest = r;
  const noteAt = note?.last_action ? Date.parse(note.last_action.at) : Number.NEGATIVE_INFINITY;
  // A seek after the note gave the message again: its deletion or purge no longer holds.
  const voided = records.some((r) => r.kind === 'seek' && r.at > noteAt && covers(r, sid));
  const recordWins = latest !== undefined && (note?.last_action === undefined || latest.at > noteAt);
  const lastAction =
    recordWins && latest
      ? { action: RANGE_ACTIONS[latest.kind], at: new Date(latest.at).toISOString() }
      : note?.last_action;
  const purged = (note?.purged === true && !voided) || (recordWins && latest?.kind === 'purge');
  return { deleted: note?.deleted === true && !voided, purged, ...(lastAction ? { lastAction } : {}) };
}
