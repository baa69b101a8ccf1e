/**
 * The publisher fields of "delivery that listens to the receiver": their
 * schemas (validated by Ajv, shown in the OpenAPI document) and the checks
 * a schema cannot say (header names and bytes, which types take which field).
 */
import { MAX_FILTER_KEYS, MAX_FILTER_VALUES, PUBLISHER_BOUNDS, type PublisherType } from '@postoffice/shared';
import { MAX_ATTRIBUTE_KEY_BYTES, MAX_ATTRIBUTE_VALUE_BYTES } from './validate.js';
import { rangeWhy, type Schema } from './schemas.js';

/** Most target headers, and most bytes of their names and values together. */
export const MAX_HEADERS = 20;
export const MAX_HEADER_BYTES = 8 * 1024;
/** Most statuses in `dead_on_status`. */
export const MAX_DEAD_ON_STATUS = 50;

/**
 * Headers a publisher may not set: hop-by-hop ones, those that describe the
 * body or the connection, and those Postoffice sets itself (`message-id`,
 * `message-ids`, `topic`, the Standard Webhooks `webhook-*`).
 */
const REFUSED_HEADERS = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
  'content-type',
  'content-length',
  'content-encoding',
  'host',
  'message-id',
  'message-ids',
  'topic',
]);
/** A header name: an RFC 9110 token. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export const HEADERS_WHY = `must be an object of at most ${MAX_HEADERS} headers (name: string value), ${MAX_HEADER_BYTES} bytes in all, or null`;
export const FILTER_WHY = `must be {"attributes": {"<name>": "<value>" or ["<value>", …]}} with 1 to ${MAX_FILTER_KEYS} attributes and at most ${MAX_FILTER_VALUES} values each, or null`;

export const headersSchema: Schema = {
  type: ['object', 'null'],
  maxProperties: MAX_HEADERS,
  additionalProperties: { type: 'string' },
  description: `http publishers: headers sent with every delivery (\`{"Authorization": "Bearer …"}\`), at most ${MAX_HEADERS}, ${MAX_HEADER_BYTES} bytes in all; {} or null for none. Write-only: answers show \`header_names\`. Hop-by-hop headers, \`content-*\`, \`host\`, \`message-id\`, \`topic\` and \`webhook-*\` are refused.`,
  'x-group': true,
  'x-error': HEADERS_WHY,
};

/** Why the headers cannot be sent; undefined when they can. */
export function headersProblem(headers: Readonly<Record<string, string>>): string | undefined {
  const seen = new Set<string>();
  let bytes = 0;
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (!TOKEN.test(name) || lower === '__proto__')
      return `has a header name that is not a token: ${JSON.stringify(name)}`;
    if (REFUSED_HEADERS.has(lower) || lower.startsWith('webhook-'))
      return `must not set ${lower}: Postoffice sets it, or it belongs to the connection`;
    if (seen.has(lower)) return `names ${lower} twice`;
    seen.add(lower);
    if (/[\r\n\0]/.test(value)) return `has a value with a line break or NUL in ${name}`;
    bytes += Buffer.byteLength(name) + Buffer.byteLength(value);
  }
  if (bytes > MAX_HEADER_BYTES) return `are ${bytes} bytes, more than ${MAX_HEADER_BYTES}`;
  return undefined;
}

const filterValue: Schema = { type: 'string', maxLength: MAX_ATTRIBUTE_VALUE_BYTES };

/** `{"attributes": {...}}`: also the shape the pull lease's `filter` takes. */
export function filterSchema(description: string): Schema {
  return {
    type: ['object', 'null'],
    required: ['attributes'],
    additionalProperties: false,
    properties: {
      attributes: {
        type: 'object',
        minProperties: 1,
        maxProperties: MAX_FILTER_KEYS,
        propertyNames: { minLength: 1, maxLength: MAX_ATTRIBUTE_KEY_BYTES },
        additionalProperties: {
          anyOf: [
            filterValue,
            { type: 'array', minItems: 1, maxItems: MAX_FILTER_VALUES, uniqueItems: true, items: filterValue },
          ],
        },
      },
    },
    description,
    'x-group': true,
    'x-error': FILTER_WHY,
  };
}

export const deadOnStatusSchema: Schema = {
  type: ['array', 'null'],
  maxItems: MAX_DEAD_ON_STATUS,
  uniqueItems: true,
  items: { type: 'integer', minimum: 300, maximum: 599 },
  description: `http publishers: answer statuses (300 to 599) that make a message a dead letter at once, besides 410 Gone (always final); [] or null for none. At most ${MAX_DEAD_ON_STATUS}.`,
  'x-group': true,
  'x-error': `must be a list of at most ${MAX_DEAD_ON_STATUS} distinct statuses from 300 to 599, or null`,
};

export function batchSizeSchema(nullable: boolean): Schema {
  const b = PUBLISHER_BOUNDS.batch_size;
  return {
    type: nullable ? ['integer', 'null'] : 'integer',
    minimum: b.min,
    maximum: b.max,
    description: `http publishers: most messages per POST, ${b.min} to ${b.max}; above 1 the body is a JSON array of \`{"id", "payload", "attributes"}\` with a \`message-ids\` header. Default 1.`,
    'x-error': { default: rangeWhy(b.min, b.max, true) },
  };
}

export const retryMaxAttemptsSchema: Schema = {
  type: ['integer', 'null'],
  minimum: PUBLISHER_BOUNDS.retry_max_attempts.min,
  maximum: PUBLISHER_BOUNDS.retry_max_attempts.max,
  description: `Attempts after which a message becomes a dead letter, ${PUBLISHER_BOUNDS.retry_max_attempts.min} to ${PUBLISHER_BOUNDS.retry_max_attempts.max}; null (the default) for no limit.`,
  'x-error': {
    default: `${rangeWhy(PUBLISHER_BOUNDS.retry_max_attempts.min, PUBLISHER_BOUNDS.retry_max_attempts.max, true)}, or null`,
  },
};

export function retryMaxAgeSchema(defaultSeconds: number): Schema {
  const b = PUBLISHER_BOUNDS.retry_max_age_seconds;
  return {
    type: ['number', 'null'],
    minimum: b.min,
    maximum: b.max,
    description: `Age in seconds after which a failing message becomes a dead letter, ${b.min} to ${b.max}; null (the default) for RETRY_MAX_AGE_SECONDS (${defaultSeconds}).`,
    'x-error': { default: `${rangeWhy(b.min, b.max, false, ' of seconds')}, or null` },
  };
}

export const orderingAttributeSchema: Schema = {
  type: ['string', 'null'],
  minLength: 1,
  maxLength: MAX_ATTRIBUTE_KEY_BYTES,
  description:
    'With `ordered`: the attribute whose value is the ordering key. Messages with the same value are delivered in stream order, one at a time; different keys in parallel up to `concurrency`; messages without it share one key. Fixed at creation.',
};

/** Which publisher types take each field (a field given to another type is a 400 naming it). */
export const FIELD_TYPES: Readonly<Record<string, readonly PublisherType[]>> = {
  headers: ['http'],
  dead_on_status: ['http'],
  batch_size: ['http'],
  filter: ['http', 'pubsub'],
};

/** Why a field cannot be given to a publisher of `type`. */
export function typeWhy(field: string, type: PublisherType): string | undefined {
  const types = FIELD_TYPES[field];
  if (types === undefined || types.includes(type)) return undefined;
  if (field === 'filter' && type === 'pull') return 'pull publishers filter per lease: give the lease a filter';
  if (field === 'batch_size' && type === 'pubsub')
    return 'only http publishers batch (Pub/Sub batches with chunk_size)';
  return `only ${types.join(' and ')} publishers take ${field}`;
}
