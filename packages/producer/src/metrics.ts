/**
 * Prometheus metrics of one API server. Each server has its own registry
 * (never prom-client's global one), so several servers can live in one
 * process, as they do in tests.
 */
import { buildInfo } from '@postoffice/shared';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface MetricsOptions {
  /** Also collect Node's process metrics (CPU, memory, event loop, GC). Default true. */
  readonly defaultMetrics?: boolean;
}

export class Metrics {
  readonly registry = new Registry();

  /** Messages accepted (201), by topic. */
  readonly received: Counter<'topic'>;

  /** Time from validated request to the script's answer, by kind (`single`, `bulk`) and outcome. */
  readonly ingestDuration: Histogram<'kind' | 'outcome'>;

  /** Every HTTP request, by route pattern and status. */
  readonly httpDuration: Histogram<'method' | 'route' | 'status'>;

  /** Errors reported by the Redis connection. */
  readonly redisErrors: Counter;

  /** Always 1: the version of Postoffice and of Node. */
  readonly buildInfo: Gauge<'version' | 'node_version'>;

  /** 1 while the Redis connection is ready (see `watchRedis`). */
  readonly redisUp: Gauge;

  private redisReady: (() => boolean) | undefined;
  /** Labelled children looked up once and kept (a label lookup hashes its values on every call). */
  private readonly children = new Map<string, { observe(value: number): void }>();
  private readonly receivedBy = new Map<string, { inc(value: number): void }>();

  constructor(options: MetricsOptions = {}) {
    const registers = [this.registry];
    this.buildInfo = new Gauge({
      name: 'postoffice_build_info',
      help: "Always 1: the process's Postoffice version and Node.js version.",
      labelNames: ['version', 'node_version'],
      registers,
    });
    const info = buildInfo();
    this.buildInfo.set({ version: info.version, node_version: info.nodeVersion }, 1);
    this.redisUp = new Gauge({
      name: 'postoffice_redis_up',
      help: "1 while the process's Redis connection is ready, 0 otherwise.",
      registers,
      collect: () => {
        if (this.redisReady) this.redisUp.set(this.redisReady() ? 1 : 0);
      },
    });
    this.redisErrors = new Counter({
      name: 'postoffice_redis_errors_total',
      help: 'Errors reported by the Redis connections of this process.',
      registers,
    });
    this.received = new Counter({
      name: 'postoffice_messages_received_total',
      help: 'Messages accepted by the API (answered 201), by topic.',
      labelNames: ['topic'],
      registers,
    });
    this.ingestDuration = new Histogram({
      name: 'postoffice_ingest_duration_seconds',
      help: 'Time to write messages to Redis (script, wake-up and optional WAIT), by kind and outcome.',
      labelNames: ['kind', 'outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.httpDuration = new Histogram({
      name: 'postoffice_http_request_duration_seconds',
      help: 'HTTP requests answered by the API, by method, route pattern and status.',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** Messages accepted (answered 201) for `topic`. */
  messagesReceived(topic: string, count: number): void {
    let child = this.receivedBy.get(topic);
    if (!child) {
      child = this.received.labels({ topic });
      if (this.receivedBy.size < 10_000) this.receivedBy.set(topic, child);
    }
    child.inc(count);
  }

  /** One write to Redis (`single` or `bulk`), its outcome and duration in seconds. */
  ingested(kind: string, outcome: string, seconds: number): void {
    const key = `i ${kind} ${outcome}`;
    let child = this.children.get(key);
    if (!child) this.children.set(key, (child = this.ingestDuration.labels({ kind, outcome })));
    child.observe(seconds);
  }

  /** One answered HTTP request. */
  answered(method: string, route: string, status: number, seconds: number): void {
    const key = `h ${method} ${route} ${status}`;
    let child = this.children.get(key);
    if (!child) {
      child = this.httpDuration.labels({ method, route, status: String(status) });
      // Routes and statuses are few; unknown paths all count as one route ('unmatched').
      if (this.children.size < 10_000) this.children.set(key, child);
    }
    child.observe(seconds);
  }

  redisError(): void {
    this.redisErrors.inc();
  }

  /** Sets `postoffice_redis_up`; `ready` is called at each scrape. */
  watchRedis(ready: () => boolean): void {
    this.redisReady = ready;
  }

  /** The Prometheus text exposition. */
  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
