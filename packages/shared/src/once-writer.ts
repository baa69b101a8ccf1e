/**
 * Writing messages that come from outside Postoffice (recovered from a
 * topic's `origin_host`, read from an SQS queue or a Pub/Sub subscription)
 * durably and once, before their origin is told to forget them.
 *
 * Each write goes through the ingest script, as the API's messages do, with
 * an idempotency key derived from where the message came from and its id
 * there (`Keys.once`): a message read again after a crash between the write
 * and its deletion at the origin finds its key and is not stored twice; the
 * key is refreshed at each repeat, so an origin that keeps failing to delete
 * it never outlives it. Once the origin has deleted (or acknowledged) the
 * message, `settled` shortens the key's life to an hour, long enough for the
 * duplicates at-least-once queues send soon after.
 *
 * Writes are grouped by topic: one pipeline per topic (one hash slot, so it
 * runs unchanged on Redis Cluster) with the script calls, one wake-up and,
 * with `REDIS_MIN_REPLICAS`, one `WAIT`. A write counts as done only when
 * the script has returned and, when configured, enough replicas have it;
 * a repeat waits for the replicas too (the first write may not have reached
 * them).
 */
import { createHash } from 'node:crypto';
import type { Config } from './config.js';
import { AppError, UnavailableError } from './errors.js';
import { messageId } from './ids.js';
import type { Keys } from './keys.js';
import { scripts, type ScriptClient } from './scripts.js';
import { SERIES_TTL_SECONDS, seriesSlot } from './series.js';
import { replicatedWrite } from './topology.js';

/** How long a message's key lives while its origin still has it (refreshed at each repeat). */
export const ONCE_TTL_SECONDS = 7 * 24 * 3600;
/** How long a message's key lives after its origin deleted or acknowledged it. */
export const ONCE_SETTLED_TTL_SECONDS = 3600;

/** One message as the ingest script takes it. */
export interface OnceMessage {
  /** The payload's JSON text. */
  readonly payload: string;
  readonly attributes: Readonly<Record<string, string>>;
}

/** Messages that came from one place under one id there, for one topic: written all or none. */
export interface OnceWrite {
  readonly topic: string;
  /** Where the messages came from and their id there, e.g. `source 3 <SQS MessageId>`. */
  readonly origin: string;
  readonly messages: readonly OnceMessage[];
}

/** What became of a write: its message ids (new, or those of the first write when `replayed`), or why it failed. */
export type OnceOutcome =
  | { readonly ok: true; readonly ids: string[]; readonly replayed: boolean }
  | { readonly ok: false; readonly error: Error; readonly code: 'topic_not_found' | 'changed' | 'unavailable' };

export class OnceWriter {
  constructor(
    private readonly redis: ScriptClient,
    private readonly keys: Keys,
    private readonly config: Pick<Config, 'redisMinReplicas' | 'redisWaitTimeoutMs'>,
  ) {}

  /** Writes each group of messages once; never throws for one write's failure (its outcome says it). */
  async write(writes: readonly OnceWrite[]): Promise<OnceOutcome[]> {
    const outcomes = new Array<OnceOutcome>(writes.length);
    const byTopic = new Map<string, number[]>();
    writes.forEach((w, i) => {
      const list = byTopic.get(w.topic);
      if (list) list.push(i);
      else byTopic.set(w.topic, [i]);
    });
    await Promise.all(
      [...byTopic].map(async ([topic, indexes]) => {
        try {
          const got = await this.writeTopic(
            topic,
            indexes.map((i) => writes[i] as OnceWrite),
          );
          indexes.forEach((i, n) => (outcomes[i] = got[n] as OnceOutcome));
        } catch (err) {
          for (const i of indexes) outcomes[i] = { ok: false, error: err as Error, code: 'unavailable' };
        }
      }),
    );
    return outcomes;
  }

  /** The origin deleted or acknowledged these messages: their keys need only cover late duplicates now. */
  async settled(done: readonly Pick<OnceWrite, 'topic' | 'origin'>[]): Promise<void> {
    const byTopic = new Map<string, string[]>();
    for (const d of done) {
      const key = this.keys.once(d.topic, originDigest(d.origin));
      const list = byTopic.get(d.topic);
      if (list) list.push(key);
      else byTopic.set(d.topic, [key]);
    }
    await Promise.all(
      [...byTopic.values()].map(async (list) => {
        const pipeline = this.redis.pipeline();
        for (const key of list) pipeline.expire(key, ONCE_SETTLED_TTL_SECONDS);
        await pipeline.exec();
      }),
    );
  }

  private async writeTopic(topic: string, writes: readonly OnceWrite[]): Promise<OnceOutcome[]> {
    const tk = this.keys.topic(topic);
    const slot = seriesSlot(Date.now());
    const series = this.keys.series(topic, slot.hour);
    const { replies, replicas } = await replicatedWrite(this.redis, this.config, (pipeline) => {
      for (const w of writes) {
        const key = this.keys.once(topic, originDigest(w.origin));
        const messages: string[] = [];
        for (const m of w.messages) {
          messages.push(m.payload, Object.keys(m.attributes).length > 0 ? JSON.stringify(m.attributes) : '');
        }
        // Each write that stores something wakes the consumer nodes (inside the script; a repeat does not).
        scripts.ingest.queue(
          pipeline,
          { topic: tk.meta, stream: tk.stream, series, idempotency: key },
          {
            wake: this.keys.wakeChannel,
            topic,
            messages,
            minute: String(slot.minute),
            seriesTtl: String(SERIES_TTL_SECONDS),
            fingerprint: fingerprint(topic, messages),
            idempotencyTtl: String(ONCE_TTL_SECONDS),
          },
        );
        pipeline.expire(key, ONCE_TTL_SECONDS);
      }
    });
    return writes.map((_w, n): OnceOutcome => {
      const script = replies[2 * n];
      try {
        if (!script) throw new UnavailableError('the write was not executed');
        if (script[0]) throw script[0];
        const reply = scripts.ingest.parse(script[1]);
        if (replicas) return { ok: false, error: replicas, code: 'unavailable' };
        if (reply.replayed) {
          const ids = reply.kept.split(',').map((sid) => messageId(topic, sid));
          return { ok: true, ids, replayed: true };
        }
        return { ok: true, ids: reply.streamIds.map((sid) => messageId(topic, sid)), replayed: false };
      } catch (err) {
        const code = err instanceof AppError ? err.code : undefined;
        if (code === 'topic_not_found')
          return { ok: false, error: new Error(`topic ${topic} does not exist`), code: 'topic_not_found' };
        if (code === 'idempotency_key_reused')
          return {
            ok: false,
            error: new Error('a message with this id was already taken from this origin with a different content'),
            code: 'changed',
          };
        return { ok: false, error: err as Error, code: 'unavailable' };
      }
    });
  }
}

/** The key's name part for an origin: a digest, so that any origin text makes a short key. */
export function originDigest(origin: string): string {
  return createHash('sha256').update(origin).digest('base64url');
}

/** What makes two writes the same: the topic and every message's payload and attributes. */
function fingerprint(topic: string, args: readonly string[]): string {
  const hash = createHash('sha256').update(`once\n${topic}\n`);
  for (const a of args) hash.update(`${a.length}:${a}`);
  return hash.digest('base64url');
}
