/**
 * Topics and publishers in Redis: creation, reads, changes, deletion, and
 * the change events that tell consumer nodes to reload.
 *
 * A topic's record and its publishers live in the topic's hash slot; two
 * global keys list topic names and map publisher ids to topics, so any
 * publisher can be found from its id alone. Global entries are written
 * before the topic-slot script on create (an orphan is harmless: reads
 * check the topic slot) and after it on delete.
 *
 * Reads that span topics (every topic, every publisher) send one command
 * per topic at once rather than one pipeline: on Redis Cluster a pipeline
 * must stay on one node, and the topics spread over all of them.
 */
import { NotFoundError, PUBLISHER_BUSY, UnavailableError, scriptError } from './errors.js';
import type { Keys } from './keys.js';
import { isCluster, masterNodes } from './redis.js';
import type { Durability } from './topology.js';
import { scripts, type ScriptClient } from './scripts.js';
import { PUBLISHER_DEFAULTS, type Publisher, type PublisherRecord, type Topic, type TopicRecovery } from './types.js';

export type StoreEvent =
  | { readonly type: 'topic'; readonly topic: string }
  | { readonly type: 'publisher'; readonly topic: string; readonly id: string; readonly deleted?: boolean }
  /** A consumer node joined, left, or handed slots back: nodes rebalance. */
  | { readonly type: 'cluster'; readonly node: string }
  /** A source was created, changed or deleted: nodes reload the sources. */
  | { readonly type: 'source'; readonly topic: string; readonly id: string };

export interface TopicWithCounts extends Topic, TopicRecovery {
  readonly received: number;
}

/** The fields of a topic's record hash that `topicOf` reads: its JSON, then counters and recovery state. */
const TOPIC_FIELDS = ['json', 'received', 'recovered', 'recovery'] as const;

/** A topic from the values of `TOPIC_FIELDS`, or undefined when there is no record. */
function topicOf(values: readonly (string | null)[]): TopicWithCounts | undefined {
  const [json, received, recovered, recovery] = values;
  if (!json) return undefined;
  const last = recovery ? (JSON.parse(recovery) as { at?: string; error?: string | null }) : {};
  return {
    ...parseTopic(json),
    received: Number(received ?? 0),
    recovered: Number(recovered ?? 0),
    last_recovery_at: last.at ?? null,
    last_recovery_error: last.error ?? null,
  };
}

export class Store {
  /**
   * With `durability.redisMinReplicas` above 0, a change to a topic or a
   * publisher returns only once `WAIT` on every master has seen that many
   * replicas take it (503 otherwise), as a message's 201 does: a failover
   * right after the answer keeps it.
   */
  constructor(
    readonly redis: ScriptClient,
    readonly keys: Keys,
    private readonly durability: Durability = { redisMinReplicas: 0, redisWaitTimeoutMs: 0 },
  ) {}

  /** Waits for the replicas of every master the change may have written to (see the constructor). */
  private async replicated(): Promise<void> {
    const { redisMinReplicas, redisWaitTimeoutMs } = this.durability;
    if (redisMinReplicas <= 0) return;
    const counts = await Promise.all(
      masterNodes(this.redis).map((node) => node.wait(redisMinReplicas, redisWaitTimeoutMs)),
    );
    const least = Math.min(...counts);
    if (least < redisMinReplicas) {
      throw new UnavailableError(`only ${least} of ${redisMinReplicas} replicas acknowledged the change`);
    }
  }

  async createTopic(
    input: { name: string; origin_host: string; recovery_enabled?: boolean },
    now = new Date(),
  ): Promise<Topic> {
    const id = await this.redis.incr(this.keys.sequence('topic'));
    const topic: Topic = {
      id,
      name: input.name,
      origin_host: input.origin_host,
      recovery_enabled: input.recovery_enabled ?? false,
      paused: false,
      created_at: now.toISOString(),
    };
    await this.redis.sadd(this.keys.topics, input.name);
    await scripts.createTopic(
      this.redis,
      { topic: this.keys.topic(input.name).meta },
      { topicJson: JSON.stringify(topic) },
    );
    if (topic.recovery_enabled) await this.redis.sadd(this.keys.recoveryTopics, input.name);
    await this.replicated();
    await this.emit({ type: 'topic', topic: input.name });
    return topic;
  }

  /**
   * Sets fields of a topic's record (its name stays); throws `no_such_topic` (404).
   * Consumer nodes hear the change (`paused` stops or resumes every publisher of the topic).
   */
  async updateTopic(
    name: string,
    changes: { origin_host?: string; recovery_enabled?: boolean; paused?: boolean },
  ): Promise<Topic> {
    const json = await scripts.updateTopic(
      this.redis,
      { topic: this.keys.topic(name).meta },
      { changesJson: JSON.stringify(changes) },
    );
    const topic = parseTopic(json);
    if (changes.recovery_enabled !== undefined) await this.markRecovery(name, topic.recovery_enabled);
    await this.replicated();
    await this.emit({ type: 'topic', topic: name });
    return topic;
  }

  /**
   * Deletes a topic and its retained messages; refused (`topic_has_publishers`,
   * 409) while it has publishers. The name leaves the topic list after the
   * topic-slot script, as for publishers.
   */
  async deleteTopic(name: string): Promise<void> {
    const tk = this.keys.topic(name);
    await scripts.deleteTopic(this.redis, {
      topic: tk.meta,
      publishers: tk.publishers,
      stream: tk.stream,
      ids: tk.ids,
      targets: tk.targets,
      scheduled: tk.scheduled,
      scheduledData: tk.scheduledData,
      outbox: tk.outbox,
      sources: tk.sources,
    });
    await this.redis.srem(this.keys.topics, name);
    await this.redis.srem(this.keys.recoveryTopics, name);
    await this.redis.zrem(this.keys.scheduleDue, name);
    await this.replicated();
    await this.emit({ type: 'topic', topic: name });
  }

  async getTopic(name: string): Promise<TopicWithCounts | undefined> {
    return topicOf(await this.redis.hmget(this.keys.topic(name).meta, ...TOPIC_FIELDS));
  }

  async listTopicNames(): Promise<string[]> {
    return (await this.redis.smembers(this.keys.topics)).sort();
  }

  async listTopics(): Promise<TopicWithCounts[]> {
    const names = await this.listTopicNames();
    if (names.length === 0) return [];
    const rows = await Promise.all(names.map((name) => this.redis.hmget(this.keys.topic(name).meta, ...TOPIC_FIELDS)));
    const topics: TopicWithCounts[] = [];
    for (const row of rows) {
      const topic = topicOf(row);
      if (topic) topics.push(topic);
    }
    return topics.sort((a, b) => a.id - b.id);
  }

  /**
   * One page of topics in name order: at most `limit` topics whose names
   * come after `after`, and the name to continue after (null on the last
   * page). Reads only the records of the page.
   */
  async listTopicsPage(
    after: string | undefined,
    limit: number,
  ): Promise<{ items: TopicWithCounts[]; next: string | null }> {
    const names = await this.listTopicNames();
    const start = after === undefined ? 0 : names.findIndex((n) => n > after);
    const page = start < 0 ? [] : names.slice(start, start + limit);
    const rows = await Promise.all(page.map((name) => this.redis.hmget(this.keys.topic(name).meta, ...TOPIC_FIELDS)));
    const items: TopicWithCounts[] = [];
    for (const row of rows) {
      const topic = topicOf(row);
      if (topic) items.push(topic);
    }
    const more = start >= 0 && start + limit < names.length;
    return { items, next: more ? (page[page.length - 1] ?? null) : null };
  }

  /**
   * One page of publishers in id order: at most `limit` publishers whose
   * ids come after `after`, and the id to continue after (null on the last
   * page). Reads the id index and only the records of the page.
   */
  async listPublishersPage(
    after: string | undefined,
    limit: number,
  ): Promise<{ items: Publisher[]; next: string | null }> {
    const index = await this.redis.hgetall(this.keys.publisherIndex);
    const ids = Object.keys(index)
      .filter((id) => after === undefined || Number(id) > Number(after))
      .sort((a, b) => Number(a) - Number(b));
    const page = ids.slice(0, limit);
    const byTopic = new Map<string, string[]>();
    for (const id of page) {
      const topic = index[id] as string;
      byTopic.set(topic, [...(byTopic.get(topic) ?? []), id]);
    }
    const found = await Promise.all(
      [...byTopic].map(([topic, of]) => this.redis.hmget(this.keys.topic(topic).publishers, ...of)),
    );
    const items = found
      .flat()
      .filter((json): json is string => typeof json === 'string')
      .map(parsePublisher)
      .sort(byId);
    return { items, next: ids.length > limit ? (page[page.length - 1] ?? null) : null };
  }

  async createPublisher(
    publisher: Omit<PublisherRecord, 'id' | 'created_at' | 'updated_at'>,
    now = new Date(),
  ): Promise<Publisher> {
    const id = String(await this.redis.incr(this.keys.sequence('publisher')));
    const stamp = now.toISOString();
    const full: PublisherRecord = { id, ...publisher, created_at: stamp, updated_at: stamp };
    const tk = this.keys.topic(publisher.topic);
    await this.redis.hset(this.keys.publisherIndex, id, publisher.topic);
    try {
      await scripts.createPublisher(
        this.redis,
        { topic: tk.meta, publishers: tk.publishers, targets: tk.targets, stream: tk.stream },
        {
          id,
          publisherJson: JSON.stringify(full),
          uniqueness: uniqueness(full),
          start: publisher.from_now ? '$' : '0',
        },
      );
    } catch (err) {
      await this.redis.hdel(this.keys.publisherIndex, id).catch(() => 0);
      throw err;
    }
    await this.replicated();
    await this.emit({ type: 'publisher', topic: publisher.topic, id });
    return normalisePublisher(full);
  }

  async getPublisher(id: string): Promise<Publisher | undefined> {
    const topic = await this.redis.hget(this.keys.publisherIndex, id);
    if (topic === null) return undefined;
    const json = await this.redis.hget(this.keys.topic(topic).publishers, id);
    return json ? parsePublisher(json) : undefined;
  }

  async listPublishersOfTopic(topic: string): Promise<Publisher[]> {
    const all = await this.redis.hvals(this.keys.topic(topic).publishers);
    return all.map(parsePublisher).sort(byId);
  }

  /** A topic's publishers and whether the topic is paused, in one round trip (one hash slot). */
  async topicPublishers(topic: string): Promise<{ paused: boolean; publishers: Publisher[] }> {
    const tk = this.keys.topic(topic);
    const replies = (await this.redis.pipeline().hget(tk.meta, 'json').hvals(tk.publishers).exec()) ?? [];
    const [[metaErr, json] = [null, null], [publishersErr, values] = [null, []]] = replies;
    if (metaErr) throw metaErr;
    if (publishersErr) throw publishersErr;
    return {
      paused: typeof json === 'string' && parseTopic(json).paused,
      publishers: (values as string[]).map(parsePublisher).sort(byId),
    };
  }

  /** A publisher as it delivers: inactive while its topic is paused (`effectivePublisher`); two round trips, as `getPublisher`. */
  async getEffectivePublisher(id: string): Promise<Publisher | undefined> {
    const topic = await this.redis.hget(this.keys.publisherIndex, id);
    if (topic === null) return undefined;
    const tk = this.keys.topic(topic);
    const replies = (await this.redis.pipeline().hget(tk.publishers, id).hget(tk.meta, 'json').exec()) ?? [];
    const [[publisherErr, json] = [null, null], [metaErr, meta] = [null, null]] = replies;
    if (publisherErr) throw publisherErr;
    if (metaErr) throw metaErr;
    if (typeof json !== 'string') return undefined;
    return effectivePublisher(parsePublisher(json), typeof meta === 'string' && parseTopic(meta).paused);
  }

  async listPublishers(): Promise<Publisher[]> {
    const names = await this.listTopicNames();
    if (names.length === 0) return [];
    const rows = await Promise.all(names.map((name) => this.redis.hvals(this.keys.topic(name).publishers)));
    const out: Publisher[] = [];
    for (const values of rows) {
      for (const json of values) out.push(parsePublisher(json));
    }
    return out.sort(byId);
  }

  /**
   * `listTopics()` and `listPublishers()` at once: on a single Redis in one
   * pipeline after the topic list (what `GET /api/stats` reads every few
   * seconds, for any number of topics); on a cluster as those two do.
   */
  async listTopicsAndPublishers(): Promise<{ topics: TopicWithCounts[]; publishers: Publisher[] }> {
    if (isCluster(this.redis)) {
      const [topics, publishers] = await Promise.all([this.listTopics(), this.listPublishers()]);
      return { topics, publishers };
    }
    const names = await this.listTopicNames();
    const pipeline = this.redis.pipeline();
    for (const name of names) {
      const tk = this.keys.topic(name);
      pipeline.hmget(tk.meta, ...TOPIC_FIELDS);
      pipeline.hvals(tk.publishers);
    }
    const replies = names.length === 0 ? [] : ((await pipeline.exec()) ?? []);
    const topics: TopicWithCounts[] = [];
    const publishers: Publisher[] = [];
    for (let i = 0; i < names.length; i++) {
      const [metaErr, meta] = replies[2 * i] ?? [null, null];
      const [publishersErr, values] = replies[2 * i + 1] ?? [null, []];
      if (metaErr) throw metaErr;
      if (publishersErr) throw publishersErr;
      const topic = topicOf(meta as (string | null)[]);
      if (topic) topics.push(topic);
      for (const value of values as string[]) publishers.push(parsePublisher(value));
    }
    return { topics: topics.sort((a, b) => a.id - b.id), publishers: publishers.sort(byId) };
  }

  /**
   * Applies `change` to the publisher, re-reading and trying again when
   * another writer changed it meanwhile. `change` may throw to refuse.
   */
  async updatePublisher(id: string, change: (current: Publisher) => Publisher, now = new Date()): Promise<Publisher> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const topic = await this.redis.hget(this.keys.publisherIndex, id);
      if (topic === null) throw new NotFoundError('publisher_not_found', 'id', 'publisher not found');
      const tk = this.keys.topic(topic);
      const json = await this.redis.hget(tk.publishers, id);
      if (!json) throw new NotFoundError('publisher_not_found', 'id', 'publisher not found');
      const current = parsePublisher(json);
      const next: Publisher = { ...change(current), id, topic: current.topic, updated_at: now.toISOString() };
      const result = await scripts.updatePublisher(
        this.redis,
        { publishers: tk.publishers, targets: tk.targets },
        {
          id,
          readJson: json,
          newJson: JSON.stringify(next),
          oldUniqueness: uniqueness(current),
          newUniqueness: uniqueness(next),
        },
      );
      if (result === 'changed') continue;
      await this.replicated();
      await this.emit({ type: 'publisher', topic, id });
      return next;
    }
    throw scriptError(PUBLISHER_BUSY);
  }

  async deletePublisher(id: string): Promise<void> {
    const topic = await this.redis.hget(this.keys.publisherIndex, id);
    if (topic === null) throw new NotFoundError('publisher_not_found', 'id', 'publisher not found');
    await scripts.deletePublisher(this.redis, scripts.publisherKeys(this.keys, topic, id), { id });
    await this.redis.hdel(this.keys.publisherIndex, id);
    await this.redis.zrem(this.keys.retryDue, id);
    await this.replicated();
    await this.emit({ type: 'publisher', topic, id, deleted: true });
  }

  /** Adds the topic to, or removes it from, the set message recovery reads (`Keys.recoveryTopics`). */
  async markRecovery(name: string, enabled: boolean): Promise<void> {
    if (enabled) await this.redis.sadd(this.keys.recoveryTopics, name);
    else await this.redis.srem(this.keys.recoveryTopics, name);
  }

  /**
   * The topics with `recovery_enabled`, from their set. A name in the set
   * whose topic is gone or has recovery off (a writer that stopped between
   * its two steps) is left out and taken out of the set.
   */
  async listRecoveryTopics(): Promise<TopicWithCounts[]> {
    const names = (await this.redis.smembers(this.keys.recoveryTopics)).sort();
    const rows = await Promise.all(names.map((name) => this.redis.hmget(this.keys.topic(name).meta, ...TOPIC_FIELDS)));
    const out: TopicWithCounts[] = [];
    for (const [i, row] of rows.entries()) {
      const topic = topicOf(row);
      if (topic?.recovery_enabled) out.push(topic);
      else await this.redis.srem(this.keys.recoveryTopics, names[i] as string);
    }
    return out;
  }

  /**
   * Records a recovery round of the topic (the consumer node that polls its
   * `origin_host` calls it): when, what went wrong (null: nothing), and how
   * many messages it recovered. Does nothing when the topic is gone.
   */
  async recordRecovery(name: string, at: Date, error: string | null, recovered: number): Promise<void> {
    const round = JSON.stringify({ at: at.toISOString(), error });
    await scripts.recordRecovery(this.redis, { topic: this.keys.topic(name).meta }, { roundJson: round, recovered });
  }

  /** Tells every consumer node that something changed (they reload what the event names). */
  async emit(event: StoreEvent): Promise<void> {
    await this.redis.publish(this.keys.eventsChannel, JSON.stringify(event));
  }
}

/** A topic record; one written before `paused` existed is not paused. */
function parseTopic(json: string): Topic {
  const topic = JSON.parse(json) as Topic;
  return { ...topic, paused: topic.paused === true };
}

/**
 * A publisher record as read from Redis, with the defaults of the fields
 * written after it (`PublisherRecord`): the one place they are applied.
 */
export function parsePublisher(json: string): Publisher {
  return normalisePublisher(JSON.parse(json) as PublisherRecord);
}

/** The record with a default for every field it was written without (its own values, and key order, kept). */
export function normalisePublisher(p: PublisherRecord): Publisher {
  const d = PUBLISHER_DEFAULTS;
  return {
    ...p,
    parallelism: p.parallelism ?? d.parallelism,
    ordered: p.ordered ?? d.ordered,
    rate_limit: p.rate_limit ?? d.rate_limit,
    dead_on_status: p.dead_on_status ?? [],
    retry_max_attempts: p.retry_max_attempts ?? null,
    retry_max_age_seconds: p.retry_max_age_seconds ?? null,
    filter: p.filter ?? null,
    batch_size: p.batch_size ?? d.batch_size,
    ordering_attribute: p.ordering_attribute ?? null,
  };
}

/**
 * The publisher as it delivers: a publisher of a paused topic acts as an
 * inactive one (no slot, no pipeline, no lease), its own `active` kept.
 */
export function effectivePublisher(p: Publisher, topicPaused: boolean): Publisher {
  return topicPaused && p.active ? { ...p, active: false } : p;
}

function uniqueness(p: Pick<Publisher, 'type' | 'target'>): string {
  return `${p.type} ${p.target}`;
}

function byId(a: Publisher, b: Publisher): number {
  return Number(a.id) - Number(b.id);
}
