/**
 * The publishers this node knows: every http and pubsub publisher, by id
 * and by topic, as the node runs them. Pull publishers are left out: they
 * have no pipeline (workers lease their messages through the API).
 *
 * A record comes from `Store` with the defaults of fields older records
 * lack already filled in (`parsePublisher`); here it gets the topic's pause
 * (a paused topic's publishers count as inactive, `effectivePublisher`)
 * and the longest timeout allowed. Loaded
 * all at once at start and after the subscriber reconnects (`syncAll`),
 * then one topic at a time when a publisher event names it (`syncTopic`).
 * Each load tells the node of every publisher it keeps (`onUpdate`, so a
 * running pipeline follows the change) and then that the set may have
 * changed (`onApplied`: a rebalance).
 */
import {
  effectivePublisher,
  maxPublisherTimeout,
  type Config,
  type Logger,
  type Publisher,
  type Store,
} from '@postoffice/shared';

export interface PublisherRegistryDeps {
  readonly store: Pick<Store, 'listTopicsAndPublishers' | 'topicPublishers'>;
  readonly config: Pick<Config, 'claimTimeoutSeconds'>;
  readonly logger: Logger;
  /** A publisher was loaded (new or changed, or the same again). */
  readonly onUpdate: (publisher: Publisher) => void;
  /** A topic's publishers were loaded: which slots this node should hold may have changed. */
  readonly onApplied: () => void;
}

export class PublisherRegistry {
  /** Every publisher loaded, by id, and the ids of each topic's. */
  private readonly known = new Map<string, Publisher>();
  private readonly byTopic = new Map<string, Set<string>>();

  constructor(private readonly deps: PublisherRegistryDeps) {}

  get(id: string): Publisher | undefined {
    return this.known.get(id);
  }

  all(): Iterable<Publisher> {
    return this.known.values();
  }

  /** The ids of the topic's publishers. */
  idsOf(topic: string): Iterable<string> {
    return this.byTopic.get(topic) ?? [];
  }

  /** Loads every topic's publishers (a topic known before and now without any drops them). */
  async syncAll(): Promise<void> {
    const byTopic = new Map<string, Publisher[]>([...this.byTopic.keys()].map((t) => [t, []]));
    const { topics, publishers: all } = await this.deps.store.listTopicsAndPublishers();
    const paused = new Set(topics.filter((t) => t.paused).map((t) => t.name));
    for (const p of all) {
      const list = byTopic.get(p.topic);
      if (list) list.push(p);
      else byTopic.set(p.topic, [p]);
    }
    for (const [topic, publishers] of byTopic) this.apply(topic, publishers, paused.has(topic));
  }

  async syncTopic(topic: string): Promise<void> {
    const { paused, publishers } = await this.deps.store.topicPublishers(topic);
    this.apply(topic, publishers, paused);
  }

  /**
   * A delivery must end before its message may be claimed by another node:
   * a timeout the API would refuse today (CLAIM_TIMEOUT_SECONDS was lowered
   * since) is cut to the longest allowed.
   */
  private bounded(p: Publisher): Publisher {
    const max = maxPublisherTimeout(this.deps.config);
    if (p.seconds_timeout <= max) return p;
    this.deps.logger.warn(
      { publisherId: p.id, seconds_timeout: p.seconds_timeout, max },
      'seconds_timeout above the claim timeout; using the maximum',
    );
    return { ...p, seconds_timeout: max };
  }

  /**
   * Records the publishers of `topic` (not pull ones), tells the node of each, and asks for a rebalance.
   * While the topic is paused its publishers count as inactive: their pipelines pause, then their slots
   * are handed back, as for a publisher switched off; resuming takes them again.
   */
  private apply(topic: string, publishers: Publisher[], paused: boolean): void {
    const ids = this.byTopic.get(topic) ?? new Set<string>();
    const wanted = new Map(
      publishers.filter((p) => p.type !== 'pull').map((p) => [p.id, this.bounded(effectivePublisher(p, paused))]),
    );
    for (const id of ids) {
      if (wanted.has(id)) continue;
      ids.delete(id);
      this.known.delete(id);
    }
    for (const [id, publisher] of wanted) {
      ids.add(id);
      this.known.set(id, publisher);
      this.deps.onUpdate(publisher);
    }
    if (ids.size > 0) this.byTopic.set(topic, ids);
    else this.byTopic.delete(topic);
    this.deps.onApplied();
  }
}
