/** Domain types shared by the producer and the consumer. */

export interface Topic {
  readonly id: number;
  readonly name: string;
  readonly origin_host: string;
  readonly recovery_enabled: boolean;
  /** While true, no publisher of the topic delivers (nor leases); messages are still received. */
  readonly paused: boolean;
  readonly created_at: string;
}

/**
 * `http` POSTs to a URL; `pubsub` publishes to a Google Cloud Pub/Sub topic;
 * `pull` keeps the messages for workers that lease them over the API.
 */
export const PUBLISHER_TYPES = ['http', 'pubsub', 'pull'] as const;
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
  /**
   * http publishers: signing secrets (`whsec_<base64>`, at most two during a
   * rotation); deliveries carry Standard Webhooks signatures. Absent or empty:
   * unsigned. Never shown by the API (it shows `secrets_count`), never logged.
   */
  readonly secrets?: readonly string[];
  /**
   * http publishers: statuses that make a message a dead letter at once
   * (besides 410 Gone, always final).
   */
  readonly dead_on_status: readonly number[];
  /** Attempts after which a message becomes a dead letter; null for no limit. */
  readonly retry_max_attempts: number | null;
  /** Age (s) after which a failing message becomes a dead letter; null: RETRY_MAX_AGE_SECONDS. */
  readonly retry_max_age_seconds: number | null;
  /**
   * http publishers: headers sent with every delivery (credentials, API
   * keys). Write-only like `secrets`: the API shows `header_names`, logs never show them.
   */
  readonly headers?: Readonly<Record<string, string>>;
  /** http and pubsub publishers: only messages that match are sent; the others are skipped. */
  readonly filter: MessageFilter | null;
  /** http publishers: most messages per POST (a JSON array); 1 sends one message a request. */
  readonly batch_size: number;
  /**
   * Ordered publishers: the attribute whose value is the ordering key. Messages
   * with the same value are delivered in stream order, one at a time; different
   * keys in parallel. Null: the whole publisher is one key.
   */
  readonly ordering_attribute: string | null;
  readonly created_at: string;
  readonly updated_at: string;
}

/** Publisher fields added after the first records were written: a stored record may lack them. */
type LaterPublisherField =
  | 'parallelism'
  | 'ordered'
  | 'rate_limit'
  | 'dead_on_status'
  | 'retry_max_attempts'
  | 'retry_max_age_seconds'
  | 'filter'
  | 'batch_size'
  | 'ordering_attribute';

/**
 * A publisher as stored in Redis: records written before a field existed
 * lack it. `Store` reads every record through `parsePublisher`, which gives
 * them their defaults, so the rest of the code sees only `Publisher`.
 */
export type PublisherRecord = Omit<Publisher, LaterPublisherField> & Partial<Pick<Publisher, LaterPublisherField>>;

/**
 * Which messages a publisher sends: those whose attributes match every key
 * of `attributes` (a string: that value; a list: any of its values).
 */
export interface MessageFilter {
  readonly attributes: Readonly<Record<string, string | readonly string[]>>;
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
  batch_size: 1,
} as const;

/**
 * The range of each numeric publisher setting the API accepts: what the
 * code that uses it can carry (timers in whole milliseconds, the rate
 * limiter's token arithmetic in Lua, slots and pipelines per node).
 * `seconds_timeout` is also below CLAIM_TIMEOUT_SECONDS (`maxPublisherTimeout`).
 */
export const PUBLISHER_BOUNDS = {
  seconds_timeout: { min: 0.001 },
  seconds_retry: { min: 0.001, max: 86_400 },
  chunk_size: { min: 1, max: 1000 },
  concurrency: { min: 1, max: 1000 },
  parallelism: { min: 1, max: 100 },
  per_second: { min: 0.001, max: 1_000_000 },
  burst: { min: 1, max: 1_000_000 },
  batch_size: { min: 1, max: 500 },
  retry_max_attempts: { min: 1, max: 1_000_000 },
  retry_max_age_seconds: { min: 1, max: 365 * 86_400 },
} as const;

/** The publisher's slots in effect: `parallelism` (1 when ordered). */
export function slotCount(p: Pick<Publisher, 'parallelism' | 'ordered'>): number {
  if (p.ordered) return 1;
  return Math.max(1, Math.floor(p.parallelism));
}

/** One message as stored in its topic's stream. */
export interface StoredMessage {
  /** Stream entry id (`<ms>-<seq>`). */
  readonly streamId: string;
  /** Public message id (see `messageId`). */
  readonly id: string;
  /** The entry carries its id (a scheduled or replacement message, or one written before ids named their entry). */
  readonly storedId?: boolean;
  /** The payload as JSON text, exactly as received. */
  readonly payload: string;
  readonly attributes: Readonly<Record<string, string>>;
  /** Receipt time, ms since the epoch. */
  readonly receivedAt: number;
}

/** `purged`: skipped by an operator's purge of the publisher's backlog, never delivered. `skipped`: the publisher's filter did not match, so the message was never sent (and never will be). */
export type DeliveryStateName = 'pending' | 'leased' | 'delivered' | 'retrying' | 'dead' | 'purged' | 'skipped';

/** One delivery attempt, as kept in a message's history. */
export interface Attempt {
  /** ISO time the attempt started. */
  readonly at: string;
  /** HTTP status, when the target answered. */
  readonly status?: number;
  /** Why it failed, when it did (timeout, connection error, non-2xx). */
  readonly error?: string;
  /** A failed attempt's answer: the first 1 KB of the response body, as text. */
  readonly response?: string;
  readonly duration_ms: number;
  /** `skipped`: not sent, the publisher's filter did not match (not an attempt). */
  readonly outcome?: 'skipped';
}

/** Who leased a message of a pull publisher, as the worker said. */
export interface LeaseWorker {
  readonly host?: string;
  readonly pid?: number;
  readonly name?: string;
}

/** What became of a lease: still held, or how it ended. */
export type LeaseOutcome = 'leased' | 'completed' | 'retry' | 'failed' | 'replaced' | 'expired';

/** One lease of a pull publisher's message, as kept in the message's history (times in ms). */
export interface LeaseAttempt {
  readonly token: string;
  readonly worker: LeaseWorker;
  readonly at: number;
  readonly lease_expires_at: number;
  readonly outcome: LeaseOutcome;
  readonly ended_at?: number;
  readonly duration_ms?: number;
  /** The reason a worker gave with retry or fail. */
  readonly error?: string;
}

/** The state of one message for one publisher, as stored in the message's history hash. */
export interface DeliveryRecord {
  /** `deleted`: an operator removed the message from the failing list; it will not be delivered. */
  readonly state: Exclude<DeliveryStateName, 'pending'> | 'deleted';
  /** Delivery attempts (for a pull publisher, its leases: `LeaseAttempt`s). */
  readonly attempts: Attempt[];
  /** Attempts made in all (older ones may have been dropped from `attempts`). */
  readonly attempt_count: number;
  readonly next_attempt_at?: string;
  readonly dead_reason?: string;
  /** The last operator action on this delivery (retry now, new next attempt, recovery, deletion). */
  readonly last_action?: { readonly action: string; readonly at: string };
  /** Pull publishers: the ids of the messages that replaced this one. */
  readonly replaced_by?: string[];
}

/** Attempts kept per message and publisher; the count keeps going. */
export const MAX_ATTEMPTS_KEPT = 50;

/**
 * A topic's message recovery, as the consumer node that polls its
 * `origin_host` records it (see docs/api.md, Recovery).
 */
export interface TopicRecovery {
  /** Messages recovered into the topic so far. */
  readonly recovered: number;
  /** When its `origin_host` was last asked (ISO), or null. */
  readonly last_recovery_at: string | null;
  /** What went wrong at that time, or null when nothing did. */
  readonly last_recovery_error: string | null;
}

/**
 * External queues that feed a topic: `sqs` reads an Amazon SQS queue,
 * `pubsub` a Google Cloud Pub/Sub subscription.
 */
export const SOURCE_TYPES = ['sqs', 'pubsub'] as const;
export type SourceType = (typeof SOURCE_TYPES)[number];

export interface Source {
  readonly id: string;
  readonly topic: string;
  readonly type: SourceType;
  readonly active: boolean;
  /** sqs: the queue's URL. */
  readonly queue_url?: string;
  /** pubsub: `projects/<p>/subscriptions/<s>`, or a subscription id in GCLOUD_PUBSUB_PROJECT_ID. */
  readonly subscription?: string;
  /** Most messages one receive asks for. */
  readonly batch_size: number;
  /** sqs: long polling, seconds one receive may wait for messages. */
  readonly wait_seconds?: number;
  readonly created_at: string;
  readonly updated_at: string;
}

/** What the API accepts for a source's numbers, and their defaults. */
export const SOURCE_BOUNDS = {
  sqs: { batch_size: { min: 1, max: 10, default: 10 }, wait_seconds: { min: 0, max: 20, default: 20 } },
  pubsub: { batch_size: { min: 1, max: 1000, default: 100 } },
} as const;

/**
 * How a source is doing, as the API shows it: `inactive` (switched off),
 * `waiting` (active, no node reads it yet), `reading` (a node reads it and
 * its last receive went well), `failing` (a node reads it and its last
 * receive or ingest failed).
 */
export type SourceStateName = 'inactive' | 'waiting' | 'reading' | 'failing';

/** A source's counters and last error, kept in Redis by the node that reads it. */
export interface SourceStats {
  readonly read: number;
  readonly ingested: number;
  readonly failed: number;
  /** Messages waiting in the source, when it says (SQS's ApproximateNumberOfMessages), or null. */
  readonly lag: number | null;
  readonly last_read_at: string | null;
  readonly last_error: string | null;
  readonly last_error_at: string | null;
  /** Whether the last receive failed (`last_error` is its error). */
  readonly failing: boolean;
  /** The node reading it, or null. */
  readonly node: string | null;
}
