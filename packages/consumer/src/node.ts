/**
 * A consumer node's lifecycle. States: created -> started (start()) ->
 * closing (close(): stop reading, finish or abort in-flight work by the
 * deadline, leave the cluster) -> closed.
 *
 * While started it loads every publisher, and keeps one pipeline per
 * http or pubsub publisher of which it holds at least one slot lease, on two Redis
 * connections whatever their number: a command connection, and a subscriber
 * that hears which topics received messages (wake-ups) and which publishers
 * or nodes changed (events). Two timers: the heartbeat (with the live-node
 * check, the rebalance when the cluster changed, and the janitor round) and
 * the retry-index poll (one command per interval).
 *
 * The node wires its parts (those that need nothing of its state are made
 * by `createNodeParts`) and runs their timers; each part keeps its own
 * state: the publisher registry (`PublisherRegistry`: which publishers,
 * loaded how), the slot owner (`SlotOwner`: which slots this node holds,
 * rebalancing, and the serial task queue), the pipelines (`PipelineSet`:
 * one per publisher with a slot held here) and the wake-up router
 * (`WakeRouter`: the subscriber's messages to the part they concern). The
 * slot owner tells the node when it gains or loses a publisher's slots
 * (`onGained`, `onLost`), and the node starts, resizes or stops that
 * publisher's pipeline.
 *
 * Also at each heartbeat: message recovery keeps its lease and polls the
 * origins when due (`MessageRecovery`), and the sources this node should
 * read are leased and read (`SourceReaders`, reloaded on source events).
 */
import type { SQSClientConfig } from '@aws-sdk/client-sqs';
import {
  Keys,
  checkRedisVersion,
  closeRedis,
  createRedis,
  within,
  type Config,
  type Logger,
  type Lookup,
  type ScriptClient,
  type Store,
} from '@postoffice/shared';
import type { AuditTrail } from './audit-trail.js';
import { BacklogCounter } from './backlog.js';
import { BacklogSampler } from './backlog-sampler.js';
import { CircuitStore } from './circuit-store.js';
import type { Membership } from './cluster/membership.js';
import { SlotLeases } from './cluster/slot-leases.js';
import { SlotOwner } from './cluster/slot-owner.js';
import { RECLAIMED_CONSUMER, type Janitor } from './janitor.js';
import { Metrics } from './metrics.js';
import { createNodeParts } from './node-parts.js';
import { PipelineSet } from './pipeline/pipeline-set.js';
import type { PublisherPipeline } from './pipeline/publisher-pipeline.js';
import { RateLimiter } from './pipeline/rate-limiter.js';
import type { Source } from './pipeline/source.js';
import { PublisherRegistry } from './publisher-registry.js';
import type { MessageRecovery } from './recovery/message-recovery.js';
import type { OriginClient } from './recovery/origin-client.js';
import type { RetryIndex } from './retry-index.js';
import type { ScheduleRelease } from './schedule-release.js';
import type { SourceReaders } from './sources/source-readers.js';
import type { Clock, Target } from './types.js';
import { WakeRouter } from './wake-router.js';

export interface ConsumerNodeOptions {
  readonly config: Config;
  readonly logger: Logger;
  readonly now?: Clock;
  readonly target?: Target;
  readonly metrics?: Metrics;
  /** Settings for the SQS SDK's client beside the environment's (tests give an endpoint and credentials). */
  readonly sqsClientConfig?: SQSClientConfig;
  /** Resolves origin hosts for REFUSE_PRIVATE_TARGETS (tests); the system's resolver by default. */
  readonly originLookup?: Lookup;
}

/** A burst of lost cluster master connections ends once none came for this long: then the node rejoins once. */
const REJOIN_QUIET_MS = 1000;
/** The longest a rejoin waits for such a burst to end. */
const REJOIN_MAX_DELAY_MS = 5000;

export class ConsumerNode {
  readonly config: Config;
  readonly metrics: Metrics;
  readonly keys: Keys;
  readonly redis: ScriptClient;
  private readonly subscriber: ScriptClient;
  private readonly logger: Logger;
  /** The logger the node was given: each component's logger is a child of it (a key bound once per line). */
  private readonly rootLogger: Logger;
  private readonly now: Clock;
  private readonly target: Target;
  private readonly store: Store;
  private readonly source: Source;
  private readonly retryIndex: RetryIndex;
  private readonly scheduleRelease: ScheduleRelease;
  private readonly audit: AuditTrail | undefined;
  private readonly membership: Membership;
  readonly janitor: Janitor;
  private readonly backlogSampler: BacklogSampler;
  readonly recovery: MessageRecovery;
  readonly sources: SourceReaders;
  private readonly originClient: OriginClient;
  private sourcesSync: Promise<void> = Promise.resolve();
  private readonly publishers: PublisherRegistry;
  private readonly slots: SlotOwner;
  private readonly pipelines: PipelineSet;
  private readonly router: WakeRouter;
  private lastBeatAt = 0;
  private readonly timers: NodeJS.Timeout[] = [];
  /** A rejoin waiting for a burst of lost cluster connections to end (see start()). */
  private rejoinTimer: NodeJS.Timeout | undefined;
  private state: 'created' | 'started' | 'closing' | 'closed' = 'created';
  private closing: Promise<void> | undefined;

  constructor(options: ConsumerNodeOptions) {
    this.config = options.config;
    this.rootLogger = options.logger;
    this.logger = this.componentLogger('consumer');
    this.now = options.now ?? Date.now;
    this.metrics = options.metrics ?? new Metrics();
    this.keys = new Keys(this.config.redisPrefix);
    this.redis = createRedis(this.config.redisUrl, 'consumer');
    this.subscriber = createRedis(this.config.redisUrl, 'subscriber');
    this.redis.on('error', () => this.metrics.redisError());
    this.subscriber.on('error', () => this.metrics.redisError());
    const parts = createNodeParts({
      config: this.config,
      keys: this.keys,
      redis: this.redis,
      metrics: this.metrics,
      now: this.now,
      logger: this.logger,
      componentLogger: (component) => this.componentLogger(component),
      target: options.target,
      sqsClientConfig: options.sqsClientConfig,
      originLookup: options.originLookup,
    });
    this.target = parts.target;
    this.store = parts.store;
    this.source = parts.source;
    this.retryIndex = parts.retryIndex;
    this.scheduleRelease = parts.scheduleRelease;
    this.audit = parts.audit;
    this.membership = parts.membership;
    this.janitor = parts.janitor;
    this.originClient = parts.originClient;
    this.recovery = parts.recovery;
    this.sources = parts.sources;
    const started = (): boolean => this.state === 'started';
    this.publishers = new PublisherRegistry({
      store: this.store,
      config: this.config,
      logger: this.logger,
      onUpdate: (p) => {
        if (this.slots.holds(p.id)) this.pipelines.update(p);
      },
      onApplied: () => this.slots.requestRebalance(),
    });
    this.slots = new SlotOwner({
      leases: new SlotLeases(this.redis, this.keys, this.config.nodeId),
      membership: this.membership,
      store: this.store,
      nodeId: this.config.nodeId,
      logger: this.logger,
      started,
      publishers: () => this.publishers.all(),
      onGained: (id) => this.runPipeline(id),
      onLost: (id, left) => {
        if (left === 0) return this.pipelines.stop(id);
        this.runPipeline(id);
        return Promise.resolve();
      },
    });
    this.pipelines = new PipelineSet({
      redis: this.redis,
      keys: this.keys,
      source: this.source,
      target: this.target,
      retryIndex: this.retryIndex,
      limiter: new RateLimiter(this.redis, this.keys),
      circuits: new CircuitStore(this.redis, this.keys, this.config.nodeId, this.componentLogger('circuit'), this.now),
      audit: this.audit,
      metrics: this.metrics,
      config: this.config,
      now: this.now,
      logger: (component, bindings) => this.componentLogger(component, bindings),
      leaseCheck: (topic, id) => this.slots.leaseCheck(topic, id),
    });
    // Publisher slot leases this node holds.
    this.metrics.countLeases(() => this.slots.count);
    this.metrics.watchRedis(() => this.redis.status === 'ready');
    this.metrics.reportCircuits(() =>
      [...this.pipelines.values()].map((p) => ({ publisher: p.id, topic: p.current.topic, state: p.state })),
    );
    const backlog = new BacklogCounter({
      redis: this.redis,
      keys: this.keys,
      store: this.store,
      reporting: () => this.state === 'started' && this.janitor.holdsLease,
      now: this.now,
    });
    this.metrics.reportBacklog(backlog.source);
    this.backlogSampler = new BacklogSampler({
      redis: this.redis,
      keys: this.keys,
      counter: backlog,
      sampling: () => this.state === 'started' && this.janitor.holdsLease,
      logger: this.componentLogger('backlog'),
      now: this.now,
    });
    this.router = new WakeRouter({
      keys: this.keys,
      nodeId: this.config.nodeId,
      started,
      janitor: this.janitor,
      backlogSampler: this.backlogSampler,
      publishers: this.publishers,
      pipelines: this.pipelines,
      slots: this.slots,
      syncSources: (reload) => this.syncSources(reload),
    });
  }

  /** A logger for one of the node's components, bound to the node's id. */
  private componentLogger(component: string, bindings: Record<string, string> = {}): Logger {
    return this.rootLogger.child({ component, nodeId: this.config.nodeId, ...bindings });
  }

  get nodeId(): string {
    return this.config.nodeId;
  }

  /** Pipelines on this node, by publisher id (for tests and /healthz). */
  get pipelineCount(): number {
    return this.pipelines.size;
  }

  pipeline(publisherId: string): PublisherPipeline | undefined {
    return this.pipelines.get(publisherId);
  }

  /** Slots held, as `<publisher id>/<slot>` (for tests). */
  heldSlots(): string[] {
    return this.slots.heldSlots();
  }

  async start(): Promise<void> {
    if (this.state !== 'created') throw new Error('a consumer node starts once');
    this.state = 'started';
    await checkRedisVersion(this.redis);
    await this.membership.beat();
    this.lastBeatAt = this.now();
    // A node that restarts under the same NODE_ID may have left messages pending under that name.
    await this.janitor.reclaimNode(this.config.nodeId);
    this.subscriber.on('message', (channel: string, message: string) => this.router.route(channel, message));
    let firstReady = true;
    this.subscriber.on('ready', () => {
      if (firstReady) {
        firstReady = false;
        return;
      }
      // Wake-ups sent while we were disconnected are lost: look at everything once.
      this.logger.info('subscriber reconnected; resyncing all publishers');
      this.resync();
    });
    // The command connection came back (Redis restarted, a network blip): a read sent before the break may
    // have been carried out with its reply lost, leaving entries pending under this node that no pipeline
    // knows of. Rejoining stops the pipelines and then schedules whatever is left pending here again.
    // On a Redis Cluster a master's connection that breaks is dropped (its unanswered commands fail) and
    // made anew on the next command, with no 'ready' on the cluster client: its '-node' tells instead.
    const rejoin = (why: string): void => {
      if (this.state !== 'started') return;
      this.logger.warn(`${why}; dropping every slot and rejoining`);
      this.dropAllSlots();
      this.slots.requestRebalance();
    };
    this.redis.on('ready', () => rejoin('Redis connection re-established'));
    // A master that fails makes a burst of '-node' (ioredis makes its connection anew on each command until the
    // slot map names the new master): one rejoin once the burst is over, not one each time.
    let burstSince: number | undefined;
    this.redis.on('-node', () => {
      if (this.state !== 'started') return;
      const now = Date.now();
      burstSince ??= now;
      clearTimeout(this.rejoinTimer);
      const wait = Math.max(0, Math.min(REJOIN_QUIET_MS, burstSince + REJOIN_MAX_DELAY_MS - now));
      this.rejoinTimer = setTimeout(() => {
        this.rejoinTimer = undefined;
        burstSince = undefined;
        rejoin('lost the connection to a Redis Cluster master');
      }, wait);
    });
    // On a Redis Cluster the subscription moves to another node when its node leaves, with no 'ready'.
    this.subscriber.on('-node', () => {
      if (this.state === 'started') this.resync();
    });
    await this.subscriber.subscribe(this.keys.wakeChannel, this.keys.eventsChannel);
    await this.publishers.syncAll();
    await this.slots.refreshLive();
    this.slots.requestRebalance();
    await this.slots.idle;
    // Others make room for this node at once instead of at their next heartbeat.
    await this.store.emit({ type: 'cluster', node: this.nodeId });
    this.every(this.config.heartbeatSeconds * 1000, () => this.heartbeat());
    this.every(this.config.retryPollMs, () => this.pollRetries());
    await this.janitor.tick();
    await this.sources.load();
    this.syncSources(false);
    await this.sourcesSync;
    // Message recovery starts at the first heartbeat (its first round looks at every topic).
    this.logger.info({ pipelines: this.pipelines.size, slots: this.heldSlots().length }, 'consumer node started');
  }

  private async heartbeat(): Promise<void> {
    await this.membership.beat();
    const now = this.now();
    if (now - this.lastBeatAt > this.membership.ttlMs) {
      // Silent long enough to be counted dead: others may hold our slots now.
      this.logger.warn({ silentMs: now - this.lastBeatAt }, 'heartbeat was late; dropping every slot and rejoining');
      this.dropAllSlots();
    }
    this.lastBeatAt = now;
    await this.slots.checkLive();
    await this.janitor.tick();
    await this.backlogSampler.tick();
    await this.recovery.tick();
    this.syncSources(false);
    await this.sourcesSync;
  }

  /** Reloads the sources when `reload`, then leases, renews or gives up the sources this node should read. */
  private syncSources(reload: boolean): void {
    this.sourcesSync = this.sourcesSync
      .then(async () => {
        if (this.state !== 'started') return;
        if (reload) await this.sources.load();
        await this.sources.rebalance(this.slots.live);
      })
      .catch((err: unknown) => this.logger.error({ err }, 'could not sync the sources'));
  }

  /**
   * Stops reading, lets in-flight deliveries finish until `deadlineMs`, then
   * aborts the rest (they stay pending and are taken over), leaves the
   * cluster and closes every connection. Safe to call twice; every step runs
   * even if one fails.
   */
  close(deadlineMs = this.config.shutdownTimeoutSeconds * 1000): Promise<void> {
    this.closing ??= this.doClose(deadlineMs);
    return this.closing;
  }

  private async doClose(deadlineMs: number): Promise<void> {
    const wasStarted = this.state === 'started';
    this.state = 'closing';
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.rejoinTimer);
    // Steps that need Redis get a few seconds each: with Redis gone the
    // consumer's client would wait for it for ever.
    const STEP_MS = 3000;
    const steps: [string, number, () => Promise<unknown>][] = [
      ['unsubscribe', STEP_MS, () => (wasStarted ? this.subscriber.unsubscribe() : Promise.resolve())],
      ['finish rebalancing', STEP_MS, () => this.slots.idle],
      ['drain pipelines', deadlineMs + STEP_MS, () => this.drainPipelines(deadlineMs)],
      ['stop sources', STEP_MS * 3, () => this.sourcesSync.then(() => this.sources.close())],
      ['stop recovery', STEP_MS, () => this.recovery.close()],
      ['close origin client', STEP_MS, () => this.originClient.close()],
      ['close audit trail', STEP_MS, () => this.audit?.close() ?? Promise.resolve()],
      ['leave cluster', STEP_MS, () => (wasStarted ? this.leave() : Promise.resolve())],
      ['release janitor lease', STEP_MS, () => this.janitor.close()],
      ['close target', STEP_MS, () => this.target.close()],
      ['close subscriber', STEP_MS, () => closeRedis(this.subscriber)],
      ['close redis', STEP_MS, () => closeRedis(this.redis)],
    ];
    for (const [name, ms, step] of steps) {
      try {
        if (!(await within(ms, step()))) this.logger.warn({ step: name, ms }, 'shutdown step timed out; going on');
      } catch (err) {
        this.logger.error({ err, step: name }, 'shutdown step failed');
      }
    }
    // Whatever the steps above managed, no connection outlives close().
    this.subscriber.disconnect();
    this.redis.disconnect();
    this.state = 'closed';
    this.logger.info('consumer node stopped');
  }

  private async drainPipelines(deadlineMs: number): Promise<void> {
    const all = [...this.pipelines.values()];
    const drained = Promise.all([...all.map((p) => p.close()), this.slots.handedBack()]);
    if (await within(deadlineMs, drained)) return;
    const busy = all.reduce((n, p) => n + p.busy, 0);
    this.logger.warn(
      { busy },
      'shutdown deadline reached; aborting deliveries still in flight (they will be delivered again)',
    );
    this.target.abortAll();
    await drained;
  }

  private every(ms: number, fn: () => Promise<void>): void {
    let running = false;
    const timer = setInterval(() => {
      if (running || this.state !== 'started') return;
      running = true;
      fn()
        .catch((err: unknown) => this.logger.error({ err }, 'periodic task failed'))
        .finally(() => (running = false));
    }, ms);
    this.timers.push(timer);
  }

  private async pollRetries(): Promise<void> {
    const now = this.now();
    const [retries, scheduled] = await Promise.all([this.retryIndex.due(now), this.scheduleRelease.due(now)]);
    for (const id of retries) {
      const p = this.pipelines.get(id);
      if (p?.state === 'running') p.wakeRetries();
    }
    for (const topic of scheduled) {
      const moved = await this.scheduleRelease.release(topic, now);
      if (moved > 0) this.logger.debug({ topic, moved }, 'scheduled messages entered the stream');
    }
  }

  private resync(): void {
    this.slots.serialize(async () => {
      await this.publishers.syncAll();
      for (const p of this.pipelines.values()) p.wakeRetries();
    });
    // Source events sent while the subscriber was away are lost too.
    this.syncSources(true);
  }

  /** Starts (or resizes) the pipeline of a publisher whose slots this node holds. */
  private runPipeline(id: string): void {
    const publisher = this.publishers.get(id);
    if (publisher && this.slots.holds(id)) this.pipelines.run(publisher);
  }

  /** Hands every slot back, leaves the live set and tells the others (on close, after the pipelines drained). */
  private async leave(): Promise<void> {
    await this.slots.releaseAll();
    await this.membership.leave();
    await this.store.emit({ type: 'cluster', node: this.nodeId });
  }

  /**
   * Forgets every slot without touching Redis (they may be someone else's now) and takes a new lease token.
   * Once the pipelines have stopped, whatever is still pending under this node's name is scheduled for a
   * new attempt: a read whose reply was lost with the connection (Redis restarted, a partition) left
   * entries pending here that no pipeline knows of, and the janitor only takes over nodes that left.
   * Rebalancing waits for that (it is serialized after it), so no new pipeline reads meanwhile.
   */
  private dropAllSlots(): void {
    const stopped = this.slots.dropAll();
    this.slots.serialize(async () => {
      await stopped;
      const moved = await this.janitor.reclaimNode(this.nodeId);
      if (moved > 0) this.logger.warn({ moved }, 'scheduled messages left pending under this node for a new attempt');
    });
  }
}

export { RECLAIMED_CONSUMER };
