/** Topics: create (Postoffice's route), list and read (ours). */
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
}
