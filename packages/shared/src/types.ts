/** Domain types shared by the producer and the consumer. */

export interface Topic {
  readonly id: number;
  readonly name: string;
  readonly origin_host: string;
  readonly recovery_enabled: boolean;
  readonly created_at: string;
}

export const PUBLISHER_TYPES = ['http'] as const;
export type PublisherType = (typeof PUBLISHER_TYPES)[number];

export interface Publisher {
  readonly id: string;
  readonly topic: string;
  readonly type: PublisherType;
  readonly target: string;
  readonly active: boolean;
  readonly from_now: boolean;
  readonly seconds_timeout: number;
  readonly seconds_retry: number;
  readonly chunk_size: number;
  readonly concurrency: number;
  /** Slots of the publisher spread over the consumer nodes; each slot runs `concurrency` deliveries. */
  readonly parallelism: number;
  /** One slot, one delivery in flight, a failed head retried (never skipped) before the next message. */
  readonly ordered: boolean;
  /** Deliveries per second across the whole cluster, or null for no limit. */
  readonly rate_limit: RateLimit | null;
  readonly created_at: string;
  readonly updated_at: string;
}

/** A token bucket: `per_second` tokens added each second, at most `burst` kept. */
export interface RateLimit {
  readonly per_second: number;
  readonly burst: number;
}

/** Defaults of a new publisher (Postoffice's own for timeout and retry). */
export const PUBLISHER_DEFAULTS = {
  active: true,
  from_now: false,
  seconds_timeout: 5,
  seconds_retry: 30,
  chunk_size: 100,
  concurrency: 25,
  parallelism: 1,
  ordered: false,
  rate_limit: null,
} as const;

/**
 * The publisher's slots in effect: `parallelism` (1 when ordered). Records
 * written before these fields existed count as parallelism 1, unordered.
 */
export function slotCount(p: Pick<Publisher, 'parallelism' | 'ordered'>): number {
  if (p.ordered) return 1;
  return Math.max(1, Math.floor(p.parallelism ?? 1));
}

/** One message as stored in its topic's stream. */
export interface StoredMessage {
  /** Stream entry id (`<ms>-<seq>`). */
  readonly streamId: string;
  /** Public message id (UUID). */
  readonly id: string;
  /** The payload as JSON text, exactly as received. */
  readonly payload: string;
  readonly attributes: Readonly<Record<string, string>>;
  /** Receipt time, ms since the epoch. */
  readonly receivedAt: number;
}

export type DeliveryStateName = 'pending' | 'delivered' | 'retrying' | 'dead';

/** One delivery attempt, as kept in a message's history. */
export interface Attempt {
  /** ISO time the attempt started. */
  readonly at: string;
  /** HTTP status, when the target answered. */
  readonly status?: number;
  /** Why it failed, when it did (timeout, connection error, non-2xx). */
  readonly error?: string;
  readonly duration_ms: number;
}

/** The state of one message for one publisher, as stored in the message's history hash. */
export interface DeliveryRecord {
  readonly state: Exclude<DeliveryStateName, 'pending'>;
  readonly attempts: Attempt[];
  /** Attempts made in all (older ones may have been dropped from `attempts`). */
  readonly attempt_count: number;
  readonly next_attempt_at?: string;
  readonly dead_reason?: string;
}

/** Attempts kept per message and publisher; the count keeps going. */
export const MAX_ATTEMPTS_KEPT = 50;
