/**
 * A consumer node's lifecycle. States: created -> started (start()) ->
 * closing (close(): stop reading, finish or abort in-flight work by the
 * deadline, leave the cluster) -> closed.
 *
 * While started it keeps one pipeline per active http publisher, on two
 * Redis connections whatever their number: a command connection, and a
 * subscriber that hears which topics received messages (wake-ups) and which
 * publishers changed (events). Three timers: the heartbeat, the retry-index
 * poll (one command per interval) and the janitor round.
 */
import { hostname } from 'node:os';
import {
  Keys,
  Store,
  checkRedisVersion,
  closeRedis,
  createRedis,
  maxPublisherTimeout,
  within,
  type Config,
  type Logger,
  type Publisher,
  type ScriptClient,
  type StoreEvent,
} from '@postoffice/shared';
import { Lease } from './cluster/lease.js';
import { Membership } from './cluster/membership.js';
import { Janitor, RECLAIMED_CONSUMER } from './janitor.js';
import { Metrics } from './metrics.js';
import { AckStage } from './pipeline/ack-stage.js';
import { PublisherPipeline } from './pipeline/publisher-pipeline.js';
import { Source } from './pipeline/source.js';
import { RetryIndex } from './retry-index.js';
import { HttpTarget } from './targets/http-target.js';
import type { Clock, Target } from './types.js';

export interface ConsumerNodeOptions {
  readonly config: Config;
  readonly logger: Logger;
  readonly now?: Clock;
  readonly target?: Target;
  readonly metrics?: Metrics;
}

export class ConsumerNode {
  readonly config: Config;
  readonly metrics: Metrics;
  readonly keys: Keys;
  readonly redis: ScriptClient;
  private readonly subscriber: ScriptClient;
  private readonly logger: Logger;
  private readonly now: Clock;
  private readonly target: Target;
  private readonly store: Store;
  private readonly source: Source;
  private readonly retryIndex: RetryIndex;
  private readonly membership: Membership;
  readonly janitor: Janitor;
  private readonly pipelines = new Map<string, PublisherPipeline>();
  private readonly byTopic = new Map<string, Set<string>>();
  private readonly timers: NodeJS.Timeout[] = [];
  private syncing: Promise<void> = Promise.resolve();
  private state: 'created' | 'started' | 'closing' | 'closed' = 'created';
  private closing: Promise<void> | undefined;

  constructor(options: ConsumerNodeOptions) {
    this.config = options.config;
    this.logger = options.logger.child({ component: 'consumer', nodeId: options.config.nodeId });
    this.now = options.now ?? Date.now;
    this.metrics = options.metrics ?? new Metrics();
    this.keys = new Keys(this.config.redisPrefix);
    this.redis = createRedis(this.config.redisUrl, 'consumer');
    this.subscriber = createRedis(this.config.redisUrl, 'subscriber');
    this.redis.on('error', () => this.metrics.redisErrors.inc());
    this.target = options.target ?? new HttpTarget(this.now);
    this.store = new Store(this.redis, this.keys);
    this.source = new Source(this.redis, this.keys, this.config.nodeId, this.config.claimTimeoutSeconds * 1000);
    this.source.onGroupRecreated = (p) =>
      this.logger.error(
        { publisherId: p.id, topic: p.topic },
        "the publisher's consumer group was missing; created it again from the oldest retained message",
      );
    this.retryIndex = new RetryIndex(this.redis, this.keys);
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
      lease: new Lease(this.redis, this.keys.lock('janitor'), this.config.heartbeatSeconds * 3000),
      retryIndex: this.retryIndex,
      config: this.config,
      logger: this.logger.child({ component: 'janitor' }),
      now: this.now,
    });
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

  async start(): Promise<void> {
    if (this.state !== 'created') throw new Error('a consumer node starts once');
    this.state = 'started';
    await checkRedisVersion(this.redis);
    await this.membership.beat();
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
    // On a Redis Cluster the subscription moves to another node when its node leaves, with no 'ready'.
    this.subscriber.on('-node', () => {
      if (this.state === 'started') this.resync();
    });
    await this.subscriber.subscribe(this.keys.wakeChannel, this.keys.eventsChannel);
    await this.syncAll();
    this.every(this.config.heartbeatSeconds * 1000, async () => {
      await this.membership.beat();
      await this.janitor.tick();
    });
    this.every(this.config.retryPollMs, () => this.pollRetries());
    await this.janitor.tick();
    this.logger.info({ pipelines: this.pipelines.size }, 'consumer node started');
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
      ['drain pipelines', deadlineMs + STEP_MS, () => this.drainPipelines(deadlineMs)],
      ['leave cluster', STEP_MS, () => (wasStarted ? this.membership.leave() : Promise.resolve())],
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
    const drained = Promise.all(all.map((p) => p.close()));
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
      this.serialize(() => this.syncTopic(event.topic));
    }
  }

  private async pollRetries(): Promise<void> {
    for (const id of await this.retryIndex.due(this.now())) {
      const p = this.pipelines.get(id);
      if (p?.state === 'running') p.wakeRetries();
    }
  }

  private resync(): void {
    this.serialize(async () => {
      await this.syncAll();
      for (const p of this.pipelines.values()) p.wakeRetries();
    });
  }

  private serialize(task: () => Promise<void>): void {
    this.syncing = this.syncing
      .then(() => (this.state === 'started' ? task() : undefined))
      .catch((err: unknown) => this.logger.error({ err }, 'could not load publishers'));
  }

  private async syncAll(): Promise<void> {
    const byTopic = new Map<string, Publisher[]>([...this.byTopic.keys()].map((t) => [t, []]));
    for (const p of await this.store.listPublishers()) {
      const list = byTopic.get(p.topic);
      if (list) list.push(p);
      else byTopic.set(p.topic, [p]);
    }
    for (const [topic, publishers] of byTopic) this.apply(topic, publishers);
  }

  private async syncTopic(topic: string): Promise<void> {
    this.apply(topic, await this.store.listPublishersOfTopic(topic));
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

  /** Makes this node's pipelines of `topic` match its publishers. */
  private apply(topic: string, publishers: Publisher[]): void {
    const wanted = new Map(publishers.filter((p) => p.type === 'http').map((p) => [p.id, this.bounded(p)]));
    const ids = this.byTopic.get(topic) ?? new Set<string>();
    for (const id of ids) {
      if (wanted.has(id)) continue;
      const p = this.pipelines.get(id);
      this.pipelines.delete(id);
      ids.delete(id);
      if (p) void p.close();
    }
    for (const [id, publisher] of wanted) {
      const existing = this.pipelines.get(id);
      if (existing) {
        existing.update(publisher);
        continue;
      }
      const pipeline = new PublisherPipeline(publisher, {
        source: this.source,
        ack: new AckStage(
          this.redis,
          this.keys,
          topic,
          id,
          this.config.retentionSeconds,
          this.logger.child({ component: 'ack', topic, publisherId: id }),
        ),
        target: this.target,
        retryIndex: this.retryIndex,
        metrics: this.metrics,
        logger: this.logger.child({ component: 'pipeline', topic, publisherId: id }),
        config: this.config,
        now: this.now,
      });
      this.pipelines.set(id, pipeline);
      ids.add(id);
      pipeline.wake();
    }
    if (ids.size > 0) this.byTopic.set(topic, ids);
    else this.byTopic.delete(topic);
  }
}

export { RECLAIMED_CONSUMER };
