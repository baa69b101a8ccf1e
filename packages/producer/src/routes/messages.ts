/**
 * Messages: receive one or a batch (Postoffice's routes) and read one with
 * the state of each delivery (ours). Receipt answers 201 only once the
 * messages are in Redis (see `ingest.ts`).
 */
import { AppError, NotFoundError, ValidationError } from '@postoffice/shared';
import type { FastifyInstance } from 'fastify';
import { findMessage } from '../message-lookup.js';
import type { ApiContext } from '../types.js';
import { BLANK, Checker, INVALID, MAX_PAYLOAD_DEPTH, isTopicName, nestedDeeperThan, objectBody } from '../validate.js';

export function registerMessageRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post('/api/messages', async (request, reply) => {
    const c = new Checker(objectBody(request.body));
    const topic = c.topicName('topic');
    const payload = c.payload();
    const attributes = c.optionalAttributes();
    c.done();
    const [id] = await ctx.ingest.write(topic as string, [payload], attributes, 'single');
    return reply.code(201).send({ data: { id } });
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
    // Postoffice answers 406 for an unknown topic and for too many messages.
    if (!isTopicName(topic as string)) c.add('topic', INVALID);
    if (list.length > ctx.config.maxBulkMessages)
      c.add('payload', `has more than ${ctx.config.maxBulkMessages} messages`);
    c.done(406);
    let ids: string[];
    try {
      ids = await ctx.ingest.write(topic as string, list, attributes, 'bulk');
    } catch (err) {
      if (err instanceof AppError && err.code === 'topic_not_found')
        throw new ValidationError(err.fields, 406, err.code);
      throw err;
    }
    return reply.code(201).send({ data: { ids } });
  });

  app.get<{ Params: { id: string } }>('/api/messages/:id', async (request) => {
    const { id } = request.params;
    const notFound = () => new NotFoundError('message_not_found', 'id', 'message not found');
    const message = await findMessage(ctx.redis, ctx.keys, ctx.store, id);
    if (!message) throw notFound();
    return { data: message };
  });
}
