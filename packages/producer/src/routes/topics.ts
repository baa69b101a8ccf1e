/** Topics: create (Postoffice's route), list, read, change and delete (ours). */
import { NotFoundError, ValidationError } from '@postoffice/shared';
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../types.js';
import { publisherView } from './publishers.js';
import { DEFAULT_PAGE, decodeListCursor, encodeListCursor, listQuery, type ListQuery } from './list-page.js';
import {
  MAX_ORIGIN_HOST,
  body,
  boolean,
  cursorProperty,
  data,
  noContent,
  params,
  publisherView as publisherSchema,
  responses,
  text,
  topicName,
  topicView,
} from '../schemas.js';

const originHost = text(
  MAX_ORIGIN_HOST,
  `Where the topic's messages come from; with \`recovery_enabled\`, the URL Postoffice asks for messages the sender failed to publish. At most ${MAX_ORIGIN_HOST} characters.`,
);
const recoveryEnabled = boolean('Whether Postoffice recovers messages from `origin_host` (Postoffice’s field).');
const paused = boolean(
  'true pauses every publisher of the topic: none delivers (nor leases) while messages are still received; false resumes them.',
);
const nameParam = params({
  name: { ...topicName('The topic.'), 'x-error': 'topic not found' },
});

const createSchema = {
  tags: ['topics'],
  summary: 'Create a topic',
  body: body(
    {
      name: topicName('The new topic’s name, fixed for good (its keys carry it).', {
        pattern: 'has invalid format',
        type: 'is invalid',
      }),
      origin_host: originHost,
      recovery_enabled: recoveryEnabled,
    },
    ['name', 'origin_host'],
  ),
  response: responses(
    {
      201: data(
        {
          type: 'object',
          required: ['id', 'name'],
          additionalProperties: false,
          properties: { id: { type: 'integer' }, name: { type: 'string' } },
        },
        'Created.',
      ),
    },
    { 400: 'A field is missing, blank, malformed or unknown.', 409: 'The name is taken (`name`).' },
  ),
};

const listSchema = {
  tags: ['topics'],
  summary: 'List topics',
  description:
    'Without `limit` or `cursor`: every topic, by id (Postoffice clients expect the whole list). With either: one page, by name, and the cursor of the next.',
  querystring: listQuery('topics'),
  response: responses(
    { 200: data({ type: 'array', items: topicView }, 'The topics.', {}, { cursor: cursorProperty }) },
    { 400: 'A bad `limit` or `cursor`.' },
  ),
};

const getSchema = {
  tags: ['topics'],
  summary: 'Read a topic and its publishers',
  params: nameParam,
  response: responses(
    {
      200: data(
        {
          ...topicView,
          required: [...(topicView.required as string[]), 'publishers'],
          properties: {
            ...(topicView.properties as object),
            publishers: { type: 'array', items: publisherSchema },
          },
        },
        'The topic.',
      ),
    },
    { 404: 'No such topic (`name`).' },
  ),
};

const patchSchema = {
  tags: ['topics'],
  summary: 'Change a topic',
  description: 'Its name is its identity and cannot change. `paused` pauses or resumes all its publishers.',
  params: nameParam,
  body: body({
    name: { not: {}, 'x-error': 'cannot be changed', description: 'Fixed: refused.' },
    origin_host: originHost,
    recovery_enabled: recoveryEnabled,
    paused,
  }),
  response: responses(
    { 200: data(topicView, 'The changed topic.') },
    { 400: 'A bad or unknown field, or nothing to change.', 404: 'No such topic (`name`).' },
  ),
};

const deleteSchema = {
  tags: ['topics'],
  summary: 'Delete a topic and its retained messages',
  params: nameParam,
  response: responses(
    { 204: noContent('Deleted.') },
    { 404: 'No such topic (`name`).', 409: 'The topic still has publishers (`name`).' },
  ),
};

type NameParams = { Params: { name: string } };
type TopicChanges = { origin_host?: string | null; recovery_enabled?: boolean | null; paused?: boolean | null };

export function registerTopicRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post<{ Body: { name: string; origin_host: string; recovery_enabled?: boolean | null } }>(
    '/api/topics',
    { schema: createSchema },
    async (request, reply) => {
      const { name, origin_host, recovery_enabled } = request.body;
      const topic = await ctx.store.createTopic({
        name,
        origin_host: origin_host.trim(),
        ...(recovery_enabled == null ? {} : { recovery_enabled }),
      });
      request.log.info({ topic: topic.name, topicId: topic.id }, 'topic created');
      return reply.code(201).send({ data: { id: topic.id, name: topic.name } });
    },
  );

  app.get<{ Querystring: ListQuery }>('/api/topics', { schema: listSchema }, async (request) => {
    const { limit, cursor } = request.query;
    if (limit === undefined && cursor === undefined) return { data: await ctx.store.listTopics() };
    const after = cursor === undefined ? undefined : decodeListCursor(cursor, 'topic');
    const page = await ctx.store.listTopicsPage(after, limit ?? DEFAULT_PAGE);
    return { data: page.items, cursor: page.next === null ? null : encodeListCursor('topic', page.next) };
  });

  app.get<NameParams>('/api/topics/:name', { schema: getSchema }, async (request) => {
    const { name } = request.params;
    const [topic, publishers] = await Promise.all([ctx.store.getTopic(name), ctx.store.listPublishersOfTopic(name)]);
    if (!topic) throw new NotFoundError('no_such_topic', 'name', 'topic not found');
    return { data: { ...topic, publishers: publishers.map(publisherView) } };
  });

  // The name is the topic's identity (its keys' hash tag): only its other fields change.
  app.patch<NameParams & { Body: TopicChanges }>('/api/topics/:name', { schema: patchSchema }, async (request) => {
    const { name } = request.params;
    const { origin_host, recovery_enabled, paused } = request.body;
    if (origin_host == null && recovery_enabled == null && paused == null)
      throw new ValidationError({ body: ['must change at least one of origin_host, recovery_enabled, paused'] });
    const topic = await ctx.store.updateTopic(name, {
      ...(origin_host == null ? {} : { origin_host: origin_host.trim() }),
      ...(recovery_enabled == null ? {} : { recovery_enabled }),
      ...(paused == null ? {} : { paused }),
    });
    request.log.info({ topic: name, ...(paused == null ? {} : { paused }) }, 'topic changed');
    return { data: topic };
  });

  app.delete<NameParams>('/api/topics/:name', { schema: deleteSchema }, async (request, reply) => {
    const { name } = request.params;
    await ctx.store.deleteTopic(name);
    request.log.info({ topic: name }, 'topic deleted');
    return reply.code(204).send();
  });
}
