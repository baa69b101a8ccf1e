/**
 * The scripts of flow control and failing messages: purge, seek, counting
 * a stream range, and acting on failing messages. See each
 * `lua/<file>.lua` for what it does.
 *
 * purge.lua and seek.lua each keep a copy of the exact stream id comparison
 * (`cmp`): a Redis script cannot load another, and prepending a shared
 * prelude at load time would cost more than the fifteen lines it saves.
 */
import { checkScriptResult } from '../errors.js';
import { defineScript, type ScriptKeys } from './script.js';

const PURGE_KEYS = ['stream', 'retries', 'attempts', 'dead', 'notes', 'leases', 'ranges'] as const;
export interface PurgeReply {
  /** The group's last-delivered id before, and after. */
  readonly before: string;
  readonly after: string;
  /** The unread entries skipped, when Redis knew it without counting; else -1 (count between the two ids). */
  readonly unread: number;
  /** Entries pending that were acknowledged, dead letters dropped. */
  readonly pending: number;
  readonly dead: number;
}
export const purge = defineScript<
  ScriptKeys<typeof PURGE_KEYS>,
  {
    readonly group: string;
    /** Messages received before it (ms) are purged. */
    readonly before: number;
    /** The purge's time (ms) and ISO time. */
    readonly at: number;
    readonly atIso: string;
    readonly dryRun: boolean;
  },
  PurgeReply
>({
  file: 'purge',
  keys: PURGE_KEYS,
  args: (a) => [a.group, a.before, a.at, a.atIso, a.dryRun ? '1' : '0'],
  reply: (raw) => {
    const [before, after, unread, pending, dead] = checkScriptResult(raw) as [string, string, number, number, number];
    return { before, after, unread, pending, dead };
  },
});

const SEEK_KEYS = ['stream', 'retries', 'attempts', 'dead', 'leases', 'ranges'] as const;
export interface SeekReply {
  /** The group's last-delivered id after, and before: the entries between them are given again. */
  readonly after: string;
  readonly before: string;
  /** Retries and leases dropped, dead letters dropped. */
  readonly retrying: number;
  readonly dead: number;
}
export const seek = defineScript<
  ScriptKeys<typeof SEEK_KEYS>,
  {
    readonly group: string;
    /** Messages received at or after it (ms) are given again. */
    readonly to: number;
    /** The seek's time (ms). */
    readonly at: number;
    readonly dryRun: boolean;
  },
  SeekReply
>({
  file: 'seek',
  keys: SEEK_KEYS,
  args: (a) => [a.group, a.to, a.at, a.dryRun ? '1' : '0'],
  reply: (raw) => {
    const [after, before, retrying, dead] = checkScriptResult(raw) as [string, string, number, number];
    return { after, before, retrying, dead };
  },
});

const COUNT_RANGE_KEYS = ['stream'] as const;
export interface CountRangeReply {
  readonly counted: number;
  /** The last entry counted (count again after it), or '' when the range is done. */
  readonly next: string;
}
export const countRange = defineScript<
  ScriptKeys<typeof COUNT_RANGE_KEYS>,
  { readonly after: string; readonly through: string; readonly max: number },
  CountRangeReply
>({
  file: 'count-range',
  keys: COUNT_RANGE_KEYS,
  args: (a) => [a.after, a.through, a.max],
  reply: (raw) => {
    const [counted, next] = raw as [number, string];
    return { counted, next };
  },
});

/** A failing message acted on: stream id, 'retrying' or 'dead', the entry's id field ('' when it has none). */
export type FailingActedOn = readonly [streamId: string, state: string, storedId: string];

const FAILING_KEYS = ['stream', 'retries', 'attempts', 'dead', 'notes', 'counts'] as const;
export interface FailingArgs {
  readonly action: 'retry' | 'recover' | 'delete';
  readonly group: string;
  /** 'retry': the new due time (ms); 'recover': since (ms); 'delete': ignored. */
  readonly score: number;
  /** The stream ids to act on; all (up to `max`) when undefined. */
  readonly ids: readonly string[] | undefined;
  readonly max: number;
  readonly now: number;
  /** The note's action and ISO time. */
  readonly note: string;
  readonly at: string;
}
export interface FailingReply {
  /** More could be acted on (call again). */
  readonly more: boolean;
  readonly done: readonly FailingActedOn[];
  /** Stream ids given but neither retrying nor dead. */
  readonly notFound: readonly string[];
}
export const failing = defineScript<ScriptKeys<typeof FAILING_KEYS, 'counts'>, FailingArgs, FailingReply>({
  file: 'failing',
  keys: FAILING_KEYS,
  args: (a) => [a.action, a.group, a.score, a.ids ? 'ids' : 'all', a.max, a.now, a.note, a.at, ...(a.ids ?? [])],
  reply: (raw) => {
    const [more, done, notFound] = raw as [number, FailingActedOn[], string[]];
    return { more: more === 1, done, notFound };
  },
});
