/**
 * The scripts of leases on single keys: the janitor's lease (renew,
 * release) and the slot leases of publishers (take, release). See each
 * `lua/<file>.lua` for what it does.
 */
import { defineScript, type ScriptKeys } from './script.js';

const LOCK_KEYS = ['lease'] as const;
type LockKeys = ScriptKeys<typeof LOCK_KEYS>;

/** Replies whether the lease was the caller's (and is extended). */
export const renewLock = defineScript<LockKeys, { readonly token: string; readonly ttlMs: number }, boolean>({
  file: 'renew-lock',
  keys: LOCK_KEYS,
  args: (a) => [a.token, a.ttlMs],
  reply: (raw) => raw === 1,
});

/** Replies whether the lease was the caller's (and is released). */
export const releaseLock = defineScript<LockKeys, { readonly token: string }, boolean>({
  file: 'release-lock',
  keys: LOCK_KEYS,
  args: (a) => [a.token],
  reply: (raw) => raw === 1,
});

/** Replies whether the caller holds the lease now. */
export const takeLease = defineScript<
  LockKeys,
  {
    /** The value the caller read ('' when the key was missing). */
    readonly expected: string;
    /** The caller's value, '<node id> <token>'. */
    readonly value: string;
  },
  boolean
>({
  file: 'take-lease',
  keys: LOCK_KEYS,
  args: (a) => [a.expected, a.value],
  reply: (raw) => raw === 1,
});
