/**
 * The settle stage: records outcomes in batches, one `settle` script call per
 * batch. A delivered message costs its share of one variadic XACK and of
 * the batch's attempt records (attempt-record.ts); a retry or a dead letter
 * also writes its own small record. Outcomes added while a batch is being
 * written go in the next one, so batches grow with the load.
 *
 * The same script call adds the batch's delivered messages and failed
 * attempts to the publisher's per-minute counters (`series.ts`) and its
 * `delivered` total: two HINCRBYs and an EXPIRE a batch, no round trip more.
 *
 * After a batch is written, the retry index is lowered to the batch's
 * earliest retry and the pipeline is told (`onSettled`), which frees the
 * batch's delivery slots.
 *
 * Small batches (a slow or failing target, a probe) would make many small
 * records, each costing Redis a sorted-set member of its own. So the stage
 * keeps the last record it wrote while it is small, and the next batch that
 * fits in it (up to `MERGE_MAX` attempts, within `RECORD_SPAN_MS` of
 * receipt) replaces it with one record holding both, in the same script call.
 */
import {
  RECORD_SPAN_MS,
  encodeRecords,
  streamIdTime,
  encodeRetryState,
  recordTag,
  SERIES_TTL_SECONDS,
  seriesSlot,
  scripts,
  type Keys,
  type LoggedAttempt,
  type Logger,
  type ScriptClient,
} from '@postoffice/shared';
import type { AuditRecord, AuditTrail } from '../audit-trail.js';
import type { RetryIndex } from '../retry-index.js';
import type { AttemptResult, Clock, Settlement, Job } from '../types.js';

export interface Outcome {
  readonly job: Job;
  readonly result: AttemptResult;
  readonly settlement: Settlement;
  /** The target the attempt went to (for the audit trail). */
  readonly target?: string;
}

export interface SettleStageDeps {
  readonly redis: ScriptClient;
  readonly keys: Keys;
  readonly topic: string;
  readonly publisherId: string;
  readonly retryIndex: Pick<RetryIndex, 'lower'>;
  readonly logger: Logger;
  readonly now: Clock;
  readonly audit?: AuditTrail | undefined;
  /** A batch is in Redis (or given up on after repeated errors, which are logged). */
  readonly onSettled: (batch: readonly Outcome[]) => void;
}

const MAX_BATCH = 500;
/** Most attempts a record grows to by merging small batches into it. */
const MERGE_MAX = 128;
/** Batches smaller than this are merged into the open record (a slow target, a probe). */
const MERGE_BELOW = 8;

/** The last record written, while later batches may still be merged into it. */
interface OpenRecord {
  readonly member: string;
  readonly attempts: readonly LoggedAttempt[];
  readonly lowest: number;
  readonly highest: number;
}

export class SettleStage {
  private queue: Outcome[] = [];
  private flushing = false;
  private readonly idle: (() => void)[] = [];
  private readonly flush = (): void => void this.flushAll();
  private open: OpenRecord | undefined;

  constructor(private readonly deps: SettleStageDeps) {}

  add(outcome: Outcome): void {
    this.queue.push(outcome);
    if (this.flushing) return;
    this.flushing = true;
    // After the I/O of this turn: every answer read in it joins the batch.
    setImmediate(this.flush);
  }

  /** Resolves when everything added so far is written. */
  drained(): Promise<void> {
    if (!this.flushing) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private async flushAll(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.length <= MAX_BATCH ? this.queue : this.queue.slice(0, MAX_BATCH);
      this.queue = this.queue.length <= MAX_BATCH ? [] : this.queue.slice(MAX_BATCH);
      await this.write(batch);
      try {
        this.deps.onSettled(batch);
      } catch (err) {
        this.deps.logger.error({ err }, 'settled listener failed');
      }
    }
    this.flushing = false;
    for (const resolve of this.idle.splice(0)) resolve();
  }

  private async write(batch: readonly Outcome[]): Promise<void> {
    const { keys, topic, publisherId } = this.deps;
    const tk = keys.topic(topic);
    const pk = keys.publisher(topic, publisherId);
    const attempts: LoggedAttempt[] = [];
    const acked: string[] = [];
    const cleared: string[] = [];
    const retries: (string | number)[] = [];
    const dead: (string | number)[] = [];
    let earliestRetry = Infinity;
    let skipped = 0;
    let delivered = 0;
    let failed = 0;
    for (const { job, result, settlement } of batch) {
      const sid = job.message.streamId;
      const logged: LoggedAttempt = result.ok
        ? result.status === undefined
          ? { streamId: sid, startedAt: result.startedAt, durationMs: result.durationMs, outcome: settlement.kind }
          : {
              streamId: sid,
              startedAt: result.startedAt,
              durationMs: result.durationMs,
              outcome: settlement.kind,
              status: result.status,
            }
        : failedAttempt(sid, result, settlement);
      if (settlement.kind === 'skipped') skipped++;
      else if (settlement.kind === 'delivered') delivered++;
      else failed++;
      attempts.push(logged);
      if (settlement.kind === 'retry') {
        retries.push(sid, settlement.dueAt, encodeRetryState(job.previousAttempts + 1, logged));
        if (settlement.dueAt < earliestRetry) earliestRetry = settlement.dueAt;
        continue;
      }
      acked.push(sid);
      if (job.retry) cleared.push(sid);
      if (settlement.kind === 'dead') {
        const note = {
          dead_reason: settlement.reason,
          attempt_count: job.previousAttempts + 1,
          last_attempt: {
            at: new Date(result.startedAt).toISOString(),
            ...(result.status === undefined ? {} : { status: result.status }),
            ...(result.error === undefined ? {} : { error: result.error }),
            ...(result.response === undefined ? {} : { response: result.response }),
            duration_ms: result.durationMs,
          },
        };
        dead.push(sid, result.startedAt + result.durationMs, JSON.stringify(note));
      }
    }
    const { records, replaced, open } = this.records(attempts);
    // The per-minute counters of the charts, in the same script call (series.ts).
    const slot = seriesSlot(this.deps.now());
    const settleKeys = {
      stream: tk.stream,
      retries: pk.retries,
      attempts: pk.attempts,
      dead: pk.dead,
      log: pk.log,
      notes: pk.notes,
      counts: pk.counts,
      series: keys.series(topic, slot.hour),
    };
    const settleArgs: scripts.SettleArgs = {
      group: publisherId,
      replaces: replaced,
      records,
      acked,
      cleared,
      retries,
      dead,
      skipped,
      delivered,
      failed,
      minute: slot.minute,
      seriesTtl: SERIES_TTL_SECONDS,
    };
    for (let attempt = 1; ; attempt++) {
      try {
        await scripts.settle(this.deps.redis, settleKeys, settleArgs);
        this.open = open;
        if (earliestRetry !== Infinity) await this.deps.retryIndex.lower(publisherId, earliestRetry);
        if (this.deps.audit) await this.deps.audit.record(this.auditRecords(batch));
        return;
      } catch (err) {
        if (attempt >= 5) {
          this.open = undefined;
          this.deps.logger.error(
            { err, count: batch.length },
            'could not record delivery outcomes; the messages stay pending and will be delivered again',
          );
          return;
        }
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  }

  /**
   * The batch's records: merged into the open record when both are small and
   * their messages were received within the record span, else new ones.
   */
  private records(attempts: readonly LoggedAttempt[]): {
    records: ReturnType<typeof encodeRecords>;
    replaced: string;
    open: OpenRecord | undefined;
  } {
    const now = this.deps.now();
    let lowest = Infinity;
    let highest = -Infinity;
    for (const a of attempts) {
      const ms = streamIdTime(a.streamId);
      if (ms < lowest) lowest = ms;
      if (ms > highest) highest = ms;
    }
    const open = this.open;
    if (
      open &&
      attempts.length < MERGE_BELOW &&
      open.attempts.length + attempts.length <= MERGE_MAX &&
      Math.max(highest, open.highest) - Math.min(lowest, open.lowest) <= RECORD_SPAN_MS
    ) {
      const merged = [...open.attempts, ...attempts];
      const records = encodeRecords(merged, now, recordTag);
      const [only] = records;
      return {
        records,
        replaced: open.member,
        open:
          only && records.length === 1
            ? {
                member: only.member,
                attempts: merged,
                lowest: Math.min(lowest, open.lowest),
                highest: Math.max(highest, open.highest),
              }
            : undefined,
      };
    }
    const records = encodeRecords(attempts, now, recordTag);
    const last = records[records.length - 1];
    const keep = records.length === 1 && last !== undefined && attempts.length < MERGE_BELOW;
    return {
      records,
      replaced: '',
      open: keep ? { member: last.member, attempts, lowest, highest } : undefined,
    };
  }

  private auditRecords(batch: readonly Outcome[]): AuditRecord[] {
    const out: AuditRecord[] = [];
    for (const { job, result, settlement, target } of batch) {
      if (settlement.kind !== 'delivered') continue;
      out.push({
        message_id: job.message.id,
        publisher_id: this.deps.publisherId,
        topic: this.deps.topic,
        target: target ?? '',
        delivered_at: new Date(result.startedAt + result.durationMs).toISOString(),
        status: result.status ?? null,
        duration_ms: result.durationMs,
        attempt: job.previousAttempts + 1,
      });
    }
    return out;
  }
}

/** A failed attempt as the log keeps it: its status, error and the start of the answer. */
function failedAttempt(streamId: string, result: AttemptResult, settlement: Settlement): LoggedAttempt {
  return {
    streamId,
    startedAt: result.startedAt,
    durationMs: result.durationMs,
    outcome: settlement.kind,
    ...(result.status === undefined ? {} : { status: result.status }),
    ...(result.error === undefined ? {} : { error: result.error }),
    ...(result.response === undefined ? {} : { response: result.response }),
  };
}
