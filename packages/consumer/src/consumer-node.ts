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
 * Slots: each active publisher has `slotCount(p)` slots; `assignSlots`
 * (rendezvous hashing with bounded loads over the live nodes) says which
 * node should hold each. A rebalance hands back the slots this node should
 * no longer hold (pipeline drained first, then the lease released) and takes
 * the leases of the slots it should hold (free, or left by a dead node). A
 * rebalance runs when publishers change, when the live set changes, when a
 * node announces it joined, left or handed slots back, and at each
 * heartbeat while some wanted slot is still held elsewhere.
 *
 * Also at each heartbeat: message recovery keeps its lease and polls the
 * origins when due (`MessageRecovery`), and the sources this node should
 * read are leased and read (`SourceReaders`, reloaded on source events).
 */
import { hostname } from 'node:os';
import type { SQSClientConfig } from '@aws-sdk/client-sqs';
import {
  Keys,
  OnceWriter,
  SourceStore,
  Store,
  checkRedisVersion,
  closeRedis,
  createRedis,
  effectivePublisher,
  maxPublisherTimeout,
  slotCount,
  within,
  type Config,
  type Logger,
  type Lookup,
  type Publisher,
  type ScriptClient,
  type StoreEvent,
} from '@postoffice/shared';
import { Lease } from './cluster/lease.js';
import { Membership } from './cluster/membership.js';
import { BacklogCounter } from './backlog.js';
import { CircuitStore } from './circuit-store.js';
import { BacklogSampler } from './backlog-sampler.js';
import { assignSlots, slotName } from './cluster/assignment.js';
import { SlotLeases, type SlotRef } from './cluster/slot-leases.js';
import { Janitor, RECLAIMED_CONSUMER } from './janitor.js';
import { Metrics } from './metrics.js';
import { AuditTrail } from './audit-trail.js';
import { SettleStage } from './pipeline/settle-stage.js';
import { PublisherPipeline } from './pipeline/publisher-pipeline.js';
import { RateLimiter } from './pipeline/rate-limiter.js';
import { Source } from './pipeline/source.js';
import { RetryIndex } from './retry-index.js';
import { ScheduleRelease } from './schedule-release.js';
import { HttpTarget } from './targets/http-target.js';
import { PubsubTarget } from './targets/pubsub-target.js';
import { MessageRecovery } from './recovery/message-recovery.js';
import { OriginClient } from './recovery/origin-client.js';
import { SourceReaders } from './sources/source-readers.js';
import { TargetRouter } from './targets/target-router.js';
import type { Clock, Target } from './types.js';

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
  private readonly leases: SlotLeases;
  private readonly limiter: RateLimiter;
  readonly janitor: Janitor;
  private readonly circuits: CircuitStore;
  private readonly backlogSampler: BacklogSampler;
  readonly recovery: MessageRecovery;
  readonly sources: SourceReaders;
  private readonly originClient: OriginClient;
  private sourcesSync: Promise<void> = Promise.resolve();
  private readonly pipelines = new Map<string, PublisherPipeline>();
  /** Every http publisher loaded, by id, and the ids of each topic's. */
  private readonly known = new Map<string, Publisher>();
  private readonly byTopic = new Map<string, Set<string>>();
  /** Slots this node holds and runs, by publisher id. */
  private readonly held = new Map<string, { topic: string; slots: Set<number> }>();
  /** Slots being handed back (pipeline draining, lease not yet released). */
  private readonly releasing = new Set<string>();
  private readonly handbacks = new Set<Promise<void>>();
  private live: ReadonlySet<string> = new Set();
  private lastBeatAt = 0;
  /** A wanted slot was still held by another node at the last rebalance. */
  private unsettled = false;
  private rebalanceQueued = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private syncing: Promise<void> = Promise.resolve();
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
    this.target =
      options.target ??
      new TargetRouter({
        http: new HttpTarget(this.now, { refusePrivateTargets: this.config.refusePrivateTargets }),
        pubsub: new PubsubTarget({
          projectId: this.config.gcloudPubsubProjectId,
          keyFilename: this.config.googleApplicationCredentials,
          emulatorHost: this.config.pubsubEmulatorHost,
          now: this.now,
        }),
      });
    this.store = new Store(this.redis, this.keys);
    this.source = new Source(this.redis, this.keys, this.config.nodeId, this.config.claimTimeoutSeconds * 1000);
    this.source.onGroupRecreated = (p) =>
      this.logger.error(
        { publisherId: p.id, topic: p.topic },
        "the publisher's consumer group was missing; created it again from the oldest retained message",
      );
    this.retryIndex = new RetryIndex(this.redis, this.keys);
    this.scheduleRelease = new ScheduleRelease(this.redis, this.keys);
    this.audit = AuditTrail.create(this.redis, this.keys, this.config, this.componentLogger('audit'));
    this.leases = new SlotLeases(this.redis, this.keys, this.config.nodeId);
    this.limiter = new RateLimiter(this.redis, this.keys);
    this.circuits = new CircuitStore(
      this.redis,
      this.keys,
      this.config.nodeId,
      this.componentLogger('circuit'),
      this.now,
    );
    this.membership = new Membership(
      this.redis,
      this.keys,
      { id: this.config.nodeId, host: hostname(), pid: process.pid, started_at: new Date(this.now()).toISOString() },
      this.config.heartbeatSeconds * 1000,
      this.now,
    );
    this.janitor = new Janitor({
      redis: this.redis,
      keys: this.keys,
      store: this.store,
      membership: this.membership,
      lease: new Lease(this.redis, this.keys.lock('janitor'), this.config.heartbeatSeconds * 3000, this.config.nodeId),
      retryIndex: this.retryIndex,
      config: this.config,
      logger: this.componentLogger('janitor'),
      now: this.now,
    });
    const writer = new OnceWriter(this.redis, this.keys, this.config);
    this.originClient = new OriginClient({
      timeoutMs: this.config.recoveryTimeoutSeconds * 1000,
      refusePrivateTargets: this.config.refusePrivateTargets,
      ...(options.originLookup ? { lookup: options.originLookup } : {}),
    });
    this.recovery = new MessageRecovery({
      store: this.store,
      writer,
      client: this.originClient,
      lease: new Lease(this.redis, this.keys.lock('recovery'), this.config.heartbeatSeconds * 3000, this.config.nodeId),
      metrics: this.metrics,
      config: this.config,
      logger: this.componentLogger('recovery'),
      now: this.now,
    });
    this.sources = new SourceReaders({
      redis: this.redis,
      keys: this.keys,
      store: new SourceStore(this.redis, this.keys),
      writer,
      metrics: this.metrics,
      config: this.config,
      logger: this.componentLogger('sources'),
      now: this.now,
      ...(options.sqsClientConfig ? { sqsClientConfig: options.sqsClientConfig } : {}),
    });
    // Publisher slot leases this node holds.
    this.metrics.countLeases(() => {
      let n = 0;
      for (const h of this.held.values()) n += h.slots.size;
      return n;
    });
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
    const out: string[] = [];
    for (const [id, h] of this.held) for (const slot of h.slots) out.push(slotName(id, slot));
    return out.sort();
  }

  async start(): Promise<void> {
    if (this.state !== 'created') throw new Error('a consumer node starts once');
    this.state = 'started';
    await checkRedisVersion(this.redis);
    await this.membership.beat();
    this.lastBeatAt = this.now();
    // A node that restarts under the same NODE_ID may have left messages pending under that name.
    await this.janitor.reclaimNode(this.config.nodeId);
    this.subscriber.on('message', (channel: string, message: string) => this.onMessage(channel, message));
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
      this.requestRebalance();
    };
    this.redis.on('ready', () => rejoin('Redis connection re-established'));
    this.redis.on('-node', () => rejoin('lost the connection to a Redis Cluster master'));
    // On a Redis Cluster the subscription moves to another node when its node leaves, with no 'ready'.
    this.subscriber.on('-node', () => {
      if (this.state === 'started') this.resync();
    });
    await this.subscriber.subscribe(this.keys.wakeChannel, this.keys.eventsChannel);
    await this.syncAll();
    await this.refreshLive();
    this.requestRebalance();
    await this.syncing;
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
    if ((await this.refreshLive()) || this.unsettled) this.requestRebalance();
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
        await this.sources.rebalance(this.live);
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
    // Steps that need Redis get a few seconds each: with Redis gone the
    // consumer's client would wait for it for ever.
    const STEP_MS = 3000;
    const steps: [string, number, () => Promise<unknown>][] = [
      ['unsubscribe', STEP_MS, () => (wasStarted ? this.subscriber.unsubscribe() : Promise.resolve())],
      ['finish rebalancing', STEP_MS, () => this.syncing],
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
    const drained = Promise.all([...all.map((p) => p.close()), ...this.handbacks]);
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

  private onMessage(channel: string, message: string): void {
    if (this.state !== 'started') return;
    if (channel === this.keys.wakeChannel) {
      this.janitor.markDirty(message);
      this.backlogSampler.touch(message);
      for (const id of this.byTopic.get(message) ?? []) this.pipelines.get(id)?.wake();
      return;
    }
    if (channel === this.keys.eventsChannel) {
      let event: StoreEvent;
      try {
        event = JSON.parse(message) as StoreEvent;
      } catch {
        return;
      }
      if (event.type === 'cluster') {
        if (event.node === this.nodeId) return;
        this.serialize(async () => {
          await this.refreshLive();
          await this.rebalance();
          this.syncSources(false);
        });
      } else if (event.type === 'source') {
        this.syncSources(true);
      } else if (typeof event.topic === 'string') {
        const topic = event.topic;
        this.serialize(() => this.syncTopic(topic));
      }
    }
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
    this.serialize(async () => {
      await this.syncAll();
      for (const p of this.pipelines.values()) p.wakeRetries();
    });
    // Source events sent while the subscriber was away are lost too.
    this.syncSources(true);
  }

  private serialize(task: () => Promise<void>): void {
    this.syncing = this.syncing
      .then(() => (this.state === 'started' ? task() : undefined))
      .catch((err: unknown) => this.logger.error({ err }, 'could not load publishers'));
  }

  private async syncAll(): Promise<void> {
    const byTopic = new Map<string, Publisher[]>([...this.byTopic.keys()].map((t) => [t, []]));
    const { topics, publishers: all } = await this.store.listTopicsAndPublishers();
    const paused = new Set(topics.filter((t) => t.paused).map((t) => t.name));
    for (const p of all) {
      const list = byTopic.get(p.topic);
      if (list) list.push(p);
      else byTopic.set(p.topic, [p]);
    }
    for (const [topic, publishers] of byTopic) this.apply(topic, publishers, paused.has(topic));
  }

  private async syncTopic(topic: string): Promise<void> {
    const { paused, publishers } = await this.store.topicPublishers(topic);
    this.apply(topic, publishers, paused);
  }

  /**
   * A delivery must end before its message may be claimed by another node:
   * a timeout the API would refuse today (CLAIM_TIMEOUT_SECONDS was lowered
   * since) is cut to the longest allowed.
   */
  private bounded(p: Publisher): Publisher {
    const max = maxPublisherTimeout(this.config);
    if (p.seconds_timeout <= max) return p;
    this.logger.warn(
      { publisherId: p.id, seconds_timeout: p.seconds_timeout, max },
      'seconds_timeout above the claim timeout; using the maximum',
    );
    return { ...p, seconds_timeout: max };
  }

  /**
   * Records the publishers of `topic` (http ones), updates running pipelines, and asks for a rebalance.
   * While the topic is paused its publishers count as inactive: their pipelines pause, then their slots
   * are handed back, as for a publisher switched off; resuming takes them again.
   */
  private apply(topic: string, publishers: Publisher[], paused: boolean): void {
    // Pull publishers have no pipeline: workers lease their messages through the API.
    const ids = this.byTopic.get(topic) ?? new Set<string>();
    const wanted = new Map(
      publishers
        .filter((p) => p.type !== 'pull')
        .map((p) => [p.id, this.bounded(normalize(effectivePublisher(p, paused)))]),
    );
    for (const id of ids) {
      if (wanted.has(id)) continue;
      ids.delete(id);
      this.known.delete(id);
    }
    for (const [id, publisher] of wanted) {
      ids.add(id);
      this.known.set(id, publisher);
      const pipeline = this.pipelines.get(id);
      const held = this.held.get(id);
      if (pipeline && held) pipeline.update(effective(publisher));
    }
    if (ids.size > 0) this.byTopic.set(topic, ids);
    else this.byTopic.delete(topic);
    this.requestRebalance();
  }

  /** Reads the live nodes; true when the set changed. */
  private async refreshLive(): Promise<boolean> {
    const ids = new Set(await this.membership.live());
    if (this.state === 'started') ids.add(this.nodeId);
    const changed = ids.size !== this.live.size || [...ids].some((id) => !this.live.has(id));
    this.live = ids;
    return changed;
  }

  private requestRebalance(): void {
    if (this.rebalanceQueued) return;
    this.rebalanceQueued = true;
    this.serialize(async () => {
      this.rebalanceQueued = false;
      await this.rebalance();
    });
  }

  /** Hands back the slots this node should not hold and takes those it should (see the header). */
  private async rebalance(): Promise<void> {
    if (this.state !== 'started') return;
    const slots = new Map<string, SlotRef>();
    for (const p of this.known.values()) {
      if (!p.active) continue;
      for (let slot = 0; slot < slotCount(p); slot++)
        slots.set(slotName(p.id, slot), { topic: p.topic, publisherId: p.id, slot });
    }
    const owners = assignSlots([...slots.keys()], [...this.live]);
    for (const [id, h] of [...this.held]) {
      const back = [...h.slots].filter((slot) => owners.get(slotName(id, slot)) !== this.nodeId);
      if (back.length > 0) this.handBack(id, h.topic, back);
    }
    const wanted: SlotRef[] = [];
    for (const [name, ref] of slots) {
      if (owners.get(name) !== this.nodeId || this.releasing.has(name)) continue;
      if (this.held.get(ref.publisherId)?.slots.has(ref.slot)) continue;
      wanted.push(ref);
    }
    const got = await this.leases.acquire(wanted, this.live);
    this.unsettled = got.length < wanted.length;
    if (this.state !== 'started') {
      await this.leases.release(got);
      return;
    }
    const touched = new Set<string>();
    for (const ref of got) {
      const h = this.held.get(ref.publisherId) ?? { topic: ref.topic, slots: new Set<number>() };
      h.slots.add(ref.slot);
      this.held.set(ref.publisherId, h);
      touched.add(ref.publisherId);
    }
    for (const id of touched) this.runPipeline(id);
    if (got.length > 0) this.logger.debug({ slots: got.length }, 'took slots');
  }

  /** Starts (or resizes) the pipeline of a publisher whose slots this node holds. */
  private runPipeline(id: string): void {
    const publisher = this.known.get(id);
    const h = this.held.get(id);
    if (!publisher || !h) return;
    const p = effective(publisher);
    const existing = this.pipelines.get(id);
    if (existing) {
      existing.update(p);
      existing.wake();
      return;
    }
    const topic = publisher.topic;
    const pipeline = new PublisherPipeline(p, {
      source: this.source,
      createSettle: (onSettled) =>
        new SettleStage({
          redis: this.redis,
          keys: this.keys,
          topic,
          publisherId: id,
          retryIndex: this.retryIndex,
          logger: this.componentLogger('ack', { topic, publisherId: id }),
          now: this.now,
          audit: this.audit,
          onSettled,
        }),
      target: this.target,
      retryIndex: this.retryIndex,
      limiter: this.limiter,
      holdsLease: () => this.leases.holds({ topic, publisherId: id, slot: 0 }),
      metrics: this.metrics,
      logger: this.componentLogger('pipeline', { topic, publisherId: id }),
      config: this.config,
      now: this.now,
      onCircuit: (change) => this.circuits.record(topic, id, change),
    });
    this.pipelines.set(id, pipeline);
    pipeline.wakeRetries();
  }

  /**
   * Gives slots back: the pipeline shrinks (or, with no slot left, stops and
   * finishes its deliveries) before the leases are released, so that the
   * next owner never overlaps with this one; then tells the others.
   */
  private handBack(id: string, topic: string, slots: number[]): void {
    const h = this.held.get(id);
    if (!h) return;
    for (const slot of slots) {
      h.slots.delete(slot);
      this.releasing.add(slotName(id, slot));
    }
    let stopped: Promise<void> = Promise.resolve();
    if (h.slots.size === 0) {
      this.held.delete(id);
      const pipeline = this.pipelines.get(id);
      this.pipelines.delete(id);
      if (pipeline) stopped = pipeline.close();
    } else {
      this.runPipeline(id);
    }
    const refs = slots.map((slot) => ({ topic, publisherId: id, slot }));
    const done = stopped
      .then(() => this.leases.release(refs))
      .then(() => (this.state === 'started' ? this.store.emit({ type: 'cluster', node: this.nodeId }) : undefined))
      .catch((err: unknown) => this.logger.error({ err, publisherId: id }, 'could not hand slots back'))
      .finally(() => {
        for (const slot of slots) this.releasing.delete(slotName(id, slot));
        this.handbacks.delete(done);
      });
    this.handbacks.add(done);
  }

  /** Hands every slot back, leaves the live set and tells the others (on close, after the pipelines drained). */
  private async leave(): Promise<void> {
    await this.releaseAll();
    await this.membership.leave();
    await this.store.emit({ type: 'cluster', node: this.nodeId });
  }

  private async releaseAll(): Promise<void> {
    await Promise.all(this.handbacks);
    const refs: SlotRef[] = [];
    for (const [id, h] of this.held) for (const slot of h.slots) refs.push({ topic: h.topic, publisherId: id, slot });
    this.held.clear();
    await this.leases.release(refs);
  }

  /**
   * Forgets every slot without touching Redis (they may be someone else's now) and takes a new lease token.
   * Once the pipelines have stopped, whatever is still pending under this node's name is scheduled for a
   * new attempt: a read whose reply was lost with the connection (Redis restarted, a partition) left
   * entries pending here that no pipeline knows of, and the janitor only takes over nodes that left.
   * Rebalancing waits for that (it is serialized after it), so no new pipeline reads meanwhile.
   */
  private dropAllSlots(): void {
    const stopped: Promise<void>[] = [];
    for (const id of this.held.keys()) {
      const pipeline = this.pipelines.get(id);
      this.pipelines.delete(id);
      if (pipeline) stopped.push(pipeline.close());
    }
    this.held.clear();
    this.leases.renewIdentity();
    this.unsettled = true;
    this.serialize(async () => {
      await Promise.all(stopped);
      const moved = await this.janitor.reclaimNode(this.nodeId);
      if (moved > 0) this.logger.warn({ moved }, 'scheduled messages left pending under this node for a new attempt');
    });
  }
}

/** A publisher record written before `parallelism`, `ordered` and `rate_limit` existed gets their defaults. */
function normalize(p: Publisher): Publisher {
  return { ...p, parallelism: p.parallelism ?? 1, ordered: p.ordered ?? false, rate_limit: p.rate_limit ?? null };
}

/**
 * The publisher as this node's pipeline runs it: `concurrency` deliveries in
 * flight on this node, however many of its slots the node holds (so a
 * publisher's throughput grows with the nodes that hold its slots, up to
 * `parallelism` of them); one at a time when ordered, unless it has an
 * ordering attribute (then one at a time per key).
 */
function effective(p: Publisher): Publisher {
  return p.ordered && !p.ordering_attribute ? { ...p, concurrency: 1 } : p;
}

export { RECLAIMED_CONSUMER };
