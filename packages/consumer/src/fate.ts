import type { AttemptResult, Fate } from './types.js';

export interface FateInput {
  readonly result: AttemptResult;
  /** Attempts made including this one. */
  readonly attempts: number;
  readonly receivedAt: number;
  readonly now: number;
  /** First backoff step (the publisher's `seconds_retry`). */
  readonly secondsRetry: number;
  readonly maxBackoffSeconds: number;
  readonly maxAgeSeconds: number;
  /** A number in [0, 1) for jitter. */
  readonly random: number;
  /** An ordered publisher never skips its head: no dead letter, retries go on. */
  readonly ordered?: boolean;
}

/**
 * The one place that decides what happens to a message after an attempt:
 * delivered on success; otherwise a retry after a capped exponential
 * backoff with ±20% jitter (`seconds_retry`, then doubling, at most
 * `maxBackoffSeconds`), never later than the message's max age, when one
 * last attempt is made; past the max age, or when the target says the
 * message can never be delivered (`permanent`), a dead letter. An ordered
 * publisher's messages are never dead-lettered (that would skip one): they
 * are retried, at most `maxBackoffSeconds` apart, until delivered (or until
 * an operator deletes the head from the failing list).
 */
export function decideFate(input: FateInput): Fate {
  if (input.result.ok) return { kind: 'delivered' };
  if (input.result.permanent && !input.ordered) {
    return { kind: 'dead', reason: `cannot be delivered: ${describe(input.result)}` };
  }
  const deadline = input.ordered ? Infinity : input.receivedAt + input.maxAgeSeconds * 1000;
  if (input.now >= deadline) {
    return {
      kind: 'dead',
      reason: `undelivered after ${input.attempts} attempt${input.attempts === 1 ? '' : 's'} over ${Math.round((input.now - input.receivedAt) / 1000)} s (max age ${input.maxAgeSeconds} s); last error: ${describe(input.result)}`,
    };
  }
  const exponent = Math.min(input.attempts - 1, 40);
  const base = Math.min(input.maxBackoffSeconds, input.secondsRetry * 2 ** exponent);
  const jittered = Math.min(input.maxBackoffSeconds, base * (0.8 + 0.4 * input.random));
  const dueAt = Math.min(deadline, input.now + Math.max(1, Math.round(jittered * 1000)));
  return { kind: 'retry', dueAt };
}

export function describe(result: AttemptResult): string {
  if (result.error) return result.error;
  if (result.status !== undefined) return `HTTP ${result.status}`;
  return 'unknown';
}
