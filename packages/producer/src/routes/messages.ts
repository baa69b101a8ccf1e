/**
 * Messages: receive one or a batch (Postoffice's routes) and read one with
 * the state of each delivery (ours). Receipt answers 201 only once the
 * messages are in Redis (see `ingest.ts`).
 */
import { AppError, NotFoundError, ValidationError, type DeliveryStateName, type Publisher } from '@postoffice/shared';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { OnceResult } from '../ingest.js';
import { findMessage } from '@postoffice/shared';
import { SCHEDULE_PAST_TOLERANCE_MS, parseIsoWithOffset, scheduleMessage } from '../schedule.js';
import { Search, validSearchCursor, type SearchFilters } from '../search.js';
import type { ApiContext } from '../types.js';
import { BLANK, Checker, INVALID, MAX_PAYLOAD_DEPTH, isTopicName, nestedDeeperThan, objectBody } from '../validate.js';

const IDEMPOTENCY_HEADER = 'idempotency-key';
/** Visible ASCII, 1 to 255 characters. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** The request's `Idempotency-Key`, undefined when absent; a 400 naming the header when malformed. */
function idempotencyKey(request: FastifyRequest): string | undefined {
  const raw = request.headers[IDEMPOTENCY_HEADER];
  if (raw === undefined) return undefined;
  const value = Array.isArray(raw) ? undefined : raw.trim();
  if (value === undefined || !IDEMPOTENCY_KEY.test(value)) {
    throw new ValidationError({ [IDEMPOTENCY_HEADER]: ['must be 1 to 255 visible ASCII characters, sent once'] });
  }
  return value;
}

/** Answers as the first request with the key did; a repeat says so in a header. */
function sendOnce(reply: FastifyReply, result: OnceResult): FastifyReply {
  if (result.replayed) void reply.header('idempotent-replayed', 'true');
  const data = result.kind === 'single' ? { id: result.ids[0] } : { ids: result.ids };
  return reply.code(201).send({ data });
}

const STATES: readonly DeliveryStateName[] = ['pending', 'delivered', 'retrying', 'dead'];
const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 500;
const PUBLISHER_ID = /^[1-9]\d{0,17}$/;
const ATTRIBUTE_PARAM = 'attributes.';

type Query = Record<string, string | string[] | undefined>;

/** The search's filters from the query string; every problem in one 400 naming the parameter. */
async function searchQuery(
  ctx: ApiContext,
  query: Query,
): Promise<{ filters: SearchFilters; limit: number; cursor?: string; id?: string }> {
  const c = new Checker({});
  const one = (field: string): string | undefined => {
    const v = query[field];
    if (Array.isArray(v)) {
      c.add(field, 'must be given once');
      return undefined;
    }
    return v;
  };
  const time = (field: string): number | undefined => {
    const text = one(field);
    if (text === undefined) return undefined;
    const ms = parseIsoWithOffset(text);
    if (ms === undefined) c.add(field, 'must be an ISO-8601 date and time with an offset');
    return ms;
  };
  const topic = one('topic');
  if (topic !== undefined && !isTopicName(topic)) c.add('topic', INVALID);
  const state = one('state');
  if (state !== undefined && !(STATES as readonly string[]).includes(state))
    c.add('state', `must be one of ${STATES.join(', ')}`);
  const from = time('from');
  const to = time('to');
  if (from !== undefined && to !== undefined && from > to) c.add('to', 'must not be before from');
  const q = one('q');
  if (q === '') c.add('q', BLANK);
  const id = one('id');
  const limitText = one('limit');
  const limit = limitText === undefined ? DEFAULT_LIMIT : Number(limitText);
  if (!/^\d+$/.test(limitText ?? '1') || limit < 1 || limit > MAX_LIMIT)
    c.add('limit', `must be a whole number from 1 to ${MAX_LIMIT}`);
  const cursor = one('cursor');
  if (cursor !== undefined && !validSearchCursor(cursor)) c.add('cursor', INVALID);
  const attributes: Record<string, string> = {};
  for (const name of Object.keys(query)) {
    if (!name.startsWith(ATTRIBUTE_PARAM) || name.length === ATTRIBUTE_PARAM.length) continue;
    const v = one(name);
    if (v !== undefined) attributes[name.slice(ATTRIBUTE_PARAM.length)] = v;
  }
  const publisherId = one('publisher');
  let publisher: Publisher | undefined;
  if (publisherId !== undefined) {
    publisher = PUBLISHER_ID.test(publisherId) ? await ctx.store.getPublisher(publisherId) : undefined;
    if (!publisher) c.add('publisher', INVALID);
  }
  c.done();
  const filters: SearchFilters = {
    attributes,
    ...(topic === undefined ? {} : { topic }),
    ...(publisher === undefined ? {} : { publisher }),
    ...(state === undefined ? {} : { state: state as DeliveryStateName }),
    ...(from === undefined ? {} : { from }),
    ...(to === undefined ? {} : { to }),
    ...(q === undefined ? {} : { q }),
  };
  return { filters, limit, ...(cursor === undefined ? {} : { cursor }), ...(id === undefined ? {} : { id }) };
}

export function registerMessageRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const search = new Search(ctx.redis, ctx.keys, ctx.store, ctx.config.searchScanBudget);

  app.get<{ Querystring: Query }>('/api/messages', async (request) => {
    const { filters, limit, cursor, id } = await searchQuery(ctx, request.query);
    if (id !== undefined) {
      // By id: one lookup, then the other filters on what it found.
      const m = await findMessage(ctx.redis, ctx.keys, ctx.store, id);
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
    const page = await search.run(filters, limit, cursor);
    return { data: page.items, cursor: page.cursor, truncated: page.truncated, scanned: page.scanned };
  });
  app.post('/api/messages', async (request, reply) => {
    const c = new Checker(objectBody(request.body));
    const topic = c.topicName('topic');
    const payload = c.payload();
    const attributes = c.optionalAttributes();
    c.done();
    const key = idempotencyKey(request);
    const result = await ctx.ingest.writeOnce(topic as string, [payload], attributes, 'single', key);
    return sendOnce(reply, result);
  });

  app.post('/api/schedule_messages', async (request, reply) => {
    const c = new Checker(objectBody(request.body));
    const topic = c.topicName('topic');
    const payload = c.payload();
    const attributes = c.optionalAttributes();
    const scheduleAt = c.requiredString('schedule_at');
    let dueAt: number | undefined;
    if (scheduleAt !== undefined) {
      dueAt = parseIsoWithOffset(scheduleAt);
      if (dueAt === undefined) c.add('schedule_at', 'must be an ISO-8601 date and time with an offset');
      else if (dueAt < Date.now() - SCHEDULE_PAST_TOLERANCE_MS) c.add('schedule_at', 'is in the past');
    }
    c.done();
    const id = await scheduleMessage(ctx.redis, ctx.keys, {
      topic: topic as string,
      payload,
      attributes,
      scheduleAt: scheduleAt as string,
      dueAt: dueAt as number,
    });
    request.log.debug({ topic, messageId: id, scheduleAt }, 'message scheduled');
    return reply.code(201).send({ data: { id, schedule_at: new Date(dueAt as number).toISOString() } });
  });

  app.post('/api/bulk_messages', async (request, reply) => {
    const c = new Checker(objectBody(request.body));
    const topic = c.requiredString('topic');
    const payloads = c.value('payload');
    if (payloads === undefined || payloads === null) c.add('payload', BLANK);
    else if (!Array.isArray(payloads)) c.add('payload', 'must be a list of payloads');
    else if (payloads.length === 0) c.add('payload', 'must not be empty');
    else {
      const at = payloads.indexOf(null);
      if (at !== -1) c.add('payload', `must not contain null (element ${at})`);
      else if (nestedDeeperThan(payloads, MAX_PAYLOAD_DEPTH + 1)) {
        c.add('payload', `has an element nested more than ${MAX_PAYLOAD_DEPTH} levels deep`);
      }
    }
    const attributes = c.optionalAttributes();
    c.done(400);
    const list = payloads as unknown[];
    const key = idempotencyKey(request);
    // Postoffice answers 406 for an unknown topic and for too many messages.
    if (!isTopicName(topic as string)) c.add('topic', INVALID);
    if (list.length > ctx.config.maxBulkMessages)
      c.add('payload', `has more than ${ctx.config.maxBulkMessages} messages`);
    c.done(406);
    let result: OnceResult;
    try {
      result = await ctx.ingest.writeOnce(topic as string, list, attributes, 'bulk', key);
    } catch (err) {
      if (err instanceof AppError && err.code === 'topic_not_found')
        throw new ValidationError(err.fields, 406, err.code);
      throw err;
    }
    return sendOnce(reply, result);
  });

  app.get<{ Params: { id: string } }>('/api/messages/:id', async (request) => {
    const { id } = request.params;
    const notFound = () => new NotFoundError('message_not_found', 'id', 'message not found');
    const message = await findMessage(ctx.redis, ctx.keys, ctx.store, id);
    if (!message) throw notFound();
    return { data: message };
  });
}
