/**
 * What a source reader needs of an external queue: receive a batch, then
 * delete (SQS) or acknowledge (Pub/Sub) the messages it has written. Each
 * kind of source has its client (`SqsClient`, `PubsubSubscriberClient`);
 * tests may give their own.
 */
import type { Source } from '@postoffice/shared';

/** One message received from a source. */
export interface ReceivedMessage {
  /** Its id at the source (SQS MessageId, Pub/Sub messageId): what makes a repeat a repeat. */
  readonly id: string;
  /** The payload's JSON text. */
  readonly payload: string;
  readonly attributes: Readonly<Record<string, string>>;
  /** What deletes or acknowledges it (SQS ReceiptHandle, Pub/Sub ackId). */
  readonly handle: string;
}

export interface SourceClient {
  /** Receives up to the source's batch size, waiting as the source allows; `signal` aborts the wait. */
  receive(signal: AbortSignal): Promise<ReceivedMessage[]>;
  /** Deletes or acknowledges the messages; returns the ids of those it could not, with why. */
  settle(messages: readonly ReceivedMessage[]): Promise<{ failed: string[]; error?: string }>;
  /** Messages waiting at the source, when the source tells; undefined otherwise. */
  lag(): Promise<number | undefined>;
  close(): Promise<void>;
}

/** Makes the client of a source. */
export type SourceClientFactory = (source: Source) => SourceClient;

/** The attribute a text payload carries: the body was not JSON, and is kept as a JSON string. */
export const TEXT_PAYLOAD_ATTRIBUTE = 'payload_format';

/**
 * A message body as a payload: its JSON (compact) when it is JSON and not
 * null, otherwise the text as a JSON string, with `payload_format: text`.
 */
export function payloadOf(
  body: string,
  attributes: Record<string, string>,
): { payload: string; attributes: Record<string, string> } {
  try {
    const value = JSON.parse(body) as unknown;
    if (value !== null) return { payload: JSON.stringify(value), attributes };
  } catch {
    // Not JSON: kept as text.
  }
  return { payload: JSON.stringify(body), attributes: { ...attributes, [TEXT_PAYLOAD_ATTRIBUTE]: 'text' } };
}
