/**
 * Keeps each publisher's circuit breaker in Redis while it is not closed,
 * for the dashboard (`GET /api/stats`): the breaker itself lives in the
 * pipeline's memory (`PublisherPipeline`), on the node holding its slot.
 * One write per move of the breaker (open, probing, closed), nothing while
 * it stays closed. The key expires a while after the next probe was due, so
 * a node that died with an open circuit leaves it shown for a minute or so.
 */
import type { Keys, Logger, ScriptClient } from '@postoffice/shared';
import type { CircuitChange } from './pipeline/publisher-pipeline.js';
import type { Clock } from './types.js';

/** How long an open circuit's record outlives its next probe, and a probing one lasts without news (ms). */
export const CIRCUIT_GRACE_MS = 60_000;
const PROBING_MS = 5 * 60_000;

/** The circuit's record (`PublisherKeys.circuit`), as `GET /api/stats` reads it. */
export interface CircuitRecord {
  readonly state: 'open' | 'probing';
  readonly since: number;
  readonly next_probe_at: number | null;
  readonly failures: number;
  readonly node: string;
}

export class CircuitStore {
  constructor(
    private readonly redis: ScriptClient,
    private readonly keys: Keys,
    private readonly nodeId: string,
    private readonly logger: Logger,
    private readonly now: Clock,
  ) {}

  /** Records the move; errors are logged (the breaker works without its record). */
  record(topic: string, publisherId: string, change: CircuitChange): void {
    const key = this.keys.publisher(topic, publisherId).circuit;
    const write =
      change.state === 'closed'
        ? this.redis.del(key)
        : this.redis.set(
            key,
            JSON.stringify({
              state: change.state,
              since: this.now(),
              next_probe_at: change.nextProbeAt ?? null,
              failures: change.failures,
              node: this.nodeId,
            } satisfies CircuitRecord),
            'PX',
            change.state === 'open' && change.nextProbeAt !== undefined
              ? Math.max(1, change.nextProbeAt - this.now()) + CIRCUIT_GRACE_MS
              : PROBING_MS,
          );
    write.catch((err: unknown) => this.logger.warn({ err, publisherId, topic }, 'could not record the circuit'));
  }
}
