/**
 * The consumer's Prometheus metrics (prom-client), on a registry of its own
 * (never prom-client's global one), so several nodes can live in one
 * process, as they do in tests.
 *
 * The pipeline records through the small functions below (`delivered`,
 * `deliveryStarted`, ...). Per-publisher backlog gauges are read from Redis
 * when Prometheus scrapes, by a `BacklogSource` the node installs (see
 * backlog.ts): counting is done at scrape time, never on an idle timer.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** A delivery's outcome, as the fate function decides it. */
export type DeliveryOutcome = 'delivered' | 'retry' | 'dead';

/** One publisher's state in Redis, as counted at scrape time. */
export interface PublisherBacklog {
  readonly publisher: string;
  readonly topic: string;
  /** Messages not delivered yet: unread, in flight and waiting for a retry. */
  readonly backlog: number;
  /** Age in seconds of the oldest message not delivered yet; 0 when there is none. */
  readonly oldestAgeSeconds: number;
  /** Messages waiting for a retry. */
  readonly retrying: number;
  /** Dead letters kept. */
  readonly dead: number;
}

/** The metric series of one publisher (see `Metrics.publisherSeries`). */
export interface PublisherSeries {
  readonly delivered: { inc(value?: number): void };
  readonly retry: { inc(value?: number): void };
  readonly dead: { inc(value?: number): void };
  readonly duration: { observe(value: number): void };
  readonly endToEnd: { observe(value: number): void };
  readonly inFlight: { inc(value?: number): void; dec(value?: number): void };
}

/** Returns every publisher's backlog, or `undefined` when this node does not report them. */
export type BacklogSource = () => Promise<readonly PublisherBacklog[] | undefined>;

export interface MetricsOptions {
  /** Also collect Node's process metrics (CPU, memory, event loop, GC). Default true. */
  readonly defaultMetrics?: boolean;
}

export class Metrics {
  readonly registry = new Registry();
  readonly deliveries = new Counter({
    name: 'postoffice_deliveries_total',
    help: 'Delivery attempts by publisher and outcome (delivered, retry, dead).',
    labelNames: ['publisher', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly deliveryDuration = new Histogram({
    name: 'postoffice_delivery_duration_seconds',
    help: 'Time from sending a delivery to its answer (or error), by publisher.',
    labelNames: ['publisher'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly endToEnd = new Histogram({
    name: 'postoffice_end_to_end_seconds',
    help: 'Time from receipt of a message to its successful delivery, by publisher.',
    labelNames: ['publisher'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300, 3600],
    registers: [this.registry],
  });
  readonly inFlight = new Gauge({
    name: 'postoffice_deliveries_in_flight',
    help: 'Deliveries waiting for an answer on this node, by publisher.',
    labelNames: ['publisher'] as const,
    registers: [this.registry],
  });
  readonly breakerOpen = new Counter({
    name: 'postoffice_circuit_opened_total',
    help: 'Times a publisher stopped taking messages after repeated failures.',
    labelNames: ['publisher'] as const,
    registers: [this.registry],
  });
  readonly redisErrors = new Counter({
    name: 'postoffice_redis_errors_total',
    help: 'Errors reported by the Redis connections of this process.',
    registers: [this.registry],
  });
  readonly leasesHeld: Gauge;
  readonly backlog: Gauge<'publisher' | 'topic'>;
  readonly oldestAge: Gauge<'publisher' | 'topic'>;
  readonly retrying: Gauge<'publisher' | 'topic'>;
  readonly dead: Gauge<'publisher' | 'topic'>;
  private backlogSource: BacklogSource | undefined;
  private leaseCount: (() => number) | undefined;
  private refreshing: Promise<void> | undefined;

  constructor(options: MetricsOptions = {}) {
    this.leasesHeld = new Gauge({
      name: 'postoffice_leases_held',
      help: 'Publisher pipelines this node runs (the publisher leases it holds).',
      registers: [this.registry],
      collect: () => {
        if (this.leaseCount) this.leasesHeld.set(this.leaseCount());
      },
    });
    const labelNames = ['publisher', 'topic'] as const;
    const registers = [this.registry];
    this.backlog = new Gauge({
      name: 'postoffice_publisher_backlog_messages',
      help: 'Messages of the publisher not delivered yet (unread, in flight or waiting for a retry).',
      labelNames,
      registers,
      collect: () => this.refreshBacklog(),
    });
    this.oldestAge = new Gauge({
      name: 'postoffice_publisher_oldest_undelivered_age_seconds',
      help: 'Age of the oldest message the publisher has not delivered yet (0 when none).',
      labelNames,
      registers,
      collect: () => this.refreshBacklog(),
    });
    this.retrying = new Gauge({
      name: 'postoffice_publisher_retrying_messages',
      help: 'Messages of the publisher waiting for a retry.',
      labelNames,
      registers,
      collect: () => this.refreshBacklog(),
    });
    this.dead = new Gauge({
      name: 'postoffice_publisher_dead_messages',
      help: 'Dead letters of the publisher (kept for the retention period).',
      labelNames,
      registers,
      collect: () => this.refreshBacklog(),
    });
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /**
   * One publisher's series, looked up once (a pipeline keeps them: label
   * lookups per delivery showed in the delivery benchmark's profile).
   */
  publisherSeries(publisher: string): PublisherSeries {
    const labels = { publisher };
    return {
      delivered: this.deliveries.labels({ ...labels, outcome: 'delivered' }),
      retry: this.deliveries.labels({ ...labels, outcome: 'retry' }),
      dead: this.deliveries.labels({ ...labels, outcome: 'dead' }),
      duration: this.deliveryDuration.labels(labels),
      endToEnd: this.endToEnd.labels(labels),
      inFlight: this.inFlight.labels(labels),
    };
  }

  /** A delivery was sent. */
  deliveryStarted(publisher: string): void {
    this.inFlight.inc({ publisher });
  }

  /** A delivery's answer (or error) came back. */
  deliveryEnded(publisher: string): void {
    this.inFlight.dec({ publisher });
  }

  /** A delivery's outcome and how long the target took, in seconds. */
  delivered(publisher: string, outcome: DeliveryOutcome, seconds: number): void {
    this.deliveries.inc({ publisher, outcome });
    this.deliveryDuration.observe({ publisher }, seconds);
  }

  /** Time from the message's receipt to its successful delivery, in seconds. */
  endToEndLatency(publisher: string, seconds: number): void {
    this.endToEnd.observe({ publisher }, seconds);
  }

  circuitOpened(publisher: string): void {
    this.breakerOpen.inc({ publisher });
  }

  redisError(): void {
    this.redisErrors.inc();
  }

  /** Sets the leases-held gauge; `count` is called at each scrape. */
  countLeases(count: () => number): void {
    this.leaseCount = count;
  }

  /** Installs where the per-publisher backlog gauges come from at scrape time. */
  reportBacklog(source: BacklogSource | undefined): void {
    this.backlogSource = source;
  }

  /**
   * The four backlog gauges come from one Redis round: a scrape reads them
   * at the same time, and each waits for the same refresh.
   */
  private refreshBacklog(): Promise<void> {
    this.refreshing ??= this.collectBacklog().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async collectBacklog(): Promise<void> {
    const rows = this.backlogSource ? await this.backlogSource().catch(() => undefined) : undefined;
    // Publishers that were deleted, or a node that stopped reporting, leave no stale series.
    for (const g of [this.backlog, this.oldestAge, this.retrying, this.dead]) g.reset();
    for (const r of rows ?? []) {
      const labels = { publisher: r.publisher, topic: r.topic };
      // Unknown when Redis cannot tell the group's unread count: no sample rather than a wrong one.
      if (!Number.isNaN(r.backlog)) this.backlog.set(labels, r.backlog);
      this.oldestAge.set(labels, r.oldestAgeSeconds);
      this.retrying.set(labels, r.retrying);
      this.dead.set(labels, r.dead);
    }
  }
}
