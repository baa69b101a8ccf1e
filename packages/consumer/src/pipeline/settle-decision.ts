/**
 * The settle decision: what the settle step does with a message after an
 * attempt (delivered, retry and when, or dead letter), decided by one pure
 * function, `decideSettlement`. The pipeline asks it for each attempt's
 * result and hands the answer to the settle stage (`settle-stage.ts`),
 * which writes it with `settle.lua`.
 */
import type { AttemptResult, Settlement } from '../types.js';

export interface SettlementInput {
  readonly result: AttemptResult;
  /** Attempts made including this one. */
  readonly attempts: number;
  readonly receivedAt: number;
  readonly now: number;
  /** First backoff step (the publisher's `seconds_retry`). */
  readonly secondsRetry: number;
  readonly maxBackoffSeconds: number;
  /** The publisher's `retry_max_age_seconds`, else RETRY_MAX_AGE_SECONDS. */
  readonly maxAgeSeconds: number;
  /** Whether `maxAgeSeconds` is the publisher's own `retry_max_age_seconds`. */
  readonly publisherMaxAge?: boolean;
  /** The publisher's `retry_max_attempts`: a dead letter after that many attempts (null: no limit). */
  readonly maxAttempts?: number | null;
  /** The publisher's `dead_on_status`: answers that are final, besides 410. */
  readonly deadOnStatus?: readonly number[];
  /** A number in [0, 1) for jitter. */
  readonly random: number;
  /**
   * An ordered publisher skips its head only when told to: by the receiver
   * (410, `dead_on_status`) or by its own retry policy (`retry_max_attempts`,
   * `retry_max_age_seconds`); otherwise retries go on until delivered.
   */
  readonly ordered?: boolean;
}

/** Whether the receiver's answer says the message is refused for good (410, or one of `dead_on_status`). */
export function refusedForGood(status: number | undefined, deadOnStatus: readonly number[] | undefined): boolean {
  if (status === undefined) return false;
  return status === 410 || (deadOnStatus !== undefined && deadOnStatus.includes(status));
}

/**
 * The one place that decides what happens to a message after an attempt:
 * delivered on success; a dead letter at once when the receiver answers
 * 410 Gone or a status of the publisher's `dead_on_status`, or when the
 * target says the message can never be delivered (`permanent`); a dead
 * letter once `retry_max_attempts` attempts were made, or once the message
 * is older than its max age (after one last attempt at that age);
 * otherwise a retry after a capped exponential backoff with ±20% jitter
 * (`seconds_retry`, then doubling, at most `maxBackoffSeconds`), and no
 * earlier than a 429 or 503 answer's `Retry-After` (itself capped at
 * `maxBackoffSeconds`). An ordered publisher's messages are never
 * dead-lettered by age or by the target's own refusal unless its policy
 * says so (`ordered` above): that would skip one.
 */
export function decideSettlement(input: SettlementInput): Settlement {
  const { result } = input;
  if (result.ok) return { kind: 'delivered' };
  if (result.status === 410) {
    return { kind: 'dead', reason: `the target answered 410 Gone: it will never take this message` };
  }
  if (refusedForGood(result.status, input.deadOnStatus)) {
    return { kind: 'dead', reason: `the target answered ${result.status}, final by the publisher's dead_on_status` };
  }
  if (result.permanent && !input.ordered) {
    return { kind: 'dead', reason: `cannot be delivered: ${describe(result)}` };
  }
  const plural = input.attempts === 1 ? '' : 's';
  if (input.maxAttempts != null && input.attempts >= input.maxAttempts) {
    return {
      kind: 'dead',
      reason: `undelivered after ${input.attempts} attempt${plural} (retry_max_attempts ${input.maxAttempts}); last error: ${describe(result)}`,
    };
  }
  const deadline = input.ordered && !input.publisherMaxAge ? Infinity : input.receivedAt + input.maxAgeSeconds * 1000;
  if (input.now >= deadline) {
    const which = input.publisherMaxAge ? 'retry_max_age_seconds' : 'max age';
    return {
      kind: 'dead',
      reason: `undelivered after ${input.attempts} attempt${plural} over ${Math.round((input.now - input.receivedAt) / 1000)} s (${which} ${input.maxAgeSeconds} s); last error: ${describe(result)}`,
    };
  }
  const maxBackoffMs = input.maxBackoffSeconds * 1000;
  const exponent = Math.min(input.attempts - 1, 40);
  const base = Math.min(input.maxBackoffSeconds, input.secondsRetry * 2 ** exponent);
  const jittered = Math.min(input.maxBackoffSeconds, base * (0.8 + 0.4 * input.random));
  let dueAt = Math.min(deadline, input.now + Math.max(1, Math.round(jittered * 1000)));
  // The receiver's Retry-After wins over the max age's last attempt: that attempt comes after it.
  if (result.retryAfterMs !== undefined && result.retryAfterMs > 0) {
    dueAt = Math.max(dueAt, input.now + Math.min(result.retryAfterMs, maxBackoffMs));
  }
  return { kind: 'retry', dueAt };
}

export function describe(result: AttemptResult): string {
  if (result.error) return result.error;
  if (result.status !== undefined) return `HTTP ${result.status}`;
  return 'unknown';
}
