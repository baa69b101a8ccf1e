import { messageId, streamIdTime } from './ids.js';
import type { StoredMessage } from './types.js';

const NO_ATTRIBUTES: Readonly<Record<string, string>> = Object.freeze({});

/**
 * A stream entry's flat field list as a message of `topic`. Fields: `p`
 * (payload JSON), `a` (attributes JSON, absent when there are none) and,
 * only for a message whose id was given before it entered the stream (a
 * scheduled message, a pull replacement, or one written before ids named
 * their entry), `id`. Every other message's id is `<topic>.<stream id>`.
 */
export function parseEntry(topic: string, streamId: string, fields: readonly string[]): StoredMessage {
  let id: string | undefined;
  let payload = 'null';
  let attributes = NO_ATTRIBUTES;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i];
    const value = fields[i + 1] as string;
    if (name === 'p') payload = value;
    else if (name === 'a') attributes = JSON.parse(value) as Record<string, string>;
    else if (name === 'id') id = value;
  }
  return {
    streamId,
    id: id ?? messageId(topic, streamId),
    payload,
    attributes,
    receivedAt: streamIdTime(streamId),
    ...(id === undefined ? {} : { storedId: true }),
  };
}
