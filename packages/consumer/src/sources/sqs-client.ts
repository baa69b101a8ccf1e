/**
 * An SQS source's client, through the official `@aws-sdk/client-sqs`: the
 * endpoint, region and credentials come from the SDK's own chain (the
 * standard `AWS_*` environment variables, a web identity, the instance
 * role). `ReceiveMessage` long-polls for up to `wait_seconds`; String
 * message attributes become attributes; `DeleteMessageBatch` removes what was
 * written; `GetQueueAttributes` tells the lag (ApproximateNumberOfMessages).
 *
 * The SDK is loaded when the first SQS source is read: a node without one
 * never pays for it.
 */
import type { SQSClient, SQSClientConfig } from '@aws-sdk/client-sqs';
import { SOURCE_BOUNDS, type Logger, type Source } from '@postoffice/shared';
import { payloadOf, type ReceivedMessage, type SourceClient } from './source-client.js';

type Sdk = typeof import('@aws-sdk/client-sqs');

let sdk: Promise<Sdk> | undefined;

export class SqsClient implements SourceClient {
  private client: Promise<{ sdk: Sdk; client: SQSClient }> | undefined;
  private readonly queueUrl: string;
  private readonly batch: number;
  private readonly wait: number;

  /** `config`: settings for the SDK's client beside the environment's (tests give an endpoint and credentials). */
  constructor(
    source: Source,
    private readonly config: SQSClientConfig = {},
  ) {
    this.queueUrl = source.queue_url ?? '';
    this.batch = source.batch_size;
    this.wait = source.wait_seconds ?? SOURCE_BOUNDS.sqs.wait_seconds.default;
  }

  private get sqs(): Promise<{ sdk: Sdk; client: SQSClient }> {
    this.client ??= (sdk ??= import('@aws-sdk/client-sqs')).then((loaded) => ({
      sdk: loaded,
      client: new loaded.SQSClient({
        // A long poll holds the request for `wait` seconds: give it that and some.
        requestHandler: {
          connectionTimeout: 5000,
          requestTimeout: (this.wait + 15) * 1000,
          throwOnRequestTimeout: true,
        },
        ...this.config,
      }),
    }));
    return this.client;
  }

  async receive(signal: AbortSignal): Promise<ReceivedMessage[]> {
    const { sdk: s, client } = await this.sqs;
    const out = await client.send(
      new s.ReceiveMessageCommand({
        QueueUrl: this.queueUrl,
        MaxNumberOfMessages: this.batch,
        WaitTimeSeconds: this.wait,
        MessageAttributeNames: ['All'],
      }),
      { abortSignal: signal },
    );
    const messages: ReceivedMessage[] = [];
    for (const m of out.Messages ?? []) {
      if (m.MessageId === undefined || m.ReceiptHandle === undefined) continue;
      const attributes: Record<string, string> = {};
      for (const [name, value] of Object.entries(m.MessageAttributes ?? {})) {
        if (value.DataType?.startsWith('String') && value.StringValue !== undefined)
          attributes[name] = value.StringValue;
      }
      messages.push({ id: m.MessageId, handle: m.ReceiptHandle, ...payloadOf(m.Body ?? '', attributes) });
    }
    return messages;
  }

  async settle(messages: readonly ReceivedMessage[]): Promise<{ failed: string[]; error?: string }> {
    const { sdk: s, client } = await this.sqs;
    const failed: string[] = [];
    let error: string | undefined;
    for (let at = 0; at < messages.length; at += 10) {
      const chunk = messages.slice(at, at + 10);
      try {
        const out = await client.send(
          new s.DeleteMessageBatchCommand({
            QueueUrl: this.queueUrl,
            Entries: chunk.map((m, i) => ({ Id: String(i), ReceiptHandle: m.handle })),
          }),
        );
        for (const f of out.Failed ?? []) {
          const m = chunk[Number(f.Id)];
          if (m) failed.push(m.id);
          error ??= `${f.Code ?? 'error'}: ${f.Message ?? 'DeleteMessageBatch failed'}`;
        }
      } catch (err) {
        failed.push(...chunk.map((m) => m.id));
        error ??= describeSqsError(err);
      }
    }
    return error === undefined ? { failed } : { failed, error };
  }

  async lag(): Promise<number | undefined> {
    const { sdk: s, client } = await this.sqs;
    const out = await client.send(
      new s.GetQueueAttributesCommand({ QueueUrl: this.queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }),
    );
    const n = Number(out.Attributes?.ApproximateNumberOfMessages);
    return Number.isFinite(n) ? n : undefined;
  }

  async close(): Promise<void> {
    if (!this.client) return;
    const { client } = await this.client;
    client.destroy();
  }
}

/** A short reason: the SDK's error name and message. */
export function describeSqsError(err: unknown): string {
  const e = err as { name?: string; message?: string };
  const name = e.name && e.name !== 'Error' ? `${e.name}: ` : '';
  return `${name}${e.message ?? String(err)}`;
}

/** The SDK's logger, onto the node's: its warnings and errors become log lines (never bare console output). */
export function sdkLogger(logger: Logger): NonNullable<SQSClientConfig['logger']> {
  const text = (args: unknown[]): string => args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ');
  return {
    trace: () => undefined,
    debug: () => undefined,
    info: () => undefined,
    warn: (...args: unknown[]) => logger.warn({ sdk: text(args) }, 'AWS SDK warning'),
    error: (...args: unknown[]) => logger.error({ sdk: text(args) }, 'AWS SDK error'),
  };
}
