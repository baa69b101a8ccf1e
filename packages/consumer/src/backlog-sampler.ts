/**
 * Records every publisher's backlog and the age of its oldest undelivered
 * message once a minute into its topic's per-minute counters (`series.ts`,
 * fields `<minute>:b:<publisher>` and `<minute>:a:<publisher>`), so that
 * the dashboard can chart them over the last hour and day.
 *
 * Only the node holding the janitor lease samples, at its first heartbeat in
 * each minute: one `BacklogCounter.count()` (one XINFO GROUPS per topic, a
 * few commands per publisher with something undelivered) and one HSET with
 * an EXPIRE per topic, sent in one round trip (one pipeline per topic on a
 * cluster). The cost is O(publishers) per minute for the whole cluster.
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

  constructor(private readonly deps: BacklogSamplerDeps) {}

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
    const rows = await this.deps.counter.count();
    const slot = seriesSlot(now);
    const byTopic = new Map<string, (string | number)[]>();
    for (const r of rows) {
      if (!Number.isFinite(r.backlog)) continue;
      let fields = byTopic.get(r.topic);
      if (!fields) byTopic.set(r.topic, (fields = []));
      fields.push(seriesField(slot.minute, 'b', r.publisher), r.backlog);
      fields.push(seriesField(slot.minute, 'a', r.publisher), Math.round(r.oldestAgeSeconds));
    }
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
