/**
 * The node's publisher pipelines, one per publisher of which it holds at
 * least one slot, by publisher id. Its job is to make each pipeline (with
 * its settle stage, loggers and the slot owner's lease check), to let a
 * running one follow its publisher's record, and to stop it when its last
 * slot goes. The node decides when (slot gained, slot lost, publisher
 * loaded); this class holds no state but the map.
 */
import type { Config, Keys, Logger, Publisher, ScriptClient } from '@postoffice/shared';
import type { AuditTrail } from '../audit-trail.js';
import type { CircuitStore } from '../circuit-store.js';
import type { Metrics } from '../metrics.js';
import type { RetryIndex } from '../retry-index.js';
import type { Clock, Target } from '../types.js';
import { PublisherPipeline } from './publisher-pipeline.js';
import type { RateLimiter } from './rate-limiter.js';
import { SettleStage } from './settle-stage.js';
import type { Source } from './source.js';

export interface PipelineSetDeps {
  readonly redis: ScriptClient;
  readonly keys: Keys;
  readonly source: Source;
  readonly target: Target;
  readonly retryIndex: RetryIndex;
  readonly limiter: RateLimiter;
  readonly circuits: CircuitStore;
  readonly audit: AuditTrail | undefined;
  readonly metrics: Metrics;
  readonly config: Config;
  readonly now: Clock;
  /** A logger for one of the node's components (`pipeline`, `ack`), with the publisher's bindings. */
  readonly logger: (component: string, bindings: Record<string, string>) => Logger;
  /** Whether this node still holds the publisher's slot lease, asked of Redis (the slot owner's `leaseCheck`). */
  readonly leaseCheck: (topic: string, publisherId: string) => () => Promise<boolean>;
}

export class PipelineSet {
  private readonly pipelines = new Map<string, PublisherPipeline>();

  constructor(private readonly deps: PipelineSetDeps) {}

  get size(): number {
    return this.pipelines.size;
  }

  get(publisherId: string): PublisherPipeline | undefined {
    return this.pipelines.get(publisherId);
  }

  values(): IterableIterator<PublisherPipeline> {
    return this.pipelines.values();
  }

  /** A loaded publisher's record: its running pipeline (if any) follows it. */
  update(publisher: Publisher): void {
    this.pipelines.get(publisher.id)?.update(effective(publisher));
  }

  /** Starts the publisher's pipeline, or updates and wakes the one running (a slot was gained or lost). */
  run(publisher: Publisher): void {
    const { id, topic } = publisher;
    const p = effective(publisher);
    const existing = this.pipelines.get(id);
    if (existing) {
      existing.update(p);
      existing.wake();
      return;
    }
    const { deps } = this;
    const pipeline = new PublisherPipeline(p, {
      source: deps.source,
      createSettle: (onSettled) =>
        new SettleStage({
          redis: deps.redis,
          keys: deps.keys,
          topic,
          publisherId: id,
          retryIndex: deps.retryIndex,
          // The component keeps its old name in the logs: it is part of the log fields.
          logger: deps.logger('ack', { topic, publisherId: id }),
          now: deps.now,
          audit: deps.audit,
          onSettled,
        }),
      target: deps.target,
      retryIndex: deps.retryIndex,
      limiter: deps.limiter,
      holdsLease: deps.leaseCheck(topic, id),
      metrics: deps.metrics,
      logger: deps.logger('pipeline', { topic, publisherId: id }),
      config: deps.config,
      now: deps.now,
      onCircuit: (change) => deps.circuits.record(topic, id, change),
    });
    this.pipelines.set(id, pipeline);
    pipeline.wakeRetries();
  }

  /** Takes the publisher's pipeline out and stops it; resolves once its deliveries finished. */
  stop(publisherId: string): Promise<void> {
    const pipeline = this.pipelines.get(publisherId);
    this.pipelines.delete(publisherId);
    return pipeline ? pipeline.close() : Promise.resolve();
  }
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
