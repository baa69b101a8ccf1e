/**
 * The scripts of pull publishers: leasing messages to workers, settling a
 * lease, and moving a replacement from the outbox into its topic. See each
 * `lua/<file>.lua` for what it does.
 */
import { defineScript, count, type ScriptKeys } from './script.js';

/** A message leased: its stream id, fields, leases so far, token, and the lease before it that ran out ('' for none). */
export type LeasedEntry = readonly [
  streamId: string,
  fields: string[],
  attempt: number,
  token: string,
  previous: string,
];

const PULL_LEASE_KEYS = ['stream', 'retries', 'attempts', 'leases', 'dead', 'notes'] as const;
export interface PullLeaseArgs {
  readonly group: string;
  /** The consumer name the group records for leased entries. */
  readonly consumer: string;
  readonly now: number;
  readonly leaseMs: number;
  readonly max: number;
  /** Most available messages to look at. */
  readonly scan: number;
  /** Attribute filter as a JSON object, or '' for none. */
  readonly filter: string;
  readonly workerJson: string;
  /** A random string in the tokens. */
  readonly nonce: string;
  /** Expired leases of messages received before now - max age (ms) die, with this note (JSON). */
  readonly maxAgeMs: number;
  readonly maxAgeNote: string;
  /** An expired lease of a message leased that many times dies (0: no limit), with this note (JSON). */
  readonly maxAttempts: number;
  readonly maxAttemptsNote: string;
  readonly ordered: boolean;
  /** The ordering attribute ('' for one key). */
  readonly orderingAttribute: string;
  /** Most payload bytes to lease in this call. */
  readonly byteBudget?: number;
}
export interface PullLeaseReply {
  readonly leased: readonly LeasedEntry[];
  /** The new dead letters: stream id, the expired lease JSON. */
  readonly died: readonly (readonly [streamId: string, lease: string])[];
}
export const pullLease = defineScript<ScriptKeys<typeof PULL_LEASE_KEYS>, PullLeaseArgs, PullLeaseReply>({
  file: 'pull-lease',
  keys: PULL_LEASE_KEYS,
  args: (a) => {
    const argv = [
      a.group,
      a.consumer,
      a.now,
      a.leaseMs,
      a.max,
      a.scan,
      a.filter,
      a.workerJson,
      a.nonce,
      a.maxAgeMs,
      a.maxAgeNote,
      a.maxAttempts,
      a.maxAttemptsNote,
      a.ordered ? '1' : '0',
      a.orderingAttribute,
    ];
    if (a.byteBudget !== undefined) argv.push(a.byteBudget);
    return argv;
  },
  reply: (raw) => {
    const [leased, died] = raw as [LeasedEntry[], [string, string][]];
    return { leased, died };
  },
});

const PULL_SETTLE_KEYS = [
  'stream',
  'retries',
  'attempts',
  'dead',
  'leases',
  'log',
  'notes',
  'outbox',
  'counts',
  'series',
] as const;
export interface PullSettleArgs {
  readonly group: string;
  readonly streamId: string;
  readonly token: string;
  readonly now: number;
  readonly action: 'complete' | 'retry' | 'fail' | 'extend' | 'replace';
  /** 'retry': due (ms); 'extend': new lease end (ms); 'replace': the outbox id; '' otherwise. */
  readonly arg: string | number;
  /** 'replace': the outbox JSON; '' otherwise. */
  readonly outbox: string;
  /** The note to keep ('fail', 'replace'), '' for none. */
  readonly note: string;
  /** The attempt log record and its score, '' for no record. */
  readonly recordScore: number | '';
  readonly record: string;
  /** With the `series` key: the minute of the hour and the counters' expiry (s). */
  readonly minute?: number;
  readonly seriesTtl?: number;
}
/** Replies with the lease end (ms) for 'extend', 1 otherwise; -6 (lease_stale) is thrown. */
export const pullSettle = defineScript<
  ScriptKeys<typeof PULL_SETTLE_KEYS, 'counts' | 'series'>,
  PullSettleArgs,
  number
>({
  file: 'pull-settle',
  keys: PULL_SETTLE_KEYS,
  args: (a) => {
    const argv = [a.group, a.streamId, a.token, a.now, a.action, a.arg, a.outbox, a.note, a.recordScore, a.record];
    if (a.minute !== undefined) argv.push(a.minute, a.seriesTtl ?? 0);
    return argv;
  },
  reply: count,
});

const OUTBOX_MOVE_KEYS = ['topic', 'stream', 'ids'] as const;
/** Replies with the stream id (new, or the one the message already had); undefined when the topic does not exist (-1, nothing written). */
export const outboxMove = defineScript<
  ScriptKeys<typeof OUTBOX_MOVE_KEYS>,
  { readonly id: string; readonly payloadJson: string; readonly attributesJson: string },
  string | undefined
>({
  file: 'outbox-move',
  keys: OUTBOX_MOVE_KEYS,
  args: (a) => [a.id, a.payloadJson, a.attributesJson],
  reply: (raw) => (raw === -1 ? undefined : (count(raw), String(raw))),
});
