/**
 * Sources in Redis: the external queues that feed topics (see `Source`),
 * and the counters and state the node that reads each one keeps.
 *
 * A source's record lives in its topic's hash slot (`po:{t}:sources`), so
 * that a topic with sources cannot be deleted (delete-topic.lua checks);
 * two global hashes map a source id to its topic and an external queue to
 * the one source that reads it. As for publishers, the global entries are
 * written before the topic-slot script on create and removed after it on
 * delete: an orphan entry is harmless, reads check the topic slot.
 */
import { ConflictError, NotFoundError, SOURCE_BUSY, scriptError } from './errors.js';
import type { Keys } from './keys.js';
import { scripts, type ScriptClient } from './scripts.js';
import type { StoreEvent } from './store.js';
import type { Source, SourceStateName, SourceStats } from './types.js';

/** What names the external queue a source reads: one source per queue. */
export function sourceOrigin(s: Pick<Source, 'type' | 'queue_url' | 'subscription'>): string {
  return `${s.type} ${s.type === 'sqs' ? (s.queue_url ?? '') : (s.subscription ?? '')}`;
}

/** One receive, as the reading node records it. */
export interface SourceRound {
  readonly at: Date;
  readonly node: string;
  readonly read: number;
  readonly ingested: number;
  readonly failed: number;
  /** What went wrong (the receive itself, or the first message that could not be ingested), or null. */
  readonly error: string | null;
  /** Messages waiting in the source, when it tells. */
  readonly lag?: number;
}

export class SourceStore {
  constructor(
    readonly redis: ScriptClient,
    readonly keys: Keys,
  ) {}

  /** Creates a source; `topic_not_found` (400 `topic`) when the topic does not exist, `source_exists` (409) when another source reads the queue. */
  async create(input: Omit<Source, 'id' | 'created_at' | 'updated_at'>, now = new Date()): Promise<Source> {
    const id = String(await this.redis.incr(this.keys.sequence('source')));
    const stamp = now.toISOString();
    const source: Source = { id, ...input, created_at: stamp, updated_at: stamp };
    const origin = sourceOrigin(source);
    if ((await this.redis.hsetnx(this.keys.sourceOrigins, origin, id)) === 0) {
      throw new ConflictError(
        'source_exists',
        source.type === 'sqs' ? 'queue_url' : 'subscription',
        'is read by another source',
      );
    }
    await this.redis.hset(this.keys.sourceIndex, id, source.topic);
    const tk = this.keys.topic(source.topic);
    try {
      await scripts.createSource(
        this.redis,
        { topic: tk.meta, sources: tk.sources },
        { id, sourceJson: JSON.stringify(source) },
      );
    } catch (err) {
      await this.redis.hdel(this.keys.sourceIndex, id).catch(() => 0);
      await this.redis.hdel(this.keys.sourceOrigins, origin).catch(() => 0);
      throw err;
    }
    await this.emit({ type: 'source', topic: source.topic, id });
    return source;
  }

  async get(id: string): Promise<Source | undefined> {
    const topic = await this.redis.hget(this.keys.sourceIndex, id);
    if (topic === null) return undefined;
    const json = await this.redis.hget(this.keys.topic(topic).sources, id);
    return json ? (JSON.parse(json) as Source) : undefined;
  }

  /** Every source, by id. */
  async list(): Promise<Source[]> {
    const index = await this.redis.hgetall(this.keys.sourceIndex);
    const topics = [...new Set(Object.values(index))];
    const rows = await Promise.all(topics.map((t) => this.redis.hvals(this.keys.topic(t).sources)));
    return rows
      .flat()
      .map((json) => JSON.parse(json) as Source)
      .sort((a, b) => Number(a.id) - Number(b.id));
  }

  /**
   * Applies `change` to the source, re-reading and trying again when another
   * writer changed it meanwhile. `change` may throw to refuse.
   */
  async update(id: string, change: (current: Source) => Source, now = new Date()): Promise<Source> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const topic = await this.redis.hget(this.keys.sourceIndex, id);
      if (topic === null) throw notFound();
      const key = this.keys.topic(topic).sources;
      const json = await this.redis.hget(key, id);
      if (!json) throw notFound();
      const current = JSON.parse(json) as Source;
      const next: Source = {
        ...change(current),
        id,
        topic: current.topic,
        type: current.type,
        updated_at: now.toISOString(),
      };
      const result = await scripts.updateSource(
        this.redis,
        { sources: key },
        { id, readJson: json, newJson: JSON.stringify(next) },
      );
      if (result === 'changed') continue;
      await this.emit({ type: 'source', topic, id });
      return next;
    }
    throw scriptError(SOURCE_BUSY);
  }

  /** Deletes a source and its counters; the node reading it stops at the event. */
  async delete(id: string): Promise<void> {
    const topic = await this.redis.hget(this.keys.sourceIndex, id);
    if (topic === null) throw notFound();
    const key = this.keys.topic(topic).sources;
    const json = await this.redis.hget(key, id);
    if (!json || (await this.redis.hdel(key, id)) === 0) throw notFound();
    const source = JSON.parse(json) as Source;
    await this.redis.del(this.keys.sourceStats(topic, id));
    await this.redis.hdel(this.keys.sourceIndex, id);
    // Only if it is still this source's: a new source may read the queue by now.
    if ((await this.redis.hget(this.keys.sourceOrigins, sourceOrigin(source))) === id)
      await this.redis.hdel(this.keys.sourceOrigins, sourceOrigin(source));
    await this.emit({ type: 'source', topic, id });
  }

  /** The counters and state of each source (as the node reading it last recorded them), in the order given. */
  async stats(sources: readonly Source[]): Promise<SourceStats[]> {
    return Promise.all(
      sources.map(async (s) => {
        const [fields, lease] = await Promise.all([
          this.redis.hgetall(this.keys.sourceStats(s.topic, s.id)),
          this.redis.get(this.keys.sourceLease(s.topic, s.id)),
        ]);
        const num = (v: string | undefined): number => (v === undefined ? 0 : Number(v));
        return {
          read: num(fields.read),
          ingested: num(fields.ingested),
          failed: num(fields.failed),
          lag: fields.lag === undefined || fields.lag === '' ? null : Number(fields.lag),
          last_read_at: fields.read_at ?? null,
          last_error: fields.error ?? null,
          last_error_at: fields.error_at ?? null,
          failing: fields.error_at !== undefined && fields.error_at === fields.read_at,
          node: lease === null ? null : (lease.split(' ')[0] ?? null),
        };
      }),
    );
  }

  /** Records one receive of a source (the node reading it calls this). */
  async record(source: Pick<Source, 'topic' | 'id'>, round: SourceRound): Promise<void> {
    const key = this.keys.sourceStats(source.topic, source.id);
    const at = round.at.toISOString();
    // A source deleted meanwhile gets no counters back: only an existing record is counted.
    if ((await this.redis.hexists(this.keys.topic(source.topic).sources, source.id)) !== 1) return;
    const write = this.redis.pipeline();
    if (round.read > 0) write.hincrby(key, 'read', round.read);
    if (round.ingested > 0) write.hincrby(key, 'ingested', round.ingested);
    if (round.failed > 0) write.hincrby(key, 'failed', round.failed);
    write.hset(key, 'read_at', at, 'node', round.node);
    // The last error stays (with its time) after rounds that went well: `failing` is whether the last round had it.
    if (round.error !== null) write.hset(key, 'error', round.error, 'error_at', at);
    if (round.lag !== undefined) write.hset(key, 'lag', String(round.lag));
    await write.exec();
  }

  async emit(event: StoreEvent): Promise<void> {
    await this.redis.publish(this.keys.eventsChannel, JSON.stringify(event));
  }
}

function notFound(): NotFoundError {
  return new NotFoundError('source_not_found', 'id', 'source not found');
}

/** A source's state for the API and the UI (see `SourceStateName`). */
export function sourceState(source: Pick<Source, 'active'>, stats: SourceStats): SourceStateName {
  if (!source.active) return 'inactive';
  if (stats.node === null) return 'waiting';
  return stats.failing ? 'failing' : 'reading';
}
