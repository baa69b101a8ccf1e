/**
 * One publisher's delivery pipeline on this node: source -> delivery -> ack,
 * driven by demand. The source reads only as many messages as there are free
 * delivery slots (`concurrency`), so a slow target slows reading and the
 * backlog stays in Redis; each finished delivery frees its slot once its
 * outcome is recorded, and asks the source for more. While deliveries are
 * in flight the source waits until a quarter of the slots are free
 * (`minDemand`, GenStage's min_demand), so that under load one read brings
 * several messages instead of one read a message.
 *
 * States (field `state`):
 *   running  - reads when woken and slots are free; retries are taken when
 *              the retry index says they are due.
 *   open     - circuit breaker open after `breakerThreshold` consecutive
 *              failures: reads nothing; a timer moves it to `probing`.
 *   probing  - one message (the earliest retry, or one new message) is sent;
 *              success -> running, failure -> open with a doubled delay.
 *   paused   - the publisher is inactive: reads nothing, keeps the backlog.
 *   closed   - stopping: reads nothing; in-flight deliveries finish.
 * `update()` moves between running/paused when `active` changes; `close()`
 * moves to closed from anywhere.
 */
import type { Counter, Gauge, Histogram } from 'prom-client';
import type { Config, Logger, Publisher } from '@postoffice/shared';
import { decideFate, describe } from '../fate.js';
import type { Clock, Job, Target } from '../types.js';
import type { RetryIndex } from '../retry-index.js';
import type { Metrics } from '../metrics.js';
import type { AckStage } from './ack-stage.js';
import type { Source } from './source.js';

export type PipelineState = 'running' | 'open' | 'probing' | 'paused' | 'closed';

/** Free slots worth a read while others are busy: a quarter of `concurrency`. */
export function minDemand(concurrency: number): number {
  return Math.max(1, Math.floor(concurrency / 4));
}

/** This publisher's metric series, looked up once (a labelled lookup a message costs more than the delivery's own JS). */
interface Series {
  readonly delivered: Counter.Internal;
  readonly retry: Counter.Internal;
  readonly dead: Counter.Internal;
  readonly duration: Histogram.Internal<'publisher'>;
  readonly endToEnd: Histogram.Internal<'publisher'>;
  readonly inFlight: Gauge.Internal<'publisher'>;
}

export interface PipelineDeps {
  readonly source: Source;
  readonly ack: AckStage;
  readonly target: Target;
  readonly retryIndex: RetryIndex;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly config: Pick<Config, 'breakerThreshold' | 'retryMaxBackoffSeconds' | 'retryMaxAgeSeconds'>;
  readonly now: Clock;
  readonly random?: () => number;
}

export class PublisherPipeline {
  state: PipelineState;
  private publisher: Publisher;
  private inFlight = 0;
  private reading = false;
  /** Something may be waiting in the stream: read again when possible. */
  private dirty = true;
  /** Retries may be due: take them before reading new messages. */
  private retriesDue = true;
  private failures = 0;
  private probeDelayMs = 0;
  private probeTimer: NodeJS.Timeout | undefined;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly series: Series;

  constructor(
    publisher: Publisher,
    private readonly deps: PipelineDeps,
  ) {
    this.publisher = publisher;
    this.state = publisher.active ? 'running' : 'paused';
    const m = deps.metrics;
    const labels = { publisher: publisher.id };
    this.series = {
      delivered: m.deliveries.labels({ ...labels, outcome: 'delivered' }),
      retry: m.deliveries.labels({ ...labels, outcome: 'retry' }),
      dead: m.deliveries.labels({ ...labels, outcome: 'dead' }),
      duration: m.deliveryDuration.labels(labels),
      endToEnd: m.endToEnd.labels(labels),
      inFlight: m.inFlight.labels(labels),
    };
  }

  get id(): string {
    return this.publisher.id;
  }

  get current(): Publisher {
    return this.publisher;
  }

  /** Deliveries in flight right now. */
  get busy(): number {
    return this.inFlight;
  }

  /** New messages may be in the stream. */
  wake(): void {
    this.dirty = true;
    this.pump();
  }

  /** Retries may be due. */
  wakeRetries(): void {
    this.retriesDue = true;
    this.dirty = true;
    this.pump();
  }

  /** Applies a changed publisher: target, timeouts and concurrency apply to the next attempt. */
  update(publisher: Publisher): void {
    const wasActive = this.publisher.active;
    this.publisher = publisher;
    if (this.state === 'closed') return;
    if (!publisher.active && this.state !== 'paused') {
      this.clearProbe();
      this.state = 'paused';
      this.deps.retryIndex.forget(publisher.id).catch((err: unknown) => this.logError(err, 'retry index'));
    } else if (publisher.active && !wasActive) {
      this.state = 'running';
      this.failures = 0;
      this.wakeRetries();
    } else {
      this.pump();
    }
  }

  /** Stops reading; resolves when in-flight deliveries have finished and their outcomes are written. */
  async close(): Promise<void> {
    this.state = 'closed';
    this.clearProbe();
    while (this.inFlight > 0 || this.reading) {
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
    await this.deps.ack.drained();
  }

  private pump(): void {
    if (this.reading || !this.dirty) return;
    const demand = this.demand();
    if (demand <= 0) return;
    if (this.inFlight > 0 && demand < minDemand(this.publisher.concurrency)) return;
    this.reading = true;
    this.dirty = false;
    this.read(demand).then(
      (full) => {
        this.reading = false;
        if (full) this.dirty = true;
        this.notifyIdle();
        this.pump();
      },
      (err: unknown) => {
        this.reading = false;
        this.dirty = true;
        this.notifyIdle();
        this.logError(err, 'read failed');
        // Redis trouble: the consumer's client waits for Redis, so this is rare; try again shortly.
        setTimeout(() => this.pump(), 1000).unref();
      },
    );
  }

  private demand(): number {
    switch (this.state) {
      case 'running':
        return this.publisher.concurrency - this.inFlight;
      case 'probing':
        return this.inFlight === 0 ? 1 : 0;
      default:
        return 0;
    }
  }

  /** Reads up to `demand` jobs and starts them; true when it got all it asked for (more may wait). */
  private async read(demand: number): Promise<boolean> {
    const probing = this.state === 'probing';
    let jobs: Job[] = [];
    if (this.retriesDue || probing) {
      this.retriesDue = false;
      const now = this.deps.now();
      const taken = await this.deps.source.takeRetries(this.publisher, demand, now, probing);
      jobs = taken.jobs;
      await this.deps.retryIndex.raise(this.publisher.topic, this.publisher.id, taken.next);
      if (jobs.length === demand) this.retriesDue = true;
    }
    if (jobs.length < demand && this.demand() > 0) {
      jobs = jobs.concat(await this.deps.source.readNew(this.publisher, demand - jobs.length));
    }
    if (this.state === 'closed' && jobs.length > 0) {
      // Read while closing: these stay pending (or leased) and come back by reclaim or lease expiry.
      this.deps.logger.info(
        { publisherId: this.publisher.id, count: jobs.length },
        'read while stopping; left for reclaim',
      );
      return false;
    }
    for (const job of jobs) this.start(job);
    return jobs.length === demand;
  }

  private start(job: Job): void {
    this.inFlight++;
    this.series.inFlight.inc();
    const publisher = this.publisher;
    this.deliver(publisher, job)
      .catch((err: unknown) => this.logError(err, 'delivery failed unexpectedly'))
      .finally(() => {
        this.inFlight--;
        this.series.inFlight.dec();
        this.notifyIdle();
        this.pump();
      });
  }

  private async deliver(publisher: Publisher, job: Job): Promise<void> {
    const result = await this.deps.target.deliver(publisher, job.message);
    const attempts = job.previousAttempts + 1;
    const now = this.deps.now();
    const fate = decideFate({
      result,
      attempts,
      receivedAt: job.message.receivedAt,
      now,
      secondsRetry: publisher.seconds_retry,
      maxBackoffSeconds: this.deps.config.retryMaxBackoffSeconds,
      maxAgeSeconds: this.deps.config.retryMaxAgeSeconds,
      random: (this.deps.random ?? Math.random)(),
    });
    const s = this.series;
    s[fate.kind === 'delivered' ? 'delivered' : fate.kind === 'retry' ? 'retry' : 'dead'].inc();
    s.duration.observe(result.durationMs / 1000);
    if (fate.kind === 'delivered') s.endToEnd.observe((now - job.message.receivedAt) / 1000);
    else {
      this.deps.logger.debug(
        { publisherId: publisher.id, messageId: job.message.id, fate: fate.kind, error: describe(result) },
        'delivery failed',
      );
    }
    await this.deps.ack.add({ job, result, fate });
    if (fate.kind === 'retry') await this.deps.retryIndex.lower(publisher.id, fate.dueAt);
    this.afterResult(result.ok);
  }

  /** The circuit breaker's moves. */
  private afterResult(ok: boolean): void {
    if (ok) {
      this.failures = 0;
      if (this.state === 'probing' || this.state === 'open') {
        this.clearProbe();
        this.state = 'running';
        this.probeDelayMs = 0;
        this.deps.logger.info({ publisherId: this.publisher.id }, 'target answers again; circuit closed');
        this.wakeRetries();
      }
      return;
    }
    this.failures++;
    const trip =
      this.state === 'probing' || (this.state === 'running' && this.failures >= this.deps.config.breakerThreshold);
    if (!trip) return;
    const maxMs = this.deps.config.retryMaxBackoffSeconds * 1000;
    this.probeDelayMs =
      this.state === 'probing'
        ? Math.min(maxMs, this.probeDelayMs * 2)
        : Math.min(maxMs, this.publisher.seconds_retry * 1000);
    this.state = 'open';
    this.deps.metrics.breakerOpen.inc({ publisher: this.publisher.id });
    this.deps.logger.warn(
      { publisherId: this.publisher.id, failures: this.failures, probeInMs: this.probeDelayMs },
      'target keeps failing; circuit open, probing with one message',
    );
    this.clearProbe();
    this.probeTimer = setTimeout(() => {
      this.probeTimer = undefined;
      if (this.state !== 'open') return;
      this.state = 'probing';
      this.dirty = true;
      this.pump();
    }, this.probeDelayMs);
    this.probeTimer.unref();
  }

  private clearProbe(): void {
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
  }

  private notifyIdle(): void {
    if (this.inFlight > 0 || this.reading) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private logError(err: unknown, msg: string): void {
    this.deps.logger.error({ err, publisherId: this.publisher.id, topic: this.publisher.topic }, msg);
  }
}
