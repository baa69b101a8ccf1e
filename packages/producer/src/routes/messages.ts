/**
 * Messages: receive one or a batch (Postoffice's routes) and read one with
 * the state of each delivery (ours). Receipt answers 201 only once the
 * messages are in Redis (see `ingest.ts`).
 */
import { AppError, NotFoundError, ValidationError } from '@postoffice/shared';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { OnceResult } from '../ingest.js';
import { findMessage } from '../message-lookup.js';
import { SCHEDULE_PAST_TOLERANCE_MS, parseIsoWithOffset, scheduleMessage } from '../schedule.js';
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

export function registerMessageRoutes(app: FastifyInstance, ctx: ApiContext): void {
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
