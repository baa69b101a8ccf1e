/**
 * Routes what the node's subscriber hears, while the node is started, to
 * the part that acts on it:
 *   wake-up (a topic received messages) - the janitor marks the topic for
 *       trimming, the backlog sampler for a new sample, and each of the
 *       topic's pipelines on this node is woken to read;
 *   cluster event (another node joined, left or handed slots back) - the
 *       slot owner reads the live nodes and rebalances, then the sources
 *       are rebalanced over the new live set;
 *   source event - the sources are reloaded;
 *   publisher or topic event - the registry loads that topic's publishers.
 * Loads and rebalances go through the slot owner's serial queue; an event
 * that does not parse is ignored.
 */
import type { Keys, StoreEvent } from '@postoffice/shared';
import type { BacklogSampler } from './backlog-sampler.js';
import type { SlotOwner } from './cluster/slot-owner.js';
import type { Janitor } from './janitor.js';
import type { PipelineSet } from './pipeline/pipeline-set.js';
import type { PublisherRegistry } from './publisher-registry.js';

export interface WakeRouterDeps {
  readonly keys: Pick<Keys, 'wakeChannel' | 'eventsChannel'>;
  readonly nodeId: string;
  /** Whether the node is started: nothing is routed otherwise. */
  readonly started: () => boolean;
  readonly janitor: Pick<Janitor, 'markDirty'>;
  readonly backlogSampler: Pick<BacklogSampler, 'touch'>;
  readonly publishers: Pick<PublisherRegistry, 'idsOf' | 'syncTopic'>;
  readonly pipelines: Pick<PipelineSet, 'get'>;
  readonly slots: Pick<SlotOwner, 'serialize' | 'refreshLive' | 'rebalance'>;
  /** Leases, renews or gives up the sources this node should read; reloads them first when `reload`. */
  readonly syncSources: (reload: boolean) => void;
}

export class WakeRouter {
  constructor(private readonly deps: WakeRouterDeps) {}

  /** The subscriber's `message` listener. */
  route(channel: string, message: string): void {
    const { deps } = this;
    if (!deps.started()) return;
    if (channel === deps.keys.wakeChannel) {
      deps.janitor.markDirty(message);
      deps.backlogSampler.touch(message);
      for (const id of deps.publishers.idsOf(message)) deps.pipelines.get(id)?.wake();
      return;
    }
    if (channel === deps.keys.eventsChannel) {
      let event: StoreEvent;
      try {
        event = JSON.parse(message) as StoreEvent;
      } catch {
        return;
      }
      if (event.type === 'cluster') {
        if (event.node === deps.nodeId) return;
        deps.slots.serialize(async () => {
          await deps.slots.refreshLive();
          await deps.slots.rebalance();
          deps.syncSources(false);
        });
      } else if (event.type === 'source') {
        deps.syncSources(true);
      } else if (typeof event.topic === 'string') {
        const topic = event.topic;
        deps.slots.serialize(() => deps.publishers.syncTopic(topic));
      }
    }
  }
}
