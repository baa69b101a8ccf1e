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
  readonly startedAt: number;
  readonly durationMs: number;
}

/** A way out for messages pushed by the node: http or pubsub (pull publishers are leased by workers instead). */
export interface Target {
  /** Makes one attempt and calls `done` once with its result (never throws, never rejects). */
  send(publisher: Publisher, message: StoredMessage, done: (result: AttemptResult) => void): void;
  /** Gives up on every delivery in flight (the shutdown deadline passed); each ends as a failed attempt. */
  abortAll(): void;
  close(): Promise<void>;
}

/** The fate of a message after an attempt (see `decideFate`). */
export type Fate =
  | { readonly kind: 'delivered' }
  | { readonly kind: 'retry'; readonly dueAt: number }
  | { readonly kind: 'dead'; readonly reason: string };

export type Clock = () => number;
