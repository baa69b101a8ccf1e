import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The consumer's Prometheus metrics, on a registry of its own (no global state). */
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
    help: 'Time from sending a delivery to its answer.',
    labelNames: ['publisher'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly endToEnd = new Histogram({
    name: 'postoffice_end_to_end_seconds',
    help: 'Time from receipt of a message to its successful delivery.',
    labelNames: ['publisher'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300, 3600],
    registers: [this.registry],
  });
  readonly inFlight = new Gauge({
    name: 'postoffice_deliveries_in_flight',
    help: 'Deliveries waiting for an answer.',
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
    help: 'Redis commands that failed.',
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }
}
