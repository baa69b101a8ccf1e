/** Helpers for stream entry ids (`<ms>-<seq>`). */

/** The receipt time of a stream entry: the millisecond part of its id. */
export function streamIdTime(streamId: string): number {
  const dash = streamId.indexOf('-');
  return Number(dash === -1 ? streamId : streamId.slice(0, dash));
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
