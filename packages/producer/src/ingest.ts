/**
 * Writing messages. Requests that arrive in the same turn of the event loop
 * are written together: per topic, one `ingest` script call (XADD of every
 * message, atomically; a message's id is its topic and stream entry id, so
 * nothing else is written per message) for up to `MAX_MESSAGES_PER_CALL`
 * messages, the last of which also publishes the wake-up (inside the
 * script), pipelined with one `WAIT` for replicas when configured. Under load this is one Redis round trip and one
 * wake-up per topic for many requests instead of one each (see
 * docs/performance.md); alone, a request is written at once, as before.
 *
 * At most `WRITES_IN_FLIGHT` writes of a topic are in flight: requests that
 * arrive meanwhile wait for the next one, so that under load each round
 * trip (whose cost, tens of microseconds of CPU, is the same for one
 * message or a hundred) carries more messages. An idle producer waits for
 * nothing.
 *
 * A message is acknowledged only once the script that wrote it has
 * returned. A request's messages always go in one script call, so they are
 * written all or none. A request with an `Idempotency-Key` is written on its
 * own (its script call checks and keeps the key with the request's
 * fingerprint, see `writeOnce`).
 */
import { createHash } from 'node:crypto';
import {
  SERIES_TTL_SECONDS,
  UnavailableError,
  seriesSlot,
  messageId,
  replicatedWrite,
  scripts,
  untilServed,
  type Config,
  type Keys,
  type ScriptClient,
} from '@postoffice/shared';
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

/** Writes of one topic in flight at once; more requests wait for the next write (see above). */
export const WRITES_IN_FLIGHT = 2;

/** One request's messages, waiting for the next write of its topic. */
interface Pending {
  readonly count: number;
  /** Pairs: payload JSON, attributes JSON ('' when none). */
  readonly args: string[];
  /** Called with the request's stream entry ids, in order. */
  readonly resolve: (streamIds: string[]) => void;
  readonly reject: (err: unknown) => void;
}

export class Ingest {
  /** Told of each topic this producer wrote messages to (long polls of pull leases wait for it). */
  onWritten: ((topic: string) => void) | undefined;
  /** Requests waiting for this turn's write, by topic. */
  private waiting = new Map<string, Pending[]>();
  private scheduled = false;
  /** Writes in flight, by topic. */
  private readonly writing = new Map<string, number>();

  constructor(
    private readonly redis: ScriptClient,
    private readonly keys: Keys,
    private readonly config: Pick<Config, 'redisMinReplicas' | 'redisWaitTimeoutMs'>,
    private readonly metrics: Metrics,
  ) {}

  /**
   * Adds one message per payload to the topic, all with the same
   * attributes, and returns their new ids in order (`ids`). Throws the typed
   * error of `topic_not_found` when the topic does not exist (nothing written).
   *
   * With an idempotency key: the first request with the key
   * (per topic, within 24 hours) writes the messages and keeps its answer
   * with the request's fingerprint (route, topic, attributes, payloads); a
   * repeat writes nothing and gets the first answer back, and a different
   * request under the same key is refused (422 `idempotency_key_reused`),
   * never silently dropped. The check and the write are one script call, so
   * two concurrent repeats write once.
   */
  writeOnce(
    topic: string,
    payloads: readonly unknown[],
    attributes: Readonly<Record<string, string>> | undefined,
    kind: IngestKind,
    idempotencyKey: string | undefined,
  ): Promise<OnceResult> {
    if (idempotencyKey === undefined) return this.enqueue(topic, payloads, attributes, kind);
    const started = performance.now();
    return this.run(topic, payloads, attributes, kind, idempotencyKey).then(
      (result) => {
        this.metrics.ingested(kind, result.replayed ? 'replayed' : 'ok', (performance.now() - started) / 1000);
        if (!result.replayed) {
          this.metrics.messagesReceived(topic, result.ids.length);
          this.onWritten?.(topic);
        }
        return result;
      },
      (err: unknown) => {
        this.metrics.ingested(kind, 'error', (performance.now() - started) / 1000);
        throw err;
      },
    );
  }

  /** Queues the request's messages for this turn's write of their topic; resolves once they are written. */
  private enqueue(
    topic: string,
    payloads: readonly unknown[],
    attributes: Readonly<Record<string, string>> | undefined,
    kind: IngestKind,
  ): Promise<OnceResult> {
    const args = scriptArgs(payloads, attributes);
    const count = payloads.length;
    const started = performance.now();
    return new Promise<OnceResult>((resolve, reject) => {
      const pending: Pending = {
        count,
        args,
        resolve: (streamIds) => {
          const ids = new Array<string>(streamIds.length);
          for (let i = 0; i < streamIds.length; i++) ids[i] = messageId(topic, streamIds[i] as string);
          this.metrics.ingested(kind, 'ok', (performance.now() - started) / 1000);
          resolve({ kind, ids, replayed: false });
        },
        reject: (err) => {
          this.metrics.ingested(kind, 'error', (performance.now() - started) / 1000);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      };
      const list = this.waiting.get(topic);
      if (list) list.push(pending);
      else this.waiting.set(topic, [pending]);
      if (!this.scheduled) {
        this.scheduled = true;
        // After the I/O of this turn: every request read in it joins the write.
        setImmediate(this.flushNow);
      }
    });
  }

  private readonly flushNow = (): void => this.flush();

  private flush(): void {
    this.scheduled = false;
    for (const [topic, list] of this.waiting) {
      const writing = this.writing.get(topic) ?? 0;
      // The topic's write in flight takes this list along when it ends (see `written`).
      if (writing >= WRITES_IN_FLIGHT) continue;
      this.waiting.delete(topic);
      this.writing.set(topic, writing + 1);
      this.writeTopic(topic, list).then(
        () => this.written(topic),
        (err: unknown) => {
          for (const p of list) p.reject(err);
          this.written(topic);
        },
      );
    }
  }

  /** A write of `topic` ended: what waited for it is written next. */
  private written(topic: string): void {
    const writing = (this.writing.get(topic) ?? 1) - 1;
    if (writing === 0) this.writing.delete(topic);
    else this.writing.set(topic, writing);
    if (this.waiting.has(topic) && !this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushNow);
    }
  }

  /** The topic's script calls (one hash slot), the last one waking consumers, and WAIT when configured. */
  private async writeTopic(topic: string, list: Pending[]): Promise<void> {
    const tk = this.keys.topic(topic);
    const calls: Pending[][] = [];
    let call: Pending[] = [];
    let count = 0;
    for (const p of list) {
      if (call.length > 0 && count + p.count > MAX_MESSAGES_PER_CALL) {
        calls.push(call);
        call = [];
        count = 0;
      }
      call.push(p);
      count += p.count;
    }
    calls.push(call);

    const waiting = this.config.redisMinReplicas > 0;
    const wake = this.keys.wakeChannel;
    // Each call counts its messages in the topic's per-minute counters (inside the script).
    const slot = seriesSlot(Date.now());
    const keys = { topic: tk.meta, stream: tk.stream, series: this.keys.series(topic, slot.hour) };
    const argsOf = (c: Pending[], i: number): scripts.IngestArgs => ({
      // The last call wakes the consumer nodes (inside the script: no command of its own).
      wake: i === calls.length - 1 ? wake : '',
      topic,
      messages: c.length === 1 ? c[0]!.args : c.flatMap((p) => p.args),
      minute: slot.minute,
      seriesTtl: SERIES_TTL_SECONDS,
    });
    const toError = (err: unknown) => (err instanceof Error ? err : new Error(String(err)));
    let replies: (scripts.IngestReply | Error)[];
    let replicasError: Error | undefined;
    if (calls.length === 1 && !waiting) {
      // The usual case: one command, without a pipeline around it (sent again while a failover refuses it).
      try {
        replies = [await untilServed(this.redis, () => scripts.ingest(this.redis, keys, argsOf(calls[0]!, 0)))];
      } catch (err) {
        replies = [toError(err)];
      }
    } else {
      const written = await replicatedWrite(this.redis, this.config, (pipeline) =>
        calls.forEach((c, i) => scripts.ingest.queue(pipeline, keys, argsOf(c, i))),
      );
      replicasError = written.replicas;
      replies = calls.map((_c, i) => {
        const script = written.replies[i];
        if (!script) return new UnavailableError('the write was not executed');
        if (script[0]) return script[0];
        try {
          return scripts.ingest.parse(script[1]);
        } catch (err) {
          return toError(err);
        }
      });
    }

    calls.forEach((c, i) => {
      try {
        const reply = replies[i];
        if (!reply) throw new UnavailableError('the write was not executed');
        if (reply instanceof Error) throw reply;
        // Without an idempotency key nothing is replayed.
        if (reply.replayed) throw new Error('an ingest without an idempotency key was replayed');
        const { streamIds } = reply;
        if (replicasError) throw replicasError;
        this.metrics.messagesReceived(topic, streamIds.length);
        this.onWritten?.(topic);
        let at = 0;
        for (const p of c) {
          p.resolve(c.length === 1 ? streamIds : streamIds.slice(at, at + p.count));
          at += p.count;
        }
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
    const messages = scriptArgs(payloads, attributes);
    const slot = seriesSlot(Date.now());
    const { replies, replicas } = await replicatedWrite(this.redis, this.config, (pipeline) =>
      scripts.ingest.queue(
        pipeline,
        {
          topic: tk.meta,
          stream: tk.stream,
          series: this.keys.series(topic, slot.hour),
          idempotency: this.keys.idempotency(topic, idempotencyKey),
        },
        {
          wake: this.keys.wakeChannel,
          topic,
          messages,
          minute: String(slot.minute),
          seriesTtl: String(SERIES_TTL_SECONDS),
          fingerprint: fingerprint(kind, topic, messages),
          idempotencyTtl: String(IDEMPOTENCY_TTL_SECONDS),
        },
      ),
    );
    const [script] = replies;
    if (!script) throw new UnavailableError('the write was not executed');
    if (script[0]) throw script[0];
    const reply = scripts.ingest.parse(script[1]);
    // Replayed or not, a 201 waits for the replicas (a repeat of a request answered 503 for want of them included).
    if (replicas) throw replicas;
    if (reply.replayed) {
      const { kept } = reply;
      // Kept before fingerprints (an upgrade less than 24 h ago): the first answer as it was.
      if (kept.startsWith('{')) {
        const first = JSON.parse(kept) as { kind: IngestKind; ids: string[] };
        return { kind: first.kind, ids: first.ids, replayed: true };
      }
      return { kind, ids: kept.split(',').map((sid) => messageId(topic, sid)), replayed: true };
    }
    return { kind, ids: reply.streamIds.map((sid) => messageId(topic, sid)), replayed: false };
  }
}

/** What makes two requests the same: the route, the topic and every message's payload and attributes. */
function fingerprint(kind: IngestKind, topic: string, args: readonly string[]): string {
  const hash = createHash('sha256').update(`${kind}\n${topic}\n`);
  for (const a of args) hash.update(`${a.length}:${a}`);
  return hash.digest('base64url');
}

/** The script's arguments: pairs of payload JSON and attributes JSON ('' when none). */
function scriptArgs(payloads: readonly unknown[], attributes: Readonly<Record<string, string>> | undefined): string[] {
  const attrs = attributes && Object.keys(attributes).length > 0 ? JSON.stringify(attributes) : '';
  const args: string[] = new Array<string>(payloads.length * 2);
  for (let i = 0; i < payloads.length; i++) {
    args[2 * i] = JSON.stringify(payloads[i]);
    args[2 * i + 1] = attrs;
  }
  return args;
}
