/**
 * A Pub/Sub source's client: a subscription read with the official
 * `@google-cloud/pubsub`, through its GAPIC `SubscriberClient` and unary
 * `Pull` and `Acknowledge` calls (the streaming subscriber acknowledges on
 * its own schedule; here a message is acknowledged only once it is written).
 * Credentials and emulator as for `pubsub` publishers
 * (GOOGLE_APPLICATION_CREDENTIALS, PUBSUB_EMULATOR_HOST); a bare
 * subscription id is taken in GCLOUD_PUBSUB_PROJECT_ID (or the credentials'
 * project). Pub/Sub attributes become attributes.
 *
 * The library is loaded when the first Pub/Sub source is read.
 */
import type { v1 } from '@google-cloud/pubsub';
import type { Source } from '@postoffice/shared';
import { GRPC_CODES } from '../targets/pubsub-target.js';
import { payloadOf, type ReceivedMessage, type SourceClient } from './source-client.js';

export interface PubsubSubscriberOptions {
  /** GCLOUD_PUBSUB_PROJECT_ID; empty: the credentials'. */
  readonly projectId: string;
  /** GOOGLE_APPLICATION_CREDENTIALS; empty: Application Default Credentials. */
  readonly keyFilename: string;
  /** PUBSUB_EMULATOR_HOST; empty: Google's endpoint. */
  readonly emulatorHost: string;
}

const SUBSCRIPTION_PATH = /^projects\/[^/]+\/subscriptions\/[^/]+$/;

/** How long one Pull may wait for messages before it is asked again. */
const PULL_TIMEOUT_MS = 30_000;

export class PubsubSubscriberClient implements SourceClient {
  private client: Promise<{ client: v1.SubscriberClient; subscription: string }> | undefined;

  constructor(
    private readonly source: Source,
    private readonly options: PubsubSubscriberOptions,
  ) {}

  private get subscriber(): Promise<{ client: v1.SubscriberClient; subscription: string }> {
    this.client ??= import('@google-cloud/pubsub').then(async ({ PubSub, v1: gapic }) => {
      const { projectId, keyFilename, emulatorHost } = this.options;
      const pubsub = new PubSub({
        ...(projectId ? { projectId } : {}),
        ...(keyFilename ? { keyFilename } : {}),
        ...(emulatorHost
          ? { apiEndpoint: emulatorHost, emulatorMode: true, clientOptions: { universeDomain: 'googleapis.com' } }
          : {}),
      });
      // The emulator's address and insecure channel, or Google's endpoint with the credentials, as the library sets them.
      const config = (await pubsub.getClientConfig()) as ConstructorParameters<typeof gapic.SubscriberClient>[0];
      const client = new gapic.SubscriberClient(config);
      const name = this.source.subscription ?? '';
      const subscription = SUBSCRIPTION_PATH.test(name)
        ? name
        : `projects/${projectId || (await client.getProjectId())}/subscriptions/${name}`;
      return { client, subscription };
    });
    return this.client;
  }

  async receive(signal: AbortSignal): Promise<ReceivedMessage[]> {
    const { client, subscription } = await this.subscriber;
    const call = client.pull({ subscription, maxMessages: this.source.batch_size }, { timeout: PULL_TIMEOUT_MS });
    const cancel = (): void => (call as { cancel?: () => void }).cancel?.();
    signal.addEventListener('abort', cancel, { once: true });
    try {
      const [response] = await call;
      const out: ReceivedMessage[] = [];
      for (const r of response.receivedMessages ?? []) {
        const m = r.message;
        if (!m || !r.ackId || !m.messageId) continue;
        const data = m.data ? Buffer.from(m.data as Uint8Array).toString('utf8') : '';
        out.push({ id: m.messageId, handle: r.ackId, ...payloadOf(data, { ...(m.attributes ?? {}) }) });
      }
      return out;
    } finally {
      signal.removeEventListener('abort', cancel);
    }
  }

  async settle(messages: readonly ReceivedMessage[]): Promise<{ failed: string[]; error?: string }> {
    if (messages.length === 0) return { failed: [] };
    const { client, subscription } = await this.subscriber;
    try {
      await client.acknowledge({ subscription, ackIds: messages.map((m) => m.handle) });
      return { failed: [] };
    } catch (err) {
      return { failed: messages.map((m) => m.id), error: describeGrpcError(err) };
    }
  }

  lag(): Promise<number | undefined> {
    // Pub/Sub tells the backlog through Cloud Monitoring only.
    return Promise.resolve(undefined);
  }

  async close(): Promise<void> {
    if (!this.client) return;
    const { client } = await this.client.catch(() => ({ client: undefined }));
    await client?.close();
  }
}

/** A gRPC error's status and details. */
export function describeGrpcError(err: unknown): string {
  const e = err as { code?: unknown; details?: unknown; message?: unknown };
  const details = typeof e.details === 'string' && e.details !== '' ? e.details : String(e.message ?? err);
  return typeof e.code === 'number' ? `${GRPC_CODES[e.code] ?? `gRPC status ${e.code}`}: ${details}` : details;
}
