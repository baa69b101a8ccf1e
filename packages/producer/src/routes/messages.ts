/**
 * Messages: receive one or a batch (Postoffice's routes) and read one with
 * the state of each delivery (ours). Receipt answers 201 only once the
 * messages are in Redis (see `ingest.ts`).
 */
import { AppError, NotFoundError, ValidationError, type Publisher } from '@postoffice/shared';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { OnceResult } from '../ingest.js';
import { findMessage } from '@postoffice/shared';
import {
  MAX_DELAY_SECONDS,
  SCHEDULE_PAST_TOLERANCE_MS,
  cancelScheduled,
  parseIsoWithOffset,
  scheduleMessage,
} from '../schedule.js';
import { Search, validSearchCursor, type SearchFilters, type SearchPage, type SearchState } from '../search.js';
import type { ApiContext } from '../types.js';
import { BLANK, INVALID } from '../schema-compilers.js';
import { MAX_PAYLOAD_DEPTH, attributeProblems, nestedDeeperThan } from '../validate.js';
import {
  ISO_WHY,
  MAX_QUERY_TEXT,
  SCAN_PAGE,
  attributes,
  body,
  cursorProperty,
  data,
  messageId,
  messageView,
  noContent,
  number,
  params,
  payload,
  publisherId,
  responses,
  scanPageQuery,
  searchItemView,
  timeWithOffset,
  topicName,
  type Schema,
} from '../schemas.js';

const IDEMPOTENCY_HEADER = 'idempotency-key';

const STATES: readonly SearchState[] = [
  'pending',
  'leased',
  'delivered',
  'retrying',
  'dead',
  'purged',
  'skipped',
  'deleted',
];
const ATTRIBUTE_PARAM = 'attributes.';

/** The `Idempotency-Key` header: visible ASCII, 1 to 255 characters, sent once. */
const idempotencyHeaders: Schema = {
  type: 'object',
  properties: {
    [IDEMPOTENCY_HEADER]: {
      type: 'string',
      pattern: '^\\s*[\\x21-\\x7e]{1,255}\\s*$',
      description:
        'Sent again with the same key within 24 hours, the request writes nothing and gets the first answer (`idempotent-replayed: true`).',
      'x-error': 'must be 1 to 255 visible ASCII characters, sent once',
    },
  },
};

const time = (description: string): Schema => timeWithOffset(description, '2030-01-01T10:00:00+02:00');

const sendSchema = {
  tags: ['messages'],
  summary: 'Send a message',
  headers: idempotencyHeaders,
  body: body({ topic: topicName('The topic.'), payload, attributes: attributes() }, ['topic', 'payload']),
  response: responses(
    {
      201: data(
        { type: 'object', required: ['id'], additionalProperties: false, properties: { id: { type: 'string' } } },
        'Stored: the message id.',
      ),
    },
    { 400: 'A field is missing, blank, malformed or unknown; an unknown topic (`topic`).' },
  ),
};

function bulkSchema(maxBulk: number) {
  return {
    tags: ['messages'],
    summary: 'Send messages in one request',
    description: 'All are written atomically in one round trip, with the same attributes.',
    headers: idempotencyHeaders,
    body: body(
      {
        topic: topicName('The topic.', { pattern: { why: INVALID, status: 406 } }),
        payload: {
          type: 'array',
          minItems: 1,
          maxItems: maxBulk,
          items: { ...payload, 'x-error': 'must not contain null (element {index})' },
          description: `The payloads, 1 to MAX_BULK_MESSAGES (${maxBulk}).`,
          'x-group': true,
          'x-error': {
            type: 'must be a list of payloads',
            maxItems: { why: `has more than ${maxBulk} messages`, status: 406 },
          },
        },
        attributes: attributes('Attributes of every message.'),
      },
      ['topic', 'payload'],
    ),
    response: responses(
      {
        201: data(
          {
            type: 'object',
            additionalProperties: false,
            properties: { ids: { type: 'array', items: { type: 'string' } }, id: { type: 'string' } },
            minProperties: 1,
            maxProperties: 1,
          },
          'Stored: the message ids, in order. (A repeated `Idempotency-Key` first used for a single message answers as that request did, `{"id"}`.)',
        ),
      },
      {
        400: 'A bad payload list or attributes, or an unknown field.',
        406: 'An unknown or malformed topic, or more than MAX_BULK_MESSAGES (Postoffice’s status).',
      },
    ),
  };
}

const scheduleSchema = {
  tags: ['messages'],
  summary: 'Send a message to deliver at a given time',
  description: 'Give `schedule_at` or `delay_seconds`, exactly one.',
  body: body(
    {
      topic: topicName('The topic.'),
      payload,
      attributes: attributes(),
      schedule_at: time('Delivered no earlier than this; up to 30 s in the past is due at once.'),
      delay_seconds: number(
        0,
        MAX_DELAY_SECONDS,
        `Instead of \`schedule_at\`: delivered no earlier than this many seconds from now, 0 to ${MAX_DELAY_SECONDS}.`,
        { nullable: false, unit: ' of seconds' },
      ),
    },
    ['topic', 'payload'],
  ),
  response: responses(
    {
      201: data(
        {
          type: 'object',
          required: ['id', 'schedule_at'],
          additionalProperties: false,
          properties: { id: { type: 'string' }, schedule_at: { type: 'string' } },
        },
        'Scheduled.',
      ),
    },
    {
      400: 'A bad field, a time in the past, both or neither of `schedule_at` and `delay_seconds`, an unknown topic.',
    },
  ),
};

const cancelScheduleSchema = {
  tags: ['messages'],
  summary: 'Cancel a scheduled message',
  description: 'Only while it waits for its time: once released into its topic it is an ordinary message.',
  params: params({ id: { ...messageId, 'x-error': 'scheduled message not found' } }),
  response: responses(
    { 204: noContent('Cancelled: it will not be delivered.') },
    { 404: 'No such scheduled message, or it was released already (`id`, with which).' },
  ),
};

const searchSchema = {
  tags: ['messages'],
  summary: 'Search messages',
  description:
    'Newest first; every filter given must hold. `attributes.<name>=<value>` keeps messages with that attribute (several: all). A search stops after SEARCH_SCAN_BUDGET entries: then `truncated` is true and `cursor` goes on.',
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      topic: topicName('Only this topic (an unknown one gives an empty list).'),
      publisher: {
        ...publisherId,
        description: 'Only this publisher’s topic, with its delivery state.',
        'x-error': INVALID,
      },
      state: {
        type: 'string',
        enum: [...STATES],
        description: 'Only messages in this delivery state (for `publisher`, else for any).',
        'x-error': `must be one of ${STATES.join(', ')}`,
      },
      from: time('Received at or after.'),
      to: time('Received at or before.'),
      id: { ...messageId, description: 'That message only.', 'x-error': INVALID },
      q: {
        type: 'string',
        minLength: 1,
        maxLength: MAX_QUERY_TEXT,
        description: `Payloads whose JSON text contains this (case-sensitive), at most ${MAX_QUERY_TEXT} characters.`,
      },
      ...scanPageQuery,
    },
    patternProperties: {
      '^attributes\\..{1,256}$': { type: 'string', maxLength: MAX_QUERY_TEXT },
    },
  },
  response: responses(
    {
      200: data({ type: 'array', items: searchItemView }, 'A page of messages.', {
        cursor: cursorProperty,
        truncated: { type: 'boolean', description: 'The scan budget ran out before the page was full.' },
        scanned: { type: 'integer', description: 'Entries examined.' },
      }),
    },
    { 400: 'A bad or unknown parameter.' },
  ),
};

const getSchema = {
  tags: ['messages'],
  summary: 'Read a message and the state of each delivery',
  params: params({ id: { ...messageId, 'x-error': 'message not found' } }),
  response: responses({ 200: data(messageView, 'The message.') }, { 404: 'No such message (`id`).' }),
};

/** `GET /api/messages`'s answer: a page of the search (a message found by `id` is shown as a `SearchItem`). */
export type SearchAnswer = Omit<SearchPage, 'items'> & { readonly data: SearchPage['items'] };

interface SendBody {
  topic: string;
  payload: unknown;
  attributes?: Record<string, string> | null;
}

interface SearchQuery {
  topic?: string;
  publisher?: string;
  state?: SearchState;
  from?: string;
  to?: string;
  id?: string;
  q?: string;
  limit?: number;
  cursor?: string;
  [attribute: `attributes.${string}`]: string;
}

/** Attribute limits in bytes (the schema counts characters): undefined when none are given. */
function attributesOf(
  value: Record<string, string> | null | undefined,
  field = 'attributes',
): Record<string, string> | undefined {
  if (value == null) return undefined;
  const problems = attributeProblems(value, field);
  if (problems.length > 0) throw new ValidationError(Object.fromEntries(problems.map(([f, why]) => [f, [why]])));
  return value;
}

/** The request's `Idempotency-Key` (checked by the schema), undefined when absent. */
function idempotencyKey(request: FastifyRequest): string | undefined {
  const raw = request.headers[IDEMPOTENCY_HEADER];
  return typeof raw === 'string' ? raw.trim() : undefined;
}

/** Answers as the first request with the key did; a repeat says so in a header. */
function sendOnce(reply: FastifyReply, result: OnceResult): FastifyReply {
  if (result.replayed) void reply.header('idempotent-replayed', 'true');
  const answer = result.kind === 'single' ? { id: result.ids[0] } : { ids: result.ids };
  return reply.code(201).send({ data: answer });
}

/** The search's filters from the (schema-checked) query; what the schema cannot say, a 400 naming the parameter. */
async function searchFilters(ctx: ApiContext, query: SearchQuery): Promise<SearchFilters> {
  const problems: Record<string, string[]> = {};
  const timeOf = (field: 'from' | 'to'): number | undefined => {
    const text = query[field];
    if (text === undefined) return undefined;
    const ms = parseIsoWithOffset(text);
    if (ms === undefined) problems[field] = [ISO_WHY];
    return ms;
  };
  const from = timeOf('from');
  const to = timeOf('to');
  if (from !== undefined && to !== undefined && from > to) problems.to = ['must not be before from'];
  if (query.cursor !== undefined && !validSearchCursor(query.cursor)) problems.cursor = [INVALID];
  let publisher: Publisher | undefined;
  if (query.publisher !== undefined) {
    publisher = await ctx.store.getPublisher(query.publisher);
    if (!publisher) problems.publisher = [INVALID];
  }
  if (Object.keys(problems).length > 0) throw new ValidationError(problems);
  const attributes: Record<string, string> = {};
  for (const [name, v] of Object.entries(query)) {
    if (name.startsWith(ATTRIBUTE_PARAM) && typeof v === 'string') attributes[name.slice(ATTRIBUTE_PARAM.length)] = v;
  }
  return {
    attributes,
    ...(query.topic === undefined ? {} : { topic: query.topic }),
    ...(publisher === undefined ? {} : { publisher }),
    ...(query.state === undefined ? {} : { state: query.state }),
    ...(from === undefined ? {} : { from }),
    ...(to === undefined ? {} : { to }),
    ...(query.q === undefined ? {} : { q: query.q }),
  };
}

export function registerMessageRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const search = new Search(ctx.redis, ctx.keys, ctx.store, ctx.config.searchScanBudget, ctx.config.answerByteBudget);

  app.get<{ Querystring: SearchQuery }>('/api/messages', { schema: searchSchema }, async (request) => {
    const query = request.query;
    const filters = await searchFilters(ctx, query);
    if (query.id !== undefined) {
      // By id: one lookup, then the other filters on what it found.
      const m = await findMessage(ctx.redis, ctx.keys, ctx.store, query.id);
      const keep =
        m !== undefined &&
        (filters.topic === undefined || m.topic === filters.topic) &&
        (filters.publisher === undefined || m.topic === filters.publisher.topic) &&
        (filters.state === undefined ||
          m.deliveries.some(
            (d) => d.state === filters.state && (!filters.publisher || d.publisher_id === filters.publisher.id),
          ));
      return { data: keep ? [m] : [], cursor: null, truncated: false, scanned: m ? 1 : 0 };
    }
    const page = await search.run(filters, query.limit ?? SCAN_PAGE.default, query.cursor);
    return {
      data: page.items,
      cursor: page.cursor,
      truncated: page.truncated,
      scanned: page.scanned,
    } satisfies SearchAnswer;
  });

  app.post<{ Body: SendBody }>('/api/messages', { schema: sendSchema }, async (request, reply) => {
    const { topic, payload } = request.body;
    if (nestedDeeperThan(payload, MAX_PAYLOAD_DEPTH))
      throw new ValidationError({ payload: [`is nested more than ${MAX_PAYLOAD_DEPTH} levels deep`] });
    const attributes = attributesOf(request.body.attributes);
    const result = await ctx.ingest.writeOnce(topic, [payload], attributes, 'single', idempotencyKey(request));
    return sendOnce(reply, result);
  });

  app.post<{ Body: SendBody & { schedule_at?: string; delay_seconds?: number } }>(
    '/api/schedule_messages',
    { schema: scheduleSchema },
    async (request, reply) => {
      const { topic, payload, delay_seconds: delay } = request.body;
      if (request.body.schedule_at !== undefined && delay !== undefined)
        throw new ValidationError({ delay_seconds: ['cannot be given with schedule_at: give one of them'] });
      if (request.body.schedule_at === undefined && delay === undefined)
        throw new ValidationError({ schedule_at: [`${BLANK} (or give delay_seconds)`] });
      if (nestedDeeperThan(payload, MAX_PAYLOAD_DEPTH))
        throw new ValidationError({ payload: [`is nested more than ${MAX_PAYLOAD_DEPTH} levels deep`] });
      const attributes = attributesOf(request.body.attributes);
      const dueAt =
        delay === undefined ? parseIsoWithOffset(request.body.schedule_at as string) : Date.now() + delay * 1000;
      if (dueAt === undefined) throw new ValidationError({ schedule_at: [ISO_WHY] });
      if (dueAt < Date.now() - SCHEDULE_PAST_TOLERANCE_MS)
        throw new ValidationError({ schedule_at: ['is in the past'] });
      const scheduleAt = request.body.schedule_at ?? new Date(dueAt).toISOString();
      const id = await scheduleMessage(ctx.redis, ctx.keys, { topic, payload, attributes, scheduleAt, dueAt });
      request.log.debug({ topic, messageId: id, scheduleAt }, 'message scheduled');
      return reply.code(201).send({ data: { id, schedule_at: new Date(dueAt).toISOString() } });
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/api/schedule_messages/:id',
    { schema: cancelScheduleSchema },
    async (request, reply) => {
      await cancelScheduled(ctx.redis, ctx.keys, request.params.id);
      request.log.info({ messageId: request.params.id }, 'scheduled message cancelled');
      return reply.code(204).send();
    },
  );

  app.post<{ Body: { topic: string; payload: unknown[]; attributes?: Record<string, string> | null } }>(
    '/api/bulk_messages',
    { schema: bulkSchema(ctx.config.maxBulkMessages) },
    async (request, reply) => {
      const { topic, payload: list } = request.body;
      // The list is one level deeper than each payload in it.
      if (nestedDeeperThan(list, MAX_PAYLOAD_DEPTH + 1))
        throw new ValidationError({ payload: [`has an element nested more than ${MAX_PAYLOAD_DEPTH} levels deep`] });
      const attributes = attributesOf(request.body.attributes);
      let result: OnceResult;
      try {
        result = await ctx.ingest.writeOnce(topic, list, attributes, 'bulk', idempotencyKey(request));
      } catch (err) {
        // Postoffice answers 406 for an unknown topic.
        if (err instanceof AppError && err.code === 'topic_not_found')
          throw new ValidationError(err.fields, 406, err.code);
        throw err;
      }
      return sendOnce(reply, result);
    },
  );

  app.get<{ Params: { id: string } }>('/api/messages/:id', { schema: getSchema }, async (request) => {
    const message = await findMessage(ctx.redis, ctx.keys, ctx.store, request.params.id);
    if (!message) throw new NotFoundError('message_not_found', 'id', 'message not found');
    return { data: message };
  });
}
