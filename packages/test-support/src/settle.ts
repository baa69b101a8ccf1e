/**
 * Test support: records delivery outcomes the way a consumer node's ack
 * stage does (one `settle.lua` call), without a node: for tests of what the
 * API shows of failing, retrying and dead messages.
 */
import {
  SERIES_TTL_SECONDS,
  encodeRecords,
  encodeRetryState,
  recordTag,
  seriesSlot,
  scripts,
  type Keys,
  type LoggedAttempt,
  type ScriptClient,
} from '@postoffice/shared';

export interface TestOutcome {
  readonly streamId: string;
  /** 'd' delivered, 'r' retry (due at `score`), 'x' dead (dead since `score`), 's' skipped by the filter. */
  readonly outcome: 'd' | 'r' | 'x' | 's';
  readonly score?: number;
  readonly status?: number;
  readonly error?: string;
  /** A failed attempt's answer. */
  readonly response?: string;
  /** Attempts made before this one. */
  readonly previous?: number;
  /** The attempt came from the retry set. */
  readonly retry?: boolean;
  readonly reason?: string;
  readonly startedAt?: number;
}

/** One settle call for `outcomes` of publisher `publisherId`, with the per-minute counters as the ack stage writes them. */
export async function settle(
  redis: ScriptClient,
  keys: Keys,
  topic: string,
  publisherId: string,
  outcomes: readonly TestOutcome[],
  now = Date.now(),
): Promise<number> {
  const attempts: LoggedAttempt[] = [];
  const acked: string[] = [];
  const cleared: string[] = [];
  const retries: (string | number)[] = [];
  const dead: (string | number)[] = [];
  let skipped = 0;
  let delivered = 0;
  let failed = 0;
  for (const o of outcomes) {
    const startedAt = o.startedAt ?? now;
    if (o.outcome === 's') {
      attempts.push({ streamId: o.streamId, startedAt, durationMs: 0, outcome: 'skipped' });
      acked.push(o.streamId);
      if (o.retry) cleared.push(o.streamId);
      skipped++;
      continue;
    }
    const status = o.status ?? (o.outcome === 'd' ? 200 : 500);
    const error = o.outcome === 'd' ? undefined : (o.error ?? `HTTP ${status}`);
    const a: LoggedAttempt = {
      streamId: o.streamId,
      startedAt,
      durationMs: 1,
      status,
      outcome: o.outcome === 'd' ? 'delivered' : o.outcome === 'r' ? 'retry' : 'dead',
      ...(error === undefined ? {} : { error }),
      ...(o.response === undefined ? {} : { response: o.response }),
    };
    attempts.push(a);
    if (o.outcome === 'd') delivered++;
    else failed++;
    const count = (o.previous ?? 0) + 1;
    if (o.outcome === 'r') {
      retries.push(o.streamId, o.score ?? now, encodeRetryState(count, a));
      continue;
    }
    acked.push(o.streamId);
    if (o.retry) cleared.push(o.streamId);
    if (o.outcome === 'x') {
      const note = {
        dead_reason: o.reason ?? 'gave up',
        attempt_count: count,
        last_attempt: {
          at: new Date(startedAt).toISOString(),
          status,
          error,
          ...(o.response === undefined ? {} : { response: o.response }),
          duration_ms: 1,
        },
      };
      dead.push(o.streamId, o.score ?? now, JSON.stringify(note));
    }
  }
  const slot = seriesSlot(now);
  return scripts.settle(
    redis,
    { ...scripts.publisherKeys(keys, topic, publisherId), series: keys.series(topic, slot.hour) },
    {
      group: publisherId,
      replaces: '',
      records: encodeRecords(attempts, now, recordTag),
      acked,
      cleared,
      retries,
      dead,
      skipped,
      delivered,
      failed,
      minute: slot.minute,
      seriesTtl: SERIES_TTL_SECONDS,
    },
  );
}
