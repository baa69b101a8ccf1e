/**
 * Sources: external queues that feed a topic (an Amazon SQS queue, a Google
 * Cloud Pub/Sub subscription), read by one consumer node at a time. Create,
 * list, read, switch on and off (and change the batch), delete. Answers show
 * the source's state and counters as the node reading it keeps them.
 */
import {
  NotFoundError,
  SOURCE_BOUNDS,
  SOURCE_TYPES,
  SourceStore,
  ValidationError,
  privateAddressOf,
  sourceState,
  type Source,
  type SourceStateName,
  type SourceStats,
  type SourceType,
} from '@postoffice/shared';
import type { FastifyInstance } from 'fastify';
import { INVALID } from '../schema-compilers.js';
import {
  MAX_TARGET,
  body,
  boolean,
  data,
  integer,
  noContent,
  params,
  publisherId,
  responses,
  topicName,
  type Schema,
} from '../schemas.js';
import type { ApiContext } from '../types.js';
import { httpUrlProblem } from '../validate.js';

/** A Pub/Sub subscription id (as for topics: 3 to 255 characters, starting with a letter, not with `goog`). */
const SUBSCRIPTION_ID = /^(?!goog)[A-Za-z][A-Za-z0-9._~+%-]{2,254}$/;
const SUBSCRIPTION_PATH = /^projects\/([a-z0-9.:-]{1,100})\/subscriptions\/([^/\s]+)$/;

function subscriptionProblem(name: string): string | undefined {
  const full = SUBSCRIPTION_PATH.exec(name);
  if (name.startsWith('projects/') && !full)
    return 'must be a subscription id or projects/<project>/subscriptions/<id>';
  return SUBSCRIPTION_ID.test(full ? (full[2] as string) : name)
    ? undefined
    : 'must be a subscription id or projects/<project>/subscriptions/<id>';
}

const B = SOURCE_BOUNDS;

/** A source as the API shows it: its record, its state, and its counters. */
const sourceView: Schema = {
  type: 'object',
  required: [
    'id',
    'topic',
    'type',
    'active',
    'batch_size',
    'state',
    'read',
    'ingested',
    'failed',
    'lag',
    'node',
    'last_read_at',
    'last_error',
    'last_error_at',
    'created_at',
    'updated_at',
  ],
  additionalProperties: false,
  properties: {
    id: { type: 'string' },
    topic: { type: 'string' },
    type: { type: 'string', enum: [...SOURCE_TYPES] },
    active: { type: 'boolean' },
    queue_url: { type: 'string' },
    subscription: { type: 'string' },
    batch_size: { type: 'integer' },
    wait_seconds: { type: 'integer' },
    state: {
      type: 'string',
      enum: ['inactive', 'waiting', 'reading', 'failing'],
      description:
        '`inactive` switched off; `waiting` no node reads it yet; `reading`; `failing` its last receive or write failed (`last_error`).',
    },
    read: { type: 'integer', description: 'Messages received so far (redeliveries included).' },
    ingested: {
      type: 'integer',
      description: 'Messages written to the topic and deleted or acknowledged at the source.',
    },
    failed: { type: 'integer', description: "Messages that could not be written (left to the source's redrive)." },
    lag: { type: ['integer', 'null'], description: 'Messages waiting at the source, where it tells (SQS).' },
    node: { type: ['string', 'null'], description: 'The consumer node reading it.' },
    last_read_at: { type: ['string', 'null'] },
    last_error: { type: ['string', 'null'] },
    last_error_at: { type: ['string', 'null'] },
    created_at: { type: 'string' },
    updated_at: { type: 'string' },
  },
};

/** A source as the API shows it: its record, how it is doing, and its counters. */
export type SourceView = Source & { readonly state: SourceStateName } & Omit<SourceStats, 'failing'>;

function view(source: Source, stats: SourceStats): SourceView {
  const { failing: _failing, ...counters } = stats;
  return { ...source, state: sourceState(source, stats), ...counters };
}

const batchSize = integer(
  1,
  B.pubsub.batch_size.max,
  `Most messages one receive asks for: SQS 1 to ${B.sqs.batch_size.max} (default ${B.sqs.batch_size.default}), Pub/Sub 1 to ${B.pubsub.batch_size.max} (default ${B.pubsub.batch_size.default}).`,
);
const waitSeconds = integer(
  B.sqs.wait_seconds.min,
  B.sqs.wait_seconds.max,
  `SQS: long polling, seconds one receive waits for messages, ${B.sqs.wait_seconds.min} to ${B.sqs.wait_seconds.max} (default ${B.sqs.wait_seconds.default}).`,
);
const idParam = params({ id: { ...publisherId, description: 'A source id.', 'x-error': 'source not found' } });

const createSchema = {
  tags: ['sources'],
  summary: 'Create a source',
  description: 'An SQS queue or a Pub/Sub subscription whose messages are written to the topic, then deleted there.',
  body: body(
    {
      topic: topicName('The topic it feeds.'),
      type: {
        type: 'string',
        enum: [...SOURCE_TYPES],
        description: '`sqs` or `pubsub`.',
        'x-error': { default: INVALID },
      },
      active: boolean('Whether it is read (default true).'),
      queue_url: {
        type: 'string',
        minLength: 1,
        maxLength: MAX_TARGET,
        pattern: '\\S',
        description: `sqs: the queue's URL. At most ${MAX_TARGET} characters.`,
      },
      subscription: {
        type: 'string',
        minLength: 1,
        maxLength: 400,
        pattern: '\\S',
        description: 'pubsub: `projects/<project>/subscriptions/<id>`, or an id in GCLOUD_PUBSUB_PROJECT_ID.',
      },
      batch_size: batchSize,
      wait_seconds: waitSeconds,
    },
    ['topic', 'type'],
  ),
  response: responses(
    { 201: data(sourceView, 'Created.') },
    {
      400: 'A field is missing, malformed, out of range, unknown, or not for this type; an unknown topic (`topic`).',
      409: 'Another source reads that queue or subscription.',
    },
  ),
};

const patchSchema = {
  tags: ['sources'],
  summary: 'Change a source',
  description: 'Switch it on or off, or change its batch; its topic, type and queue are fixed.',
  params: idParam,
  body: body(
    {
      ...Object.fromEntries(
        ['topic', 'type', 'queue_url', 'subscription'].map((f) => [
          f,
          { not: {}, 'x-error': 'cannot be changed', description: 'Fixed at creation: refused.' },
        ]),
      ),
      active: boolean('Whether it is read.', false),
      batch_size: { ...batchSize, type: 'integer' },
      wait_seconds: { ...waitSeconds, type: 'integer' },
    },
    [],
    {
      minProperties: 1,
      'x-error': {
        type: 'must be a JSON object',
        minProperties: 'must change at least one of active, batch_size, wait_seconds',
      },
    },
  ),
  response: responses(
    { 200: data(sourceView, 'The changed source.') },
    { 400: 'A bad, fixed or unknown field, or nothing to change.', 404: 'No such source (`id`).' },
  ),
};

const listSchema = {
  tags: ['sources'],
  summary: 'List sources',
  description: 'Every source, by id, with its state and counters.',
  response: responses({ 200: data({ type: 'array', items: sourceView }, 'The sources.') }),
};

const getSchema = {
  tags: ['sources'],
  summary: 'Read a source',
  params: idParam,
  response: responses({ 200: data(sourceView, 'The source.') }, { 404: 'No such source (`id`).' }),
};

const deleteSchema = {
  tags: ['sources'],
  summary: 'Delete a source',
  description: 'Its reader stops; messages still in the queue stay there.',
  params: idParam,
  response: responses({ 204: noContent('Deleted.') }, { 404: 'No such source (`id`).' }),
};

interface Fields {
  topic?: string;
  type?: SourceType;
  active?: boolean | null;
  queue_url?: string;
  subscription?: string;
  batch_size?: number | null;
  wait_seconds?: number | null;
}

/** Problems with the numbers for this type (the schema allows the widest range). */
function boundsProblems(type: SourceType, fields: Fields, problems: Record<string, string[]>): void {
  if (fields.batch_size != null) {
    const max = B[type].batch_size.max;
    if (fields.batch_size > max) problems.batch_size = [`must be a whole number from 1 to ${max} for ${type} sources`];
  }
  if (fields.wait_seconds != null && type !== 'sqs') problems.wait_seconds = ['is only for sqs sources'];
}

export function registerSourceRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const store = new SourceStore(ctx.redis, ctx.keys);
  const show = async (source: Source): Promise<SourceView> => {
    const [stats] = await store.stats([source]);
    return view(source, stats as SourceStats);
  };

  app.post<{ Body: Fields }>('/api/sources', { schema: createSchema }, async (request, reply) => {
    const fields = request.body;
    const type = fields.type as SourceType;
    const problems: Record<string, string[]> = {};
    const queueUrl = fields.queue_url?.trim();
    const subscription = fields.subscription?.trim();
    if (type === 'sqs') {
      if (queueUrl === undefined) problems.queue_url = ["can't be blank"];
      else {
        const why = httpUrlProblem(queueUrl);
        if (why) problems.queue_url = [why];
      }
      if (subscription !== undefined) problems.subscription = ['is only for pubsub sources'];
    } else {
      if (subscription === undefined) problems.subscription = ["can't be blank"];
      else {
        const why = subscriptionProblem(subscription);
        if (why) problems.subscription = [why];
      }
      if (queueUrl !== undefined) problems.queue_url = ['is only for sqs sources'];
    }
    boundsProblems(type, fields, problems);
    if (Object.keys(problems).length > 0) throw new ValidationError(problems);
    if (type === 'sqs' && ctx.config.refusePrivateTargets) {
      const address = await privateAddressOf(new URL(queueUrl as string).hostname);
      if (address !== undefined)
        throw new ValidationError({
          queue_url: [
            `is or resolves to a private, loopback or link-local address (${address}), refused by REFUSE_PRIVATE_TARGETS`,
          ],
        });
    }
    const source = await store.create({
      topic: fields.topic as string,
      type,
      active: fields.active ?? true,
      ...(type === 'sqs'
        ? {
            queue_url: queueUrl,
            wait_seconds: fields.wait_seconds ?? B.sqs.wait_seconds.default,
          }
        : { subscription }),
      batch_size: fields.batch_size ?? B[type].batch_size.default,
    });
    request.log.info({ topic: source.topic, sourceId: source.id, type }, 'source created');
    return reply.code(201).send({ data: await show(source) });
  });

  app.get('/api/sources', { schema: listSchema }, async () => {
    const all = await store.list();
    const stats = await store.stats(all);
    return { data: all.map((s, i) => view(s, stats[i] as SourceStats)) };
  });

  app.get<{ Params: { id: string } }>('/api/sources/:id', { schema: getSchema }, async (request) => {
    const source = await store.get(request.params.id);
    if (!source) throw new NotFoundError('source_not_found', 'id', 'source not found');
    return { data: await show(source) };
  });

  app.patch<{ Params: { id: string }; Body: Fields }>('/api/sources/:id', { schema: patchSchema }, async (request) => {
    const fields = request.body;
    const source = await store.update(request.params.id, (current) => {
      const problems: Record<string, string[]> = {};
      boundsProblems(current.type, fields, problems);
      if (Object.keys(problems).length > 0) throw new ValidationError(problems);
      return {
        ...current,
        ...(fields.active == null ? {} : { active: fields.active }),
        ...(fields.batch_size == null ? {} : { batch_size: fields.batch_size }),
        ...(fields.wait_seconds == null ? {} : { wait_seconds: fields.wait_seconds }),
      };
    });
    request.log.info({ topic: source.topic, sourceId: source.id, changed: Object.keys(fields) }, 'source changed');
    return { data: await show(source) };
  });

  app.delete<{ Params: { id: string } }>('/api/sources/:id', { schema: deleteSchema }, async (request, reply) => {
    await store.delete(request.params.id);
    request.log.info({ sourceId: request.params.id }, 'source deleted');
    return reply.code(204).send();
  });
}
