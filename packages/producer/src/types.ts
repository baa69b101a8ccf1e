/** Types of the producer package. */
import type { Config, Keys, Logger, PullQueue, ScriptClient, Store } from '@postoffice/shared';
import type { Ingest } from './ingest.js';
import type { LeaseWaiters } from './lease-waiters.js';
import type { Metrics } from './metrics.js';

export interface ServerOptions {
  readonly config: Config;
  /** A producer client from `createRedis(url, 'producer')`; the caller owns it and closes it. */
  readonly redis: ScriptClient;
  readonly logger: Logger;
  /** Metrics to record into; a new registry when left out. */
  readonly metrics?: Metrics;
  /**
   * Tests: every response is checked against its route's schema, and each
   * mismatch reported here (the response is sent as it is). Off when left out.
   */
  readonly onResponseMismatch?: (problem: string) => void;
  /** Most lease requests waiting at once (`wait_seconds`); `MAX_WAITING_LEASES` when left out. */
  readonly maxWaitingLeases?: number;
  /**
   * Milliseconds since the epoch, for pull leases (their ends, retries, the
   * max age), flow control and sessions; `Date.now` when left out. Tests
   * inject a clock they move forward instead of sleeping.
   */
  readonly now?: () => number;
}

/** What every route handler needs. */
export interface ApiContext {
  readonly config: Config;
  readonly redis: ScriptClient;
  readonly keys: Keys;
  readonly store: Store;
  readonly ingest: Ingest;
  readonly metrics: Metrics;
  /** Leases of pull publishers. */
  readonly pull: PullQueue;
  /** Lease requests waiting for messages (`wait_seconds`). */
  readonly leaseWaiters: LeaseWaiters;
  /** Milliseconds since the epoch (`ServerOptions.now`). */
  readonly now: () => number;
}

/*
 * The API's answers (the `data` of each), named where the routes build them
 * and gathered here: the web UI imports them (`import type`, ui/src/api.ts)
 * rather than copying them.
 */
export type { TopicWithCounts, RateLimit, MessageView, DeliveryView, LeaseView, Attempt } from '@postoffice/shared';
export type { PublisherView } from './routes/publishers.js';
export type { SourceView } from './routes/sources.js';
export type { Stats, PublisherStats, CircuitView } from './routes/stats.js';
export type { Series, SeriesPoint, PublisherSeries } from './stats-series.js';
export type { SearchItem } from './search.js';
export type { SearchAnswer } from './routes/messages.js';
export type { FailingItem } from './failing.js';
export type { ClusterView, ClusterPublisherView, NodeView } from './routes/cluster.js';
export type { SessionView } from './routes/session.js';
