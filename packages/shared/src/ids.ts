/** Helpers for stream entry ids (`<ms>-<seq>`). */

/** The receipt time of a stream entry: the millisecond part of its id. */
export function streamIdTime(streamId: string): number {
  const dash = streamId.indexOf('-');
  return Number(dash === -1 ? streamId : streamId.slice(0, dash));
}

/** Topic names: what may appear inside a Redis hash tag and a URL path. */
export const TOPIC_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;
