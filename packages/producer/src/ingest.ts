/**
 * Writing messages: one `poIngest` script call (XADD of every message and
 * the id index, atomically), pipelined with the wake-up publish and, when
 * configured, `WAIT` for replicas: one round trip whatever the batch size.
 * A message is acknowledged only once the script has returned.
 */
import { randomUUID } from 'node:crypto';
import { UnavailableError, checkScriptResult, type Config, type Keys, type ScriptClient } from '@postoffice/shared';
import type { Metrics } from './metrics.js';

export type IngestKind = 'single' | 'bulk';

/** How long an `Idempotency-Key` holds the first answer. */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;

/** What a write with an idempotency key did: wrote `ids` now, or found the first request's (`replayed`). */
export interface OnceResult {
  readonly kind: IngestKind;
  readonly ids: string[];
  readonly replayed: boolean;
}

export class Ingest {
  constructor(
    private readonly redis: ScriptClient,
    private readonly keys: Keys,
    private readonly config: Pick<Config, 'redisMinReplicas' | 'redisWaitTimeoutMs'>,
    private readonly metrics: Metrics,
  ) {}

  /**
   * Adds one message per payload to the topic, all with the same
   * attributes, and returns their new ids in order. Throws the typed error
   * of `topic_not_found` when the topic does not exist (nothing written).
   */
  async write(
    topic: string,
    payloads: readonly unknown[],
    attributes: Readonly<Record<string, string>> | undefined,
    kind: IngestKind,
  ): Promise<string[]> {
    return (await this.writeOnce(topic, payloads, attributes, kind, undefined)).ids;
  }

  /**
   * As `write`, and with an idempotency key: the first request with the key
   * (per topic, within 24 hours) writes the messages and keeps its answer;
   * a repeat writes nothing and gets the first answer back. The check and
   * the write are one script call, so two concurrent repeats write once.
   */
  async writeOnce(
    topic: string,
    payloads: readonly unknown[],
    attributes: Readonly<Record<string, string>> | undefined,
    kind: IngestKind,
    idempotencyKey: string | undefined,
  ): Promise<OnceResult> {
    const started = process.hrtime.bigint();
    let outcome = 'error';
    try {
      const result = await this.run(topic, payloads, attributes, kind, idempotencyKey);
      outcome = result.replayed ? 'replayed' : 'ok';
      if (!result.replayed) this.metrics.messagesReceived(topic, result.ids.length);
      return result;
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      this.metrics.ingested(kind, outcome, seconds);
    }
  }

  private async run(
    topic: string,
    payloads: readonly unknown[],
    attributes: Readonly<Record<string, string>> | undefined,
    kind: IngestKind,
    idempotencyKey: string | undefined,
  ): Promise<OnceResult> {
    const tk = this.keys.topic(topic);
    const attrs = attributes && Object.keys(attributes).length > 0 ? JSON.stringify(attributes) : '';
    const ids: string[] = [];
    const args: string[] = [];
    for (const payload of payloads) {
      const id = randomUUID();
      ids.push(id);
      args.push(id, JSON.stringify(payload), attrs);
    }
    const keys = [tk.meta, tk.stream, tk.ids];
    if (idempotencyKey !== undefined) {
      keys.push(this.keys.idempotency(topic, idempotencyKey));
      args.push(JSON.stringify({ kind, ids }), String(IDEMPOTENCY_TTL_SECONDS));
    }
    const pipeline = this.redis
      .pipeline()
      .poIngest(keys.length, ...keys, payloads.length, ...args)
      .publish(this.keys.wakeChannel, topic);
    const waiting = this.config.redisMinReplicas > 0;
    if (waiting) pipeline.wait(this.config.redisMinReplicas, this.config.redisWaitTimeoutMs);
    const results = await pipeline.exec();
    if (!results) throw new UnavailableError('the write was not executed');
    const [script, , wait] = results;
    if (!script) throw new UnavailableError('the write was not executed');
    if (script[0]) throw script[0];
    const reply = checkScriptResult(script[1]);
    if (Array.isArray(reply) && reply[0] === '=') {
      const first = JSON.parse(String(reply[1])) as { kind: IngestKind; ids: string[] };
      return { kind: first.kind, ids: first.ids, replayed: true };
    }
    if (waiting) {
      if (!wait) throw new UnavailableError('the write was not executed');
      if (wait[0]) throw wait[0];
      if (typeof wait[1] !== 'number' || wait[1] < this.config.redisMinReplicas) {
        throw new UnavailableError('not enough replicas acknowledged the write');
      }
    }
    return { kind, ids, replayed: false };
  }
}
