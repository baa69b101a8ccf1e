/**
 * The sources this node reads. Each active source is read by one node at a
 * time: rendezvous hashing over the live nodes (as for publisher slots)
 * says which node should, and that node takes the source's lease (a key
 * with its token and a time to live, renewed at each heartbeat). A node that
 * dies loses its leases at expiry and leaves the live set; the next node in
 * the ranking takes the source over.
 *
 * States of one source on this node: not held -> reading (lease taken, the
 * reader's loop runs) -> stopping (the source was deleted, switched off,
 * changed, or belongs to another node now: the current receive is aborted,
 * the batch in hand finished) -> not held (lease released). A lease lost to
 * another node (this node was silent too long) stops the reader without
 * releasing.
 *
 * The reader's loop: receive a batch; write each message to the topic once
 * (`OnceWriter`, keyed by the source and the message's id there), durably
 * (REDIS_MIN_REPLICAS); then delete or acknowledge, at the source, the
 * messages written. A crash at any point leaves the rest at the source,
 * which gives them again (SQS's visibility timeout, Pub/Sub's ack deadline)
 * and they are found written: never lost, never stored twice. A message
 * that cannot be written (the topic is gone, Redis is down) is left at the
 * source for its own redrive policy, and counted. A failed receive waits
 * (1 s, doubling up to 30 s) before the next.
 */
import {
  type Config,
  type Keys,
  type Logger,
  type OnceWrite,
  type OnceWriter,
  type ScriptClient,
  type Source,
  type SourceStore,
} from '@postoffice/shared';
import type { SQSClientConfig } from '@aws-sdk/client-sqs';
import { assignSlots } from '../cluster/assignment.js';
import { Lease } from '../cluster/lease.js';
import type { Metrics } from '../metrics.js';
import type { Clock } from '../types.js';
import { PubsubSubscriberClient, describeGrpcError } from './pubsub-subscriber-client.js';
import type { ReceivedMessage, SourceClient, SourceClientFactory } from './source-client.js';
import { SqsClient, describeSqsError, sdkLogger } from './sqs-client.js';

/** Longest wait after failed receives. */
const MAX_BACKOFF_MS = 30_000;
/** How often an SQS source's lag is asked. */
const LAG_EVERY_MS = 15_000;

export interface SourceReadersDeps {
  readonly redis: ScriptClient;
  readonly keys: Keys;
  readonly store: SourceStore;
  readonly writer: OnceWriter;
  readonly metrics: Metrics;
  readonly config: Pick<
    Config,
    'nodeId' | 'heartbeatSeconds' | 'gcloudPubsubProjectId' | 'googleApplicationCredentials' | 'pubsubEmulatorHost'
  >;
  readonly logger: Logger;
  readonly now: Clock;
  /** Settings for the SQS SDK's client beside the environment's (tests give an endpoint and credentials). */
  readonly sqsClientConfig?: SQSClientConfig;
  /** Makes each source's client; the SDKs' by default. */
  readonly clientFor?: SourceClientFactory;
}

interface Reader {
  readonly source: Source;
  /** The source's JSON when the reader started: a change restarts it. */
  readonly fingerprint: string;
  readonly lease: Lease;
  readonly client: SourceClient;
  readonly abort: AbortController;
  loop: Promise<void>;
}

/** The name of a source among the things rendezvous hashing spreads over the nodes. */
export function sourceSlot(id: string): string {
  return `source:${id}`;
}

export class SourceReaders {
  private sources = new Map<string, Source>();
  private readonly readers = new Map<string, Reader>();
  private readonly clientFor: SourceClientFactory;
  private closed = false;

  constructor(private readonly deps: SourceReadersDeps) {
    this.clientFor =
      deps.clientFor ??
      ((source) =>
        source.type === 'sqs'
          ? new SqsClient(source, { logger: sdkLogger(deps.logger), ...deps.sqsClientConfig })
          : new PubsubSubscriberClient(source, {
              projectId: deps.config.gcloudPubsubProjectId,
              keyFilename: deps.config.googleApplicationCredentials,
              emulatorHost: deps.config.pubsubEmulatorHost,
            }));
  }

  /** Ids of the sources this node reads (tests, /healthz). */
  held(): string[] {
    return [...this.readers.keys()].sort((a, b) => Number(a) - Number(b));
  }

  /** Reads every source's record again (at start, and when one changed). */
  async load(): Promise<void> {
    this.sources = new Map((await this.deps.store.list()).map((s) => [s.id, s]));
  }

  /**
   * Stops the readers this node should no longer run, renews the leases of
   * the others, and starts readers for the sources it should read and can
   * lease. Called at each heartbeat and when sources or nodes change.
   */
  async rebalance(live: ReadonlySet<string>): Promise<void> {
    if (this.closed) return;
    const active = [...this.sources.values()].filter((s) => s.active);
    const owners = assignSlots(
      active.map((s) => sourceSlot(s.id)),
      [...live],
    );
    const mine = (s: Source): boolean => owners.get(sourceSlot(s.id)) === this.deps.config.nodeId;
    for (const [id, r] of [...this.readers]) {
      const s = this.sources.get(id);
      if (!s || !s.active || !mine(s) || JSON.stringify(s) !== r.fingerprint) await this.stop(id, true);
    }
    for (const [id, r] of [...this.readers]) {
      if (!(await r.lease.acquireOrRenew())) {
        this.deps.logger.warn(
          { sourceId: id, topic: r.source.topic },
          'lost the lease of a source; stopped reading it',
        );
        await this.stop(id, false);
      }
    }
    for (const s of active) {
      if (!mine(s) || this.readers.has(s.id) || this.closed) continue;
      const lease = new Lease(
        this.deps.redis,
        this.deps.keys.sourceLease(s.topic, s.id),
        this.deps.config.heartbeatSeconds * 3000,
        this.deps.config.nodeId,
      );
      if (!(await lease.acquireOrRenew())) continue;
      this.start(s, lease);
    }
  }

  private start(source: Source, lease: Lease): void {
    const reader: Reader = {
      source,
      fingerprint: JSON.stringify(source),
      lease,
      client: this.clientFor(source),
      abort: new AbortController(),
      loop: Promise.resolve(),
    };
    this.readers.set(source.id, reader);
    reader.loop = this.run(reader).catch((err: unknown) =>
      this.deps.logger.error({ err, sourceId: source.id }, 'source reader stopped on an error'),
    );
    this.deps.logger.info({ sourceId: source.id, topic: source.topic, type: source.type }, 'reading a source');
  }

  /** Stops one reader: aborts its receive, lets it finish the batch in hand, closes its client, and maybe releases the lease. */
  private async stop(id: string, release: boolean): Promise<void> {
    const r = this.readers.get(id);
    if (!r) return;
    this.readers.delete(id);
    r.abort.abort();
    await r.loop;
    await r.client.close().catch(() => undefined);
    if (release) await r.lease.release().catch(() => undefined);
    this.deps.metrics.sourceLag.remove({ source: id, topic: r.source.topic, type: r.source.type });
    this.deps.logger.info({ sourceId: id, topic: r.source.topic }, 'stopped reading a source');
  }

  private async run(r: Reader): Promise<void> {
    const { source } = r;
    const labels = { source: source.id, topic: source.topic, type: source.type };
    const log = this.deps.logger.child({ sourceId: source.id, topic: source.topic });
    let failures = 0;
    let lagAt = 0;
    while (!r.abort.signal.aborted) {
      let error: string | null = null;
      let read = 0;
      let ingested = 0;
      let failed = 0;
      let lag: number | undefined;
      try {
        const messages = await r.client.receive(r.abort.signal);
        read = messages.length;
        this.deps.metrics.sourceRead.inc(labels, read);
        const done = await this.ingest(source, r.client, messages, labels);
        failed = done.failed;
        error = done.error;
        ingested = done.ingested;
        if (source.type === 'sqs' && this.deps.now() >= lagAt) {
          lagAt = this.deps.now() + LAG_EVERY_MS;
          lag = await r.client.lag().catch(() => undefined);
          if (lag !== undefined) this.deps.metrics.sourceLag.set(labels, lag);
        }
      } catch (err) {
        if (r.abort.signal.aborted) break;
        error = `receive: ${source.type === 'sqs' ? describeSqsError(err) : describeGrpcError(err)}`;
        this.deps.metrics.sourceErrors.inc({ ...labels, operation: 'receive' });
      }
      if (error !== null) log.warn({ error, read, ingested, failed }, 'source round failed');
      await this.deps.store
        .record(source, {
          at: new Date(this.deps.now()),
          node: this.deps.config.nodeId,
          read,
          ingested,
          failed,
          error,
          ...(lag === undefined ? {} : { lag }),
        })
        .catch((err: unknown) => log.error({ err }, 'could not record the source round'));
      failures = error === null ? 0 : failures + 1;
      if (failures > 0) await sleep(Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (failures - 1)), r.abort.signal);
    }
  }

  /** Writes a batch once, then deletes or acknowledges at the source what was written. */
  private async ingest(
    source: Source,
    client: SourceClient,
    messages: readonly ReceivedMessage[],
    labels: { source: string; topic: string; type: string },
  ): Promise<{ ingested: number; failed: number; error: string | null }> {
    if (messages.length === 0) return { ingested: 0, failed: 0, error: null };
    const writes: OnceWrite[] = messages.map((m) => ({
      topic: source.topic,
      origin: `source ${source.id} ${m.id}`,
      messages: [{ payload: m.payload, attributes: m.attributes }],
    }));
    const outcomes = await this.deps.writer.write(writes);
    const written: ReceivedMessage[] = [];
    const settledWrites: OnceWrite[] = [];
    let failed = 0;
    let error: string | null = null;
    outcomes.forEach((o, i) => {
      if (o.ok) {
        written.push(messages[i]!);
        settledWrites.push(writes[i]!);
        return;
      }
      failed++;
      error ??= `message ${messages[i]!.id}: ${o.error.message}`;
      this.deps.metrics.sourceFailed.inc({ ...labels, reason: o.code });
    });
    if (written.length === 0) return { ingested: 0, failed, error };
    const settled = await client.settle(written);
    if (settled.failed.length > 0) {
      this.deps.metrics.sourceErrors.inc({ ...labels, operation: 'delete' });
      error ??= `${source.type === 'sqs' ? 'DeleteMessageBatch' : 'Acknowledge'} failed for ${settled.failed.length} written message(s), which will come again (not stored twice): ${settled.error ?? ''}`;
    }
    const gone = new Set(settled.failed);
    const ok = settledWrites.filter((_w, i) => !gone.has(written[i]!.id));
    if (ok.length > 0) await this.deps.writer.settled(ok).catch(() => undefined);
    this.deps.metrics.sourceIngested.inc(labels, ok.length);
    return { ingested: ok.length, failed, error };
  }

  /** Stops every reader and releases their leases. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.readers.keys()].map((id) => this.stop(id, true)));
  }
}

/** Waits `ms`, or less when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
