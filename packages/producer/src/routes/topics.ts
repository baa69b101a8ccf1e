/** Topics: create (Postoffice's route), list, read, change and delete (ours). */
import { NotFoundError } from '@postoffice/shared';
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../types.js';
import { publisherView } from './publishers.js';
import { BAD_FORMAT, Checker, isTopicName, objectBody } from '../validate.js';

export function registerTopicRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post('/api/topics', async (request, reply) => {
    const c = new Checker(objectBody(request.body));
    const name = c.topicName('name', BAD_FORMAT);
    const origin_host = c.requiredString('origin_host');
    const recovery_enabled = c.optionalBoolean('recovery_enabled');
    c.done();
    const topic = await ctx.store.createTopic({
      name: name as string,
      origin_host: origin_host as string,
      ...(recovery_enabled === undefined ? {} : { recovery_enabled }),
    });
    request.log.info({ topic: topic.name, topicId: topic.id }, 'topic created');
    return reply.code(201).send({ data: { id: topic.id, name: topic.name } });
  });

  app.get('/api/topics', async () => {
    return { data: await ctx.store.listTopics() };
  });

  app.get<{ Params: { name: string } }>('/api/topics/:name', async (request) => {
    const { name } = request.params;
    const notFound = () => new NotFoundError('topic_not_found', 'name', 'topic not found');
    if (!isTopicName(name)) throw notFound();
    const [topic, publishers] = await Promise.all([ctx.store.getTopic(name), ctx.store.listPublishersOfTopic(name)]);
    if (!topic) throw notFound();
    return { data: { ...topic, publishers: publishers.map(publisherView) } };
  });

  // The name is the topic's identity (its keys' hash tag): only its other fields change.
  app.patch<{ Params: { name: string } }>('/api/topics/:name', async (request) => {
    const { name } = request.params;
    if (!isTopicName(name)) throw new NotFoundError('topic_not_found', 'name', 'topic not found');
    const c = new Checker(objectBody(request.body));
    if (Object.hasOwn(c.body, 'name')) c.add('name', 'cannot be changed');
    const origin_host = c.present('origin_host') ? c.requiredString('origin_host') : undefined;
    const recovery_enabled = c.optionalBoolean('recovery_enabled');
    if (c.ok && origin_host === undefined && recovery_enabled === undefined)
      c.add('body', 'must change at least one of origin_host, recovery_enabled');
    c.done();
    const topic = await ctx.store.updateTopic(name, {
      ...(origin_host === undefined ? {} : { origin_host }),
      ...(recovery_enabled === undefined ? {} : { recovery_enabled }),
    });
    request.log.info({ topic: name }, 'topic changed');
    return { data: topic };
  });

  app.delete<{ Params: { name: string } }>('/api/topics/:name', async (request, reply) => {
    const { name } = request.params;
    if (!isTopicName(name)) throw new NotFoundError('topic_not_found', 'name', 'topic not found');
    await ctx.store.deleteTopic(name);
    request.log.info({ topic: name }, 'topic deleted');
    return reply.code(204).send();
  });
}
