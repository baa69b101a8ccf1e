/**
 * One publisher's delivery pipeline on this node: source -> delivery -> settle,
 * driven by demand. The source reads only as many messages as there are free
 * delivery slots (`concurrency`), so a slow target slows reading and the
 * backlog stays in Redis; finished deliveries free their slots once the settle
 * stage has recorded their batch, and ask the source for more. An attempt
 * is one callback from the target, then one entry in the settle stage's queue:
 * no promise or timer of its own. While deliveries are
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
 *
 * The node runs a pipeline for a publisher only while it holds at least one
 * of the publisher's slots, with the publisher's `concurrency` however
 * many slots it holds (1 when ordered). An ordered publisher (one slot, one
 * delivery in flight) first takes over what an earlier owner left in
 * flight, and never reads a new message while one waits for a retry. With a
 * rate limit, tokens are taken from the cluster-wide bucket before reading.
 * Within running and probing, a wait timer (no token left, or an ordered
 * publisher's orphan not yet past the claim timeout) holds reading back
 * until it fires; `update()` and `close()` clear it.
 *
 * An ordered publisher with an `ordering_attribute` keeps `concurrency`
 * deliveries in flight, one per key (`OrderingKeys` says which message may
 * go). A message that does not match the publisher's `filter` is not sent:
 * it is acknowledged as skipped. With `batch_size`, an http publisher sends
 * up to that many messages per request (`concurrency` requests in flight).
 * A publisher with none of these takes the plain path, which has no check of
 * its own per message.
 */
import { isEmptyFilter, matchesFilter, type Config, type Logger, type Publisher } from '@postoffice/shared';
import { decideSettlement, describe, refusedForGood } from './settle-decision.js';
import { batchEnd } from '../targets/http-target.js';
import type { AttemptResult, Clock, Settlement, Job, Target } from '../types.js';
import type { RetryIndex } from '../retry-index.js';
import type { Metrics, PublisherSeries } from '../metrics.js';
import type { SettleStage, Outcome } from './settle-stage.js';
import { OrderingKeys } from './ordering-keys.js';
import type { RateLimiter } from './rate-limiter.js';
import type { Source } from './source.js';

export type PipelineState = 'running' | 'open' | 'probing' | 'paused' | 'closed';

const DELIVERED: Settlement = Object.freeze({ kind: 'delivered' });
const SKIPPED: Settlement = Object.freeze({ kind: 'skipped' });
/** Messages an ordering-key pipeline holds behind busy keys: ten per delivery slot, within [100, 10000]. */
const heldCap = (concurrency: number): number => Math.min(10_000, Math.max(100, concurrency * 10));
/** Longest an ordering-key publisher with retries waiting goes without a look at its retry set (ms). */
const ORDERED_RECHECK_MS = 60_000;

/** Whether the publisher needs the pipeline's special path (filter, batches, ordering keys). */
function special(p: Publisher): boolean {
  return !isEmptyFilter(p.filter) || p.batch_size > 1 || keyed(p);
}

/** Messages that may be in flight: `concurrency` requests of `batch_size` messages. */
function capacity(p: Publisher): number {
  return p.concurrency * Math.max(1, p.batch_size);
}

/** An ordered publisher with an ordering attribute: one delivery in flight per key. */
function keyed(p: Publisher): boolean {
  return p.ordered && typeof p.ordering_attribute === 'string' && p.ordering_attribute !== '';
}

/** Free slots worth a read while others are busy: a quarter of `concurrency`. */
export function minDemand(concurrency: number): number {
  return Math.max(1, Math.floor(concurrency / 4));
}

export interface PipelineDeps {
  readonly source: Source;
  /** Makes the pipeline's settle stage, which calls `onSettled` with each batch it has written. */
  readonly createSettle: (onSettled: (batch: readonly Outcome[]) => void) => SettleStage;
  readonly target: Target;
  readonly retryIndex: RetryIndex;
  readonly limiter: RateLimiter;
  /** Whether this node still holds the publisher's slot lease (`SlotOwner.leaseCheck`; ordered pipelines, before each read). */
  readonly holdsLease: () => Promise<boolean>;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly config: Pick<Config, 'breakerThreshold' | 'retryMaxBackoffSeconds' | 'retryMaxAgeSeconds'>;
  readonly now: Clock;
  readonly random?: () => number;
  /**
   * The circuit breaker moved: `open` (with the time of its next probe),
   * `probing`, or `closed` (also when the pipeline stops or pauses with its
   * circuit not closed). For the dashboard (`CircuitStore`); must not throw.
   */
  readonly onCircuit?: (change: CircuitChange) => void;
}

export interface CircuitChange {
  readonly state: 'open' | 'probing' | 'closed';
  /** When the next probe goes (open only), ms. */
  readonly nextProbeAt?: number;
  /** Consecutive failures that opened it. */
  readonly failures: number;
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
  /** Set while waiting for a rate-limit token or for an earlier owner's orphans: no reading until it fires. */
  private waitTimer: NodeJS.Timeout | undefined;
  /** Ordered: an earlier owner's in-flight entries may still be in the way (checked once, then when told). */
  private orphanCheck: boolean;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly series: PublisherSeries;
  private readonly settle: SettleStage;
  /** The publisher has a filter, batches or ordering keys (see `special`). */
  private special: boolean;
  /** Ordering keys, for an ordered publisher with an `ordering_attribute` (fixed at creation). */
  private readonly keys: OrderingKeys | undefined;
  /** The last read of new messages got all it asked for (ordering keys). */
  private keyedReadFull = false;
  /** Free slots worth a read while others are busy (`minDemand` of the messages that may be in flight). */
  private minDemand: number;

  constructor(
    publisher: Publisher,
    private readonly deps: PipelineDeps,
  ) {
    this.publisher = publisher;
    this.state = publisher.active ? 'running' : 'paused';
    this.orphanCheck = publisher.ordered;
    this.special = special(publisher);
    this.minDemand = minDemand(capacity(publisher));
    this.keys = keyed(publisher)
      ? new OrderingKeys(publisher.ordering_attribute, heldCap(publisher.concurrency))
      : undefined;
    this.series = deps.metrics.publisherSeries(publisher.id, publisher.topic);
    this.settle = deps.createSettle((batch) => this.settled(batch));
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
    this.special = special(publisher);
    this.minDemand = minDemand(capacity(publisher));
    this.keys?.setAttribute(publisher.ordering_attribute);
    if (this.state === 'closed') return;
    if (!publisher.active && this.state !== 'paused') {
      this.clearProbe();
      const wasOpen = this.state === 'open' || this.state === 'probing';
      this.state = 'paused';
      if (wasOpen) this.circuit({ state: 'closed', failures: this.failures });
      this.deps.retryIndex.forget(publisher.id).catch((err: unknown) => this.logError(err, 'retry index'));
    } else if (publisher.active && !wasActive) {
      this.state = 'running';
      this.failures = 0;
      this.wakeRetries();
    } else {
      // A changed rate limit applies now, not after the wait the old one asked for.
      if (this.waitTimer && !this.orphanCheck) this.clearWait();
      this.pump();
    }
  }

  /** Stops reading; resolves when in-flight deliveries have finished and their outcomes are written. */
  async close(): Promise<void> {
    const wasOpen = this.state === 'open' || this.state === 'probing';
    this.state = 'closed';
    this.clearProbe();
    if (wasOpen) this.circuit({ state: 'closed', failures: this.failures });
    this.clearWait();
    while (this.inFlight > 0 || this.reading) {
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
    await this.settle.drained();
  }

  private pump(): void {
    if (this.reading || !this.dirty || this.waitTimer) return;
    const demand = this.demand();
    if (demand <= 0) return;
    if (this.inFlight > 0 && demand < this.minDemand) return;
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
        if (this.keys) {
          const free = this.publisher.concurrency - this.inFlight;
          // Held messages to send, retries due, or room to read: otherwise nothing to do until one settles.
          return this.keys.canRead || this.keys.sendable || this.retriesDue || this.keys.refreshNeeded ? free : 0;
        }
        if (this.publisher.ordered) return 1 - this.inFlight;
        return capacity(this.publisher) - this.inFlight;
      case 'probing':
        return this.inFlight === 0 ? 1 : 0;
      default:
        return 0;
    }
  }

  /** Reads up to `demand` jobs and starts them; true when it got all it asked for (more may wait). */
  private async read(demand: number): Promise<boolean> {
    const limit = this.publisher.rate_limit;
    let wanted = demand;
    if (limit) {
      const { granted, waitMs } = await this.deps.limiter.take(this.publisher, limit, demand);
      if (granted === 0) {
        this.dirty = true;
        // Not sooner than 10 ms: a throttled pipeline asks Redis at most 100 times a second.
        this.waitFor(Math.max(10, waitMs));
        return false;
      }
      wanted = granted;
    }
    let jobs: Job[] = [];
    try {
      jobs = this.keys
        ? await this.pickKeyed(this.keys, wanted)
        : this.publisher.ordered
          ? await this.pickOrdered()
          : await this.pick(wanted);
    } finally {
      if (limit) await this.deps.limiter.giveBack(this.publisher, limit, wanted - jobs.length);
    }
    if (this.state === 'closed' && jobs.length > 0 && this.publisher.ordered) {
      // An ordered publisher's read while closing stays pending: the next owner takes it over (after the
      // claim timeout) before anything newer, so the order holds even if this node lost its lease.
      this.deps.logger.info(
        { publisherId: this.publisher.id, count: jobs.length },
        'read while stopping; left for the next owner',
      );
      return false;
    }
    // Jobs read while closing are delivered too (close() waits for them, and the slot's lease is released
    // only after that). Left pending, they would stay under this node's name, which nobody takes over
    // while the node lives: a slot handed back during a read stranded them until the node left.
    if (jobs.length > 0) this.start(jobs);
    if (this.state === 'closed') return false;
    if (this.keys) return this.keyedReadFull;
    return jobs.length === wanted && jobs.length > 0;
  }

  /**
   * An ordering-key publisher's next messages: held ones whose key is free,
   * then the heads of the retry set that are due (when it may have changed),
   * then new messages (held behind their key when it is busy). Before the
   * first read on this node, an earlier owner's messages still pending are
   * scheduled (after the claim timeout), so that each key's order holds.
   */
  private async pickKeyed(keys: OrderingKeys, demand: number): Promise<Job[]> {
    this.keyedReadFull = false;
    if (!(await this.deps.holdsLease())) return [];
    const now = this.deps.now();
    if (this.orphanCheck) {
      const waitMs = await this.deps.source.takeOverAllOrphans(this.publisher, now);
      if (waitMs > 0) {
        this.dirty = true;
        this.waitFor(waitMs);
        return [];
      }
      this.orphanCheck = false;
      keys.refreshNeeded = true;
    }
    const probing = this.state === 'probing';
    let jobs = keys.release(demand);
    if (this.retriesDue || keys.refreshNeeded || probing) {
      this.retriesDue = false;
      keys.refreshNeeded = false;
      const take = await this.deps.source.takeOrdered(
        this.publisher,
        keys.busyKeys(),
        demand - jobs.length,
        now,
        probing && jobs.length === 0,
      );
      jobs = jobs.concat(keys.taken(take));
      jobs = jobs.concat(keys.release(demand - jobs.length));
      const next = take.waiting.length > 0 ? Math.min(take.next ?? Infinity, now + ORDERED_RECHECK_MS) : take.next;
      await this.deps.retryIndex.set(this.publisher.id, next === Infinity ? undefined : next);
    }
    if (probing && jobs.length > 0) return jobs;
    const room = Math.min(demand - jobs.length, keys.room);
    if (room > 0 && keys.canRead) {
      const read = await this.deps.source.readNew(this.publisher, room);
      this.keyedReadFull = read.length === room;
      jobs = jobs.concat(keys.admit(read));
    } else if (room <= 0 && keys.canRead) {
      // Slots are full: there may be more to read once one frees.
      this.keyedReadFull = true;
    }
    return jobs;
  }

  /** Due retries first, then new messages. */
  private async pick(demand: number): Promise<Job[]> {
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
    return jobs;
  }

  /**
   * The next message of an ordered publisher, or none: an earlier owner's
   * orphan goes first (after the claim timeout), then the retry waiting in
   * the retry set (only once due: it is never skipped), then a new message.
   */
  private async pickOrdered(): Promise<Job[]> {
    // A node that was frozen past its lease's life must not read behind the new owner's back.
    if (!(await this.deps.holdsLease())) return [];
    const now = this.deps.now();
    if (this.orphanCheck) {
      const waitMs = await this.deps.source.takeOverOrphans(this.publisher, now);
      if (waitMs > 0) {
        this.dirty = true;
        this.waitFor(waitMs);
        return [];
      }
      this.orphanCheck = false;
    }
    const probing = this.state === 'probing';
    this.retriesDue = false;
    const taken = await this.deps.source.takeRetries(this.publisher, 1, now, probing);
    await this.deps.retryIndex.raise(this.publisher.topic, this.publisher.id, taken.next);
    if (taken.jobs.length > 0 || taken.next !== undefined) return taken.jobs;
    return this.deps.source.readNew(this.publisher, 1);
  }

  /** No reading for `ms` (a rate-limit token, or an orphan's claim timeout). */
  private waitFor(ms: number): void {
    if (this.waitTimer || this.state === 'closed') return;
    this.waitTimer = setTimeout(
      () => {
        this.waitTimer = undefined;
        this.pump();
      },
      Math.max(1, ms),
    );
    this.waitTimer.unref();
  }

  private clearWait(): void {
    if (this.waitTimer) clearTimeout(this.waitTimer);
    this.waitTimer = undefined;
  }

  private start(jobs: readonly Job[]): void {
    const publisher = this.publisher;
    this.inFlight += jobs.length;
    this.series.inFlight.inc(jobs.length);
    if (this.special) {
      this.startSpecial(publisher, jobs);
      return;
    }
    for (const job of jobs)
      this.deps.target.send(publisher, job.message, (result) => this.finish(publisher, job, result));
  }

  /** Filtered out: acknowledged as skipped; batched: one request per `batch_size` messages. */
  private startSpecial(publisher: Publisher, jobs: readonly Job[]): void {
    let send = jobs;
    const filter = publisher.filter;
    if (filter && !isEmptyFilter(filter)) {
      const kept: Job[] = [];
      send = kept;
      const now = this.deps.now();
      for (const job of jobs) {
        if (matchesFilter(filter, job.message.attributes)) kept.push(job);
        else this.settle.add({ job, result: { ok: true, startedAt: now, durationMs: 0 }, settlement: SKIPPED });
      }
    }
    const size = publisher.batch_size;
    const target = this.deps.target;
    if (size > 1 && target.sendBatch !== undefined) {
      const messages = send.map((j) => j.message);
      for (let start = 0; start < send.length;) {
        const end = batchEnd(messages, start, size);
        const batch = send.slice(start, end);
        target.sendBatch(publisher, messages.slice(start, end), (result) => this.finishBatch(publisher, batch, result));
        start = end;
      }
      return;
    }
    for (const job of send) target.send(publisher, job.message, (result) => this.finish(publisher, job, result));
  }

  /** A message's settlement after an attempt. */
  private settlementOf(publisher: Publisher, job: Job, result: AttemptResult, now: number): Settlement {
    if (result.ok) return DELIVERED;
    const ownAge = publisher.retry_max_age_seconds;
    return decideSettlement({
      result,
      attempts: job.previousAttempts + 1,
      receivedAt: job.message.receivedAt,
      now,
      secondsRetry: publisher.seconds_retry,
      maxBackoffSeconds: this.deps.config.retryMaxBackoffSeconds,
      maxAgeSeconds: ownAge ?? this.deps.config.retryMaxAgeSeconds,
      publisherMaxAge: ownAge != null,
      maxAttempts: publisher.retry_max_attempts,
      ...(publisher.dead_on_status ? { deadOnStatus: publisher.dead_on_status } : {}),
      random: (this.deps.random ?? Math.random)(),
      ordered: publisher.ordered,
    });
  }

  /** An attempt ended: its settlement, then the settle stage (its slot is freed once the batch is written). */
  private finish(publisher: Publisher, job: Job, result: AttemptResult): void {
    const now = this.deps.now();
    const settlement = this.settlementOf(publisher, job, result, now);
    const s = this.series;
    s.duration.observe(result.durationMs / 1000);
    if (result.ok) s.endToEnd.observe((now - job.message.receivedAt) / 1000);
    else {
      this.deps.logger.debug(
        { messageId: job.message.id, fate: settlement.kind, error: describe(result) },
        'delivery failed',
      );
    }
    this.settle.add({ job, result, settlement, target: publisher.target });
    this.afterResult(targetAnswers(publisher, result));
  }

  /** A batch's request ended: one result for each of its messages, settled together. */
  private finishBatch(publisher: Publisher, jobs: readonly Job[], result: AttemptResult): void {
    const now = this.deps.now();
    const s = this.series;
    s.duration.observe(result.durationMs / 1000);
    for (const job of jobs) {
      const settlement = this.settlementOf(publisher, job, result, now);
      if (settlement.kind === 'delivered') s.endToEnd.observe((now - job.message.receivedAt) / 1000);
      this.settle.add({ job, result, settlement, target: publisher.target });
    }
    if (!result.ok) {
      this.deps.logger.debug({ count: jobs.length, error: describe(result) }, 'batch delivery failed');
    }
    this.afterResult(targetAnswers(publisher, result));
  }

  /** A batch of outcomes is in Redis: their slots are free. */
  private settled(batch: readonly Outcome[]): void {
    // The slots first, then the outcomes: a scrape never sees an outcome counted while its delivery is in flight.
    const s = this.series;
    this.inFlight -= batch.length;
    s.inFlight.dec(batch.length);
    let delivered = 0;
    for (const { settlement, result } of batch) {
      if (settlement.kind === 'delivered') delivered++;
      else if (settlement.kind === 'retry' || settlement.kind === 'dead') s.failed(settlement.kind, result).inc();
    }
    if (delivered > 0) s.delivered.inc(delivered);
    if (this.keys) this.keyedSettled(this.keys, batch);
    this.notifyIdle();
    this.pump();
  }

  /** Ordering keys: the settled keys are free (or wait for their retry), which may let held messages go. */
  private keyedSettled(keys: OrderingKeys, batch: readonly Outcome[]): void {
    keys.settled(batch);
    let earliest = Infinity;
    for (const { settlement } of batch)
      if (settlement.kind === 'retry' && settlement.dueAt < earliest) earliest = settlement.dueAt;
    // The settle stage lowered the retry index already; a take running meanwhile may have raised it past this retry.
    if (earliest !== Infinity) {
      this.deps.retryIndex
        .lower(this.publisher.id, earliest)
        .catch((err: unknown) => this.logError(err, 'retry index'));
    }
    if (keys.sendable || keys.refreshNeeded) this.dirty = true;
  }

  /** The circuit breaker's moves. */
  private afterResult(ok: boolean): void {
    if (ok) {
      this.failures = 0;
      if (this.state === 'probing' || this.state === 'open') {
        this.clearProbe();
        this.state = 'running';
        this.probeDelayMs = 0;
        this.circuit({ state: 'closed', failures: 0 });
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
    this.series.circuitOpened.inc();
    this.deps.logger.warn(
      { publisherId: this.publisher.id, failures: this.failures, probeInMs: this.probeDelayMs },
      'target keeps failing; circuit open, probing with one message',
    );
    this.clearProbe();
    this.circuit({ state: 'open', nextProbeAt: this.deps.now() + this.probeDelayMs, failures: this.failures });
    this.probeTimer = setTimeout(() => {
      this.probeTimer = undefined;
      if (this.state !== 'open') return;
      this.state = 'probing';
      this.circuit({ state: 'probing', failures: this.failures });
      this.dirty = true;
      this.pump();
    }, this.probeDelayMs);
    this.probeTimer.unref();
  }

  private circuit(change: CircuitChange): void {
    try {
      this.deps.onCircuit?.(change);
    } catch (err) {
      this.logError(err, 'circuit listener failed');
    }
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

/**
 * Whether the attempt shows the target up, for the circuit breaker: an
 * answer that refuses the message for good (410, `dead_on_status`, or a
 * permanent refusal) or a 429 (too many requests: the target asks to slow
 * down, which the Retry-After does) does not count as a failure.
 */
function targetAnswers(publisher: Publisher, result: AttemptResult): boolean {
  return (
    result.ok ||
    result.permanent === true ||
    result.status === 429 ||
    refusedForGood(result.status, publisher.dead_on_status)
  );
}
