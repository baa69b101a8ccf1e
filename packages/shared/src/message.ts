import { streamIdTime } from './ids.js';
import type { StoredMessage } from './types.js';

const NO_ATTRIBUTES: Readonly<Record<string, string>> = Object.freeze({});

/** A stream entry's flat field list (`id`, `p`, `a`) as a message. */
export function parseEntry(streamId: string, fields: readonly string[]): StoredMessage {
  let id = '';
  let payload = 'null';
  let attributes = NO_ATTRIBUTES;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i];
    const value = fields[i + 1] as string;
    if (name === 'id') id = value;
    else if (name === 'p') payload = value;
    else if (name === 'a') attributes = JSON.parse(value) as Record<string, string>;
  }
  return { streamId, id, payload, attributes, receivedAt: streamIdTime(streamId) };
}
