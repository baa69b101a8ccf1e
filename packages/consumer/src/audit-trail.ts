/**
 * The audit trail: one record per successful delivery (message id,
 * publisher, topic, target, time, HTTP status, duration, attempt), written
 * after the delivery's outcome is recorded, in the settle stage's batches.
 * Off by default. `AUDIT_LOG` sends JSON lines to stdout or appends them to
 * a file; `AUDIT_STREAM` adds each record to a Redis stream (capped with
 * `MAXLEN ~ AUDIT_STREAM_MAXLEN`) for other consumers to read.
 * A failing write is logged and never breaks delivery.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import type { Config, Keys, Logger, ScriptClient } from '@postoffice/shared';

export interface AuditRecord {
  readonly message_id: string;
  readonly publisher_id: string;
  readonly topic: string;
  readonly target: string;
  /** ISO time the successful attempt ended. */
  readonly delivered_at: string;
  readonly status: number | null;
  readonly duration_ms: number;
  /** Attempts made, this one included. */
  readonly attempt: number;
}

type AuditConfig = Pick<Config, 'auditLog' | 'auditStream' | 'auditStreamMaxLen'>;

export class AuditTrail {
  private readonly file: WriteStream | undefined;
  private readonly toStdout: boolean;
  private closed = false;

  private constructor(
    private readonly redis: ScriptClient,
    private readonly keys: Keys,
    private readonly config: AuditConfig,
    private readonly logger: Logger,
  ) {
    const where = config.auditLog;
    this.toStdout = where === 'stdout';
    if (where !== 'off' && where !== 'stdout') {
      this.file = createWriteStream(where, { flags: 'a' });
      this.file.on('error', (err) => this.logger.error({ err, file: where }, 'audit log file cannot be written'));
    }
  }

  /** The trail when AUDIT_LOG or AUDIT_STREAM asks for one, undefined when both are off. */
  static create(redis: ScriptClient, keys: Keys, config: AuditConfig, logger: Logger): AuditTrail | undefined {
    if (config.auditLog === 'off' && !config.auditStream) return undefined;
    return new AuditTrail(redis, keys, config, logger);
  }

  async record(records: readonly AuditRecord[]): Promise<void> {
    if (records.length === 0 || this.closed) return;
    if (this.toStdout || this.file) {
      const text = records.map((r) => `${JSON.stringify(r)}\n`).join('');
      if (this.toStdout) process.stdout.write(text);
      else this.file?.write(text);
    }
    if (!this.config.auditStream) return;
    try {
      const pipeline = this.redis.pipeline();
      for (const r of records) {
        pipeline.xadd(
          this.keys.auditStream,
          'MAXLEN',
          '~',
          this.config.auditStreamMaxLen,
          '*',
          'message_id',
          r.message_id,
          'publisher_id',
          r.publisher_id,
          'topic',
          r.topic,
          'target',
          r.target,
          'delivered_at',
          r.delivered_at,
          'status',
          r.status === null ? '' : String(r.status),
          'duration_ms',
          String(r.duration_ms),
          'attempt',
          String(r.attempt),
        );
      }
      const results = (await pipeline.exec()) ?? [];
      const failed = results.find(([err]) => err);
      if (failed?.[0]) throw failed[0];
    } catch (err) {
      this.logger.error({ err, count: records.length }, 'could not add deliveries to the audit stream');
    }
  }

  /** Flushes and closes the file; safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const file = this.file;
    if (file) await new Promise<void>((resolve) => file.end(resolve));
  }
}
