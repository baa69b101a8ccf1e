/**
 * Writing messages. Requests that arrive in the same turn of the event loop
 * are written together: per topic, one `poIngest` script call (XADD of every
 * message and the id index, atomically) for up to `MAX_MESSAGES_PER_CALL`
 * messages, pipelined with one wake-up publish and, when configured, one
 * `WAIT` for replicas. Under load this is one Redis round trip and one
 * wake-up per topic for many requests instead of one each (see
 * docs/performance.md); alone, a request is written at once, as before.
 *
 * A message is acknowledged only once the script that wrote it has
 * returned. A request's messages always go in one script call, so they are
 * written all or none. A request with an `Idempotency-Key` is written on its
 * own (its script call checks and keeps the key, see `writeOnce`).
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

/** Messages of several requests that one script call may carry (a bigger bulk request gets a call of its own). */
export const MAX_MESSAGES_PER_CALL = 1000;

/** One request's messages, waiting for the next write of its topic. */
interface Pending {
  readonly ids: string[];
  /** Groups of three: message id, payload JSON, attributes JSON ('' when none). */
  readonly args: string[];
  readonly resolve: (ids: string[]) => void;
  readonly reject: (err: unknown) => void;
}

export class Ingest {
  /** Requests waiting for this turn's write, by topic. */
  private waiting = new Map<string, Pending[]>();
  private scheduled = false;

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
      const result =
        idempotencyKey === undefined
          ? { kind, ids: await this.enqueue(topic, payloads, attributes), replayed: false }
          : await this.run(topic, payloads, attributes, kind, idempotencyKey);
      outcome = result.replayed ? 'replayed' : 'ok';
      if (!result.replayed) this.metrics.messagesReceived(topic, result.ids.length);
      return result;
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      this.metrics.ingested(kind, outcome, seconds);
    }
  }

  private enqueue(
    topic: string,
    payloads: readonly unknown[],
    attributes: Readonly<Record<string, string>> | undefined,
  ): Promise<string[]> {
    const { ids, args } = scriptArgs(payloads, attributes);
    return new Promise<string[]>((resolve, reject) => {
      const list = this.waiting.get(topic);
      if (list) list.push({ ids, args, resolve, reject });
      else this.waiting.set(topic, [{ ids, args, resolve, reject }]);
      if (!this.scheduled) {
        this.scheduled = true;
        // After the I/O of this turn: every request read in it joins the write.
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const waiting = this.waiting;
    this.waiting = new Map();
    for (const [topic, list] of waiting) {
      this.writeTopic(topic, list).catch((err: unknown) => {
        for (const p of list) p.reject(err);
      });
    }
  }

  /** One pipeline for the topic (one hash slot): its script calls, one publish, and WAIT when configured. */
  private async writeTopic(topic: string, list: Pending[]): Promise<void> {
    const tk = this.keys.topic(topic);
    const calls: Pending[][] = [];
    let call: Pending[] = [];
    let count = 0;
    for (const p of list) {
      if (call.length > 0 && count + p.ids.length > MAX_MESSAGES_PER_CALL) {
        calls.push(call);
        call = [];
        count = 0;
      }
      call.push(p);
      count += p.ids.length;
    }
    calls.push(call);

    const pipeline = this.redis.pipeline();
    for (const c of calls) {
      const n = c.reduce((sum, p) => sum + p.ids.length, 0);
      const args = c.length === 1 ? c[0]!.args : c.flatMap((p) => p.args);
      pipeline.poIngest(3, tk.meta, tk.stream, tk.ids, n, ...args);
    }
    pipeline.publish(this.keys.wakeChannel, topic);
    const waiting = this.config.redisMinReplicas > 0;
    if (waiting) pipeline.wait(this.config.redisMinReplicas, this.config.redisWaitTimeoutMs);
    const results = await pipeline.exec();
    if (!results) throw new UnavailableError('the write was not executed');

    let replicasError: Error | undefined;
    if (waiting) {
      const wait = results[calls.length + 1];
      if (!wait) replicasError = new UnavailableError('the write was not executed');
      else if (wait[0]) replicasError = wait[0];
      else if (typeof wait[1] !== 'number' || wait[1] < this.config.redisMinReplicas)
        replicasError = new UnavailableError('not enough replicas acknowledged the write');
    }
    calls.forEach((c, i) => {
      try {
        const script = results[i];
        if (!script) throw new UnavailableError('the write was not executed');
        if (script[0]) throw script[0];
        checkScriptResult(script[1]);
        if (replicasError) throw replicasError;
        for (const p of c) p.resolve(p.ids);
      } catch (err) {
        for (const p of c) p.reject(err);
      }
    });
  }

  /** A request with an idempotency key: its own script call, which checks and keeps the key. */
  private async run(
    topic: string,
    payloads: readonly unknown[],
    attributes: Readonly<Record<string, string>> | undefined,
    kind: IngestKind,
    idempotencyKey: string,
  ): Promise<OnceResult> {
    const tk = this.keys.topic(topic);
    const { ids, args } = scriptArgs(payloads, attributes);
    const keys = [tk.meta, tk.stream, tk.ids, this.keys.idempotency(topic, idempotencyKey)];
    args.push(JSON.stringify({ kind, ids }), String(IDEMPOTENCY_TTL_SECONDS));
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

/** New message ids, and the script's arguments: groups of three (id, payload JSON, attributes JSON or ''). */
function scriptArgs(
  payloads: readonly unknown[],
  attributes: Readonly<Record<string, string>> | undefined,
): { ids: string[]; args: string[] } {
  const attrs = attributes && Object.keys(attributes).length > 0 ? JSON.stringify(attributes) : '';
  const ids: string[] = [];
  const args: string[] = [];
  for (const payload of payloads) {
    const id = randomUUID();
    ids.push(id);
    args.push(id, JSON.stringify(payload), attrs);
  }
  return { ids, args };
}
