/**
 * The consumer's Prometheus metrics (prom-client), on a registry of its own
 * (never prom-client's global one), so several nodes can live in one
 * process, as they do in tests.
 *
 * A pipeline records through its publisher's series (`publisherSeries`),
 * looked up once. Per-publisher backlog gauges are read from Redis when
 * Prometheus scrapes, by a `BacklogSource` the node installs (see
 * backlog.ts), and the circuit states from the node's pipelines, by a
 * `CircuitSource`: counting is done at scrape time, never on an idle timer.
 * Every series labelled with `publisher` also has its `topic`.
 */
import { buildInfo, slotCount, type Publisher } from '@postoffice/shared';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AttemptResult } from './types.js';

/** A delivery's outcome, as `decideSettlement` decides it. */
export type DeliveryOutcome = 'delivered' | 'retry' | 'dead';

/**
 * Why an attempt failed, the `reason` label of failed deliveries: `timeout`,
 * `connect` (refused, reset, unknown host, TLS), `http_4xx`, `http_5xx`,
 * `http_other` (a 1xx or 3xx answer), `private_address` (refused by
 * REFUSE_PRIVATE_TARGETS), `aborted` (the node stopped), `invalid_message`
 * (a message Pub/Sub cannot take), a Pub/Sub (gRPC) status name such as `UNAVAILABLE` or `NOT_FOUND`, or
 * `error` (anything else).
 */
export type FailureReason = string;

/** The reason label of a failed attempt: the one its target gave, or one read from its HTTP status. */
export function failureReason(result: AttemptResult): FailureReason {
  if (result.reason !== undefined) return result.reason;
  const status = result.status;
  if (status === undefined) return 'error';
  if (status >= 500) return 'http_5xx';
  if (status >= 400) return 'http_4xx';
  return 'http_other';
}

/** A circuit breaker's state as the `postoffice_publisher_circuit_state` gauge has it. */
export const CIRCUIT_STATE = { closed: 0, open: 1, 'half-open': 2 } as const;

/** One pipeline's breaker, as the node reports it at scrape time. */
export interface CircuitReport {
  readonly publisher: string;
  readonly topic: string;
  /** The pipeline's state: `open` is an open circuit, `probing` a half-open one, anything else closed. */
  readonly state: string;
}

/** The circuits of the pipelines this node runs. */
export type CircuitSource = () => Iterable<CircuitReport>;

/** The host a publisher delivers to, for `postoffice_publisher_info`: the URL's host, Pub/Sub's, or none (pull). */
export function targetHost(p: Pick<Publisher, 'type' | 'target'>): string {
  if (p.type === 'pubsub') return 'pubsub.googleapis.com';
  if (p.type !== 'http') return '';
  try {
    return new URL(p.target).host;
  } catch {
    return '';
  }
}

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
  /** For `postoffice_publisher_info` and `postoffice_publisher_slots` (the publisher as stored). */
  readonly info?: Pick<Publisher, 'type' | 'target' | 'active' | 'parallelism' | 'ordered'>;
}

/** The metric series of one publisher (see `Metrics.publisherSeries`). */
export interface PublisherSeries {
  /** Delivered messages (counted once per settle batch). */
  readonly delivered: { inc(value?: number): void };
  /** The counter of a failed attempt by outcome and reason (children made on first use, then reused). */
  failed(outcome: 'retry' | 'dead', result: AttemptResult): { inc(): void };
  readonly duration: { observe(value: number): void };
  readonly endToEnd: { observe(value: number): void };
  readonly inFlight: { inc(value?: number): void; dec(value?: number): void };
  readonly circuitOpened: { inc(): void };
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
    help: 'Delivery attempts by publisher, outcome (delivered, retry, dead) and, for failures, reason.',
    labelNames: ['publisher', 'topic', 'outcome', 'reason'] as const,
    registers: [this.registry],
  });
  readonly deliveryDuration = new Histogram({
    name: 'postoffice_delivery_duration_seconds',
    help: 'Time from sending a delivery to its answer (or error), by publisher.',
    labelNames: ['publisher', 'topic'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly endToEnd = new Histogram({
    name: 'postoffice_end_to_end_seconds',
    help: 'Time from receipt of a message to its successful delivery, by publisher.',
    labelNames: ['publisher', 'topic'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300, 3600],
    registers: [this.registry],
  });
  readonly inFlight = new Gauge({
    name: 'postoffice_deliveries_in_flight',
    help: 'Deliveries waiting for an answer on this node, by publisher.',
    labelNames: ['publisher', 'topic'] as const,
    registers: [this.registry],
  });
  readonly breakerOpen = new Counter({
    name: 'postoffice_circuit_opened_total',
    help: 'Times a publisher stopped taking messages after repeated failures.',
    labelNames: ['publisher', 'topic'] as const,
    registers: [this.registry],
  });
  readonly redisErrors = new Counter({
    name: 'postoffice_redis_errors_total',
    help: 'Errors reported by the Redis connections of this process.',
    registers: [this.registry],
  });
  readonly buildInfo = new Gauge({
    name: 'postoffice_build_info',
    help: "Always 1: the process's Postoffice version and Node.js version.",
    labelNames: ['version', 'node_version'] as const,
    registers: [this.registry],
  });
  readonly recoveryRounds = new Counter({
    name: 'postoffice_recovery_rounds_total',
    help: "Origins asked for messages to recover (one per origin_host and round), on the node holding recovery's lease.",
    registers: [this.registry],
  });
  readonly recovered = new Counter({
    name: 'postoffice_recovered_messages_total',
    help: "Messages recovered from a topic's origin_host (written, then deleted at the origin), by topic.",
    labelNames: ['topic'] as const,
    registers: [this.registry],
  });
  readonly recoveryFailures = new Counter({
    name: 'postoffice_recovery_failures_total',
    help: 'Message recovery failures by topic and reason (timeout, connect, private_address, http_status, bad_json, too_large, bad_origin, invalid_item, unknown_topic, write, delete).',
    labelNames: ['topic', 'reason'] as const,
    registers: [this.registry],
  });
  readonly sourceRead = new Counter({
    name: 'postoffice_source_messages_read_total',
    help: 'Messages received from a source (an SQS queue or a Pub/Sub subscription), redeliveries included.',
    labelNames: ['source', 'topic', 'type'] as const,
    registers: [this.registry],
  });
  readonly sourceIngested = new Counter({
    name: 'postoffice_source_messages_ingested_total',
    help: 'Messages of a source written to its topic and then deleted or acknowledged at the source (a repeat of one already written counts again).',
    labelNames: ['source', 'topic', 'type'] as const,
    registers: [this.registry],
  });
  readonly sourceFailed = new Counter({
    name: 'postoffice_source_messages_failed_total',
    help: "Messages of a source that could not be written to the topic (left to the source's redrive), by reason (topic_not_found, changed, unavailable).",
    labelNames: ['source', 'topic', 'type', 'reason'] as const,
    registers: [this.registry],
  });
  readonly sourceErrors = new Counter({
    name: 'postoffice_source_errors_total',
    help: 'Failed calls to a source, by operation: receive, or delete (an SQS DeleteMessage, a Pub/Sub acknowledge; the messages come again and are not stored twice).',
    labelNames: ['source', 'topic', 'type', 'operation'] as const,
    registers: [this.registry],
  });
  readonly sourceLag = new Gauge({
    name: 'postoffice_source_lag_messages',
    help: "Messages waiting in a source, where the source tells (SQS's ApproximateNumberOfMessages), on the node reading it.",
    labelNames: ['source', 'topic', 'type'] as const,
    registers: [this.registry],
  });
  readonly redisUp: Gauge;
  readonly leasesHeld: Gauge;
  readonly circuitState: Gauge<'publisher' | 'topic'>;
  readonly backlog: Gauge<'publisher' | 'topic'>;
  readonly oldestAge: Gauge<'publisher' | 'topic'>;
  readonly retrying: Gauge<'publisher' | 'topic'>;
  readonly dead: Gauge<'publisher' | 'topic'>;
  readonly publisherInfo: Gauge<'publisher' | 'topic' | 'type' | 'target_host'>;
  readonly slots: Gauge<'publisher' | 'topic'>;
  private backlogSource: BacklogSource | undefined;
  private circuitSource: CircuitSource | undefined;
  private leaseCount: (() => number) | undefined;
  private redisReady: (() => boolean) | undefined;
  private refreshing: Promise<void> | undefined;

  constructor(options: MetricsOptions = {}) {
    const info = buildInfo();
    this.buildInfo.set({ version: info.version, node_version: info.nodeVersion }, 1);
    this.redisUp = new Gauge({
      name: 'postoffice_redis_up',
      help: "1 while the process's Redis connection is ready, 0 otherwise.",
      registers: [this.registry],
      collect: () => {
        if (this.redisReady) this.redisUp.set(this.redisReady() ? 1 : 0);
      },
    });
    this.circuitState = new Gauge({
      name: 'postoffice_publisher_circuit_state',
      help: 'The circuit breaker of each publisher this node runs: 0 closed, 1 open, 2 half-open (probing).',
      labelNames: ['publisher', 'topic'] as const,
      registers: [this.registry],
      collect: () => {
        if (!this.circuitSource) return;
        this.circuitState.reset();
        for (const c of this.circuitSource()) {
          const state = c.state === 'open' ? 'open' : c.state === 'probing' ? 'half-open' : 'closed';
          this.circuitState.set({ publisher: c.publisher, topic: c.topic }, CIRCUIT_STATE[state]);
        }
      },
    });
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
    this.publisherInfo = new Gauge({
      name: 'postoffice_publisher_info',
      help: 'Always 1, one series per publisher: its topic, type (http, pubsub, pull) and target host.',
      labelNames: ['publisher', 'topic', 'type', 'target_host'] as const,
      registers,
      collect: () => this.refreshBacklog(),
    });
    this.slots = new Gauge({
      name: 'postoffice_publisher_slots',
      help: 'Slots of the publisher for consumer nodes to hold: parallelism (1 when ordered), 0 when inactive or pull.',
      labelNames,
      registers,
      collect: () => this.refreshBacklog(),
    });
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /**
   * One publisher's series, looked up once (a pipeline keeps them: label
   * lookups per delivery showed in the delivery benchmark's profile). A
   * failure's counter is found by outcome and reason in a small map of the
   * series, filled on first use, so a reason costs no label lookup either.
   */
  publisherSeries(publisher: string, topic: string): PublisherSeries {
    const labels = { publisher, topic };
    const deliveries = this.deliveries;
    const failures = { retry: new Map<string, { inc(): void }>(), dead: new Map<string, { inc(): void }>() };
    return {
      delivered: deliveries.labels({ ...labels, outcome: 'delivered' }),
      failed(outcome, result) {
        const reason = failureReason(result);
        const byReason = failures[outcome];
        let counter = byReason.get(reason);
        if (!counter) {
          counter = deliveries.labels({ ...labels, outcome, reason });
          byReason.set(reason, counter);
        }
        return counter;
      },
      duration: this.deliveryDuration.labels(labels),
      endToEnd: this.endToEnd.labels(labels),
      inFlight: this.inFlight.labels(labels),
      circuitOpened: this.breakerOpen.labels(labels),
    };
  }

  redisError(): void {
    this.redisErrors.inc();
  }

  /** Sets `postoffice_redis_up`; `ready` is called at each scrape. */
  watchRedis(ready: () => boolean): void {
    this.redisReady = ready;
  }

  /** Installs where the circuit states come from at scrape time (the node's pipelines). */
  reportCircuits(source: CircuitSource): void {
    this.circuitSource = source;
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
    for (const g of [this.backlog, this.oldestAge, this.retrying, this.dead, this.publisherInfo, this.slots]) g.reset();
    for (const r of rows ?? []) {
      const labels = { publisher: r.publisher, topic: r.topic };
      // Unknown when Redis cannot tell the group's unread count: no sample rather than a wrong one.
      if (!Number.isNaN(r.backlog)) this.backlog.set(labels, r.backlog);
      this.oldestAge.set(labels, r.oldestAgeSeconds);
      this.retrying.set(labels, r.retrying);
      this.dead.set(labels, r.dead);
      if (r.info) {
        this.publisherInfo.set({ ...labels, type: r.info.type, target_host: targetHost(r.info) }, 1);
        this.slots.set(labels, r.info.active && r.info.type !== 'pull' ? slotCount(r.info) : 0);
      }
    }
  }
}
