/**
 * A publisher's failing messages (retrying and dead letters): a paginated
 * list and the operator's actions, so that nobody needs a Redis shell to
 * unstick a publisher. See `failing.ts`.
 */
import { NotFoundError, ValidationError, type Publisher } from '@postoffice/shared';
import type { FastifyInstance } from 'fastify';
import { Failing, type Selection } from '../failing.js';
import { parseIsoWithOffset } from '../schedule.js';
import type { ApiContext } from '../types.js';
import { BLANK, INVALID } from '../schema-compilers.js';
import {
  ISO_WHY,
  SCAN_PAGE,
  actionResultView,
  body,
  cursorProperty,
  data,
  failingItemView,
  messageId,
  params,
  publisherId,
  responses,
  scanPageQuery,
  timeWithOffset,
  topicName,
  type Schema,
} from '../schemas.js';

const MAX_IDS = 10_000;

type Params = { Params: { id: string } };

const idParam = params({ id: { ...publisherId, 'x-error': 'publisher not found' } });

const ids: Schema = {
  type: 'array',
  minItems: 1,
  maxItems: MAX_IDS,
  items: messageId,
  description: `Message ids, 1 to ${MAX_IDS}.`,
  'x-group': true,
  'x-error': { default: 'must be a non-empty list of message ids', maxItems: `must have at most ${MAX_IDS} ids` },
};
const all: Schema = {
  enum: [true, null],
  description: 'Every failing message of the publisher, instead of `ids`.',
  'x-error': 'must be true when given',
};
const time = (description: string): Schema => timeWithOffset(description);

const actionResponses = responses(
  { 200: data(actionResultView, 'What was done.') },
  { 400: 'A bad, missing or unknown field.', 404: 'No such publisher (`id`).' },
);

const listSchema = {
  tags: ['failing'],
  summary: "List a publisher's retrying messages and dead letters",
  description: 'Retrying messages first (soonest next attempt first), then dead letters (latest first).',
  params: idParam,
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      state: {
        type: 'string',
        enum: ['retrying', 'dead'],
        description: 'Only one kind.',
        'x-error': 'must be retrying or dead',
      },
      ...scanPageQuery,
      topic: topicName('Only this topic (the publisher’s own, or nothing).'),
    },
  },
  response: responses(
    { 200: data({ type: 'array', items: failingItemView }, 'A page.', { cursor: cursorProperty }) },
    { 400: 'A bad or unknown parameter.', 404: 'No such publisher (`id`).' },
  ),
};

const retrySchema = {
  tags: ['failing'],
  summary: 'Retry failing messages now',
  description: 'Due at once, dead letters included. Send `ids` or `"all": true`.',
  params: idParam,
  body: body({ ids, all }),
  response: actionResponses,
};

const nextAttemptSchema = {
  tags: ['failing'],
  summary: 'Move the next attempt of failing messages',
  params: idParam,
  body: body(
    {
      ids,
      all: { not: {}, description: 'Not here: list the ids.', 'x-error': 'is not accepted here: list the ids' },
      next_attempt_at: time('When the next attempt is due.'),
    },
    ['next_attempt_at'],
  ),
  response: actionResponses,
};

const recoverSchema = {
  tags: ['failing'],
  summary: 'Send dead letters again',
  description: 'Every dead letter that died at or after `since` is due at once (one more attempt).',
  params: idParam,
  body: body({ since: time('The earliest death to recover.') }, ['since']),
  response: actionResponses,
};

const deleteSchema = {
  tags: ['failing'],
  summary: 'Delete failing messages for this publisher',
  description: 'Acknowledged for this publisher, never delivered to it. Send `ids` or `"all": true`.',
  params: idParam,
  body: body({ ids, all }),
  response: actionResponses,
};

async function publisherOf(ctx: ApiContext, id: string): Promise<Publisher> {
  const publisher = await ctx.store.getPublisher(id);
  if (!publisher) throw new NotFoundError('publisher_not_found', 'id', 'publisher not found');
  return publisher;
}

interface SelectionBody {
  ids?: string[];
  all?: true | null;
}

/** `{ids: [...]}` or `{all: true}`, exactly one. */
function selection(b: SelectionBody): Selection {
  if (b.all === true) {
    if (b.ids !== undefined) throw new ValidationError({ ids: ['cannot be given with all'] });
    return { all: true };
  }
  if (b.ids === undefined) throw new ValidationError({ ids: [`${BLANK} (or send "all": true)`] });
  return { ids: b.ids };
}

/** The time of a schema-checked ISO-8601 text; a 400 naming `field` for an impossible date. */
function timeOf(text: string, field: string): number {
  const ms = parseIsoWithOffset(text);
  if (ms === undefined) throw new ValidationError({ [field]: [ISO_WHY] });
  return ms;
}

export function registerFailingRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const failing = new Failing(ctx.redis, ctx.keys, ctx.config.answerByteBudget);

  app.get<Params & { Querystring: { state?: 'retrying' | 'dead'; limit?: number; cursor?: string; topic?: string } }>(
    '/api/publishers/:id/failing',
    { schema: listSchema },
    async (request) => {
      const publisher = await publisherOf(ctx, request.params.id);
      const { state, limit, cursor, topic } = request.query;
      if (cursor !== undefined && !Failing.validCursor(cursor)) throw new ValidationError({ cursor: [INVALID] });
      if (topic !== undefined && topic !== publisher.topic) return { data: [], cursor: null };
      const page = await failing.list(publisher, {
        limit: limit ?? SCAN_PAGE.default,
        ...(state === undefined ? {} : { state }),
        ...(cursor === undefined ? {} : { cursor }),
      });
      return { data: page.items, cursor: page.cursor };
    },
  );

  app.post<Params & { Body: SelectionBody }>(
    '/api/publishers/:id/failing/retry',
    { schema: retrySchema },
    async (request) => {
      const publisher = await publisherOf(ctx, request.params.id);
      const selected = selection(request.body);
      const now = Date.now();
      const result = await failing.act(publisher, { kind: 'retry', at: now, note: 'retry_now' }, selected, now);
      request.log.info({ publisherId: publisher.id, count: result.ids.length }, 'retry now');
      return { data: { count: result.ids.length, ids: result.ids, missing: result.missing } };
    },
  );

  app.post<Params & { Body: { ids?: string[]; next_attempt_at: string } }>(
    '/api/publishers/:id/failing/next_attempt',
    { schema: nextAttemptSchema },
    async (request) => {
      const publisher = await publisherOf(ctx, request.params.id);
      const selected = selection({ ...(request.body.ids === undefined ? {} : { ids: request.body.ids }) });
      const at = timeOf(request.body.next_attempt_at, 'next_attempt_at');
      const now = Date.now();
      const result = await failing.act(
        publisher,
        { kind: 'retry', at: Math.max(at, now), note: 'rescheduled' },
        selected,
        now,
      );
      request.log.info({ publisherId: publisher.id, count: result.ids.length }, 'next attempt set');
      return { data: { count: result.ids.length, ids: result.ids, missing: result.missing } };
    },
  );

  app.post<Params & { Body: { since: string } }>(
    '/api/publishers/:id/failing/recover',
    { schema: recoverSchema },
    async (request) => {
      const publisher = await publisherOf(ctx, request.params.id);
      const since = timeOf(request.body.since, 'since');
      const result = await failing.act(publisher, { kind: 'recover', since }, { all: true });
      request.log.info({ publisherId: publisher.id, count: result.ids.length }, 'dead letters recovered');
      return { data: { count: result.ids.length, ids: result.ids } };
    },
  );

  app.post<Params & { Body: SelectionBody }>(
    '/api/publishers/:id/failing/delete',
    { schema: deleteSchema },
    async (request) => {
      const publisher = await publisherOf(ctx, request.params.id);
      const selected = selection(request.body);
      const result = await failing.act(publisher, { kind: 'delete' }, selected);
      request.log.info({ publisherId: publisher.id, count: result.ids.length }, 'failing messages deleted');
      return { data: { count: result.ids.length, ids: result.ids, missing: result.missing } };
    },
  );
}
