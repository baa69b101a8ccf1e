/**
 * Records publishers' backlog and the age of their oldest undelivered
 * message once a minute into their topic's per-minute counters (`series.ts`,
 * fields `<minute>:b:<publisher>` and `<minute>:a:<publisher>`, written only
 * when not zero, and `<minute>:s`: the topic was sampled, so a publisher
 * without a field had nothing waiting), so that the dashboard can chart
 * them over the last hour and day.
 *
 * Only the node holding the janitor lease samples, at its first heartbeat in
 * each minute, and only the topics that may have a backlog: those that
 * received messages since the last sample (`touch`, from the wake-ups every
 * node hears) and those that had a backlog at the last sample. Idle topics
 * cost nothing: 10,000 idle publishers add no command, and creating them
 * adds none either. A backlog that appears without a message (a new
 * publisher over retained messages, a seek) or that was there before this
 * node took the lease is sampled from the topic's next message on. Per
 * sampled topic: one XINFO GROUPS, its publishers' records, an XPENDING
 * and an XRANGE for a publisher with something undelivered, and one HSET
 * with an EXPIRE, in one round trip per step.
 */
import {
  SERIES_TTL_SECONDS,
  inOneRoundTrip,
  seriesField,
  seriesSlot,
  type Keys,
  type Logger,
  type ScriptClient,
} from '@postoffice/shared';
import type { BacklogCounter } from './backlog.js';
import type { Clock } from './types.js';

export interface BacklogSamplerDeps {
  readonly redis: ScriptClient;
  readonly keys: Keys;
  readonly counter: Pick<BacklogCounter, 'count'>;
  /** Whether this node should sample (it holds the janitor lease). */
  readonly sampling: () => boolean;
  readonly logger: Logger;
  readonly now: Clock;
}

export class BacklogSampler {
  /** The minute (since the epoch) last sampled. */
  private sampled = -1;
  /** Topics that received messages since the last sample. */
  private readonly touched = new Set<string>();
  /** Topics that had a backlog at the last sample. */
  private busy = new Set<string>();

  constructor(private readonly deps: BacklogSamplerDeps) {}

  /** The topic received messages: sample it at the next minute. */
  touch(topic: string): void {
    this.touched.add(topic);
  }

  /** Samples unless this minute was sampled already (or another node samples); never throws. */
  async tick(): Promise<void> {
    if (!this.deps.sampling()) return;
    const now = this.deps.now();
    const minute = Math.floor(now / 60_000);
    if (minute === this.sampled) return;
    this.sampled = minute;
    try {
      await this.sample(now);
    } catch (err) {
      this.deps.logger.warn({ err }, 'could not sample the backlog');
    }
  }

  async sample(now: number): Promise<void> {
    const { keys, redis } = this.deps;
    const topics = new Set([...this.touched, ...this.busy]);
    this.touched.clear();
    if (topics.size === 0) return;
    const rows = await this.deps.counter.count(topics, false);
    const slot = seriesSlot(now);
    const byTopic = new Map<string, (string | number)[]>();
    for (const topic of topics) byTopic.set(topic, [seriesField(slot.minute, 's'), 1]);
    const busy = new Set<string>();
    for (const r of rows) {
      if (!Number.isFinite(r.backlog) || r.backlog === 0) continue;
      busy.add(r.topic);
      byTopic.get(r.topic)?.push(seriesField(slot.minute, 'b', r.publisher), r.backlog);
      byTopic.get(r.topic)?.push(seriesField(slot.minute, 'a', r.publisher), Math.round(r.oldestAgeSeconds));
    }
    this.busy = busy;
    const replies = await inOneRoundTrip(
      redis,
      [...byTopic].map(([topic, fields]) => (p) => {
        const key = keys.series(topic, slot.hour);
        p.hset(key, ...fields);
        p.expire(key, SERIES_TTL_SECONDS);
      }),
    );
    const failed = replies.find(([err]) => err !== null);
    if (failed?.[0]) throw failed[0];
  }
}
