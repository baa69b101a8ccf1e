/** Helpers for stream entry ids (`<ms>-<seq>`) and message ids. */

/** The receipt time of a stream entry: the millisecond part of its id. */
export function streamIdTime(streamId: string): number {
  const dash = streamId.indexOf('-');
  return Number(dash === -1 ? streamId : streamId.slice(0, dash));
}

/** The largest value of either part of a stream entry id: Redis keeps each as an unsigned 64-bit integer. */
export const MAX_STREAM_ID_PART = 18446744073709551615n;
const STREAM_ID = /^(\d{1,20})-(\d{1,20})$/;

/**
 * Whether `text` is a stream entry id Redis accepts (`<ms>-<seq>`, both
 * parts 0 to 2^64-1). Every stream id that comes from outside (a cursor, a
 * token, a message id) is checked with this before it reaches a stream
 * command: Redis refuses anything else with an error.
 */
export function isStreamId(text: string): boolean {
  const m = STREAM_ID.exec(text);
  if (!m) return false;
  const [, ms, seq] = m as unknown as [string, string, string];
  return (ms.length < 20 || BigInt(ms) <= MAX_STREAM_ID_PART) && (seq.length < 20 || BigInt(seq) <= MAX_STREAM_ID_PART);
}

/** Topic names: what may appear inside a Redis hash tag and a URL path. */
export const TOPIC_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

/** A Pub/Sub topic id: 3 to 255 characters, starting with a letter, not with `goog`. */
const PUBSUB_TOPIC_ID = /^(?!goog)[A-Za-z][A-Za-z0-9._~+%-]{2,254}$/;
const PUBSUB_TOPIC_PATH = /^projects\/([a-z0-9.:-]{1,100})\/topics\/([^/\s]+)$/;

/** Whether `target` names a Pub/Sub topic: a topic id, or `projects/<project>/topics/<topic id>`. */
export function isPubsubTopic(target: string): boolean {
  const full = PUBSUB_TOPIC_PATH.exec(target);
  if (target.startsWith('projects/') && !full) return false;
  return PUBSUB_TOPIC_ID.test(full ? (full[2] as string) : target);
}

/** The full topic name: the target itself when it is `projects/<p>/topics/<t>`, else in `projectId`. */
export function pubsubTopicName(target: string, projectId: string): string {
  if (PUBSUB_TOPIC_PATH.test(target)) return target;
  return projectId ? `projects/${projectId}/topics/${target}` : target;
}

/** A pull publisher's target: the name of its subscription (letters, digits, `.`, `_`, `-`, at most 200). */
export const PULL_NAME = TOPIC_NAME;

/**
 * A message's id: `<topic>.<stream entry id>`. It locates the message (its
 * topic, hence its hash slot, and its entry) without any index, so ingest
 * writes nothing but the entry. Clients treat it as opaque text.
 */
export function messageId(topic: string, streamId: string): string {
  return `${topic}.${streamId}`;
}

/**
 * What a message id names:
 *  - `{topic, streamId}` for `<topic>.<stream id>`, the id of every message received directly;
 *  - `{topic, alias}` for `<topic>.<other>`, an id given before the message entered its stream
 *    (a scheduled message, a pull replacement), found through the topic's id index;
 *  - `{alias}` for an id without a topic (a UUID given before ids named their topic);
 *  - undefined for text that cannot be an id.
 */
export type MessageRef =
  | { readonly topic: string; readonly streamId: string; readonly alias?: undefined }
  | { readonly topic: string; readonly alias: string; readonly streamId?: undefined }
  | { readonly topic?: undefined; readonly alias: string; readonly streamId?: undefined };

const LEGACY_ID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

export function parseMessageId(id: string): MessageRef | undefined {
  if (id.length > 512) return undefined;
  const dot = id.lastIndexOf('.');
  if (dot > 0) {
    const topic = id.slice(0, dot);
    const rest = id.slice(dot + 1);
    if (TOPIC_NAME.test(topic) && rest !== '') {
      if (isStreamId(rest)) return { topic, streamId: rest };
      if (/^[A-Za-z0-9_-]{1,64}$/.test(rest)) return { topic, alias: id };
    }
  }
  if (LEGACY_ID.test(id)) return { alias: id };
  return undefined;
}

/** Orders two stream ids: negative, zero or positive. */
export function compareStreamIds(a: string, b: string): number {
  const da = a.indexOf('-');
  const db = b.indexOf('-');
  const ma = a.slice(0, da);
  const mb = b.slice(0, db);
  if (ma.length !== mb.length) return ma.length - mb.length;
  if (ma !== mb) return ma < mb ? -1 : 1;
  const sa = a.slice(da + 1);
  const sb = b.slice(db + 1);
  if (sa.length !== sb.length) return sa.length - sb.length;
  return sa === sb ? 0 : sa < sb ? -1 : 1;
}
