import type { Publisher, StoredMessage } from '@postoffice/shared';

/** One message to deliver to one publisher, with the attempts already made. */
export interface Job {
  readonly message: StoredMessage;
  /** Attempts made before this one (0 for a first delivery). */
  readonly previousAttempts: number;
  /** Whether it came from the retry set (true) or was read new from the stream (false). */
  readonly retry: boolean;
}

/** What a target said about one attempt. */
export interface AttemptResult {
  readonly ok: boolean;
  /** HTTP status, when the target answered. */
  readonly status?: number;
  /** Why it failed: timeout, connection error, non-2xx. */
  readonly error?: string;
  /** Why it failed, as the `reason` metric label has it (see `failureReason`); read from `status` when left out. */
  readonly reason?: string;
  /** The message can never be delivered this way (a dead letter at once, whatever its age). */
  readonly permanent?: boolean;
  /** A 429 or 503 answer's `Retry-After`, in ms from the answer: no next attempt before it. */
  readonly retryAfterMs?: number;
  /** A failed attempt's answer: the start of its body, as text (see `MAX_RESPONSE_BYTES`). */
  readonly response?: string;
  readonly startedAt: number;
  readonly durationMs: number;
}

/** A way out for messages pushed by the node: http or pubsub (pull publishers are leased by workers instead). */
export interface Target {
  /** Makes one attempt and calls `done` once with its result (never throws, never rejects). */
  send(publisher: Publisher, message: StoredMessage, done: (result: AttemptResult) => void): void;
  /**
   * Sends several messages in one attempt (a batch: http publishers with `batch_size`), calling
   * `done` once with the result of all of them. Targets that cannot batch leave it out.
   */
  sendBatch?(publisher: Publisher, messages: readonly StoredMessage[], done: (result: AttemptResult) => void): void;
  /** Gives up on every delivery in flight (the shutdown deadline passed); each ends as a failed attempt. */
  abortAll(): void;
  close(): Promise<void>;
}

/** How the settle step ends a message after an attempt (see `decideSettlement`). */
export type Settlement =
  | { readonly kind: 'delivered' }
  /** Not sent: the publisher's filter does not match (acknowledged, recorded as skipped). */
  | { readonly kind: 'skipped' }
  | { readonly kind: 'retry'; readonly dueAt: number }
  | { readonly kind: 'dead'; readonly reason: string };

export type Clock = () => number;
