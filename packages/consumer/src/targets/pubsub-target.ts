/**
 * Publishes to Google Cloud Pub/Sub with the official client
 * (`@google-cloud/pubsub`). The data is the payload's JSON text, the
 * message's attributes become Pub/Sub attributes. Each publisher gets a
 * client `Topic` whose batching sends up to `chunk_size` messages in one
 * `Publish` call: the pipeline's deliveries in flight are gathered into
 * chunks by the client (it waits at most 10 ms for a chunk to fill).
 *
 * The client's own retries are off: an attempt is one `Publish` call
 * bounded by `seconds_timeout`, and a failure goes through the same retry
 * schedule, circuit breaker and dead letters as an http delivery. Which
 * gRPC status retries and which is permanent is `PUBSUB_SETTLEMENTS` (the
 * docs/configuration.md). Because a chunk fails or succeeds as a whole, a
 * message refused as INVALID_ARGUMENT in a chunk of several is tried once
 * more alone before it is declared dead, so that one bad message never
 * takes its neighbours with it.
 *
 * The client library is loaded on the first Pub/Sub delivery: a node with
 * only http publishers never pays for it.
 */
import type { PubSub, Topic } from '@google-cloud/pubsub';
import { pubsubTopicName, type Publisher, type StoredMessage } from '@postoffice/shared';
import type { AttemptResult, Clock, Target } from '../types.js';

export interface PubsubTargetOptions {
  /** Project of bare topic names (GCLOUD_PUBSUB_PROJECT_ID); empty: the credentials'. */
  readonly projectId: string;
  /** Service account key file (GOOGLE_APPLICATION_CREDENTIALS); empty: Application Default Credentials. */
  readonly keyFilename: string;
  /** `host:port` of an emulator (PUBSUB_EMULATOR_HOST); empty: Google's endpoint. */
  readonly emulatorHost: string;
  readonly now?: Clock;
}

/** gRPC status codes (google.rpc.Code). */
export const GRPC_CODES: Readonly<Record<number, string>> = {
  0: 'OK',
  1: 'CANCELLED',
  2: 'UNKNOWN',
  3: 'INVALID_ARGUMENT',
  4: 'DEADLINE_EXCEEDED',
  5: 'NOT_FOUND',
  6: 'ALREADY_EXISTS',
  7: 'PERMISSION_DENIED',
  8: 'RESOURCE_EXHAUSTED',
  9: 'FAILED_PRECONDITION',
  10: 'ABORTED',
  11: 'OUT_OF_RANGE',
  12: 'UNIMPLEMENTED',
  13: 'INTERNAL',
  14: 'UNAVAILABLE',
  15: 'DATA_LOSS',
  16: 'UNAUTHENTICATED',
};

/**
 * What a failed Publish means for its messages: `retry` (on the publisher's
 * schedule, counting towards the circuit breaker) or `dead` (the message
 * itself can never be published). Codes not listed retry: a wrong project,
 * a missing topic or missing rights are fixed by an operator, and the
 * messages must still be there when they are.
 */
export const PUBSUB_SETTLEMENTS: Readonly<Record<string, 'retry' | 'dead'>> = {
  INVALID_ARGUMENT: 'dead',
  CANCELLED: 'retry',
  UNKNOWN: 'retry',
  DEADLINE_EXCEEDED: 'retry',
  NOT_FOUND: 'retry',
  PERMISSION_DENIED: 'retry',
  UNAUTHENTICATED: 'retry',
  RESOURCE_EXHAUSTED: 'retry',
  FAILED_PRECONDITION: 'retry',
  ABORTED: 'retry',
  OUT_OF_RANGE: 'retry',
  UNIMPLEMENTED: 'retry',
  INTERNAL: 'retry',
  UNAVAILABLE: 'retry',
  DATA_LOSS: 'retry',
};

/** Pub/Sub's limits on one message (https://cloud.google.com/pubsub/quotas#resource_limits). */
const MAX_DATA_BYTES = 10 * 1024 * 1024;
const MAX_ATTRIBUTES = 100;
const MAX_ATTRIBUTE_KEY_BYTES = 256;
const MAX_ATTRIBUTE_VALUE_BYTES = 1024;

/** Why Pub/Sub would refuse this message whatever the number of tries; undefined when it is fine. */
export function pubsubMessageProblem(message: StoredMessage): string | undefined {
  if (Buffer.byteLength(message.payload) > MAX_DATA_BYTES) return 'payload larger than Pub/Sub allows (10 MB)';
  const entries = Object.entries(message.attributes);
  if (entries.length > MAX_ATTRIBUTES) return `more than ${MAX_ATTRIBUTES} attributes (Pub/Sub's limit)`;
  for (const [key, value] of entries) {
    if (key === '' || Buffer.byteLength(key) > MAX_ATTRIBUTE_KEY_BYTES || key.startsWith('goog'))
      return `attribute name ${JSON.stringify(key.slice(0, 40))} is not allowed by Pub/Sub (1 to 256 bytes, not starting with goog)`;
    if (Buffer.byteLength(value) > MAX_ATTRIBUTE_VALUE_BYTES)
      return `attribute ${JSON.stringify(key.slice(0, 40))} is longer than Pub/Sub allows (1024 bytes)`;
  }
  return undefined;
}

interface TopicEntry {
  /** Batched up to chunk_size. */
  readonly batched: Topic;
  /** One message per Publish, for the second chance of an INVALID_ARGUMENT. */
  readonly single: Topic;
}

export class PubsubTarget implements Target {
  private readonly now: Clock;
  private client: Promise<PubSub> | undefined;
  /** By publisher id; the fingerprint says what the entry was made for (a changed publisher gets new ones). */
  private readonly topics = new Map<string, { fingerprint: string; entry: Promise<TopicEntry> }>();
  private readonly inFlight = new Set<(why: string) => void>();
  private closed = false;

  constructor(private readonly options: PubsubTargetOptions) {
    this.now = options.now ?? Date.now;
  }

  send(publisher: Publisher, message: StoredMessage, done: (result: AttemptResult) => void): void {
    const startedAt = this.now();
    this.deliver(publisher, message).then(done, (err: unknown) =>
      done({ ok: false, error: String(err), startedAt, durationMs: this.now() - startedAt }),
    );
  }

  async deliver(publisher: Publisher, message: StoredMessage): Promise<AttemptResult> {
    const startedAt = this.now();
    const result = (r: Omit<AttemptResult, 'startedAt' | 'durationMs'>): AttemptResult => ({
      ...r,
      startedAt,
      durationMs: this.now() - startedAt,
    });
    const problem = pubsubMessageProblem(message);
    if (problem) return result({ ok: false, error: problem, reason: 'invalid_message', permanent: true });
    try {
      const entry = await this.topicFor(publisher);
      try {
        await this.publish(entry.batched, message, publisher.seconds_timeout);
      } catch (err) {
        if (grpcCode(err) !== 'INVALID_ARGUMENT') throw err;
        await this.publish(entry.single, message, publisher.seconds_timeout);
      }
      return result({ ok: true });
    } catch (err) {
      const code = grpcCode(err);
      return result({
        ok: false,
        error: describePubsubError(err, pubsubTopicName(publisher.target, this.options.projectId)),
        reason: code ?? pubsubErrorReason(err),
        ...(code !== undefined && PUBSUB_SETTLEMENTS[code] === 'dead' ? { permanent: true } : {}),
      });
    }
  }

  abortAll(): void {
    for (const abort of this.inFlight) abort('aborted (node stopping)');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abortAll();
    const client = this.client;
    this.client = undefined;
    this.topics.clear();
    if (client) await (await client.catch(() => undefined))?.close();
  }

  /** One Publish of one message (the client may gather it with others), bounded by the timeout. */
  private publish(topic: Topic, message: StoredMessage, seconds: number): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const abort = (why: string) => {
        clearTimeout(timer);
        this.inFlight.delete(abort);
        reject(new Error(why));
      };
      // The client's deadline is the same; this one also covers the client waiting to fill a chunk.
      const timer = setTimeout(() => abort(`timeout after ${seconds} s`), Math.round(seconds * 1000) + 100);
      this.inFlight.add(abort);
      topic.publishMessage({ data: Buffer.from(message.payload, 'utf8'), attributes: { ...message.attributes } }).then(
        (id) => {
          clearTimeout(timer);
          this.inFlight.delete(abort);
          resolve(id);
        },
        (err: unknown) => {
          clearTimeout(timer);
          this.inFlight.delete(abort);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  /** The publisher's Topic objects, made once (deliveries that arrive together share them). */
  private topicFor(publisher: Publisher): Promise<TopicEntry> {
    if (this.closed) return Promise.reject(new Error('aborted (node stopping)'));
    const fingerprint = `${publisher.target} ${publisher.chunk_size} ${publisher.seconds_timeout}`;
    const known = this.topics.get(publisher.id);
    if (known?.fingerprint === fingerprint) return known.entry;
    const entry = this.pubsub().then((client) => {
      const name = pubsubTopicName(publisher.target, this.options.projectId);
      // retry: null turns the client's retries off (an attempt is one call); timeout bounds it.
      const gaxOpts = { timeout: Math.round(publisher.seconds_timeout * 1000), retry: null };
      return {
        batched: client.topic(name, { batching: { maxMessages: publisher.chunk_size, maxMilliseconds: 10 }, gaxOpts }),
        single: client.topic(name, { batching: { maxMessages: 1, maxMilliseconds: 0 }, gaxOpts }),
      };
    });
    this.topics.set(publisher.id, { fingerprint, entry });
    entry.catch(() => this.topics.delete(publisher.id));
    return entry;
  }

  private pubsub(): Promise<PubSub> {
    this.client ??= import('@google-cloud/pubsub').then(({ PubSub }) => {
      const { projectId, keyFilename, emulatorHost } = this.options;
      return new PubSub({
        ...(projectId ? { projectId } : {}),
        ...(keyFilename ? { keyFilename } : {}),
        // An emulator needs no credentials: naming the universe spares the client a metadata-server lookup.
        ...(emulatorHost
          ? { apiEndpoint: emulatorHost, emulatorMode: true, clientOptions: { universeDomain: 'googleapis.com' } }
          : {}),
      });
    });
    return this.client;
  }
}

function grpcCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? GRPC_CODES[code] : undefined;
}

/** A short, clear reason for the message's history. */
export function describePubsubError(err: unknown, topic: string): string {
  const code = grpcCode(err);
  const e = err as { details?: unknown; message?: unknown };
  const details = typeof e.details === 'string' && e.details !== '' ? e.details : String(e.message ?? err);
  if (code === 'NOT_FOUND') return `Pub/Sub topic ${topic} does not exist (NOT_FOUND: ${details})`;
  if (code === undefined) return details;
  return `${code}: ${details}`;
}

/** The `reason` label of a Pub/Sub failure that has no gRPC status: our own deadline, a stop, or another error. */
function pubsubErrorReason(err: unknown): string {
  const message = err instanceof Error ? err.message : '';
  if (message.startsWith('timeout after')) return 'timeout';
  if (message.startsWith('aborted')) return 'aborted';
  return 'error';
}
