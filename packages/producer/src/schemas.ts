/**
 * The pieces the routes' JSON schemas are made of: the request fields that
 * several routes share, the error body, and the shapes the API answers
 * with. Routes declare their schemas from these (`routes/*.ts`); requests
 * are validated from them (`schema-compilers.ts`) and the OpenAPI document
 * is generated from them (`openapi.ts`). `x-error` and `x-group` are the
 * validation's annotations (see `schema-compilers.ts`).
 *
 * Every string a client sends has a bound: the ones here, or the body limit.
 */
import { PUBLISHER_TYPES, TOPIC_NAME } from '@postoffice/shared';
import { BLANK, INVALID, type ErrorAnnotation } from './schema-compilers.js';
import { MAX_ATTRIBUTES, MAX_ATTRIBUTE_KEY_BYTES, MAX_ATTRIBUTE_VALUE_BYTES } from './validate.js';

export type Schema = Readonly<Record<string, unknown>>;

/** Longest `origin_host` of a topic. */
export const MAX_ORIGIN_HOST = 2048;
/** Longest publisher target (an http URL; Pub/Sub and pull targets are shorter by their own format). */
export const MAX_TARGET = 2048;
/** Longest message id, cursor or lease token the API reads. */
export const MAX_ID = 512;
export const MAX_CURSOR = 4096;
/** Longest search text (`q`), attribute filter value, and ISO-8601 time. */
export const MAX_QUERY_TEXT = 1024;
export const MAX_TIME_TEXT = 64;

/** ISO-8601 date and time with an explicit offset (`Z` or `±hh:mm`); a space may stand for the `T`, as Postoffice took it. */
export const ISO_WITH_OFFSET =
  '^\\d{4}-\\d{2}-\\d{2}[Tt ]\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?([Zz]|[+-]\\d{2}:?\\d{2})$';
export const ISO_WHY = 'must be an ISO-8601 date and time with an offset';

/** A reason for out-of-range numbers: "must be a whole number from 1 to 1000". */
export function rangeWhy(min: number, max: number, whole: boolean, unit = ''): string {
  return `must be a ${whole ? 'whole number' : 'number'}${unit} from ${min} to ${max}`;
}

/** A whole number in [min, max], or null for "not given" when `nullable`. */
export function integer(min: number, max: number, description: string, nullable = true): Schema {
  return {
    type: nullable ? ['integer', 'null'] : 'integer',
    minimum: min,
    maximum: max,
    description,
    'x-error': { default: rangeWhy(min, max, true) },
  };
}

/** A number in [min, max], or null for "not given" when `nullable`. */
export function number(
  min: number,
  max: number,
  description: string,
  options: { nullable?: boolean; unit?: string; error?: ErrorAnnotation } = {},
): Schema {
  return {
    type: options.nullable === false ? 'number' : ['number', 'null'],
    minimum: min,
    maximum: max,
    description,
    'x-error': options.error ?? { default: rangeWhy(min, max, false, options.unit) },
  };
}

/** A boolean; null counts as not given unless `nullable` is false. */
export function boolean(description: string, nullable = true): Schema {
  return { type: nullable ? ['boolean', 'null'] : 'boolean', description };
}

/** A non-blank string of at most `max` characters. */
export function text(max: number, description: string): Schema {
  return { type: 'string', minLength: 1, maxLength: max, pattern: '\\S', description };
}

/** A topic name. A reference to a topic that does not match is `why` ("is invalid", like an unknown topic). */
export function topicName(description: string, why: ErrorAnnotation = { pattern: INVALID }): Schema {
  return {
    type: 'string',
    pattern: TOPIC_NAME.source,
    description: `${description} Letters, digits, \`.\`, \`_\` and \`-\`, starting with a letter or digit, at most 200.`,
    'x-error': why,
  };
}

/** A message id: opaque, 1 to 512 visible ASCII characters. */
export const messageId: Schema = {
  type: 'string',
  minLength: 1,
  maxLength: MAX_ID,
  pattern: '^[\\x21-\\x7e]+$',
  description: 'A message id, as the API gave it (opaque).',
};

/** A publisher id in a path or a query: a positive whole number, as text. */
export const publisherId: Schema = {
  type: 'string',
  pattern: '^[1-9]\\d{0,17}$',
  description: 'A publisher id.',
};

/** A payload: any JSON value but null. */
export const payload: Schema = {
  type: ['object', 'array', 'string', 'number', 'boolean'],
  description:
    'The message: any JSON value but null, nested at most 100 levels, delivered exactly as sent (a number JSON.parse cannot hold exactly is refused).',
};

/** Attributes: an object of strings within Pub/Sub's limits (byte lengths are checked by the route). */
export function attributes(description = "The message's attributes: strings, delivered with the payload."): Schema {
  return {
    type: ['object', 'null'],
    maxProperties: MAX_ATTRIBUTES,
    propertyNames: {
      minLength: 1,
      maxLength: MAX_ATTRIBUTE_KEY_BYTES,
      'x-error': {
        minLength: 'must not have an empty key',
        maxLength: `must not have a key longer than ${MAX_ATTRIBUTE_KEY_BYTES} bytes`,
      },
    },
    additionalProperties: { type: 'string', 'x-error': 'must be a map of strings' },
    description: `${description} At most ${MAX_ATTRIBUTES}; keys 1 to ${MAX_ATTRIBUTE_KEY_BYTES} bytes, values at most ${MAX_ATTRIBUTE_VALUE_BYTES} bytes (UTF-8).`,
    'x-group': true,
    'x-error': { type: 'must be a map of strings', maxProperties: `must have at most ${MAX_ATTRIBUTES} attributes` },
  };
}

/** A time parameter: ISO-8601 with an offset (`ISO_WITH_OFFSET`), an example in the description when given. */
export function timeWithOffset(description: string, example?: string): Schema {
  return {
    type: 'string',
    maxLength: MAX_TIME_TEXT,
    pattern: ISO_WITH_OFFSET,
    description: `${description} ISO-8601 with an offset${example === undefined ? '' : ` (\`${example}\`)`}.`,
    'x-error': { pattern: ISO_WHY, maxLength: ISO_WHY, type: INVALID },
  };
}

/** Pages of a scan (a publisher's failing messages, a search): how many a page has by default, and at most. */
export const SCAN_PAGE = { default: 50, max: 500 } as const;

/** The `limit` and `cursor` of a scan's query (`SCAN_PAGE`). */
export const scanPageQuery: Record<string, Schema> = {
  limit: {
    type: 'integer',
    minimum: 1,
    maximum: SCAN_PAGE.max,
    description: `Page size, default ${SCAN_PAGE.default}.`,
    'x-error': `must be a whole number from 1 to ${SCAN_PAGE.max}`,
  },
  cursor: {
    type: 'string',
    maxLength: MAX_CURSOR,
    description: 'The `cursor` of the previous page.',
    'x-error': INVALID,
  },
};

/** An object with exactly these properties (no others: an unknown field is refused). */
export function object(
  properties: Record<string, Schema>,
  required: readonly string[] = [],
  extra: Schema = {},
): Schema {
  return {
    type: 'object',
    properties,
    ...(required.length > 0 ? { required } : {}),
    additionalProperties: false,
    ...extra,
  };
}

/** A request body that is a JSON object (`"body": ["must be a JSON object"]` otherwise, `can't be blank` when absent). */
export function body(properties: Record<string, Schema>, required: readonly string[] = [], extra: Schema = {}): Schema {
  return object(properties, required, { 'x-error': { type: 'must be a JSON object', null: BLANK }, ...extra });
}

/** A request body that may be left out: routes whose fields are all optional. */
export function optionalBody(properties: Record<string, Schema>, required: readonly string[] = []): Schema {
  return object(properties, required, { type: ['object', 'null'], 'x-error': { type: 'must be a JSON object' } });
}

/** Path parameters. */
export function params(properties: Record<string, Schema>): Schema {
  return object(properties, Object.keys(properties));
}

/** Postoffice's error body. */
export const errorBody: Schema = view(['data'], {
  data: view(['errors'], {
    errors: {
      type: 'object',
      additionalProperties: { type: 'array', items: { type: 'string' } },
      description: 'Each field at fault, with the reasons.',
    },
  }),
});

/** An answer without a body (204). */
export function noContent(description: string): Schema {
  return { type: 'null', description };
}

/**
 * A route's responses: its answers, and each error status it gives with
 * what it means. Every route may also answer 503 (Redis unreachable) and,
 * with API_TOKENS, 401 and 403 (see the security schemes).
 */
export function responses(ok: Record<number, Schema>, errors: Record<number, string> = {}): Record<string, Schema> {
  const out: Record<string, Schema> = {};
  for (const [status, schema] of Object.entries(ok)) out[status] = schema;
  for (const [status, description] of Object.entries(errors)) out[status] = { ...errorBody, description };
  out[503] = { ...errorBody, description: 'Redis does not answer; try again (`Retry-After`).' };
  return out;
}

/** `{"data": <schema>}`, described, with other properties beside `data` (`required`) or maybe (`optional`). */
export function data(
  schema: Schema,
  description: string,
  required: Record<string, Schema> = {},
  optional: Record<string, Schema> = {},
): Schema {
  return { ...view(['data', ...Object.keys(required)], { data: schema, ...required, ...optional }), description };
}

/** A response object: these properties, the `required` ones always there, no others. */
function view(required: readonly string[], properties: Record<string, Schema>): Schema {
  return { type: 'object', required, additionalProperties: false, properties };
}

const isoTime: Schema = { type: 'string', description: 'ISO-8601 time.' };
const nullableIso: Schema = { type: ['string', 'null'] };
const anyJson: Schema = { description: 'Any JSON value.' };
const stringMap: Schema = { type: 'object', additionalProperties: { type: 'string' } };

export const rateLimitView: Schema = {
  type: ['object', 'null'],
  required: ['per_second', 'burst'],
  additionalProperties: false,
  properties: { per_second: { type: 'number' }, burst: { type: 'integer' } },
};

/** A topic as the API shows it. */
export const topicView: Schema = view(['id', 'name', 'origin_host', 'recovery_enabled', 'created_at'], {
  id: { type: 'integer' },
  name: { type: 'string' },
  origin_host: { type: 'string' },
  recovery_enabled: { type: 'boolean' },
  paused: { type: 'boolean', description: 'No publisher of the topic delivers while true.' },
  created_at: isoTime,
  received: { type: 'integer', description: 'Messages received so far.' },
  recovered: { type: 'integer', description: 'Messages recovered from `origin_host` so far.' },
  last_recovery_at: { type: ['string', 'null'], description: 'When `origin_host` was last asked for messages.' },
  last_recovery_error: {
    type: ['string', 'null'],
    description: 'What went wrong that time (null: nothing).',
  },
});

/** A publisher as the API shows it: its secrets replaced by how many there are. */
export const publisherView: Schema = view(
  ['id', 'topic', 'type', 'target', 'active', 'secrets_count', 'created_at', 'updated_at'],
  {
    id: { type: 'string' },
    topic: { type: 'string' },
    type: { type: 'string', enum: [...PUBLISHER_TYPES] },
    target: { type: 'string' },
    active: { type: 'boolean' },
    from_now: { type: 'boolean' },
    seconds_timeout: { type: 'number' },
    seconds_retry: { type: 'number' },
    chunk_size: { type: 'integer' },
    concurrency: { type: 'integer' },
    parallelism: { type: 'integer' },
    ordered: { type: 'boolean' },
    rate_limit: rateLimitView,
    secrets_count: { type: 'integer' },
    header_names: { type: 'array', items: { type: 'string' }, description: 'The names of its `headers` (write-only).' },
    dead_on_status: { type: 'array', items: { type: 'integer' } },
    retry_max_attempts: { type: ['integer', 'null'] },
    retry_max_age_seconds: { type: ['number', 'null'], description: 'null: RETRY_MAX_AGE_SECONDS.' },
    filter: {
      type: ['object', 'null'],
      required: ['attributes'],
      additionalProperties: false,
      properties: {
        attributes: {
          type: 'object',
          additionalProperties: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
        },
      },
    },
    batch_size: { type: 'integer' },
    ordering_attribute: { type: ['string', 'null'] },
    created_at: isoTime,
    updated_at: isoTime,
  },
);

/** One delivery attempt, or for a pull publisher one lease. */
const attemptView: Schema = {
  type: 'object',
  required: ['at'],
  properties: {
    at: isoTime,
    status: { type: 'integer' },
    error: { type: 'string' },
    response: { type: 'string', description: 'A failed attempt: the first 1 KB of the answer’s body, as text.' },
    duration_ms: { type: 'number' },
    worker: { type: 'object' },
    lease_expires_at: isoTime,
    outcome: { type: 'string' },
    ended_at: isoTime,
  },
  description:
    'An attempt (`status` or `error`, `response`), a message skipped by the filter (`outcome` `skipped`), or for a pull publisher a lease (`worker`, `outcome`…).',
};

const deliveryStates = ['pending', 'leased', 'delivered', 'retrying', 'dead', 'deleted', 'purged', 'skipped'];

/** A message with the state of its delivery to each publisher. */
export const messageView: Schema = view(['id', 'topic', 'payload', 'attributes', 'deliveries'], {
  id: { type: 'string' },
  topic: { type: 'string' },
  payload: anyJson,
  attributes: stringMap,
  state: { type: 'string', enum: ['scheduled'], description: 'Only while the message waits for `schedule_at`.' },
  schedule_at: isoTime,
  received_at: isoTime,
  deliveries: {
    type: 'array',
    items: view(['publisher_id', 'target', 'type', 'state', 'attempt_count', 'attempts'], {
      publisher_id: { type: 'string' },
      target: { type: 'string' },
      type: { type: 'string' },
      state: { type: 'string', enum: deliveryStates },
      attempt_count: { type: 'integer' },
      attempts: { type: 'array', items: attemptView },
      next_attempt_at: isoTime,
      dead_reason: { type: 'string' },
      last_action: view(['action', 'at'], { action: { type: 'string' }, at: isoTime }),
      replaced_by: { type: 'array', items: { type: 'string' } },
    }),
  },
});

/** One message found by a search. */
export const searchItemView: Schema = view(['id', 'topic', 'received_at', 'payload', 'attributes'], {
  id: { type: 'string' },
  topic: { type: 'string' },
  received_at: isoTime,
  payload: anyJson,
  attributes: stringMap,
  deliveries: {
    type: 'array',
    items: view(['publisher_id', 'state'], {
      publisher_id: { type: 'string' },
      state: { type: 'string', enum: deliveryStates },
    }),
    description: 'With `state` or `publisher`: each publisher’s delivery state.',
  },
});

/** One retrying message or dead letter of a publisher. */
export const failingItemView: Schema = view(
  ['id', 'topic', 'state', 'received_at', 'attempt_count', 'payload', 'attributes'],
  {
    id: { type: 'string' },
    topic: { type: 'string' },
    state: {
      type: 'string',
      enum: ['retrying', 'dead', 'leased'],
      description: '`leased`: a pull publisher’s message that a worker holds (until `lease_expires_at`).',
    },
    received_at: isoTime,
    next_attempt_at: isoTime,
    lease_expires_at: isoTime,
    dead_at: isoTime,
    dead_reason: { type: 'string' },
    attempt_count: { type: 'integer' },
    last_attempt: attemptView,
    payload: anyJson,
    attributes: stringMap,
  },
);

/** What an action on failing messages did. */
export const actionResultView: Schema = view(['count', 'ids'], {
  count: { type: 'integer' },
  ids: { type: 'array', items: { type: 'string' }, description: 'Message ids acted on.' },
  missing: {
    type: 'array',
    items: { type: 'string' },
    description: 'Ids given that were neither retrying nor dead.',
  },
});

/** What a purge did, or would do (`POST /api/publishers/:id/purge`). */
export const purgeResultView: Schema = view(['count', 'unread', 'pending', 'dead', 'before', 'dry_run'], {
  count: { type: 'integer', description: 'Messages purged (or that would be): the sum of the next three.' },
  unread: { type: 'integer', description: 'Not read yet: skipped.' },
  pending: {
    type: 'integer',
    description: 'Read and not settled (in flight, waiting for a retry, leased): acknowledged.',
  },
  dead: { type: 'integer', description: 'Dead letters, dropped from the failing list.' },
  before: { type: 'string', description: 'The time used (ISO-8601).' },
  dry_run: { type: 'boolean' },
});

/** What a seek did, or would do (`POST /api/publishers/:id/seek`). */
export const seekResultView: Schema = view(['count', 'retrying', 'dead', 'to', 'dry_run'], {
  count: { type: 'integer', description: 'Messages given again (or that would be).' },
  retrying: {
    type: 'integer',
    description: 'Of those, messages that waited for a retry or were leased: read again instead.',
  },
  dead: { type: 'integer', description: 'Of those, dead letters, dropped from the failing list.' },
  to: { type: 'string', description: 'The time used (ISO-8601).' },
  dry_run: { type: 'boolean' },
});

/** A leased message of a pull publisher. */
export const leaseView: Schema = view(['token', 'expires_at', 'attempt', 'message'], {
  token: { type: 'string', description: 'Answer the lease with it.' },
  expires_at: isoTime,
  attempt: { type: 'integer' },
  message: view(['id', 'topic', 'payload', 'attributes', 'received_at'], {
    id: { type: 'string' },
    topic: { type: 'string' },
    payload: anyJson,
    attributes: stringMap,
    received_at: isoTime,
  }),
});

/** How a lease was answered. */
export const settledView: Schema = view(['id', 'publisher_id', 'state'], {
  id: { type: 'string' },
  publisher_id: { type: 'string' },
  state: { type: 'string', enum: ['delivered', 'retrying', 'dead', 'leased'] },
  next_attempt_at: isoTime,
  dead_reason: { type: 'string' },
  expires_at: isoTime,
  replaced_by: { type: 'array', items: { type: 'string' } },
});

/** The consumer nodes, the slots they hold and each publisher's backlog (`GET /api/cluster`). */
export const clusterView: Schema = view(['nodes', 'publishers', 'singletons'], {
  nodes: {
    type: 'array',
    items: view(['id', 'last_heartbeat', 'slots'], {
      id: { type: 'string' },
      host: { type: 'string' },
      pid: { type: 'integer' },
      started_at: isoTime,
      last_heartbeat: isoTime,
      slots: { type: 'array', items: { type: 'string' } },
    }),
  },
  publishers: {
    type: 'array',
    items: view(
      ['id', 'topic', 'active', 'parallelism', 'ordered', 'rate_limit', 'slots', 'lag', 'pending', 'retrying'],
      {
        id: { type: 'string' },
        topic: { type: 'string' },
        active: { type: 'boolean' },
        parallelism: { type: 'integer' },
        ordered: { type: 'boolean' },
        rate_limit: rateLimitView,
        slots: {
          type: 'array',
          items: view(['slot', 'node'], { slot: { type: 'integer' }, node: { type: ['string', 'null'] } }),
        },
        lag: { type: ['integer', 'null'] },
        pending: { type: 'integer' },
        retrying: { type: 'integer' },
      },
    ),
  },
  singletons: { type: 'object', additionalProperties: { type: ['string', 'null'] } },
});

/** The dashboard's figures (`GET /api/stats`). */
export const statsView: Schema = {
  type: 'object',
  required: [
    'topics',
    'publishers',
    'received',
    'delivered',
    'pending',
    'retrying',
    'dead',
    'backlog',
    'per_publisher',
  ],
  properties: {
    topics: { type: 'integer' },
    publishers: { type: 'integer' },
    active_publishers: { type: 'integer' },
    received: { type: 'integer', description: 'Messages received, all topics (a message counts once).' },
    delivered: {
      type: 'integer',
      description: 'Deliveries made: messages delivered, summed over publishers (a message sent to two counts twice).',
    },
    pending: {
      type: 'integer',
      description: 'Deliveries read and not settled: in flight, retrying and leased.',
    },
    retrying: { type: 'integer', description: 'Deliveries waiting for a retry.' },
    leased: { type: 'integer', description: 'Pull deliveries held by a worker’s lease.' },
    in_flight: { type: 'integer', description: 'Deliveries with an attempt under way.' },
    unread: { type: 'integer', description: 'Deliveries not started: messages the publishers have not read yet.' },
    dead: { type: 'integer', description: 'Dead letters (deliveries given up on) kept.' },
    skipped: { type: 'integer' },
    deleted: { type: 'integer' },
    backlog: { type: 'integer', description: 'Deliveries not made yet: unread + pending.' },
    circuits_open: { type: 'integer', description: 'Publishers whose circuit breaker is open or probing.' },
    per_publisher: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'topic', 'backlog'],
        properties: {
          id: { type: 'string' },
          topic: { type: 'string' },
          type: { type: 'string' },
          target: { type: 'string' },
          active: { type: 'boolean' },
          unread: { type: 'integer' },
          pending: { type: 'integer' },
          retrying: { type: 'integer' },
          leased: { type: 'integer' },
          dead: { type: 'integer' },
          skipped: { type: 'integer' },
          deleted: { type: 'integer' },
          in_flight: { type: 'integer' },
          backlog: { type: 'integer' },
          delivered: { type: 'integer' },
          circuit: {
            type: ['object', 'null'],
            description: 'The circuit breaker while it is open or probing; null when closed.',
            required: ['state', 'since', 'next_probe_at'],
            properties: {
              state: { type: 'string', enum: ['open', 'probing'] },
              since: isoTime,
              next_probe_at: { ...nullableIso, description: 'When the open circuit tries one message again.' },
              failures: { type: 'integer', description: 'Consecutive failed attempts that opened it.' },
              node: { type: 'string', description: 'The consumer node running the publisher.' },
            },
          },
          oldest_undelivered_at: nullableIso,
          oldest_undelivered_age_seconds: { type: ['integer', 'null'] },
        },
      },
    },
  },
  description: 'Open to new fields: the dashboard’s figures grow.',
};

const nullableCount: Schema = { type: ['integer', 'null'] };

/** `GET /api/stats/series`. */
export const seriesView: Schema = {
  type: 'object',
  required: ['window', 'bucket_seconds', 'from', 'to', 'topic', 'publisher', 'points', 'publishers'],
  properties: {
    window: { type: 'string', enum: ['hour', 'day'] },
    bucket_seconds: { type: 'integer', description: '60 (hour) or 600 (day).' },
    from: { ...isoTime, description: 'The first bucket’s start.' },
    to: { ...isoTime, description: 'Now: the last bucket ends here.' },
    topic: { ...nullableIso, description: 'The topic in scope, or null for all.' },
    publisher: { ...nullableIso, description: 'The publisher in scope, or null.' },
    points: {
      type: 'array',
      items: {
        type: 'object',
        required: ['at', 'received', 'delivered', 'failed', 'backlog', 'oldest_age_seconds'],
        properties: {
          at: { ...isoTime, description: 'The bucket’s start.' },
          received: { type: 'integer', description: 'Messages received by the topics in scope.' },
          delivered: { type: 'integer', description: 'Messages delivered by the publishers in scope (deliveries).' },
          failed: {
            type: 'integer',
            description: 'Failed attempts (to be retried, or dead) of the publishers in scope.',
          },
          backlog: {
            ...nullableCount,
            description: 'Highest sampled backlog (summed over the publishers) in the bucket; null: no sample.',
          },
          oldest_age_seconds: {
            ...nullableCount,
            description: 'Highest sampled age of the oldest undelivered message in the bucket; null: no sample.',
          },
        },
      },
    },
    publishers: {
      type: 'array',
      description: 'Each publisher in scope: its backlog now and its samples per bucket.',
      items: {
        type: 'object',
        required: ['id', 'topic', 'backlog', 'oldest_undelivered_age_seconds', 'points'],
        properties: {
          id: { type: 'string' },
          topic: { type: 'string' },
          backlog: { type: 'integer' },
          oldest_undelivered_age_seconds: nullableCount,
          points: {
            type: 'array',
            items: {
              type: 'object',
              required: ['at', 'backlog', 'oldest_age_seconds'],
              properties: { at: isoTime, backlog: nullableCount, oldest_age_seconds: nullableCount },
            },
          },
        },
      },
    },
  },
};

/** A page of a list: the items and the cursor of the next page (null on the last). */
export const cursorProperty: Schema = {
  type: ['string', 'null'],
  description: 'Give it back as `cursor` for the next page; null on the last page.',
};
