/**
 * The ack stage: records outcomes in batches, one `settle` script call per
 * batch (XACK, retry scheduling, dead letters and history in one round
 * trip). Outcomes added while a batch is being written go in the next one.
 */
import { MAX_ATTEMPTS_KEPT, type Keys, type Logger, type ScriptClient } from '@postoffice/shared';
import type { AuditRecord, AuditTrail } from '../audit-trail.js';
import type { AttemptResult, Fate, Job } from '../types.js';

export interface Outcome {
  readonly job: Job;
  readonly result: AttemptResult;
  readonly fate: Fate;
  /** The target the attempt went to (for the audit trail). */
  readonly target?: string;
}

interface Waiting {
  readonly outcome: Outcome;
  readonly done: () => void;
}

const MAX_BATCH = 500;

export class AckStage {
  private queue: Waiting[] = [];
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly redis: ScriptClient,
    private readonly keys: Keys,
    private readonly topic: string,
    private readonly publisherId: string,
    private readonly historyTtlSeconds: number,
    private readonly logger: Logger,
    private readonly audit?: AuditTrail,
  ) {}

  /** Resolves once the outcome is in Redis (or given up on after repeated errors, which are logged). */
  add(outcome: Outcome): Promise<void> {
    return new Promise((done) => {
      this.queue.push({ outcome, done });
      this.flushing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.flushAll());
    });
  }

  /** Resolves when everything added so far is written. */
  async drained(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async flushAll(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, MAX_BATCH);
        await this.write(batch.map((w) => w.outcome));
        for (const w of batch) w.done();
      }
    } finally {
      this.flushing = undefined;
    }
  }

  private auditRecords(batch: readonly Outcome[]): AuditRecord[] {
    const out: AuditRecord[] = [];
    for (const { job, result, fate, target } of batch) {
      if (fate.kind !== 'delivered') continue;
      out.push({
        message_id: job.message.id,
        publisher_id: this.publisherId,
        topic: this.topic,
        target: target ?? '',
        delivered_at: new Date(result.startedAt + result.durationMs).toISOString(),
        status: result.status ?? null,
        duration_ms: result.durationMs,
        attempt: job.previousAttempts + 1,
      });
    }
    return out;
  }

  private async write(batch: Outcome[]): Promise<void> {
    const tk = this.keys.topic(this.topic);
    const pk = this.keys.publisher(this.topic, this.publisherId);
    const keys: string[] = [tk.stream, pk.retries, pk.attempts, pk.dead];
    const args: (string | number)[] = [this.publisherId, this.historyTtlSeconds, MAX_ATTEMPTS_KEPT, batch.length];
    for (const { job, result, fate } of batch) {
      keys.push(this.keys.history(this.topic, job.message.id));
      const attempt = attemptJson(result);
      switch (fate.kind) {
        case 'delivered':
          args.push(job.message.streamId, 'd', '', attempt, '');
          break;
        case 'retry':
          args.push(job.message.streamId, 'r', fate.dueAt, attempt, new Date(fate.dueAt).toISOString());
          break;
        case 'dead':
          args.push(job.message.streamId, 'x', result.startedAt + result.durationMs, attempt, fate.reason);
          break;
      }
    }
    for (let attempt = 1; ; attempt++) {
      try {
        await this.redis.poSettle(keys.length, ...keys, ...args);
        if (this.audit) await this.audit.record(this.auditRecords(batch));
        return;
      } catch (err) {
        if (attempt >= 5) {
          this.logger.error(
            { err, publisherId: this.publisherId, topic: this.topic, count: batch.length },
            'could not record delivery outcomes; the messages stay pending and will be delivered again',
          );
          return;
        }
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  }
}

/** One attempt of the history as JSON, built directly (once a message, so it is worth avoiding the spreads). */
export function attemptJson(result: AttemptResult): string {
  let json = `{"at":"${new Date(result.startedAt).toISOString()}"`;
  if (result.status !== undefined) json += `,"status":${result.status}`;
  if (!result.ok) json += `,"error":${JSON.stringify(result.error ?? 'failed')}`;
  return `${json},"duration_ms":${result.durationMs}}`;
}
