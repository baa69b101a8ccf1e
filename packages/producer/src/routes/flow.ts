/**
 * Operations on a publisher's whole flow: purge its backlog, seek it back
 * in time (see `flow-control.ts`). Each answers with the number of messages
 * it affected; with `"dry_run": true` it only counts, which is how the web
 * UI shows the count before the operator confirms.
 */
import { NotFoundError, ValidationError, type Publisher } from '@postoffice/shared';
import type { FastifyInstance } from 'fastify';
import { FlowControl } from '../flow-control.js';
import { parseIsoWithOffset } from '../schedule.js';
import type { ApiContext } from '../types.js';
import { INVALID } from '../schema-compilers.js';
import {
  ISO_WHY,
  ISO_WITH_OFFSET,
  MAX_TIME_TEXT,
  boolean,
  body,
  data,
  optionalBody,
  params,
  publisherId,
  purgeResultView,
  responses,
  seekResultView,
  type Schema,
} from '../schemas.js';

type Params = { Params: { id: string } };

const idParam = params({ id: { ...publisherId, 'x-error': 'publisher not found' } });

const time = (description: string): Schema => ({
  type: 'string',
  maxLength: MAX_TIME_TEXT,
  pattern: ISO_WITH_OFFSET,
  description: `${description} ISO-8601 with an offset.`,
  'x-error': { pattern: ISO_WHY, maxLength: ISO_WHY, type: INVALID },
});

const dryRun = boolean('Only count: nothing changes, and the answer is the count the operation would have.');

const purgeSchema = {
  tags: ['publishers'],
  summary: "Purge a publisher's backlog",
  description:
    'Every message received before `before` (default now) that the publisher has not delivered is skipped and never sent: not read yet, in flight, waiting for a retry, leased, or dead. Each shows as `purged` in its history. Other publishers are not affected.',
  params: idParam,
  body: optionalBody({
    before: time('Purge messages received before this time (default now; a later time counts as now).'),
    dry_run: dryRun,
  }),
  response: responses(
    {
      200: data(purgeResultView, 'What was purged (or would be).'),
    },
    { 400: 'A bad or unknown field.', 404: 'No such publisher (`id`).' },
  ),
};

const seekSchema = {
  tags: ['publishers'],
  summary: 'Seek a publisher back to a time',
  description:
    'The publisher receives again every retained message received at or after `to`, delivered or not (Pub/Sub’s seek). Messages it has not read yet are unaffected, and a time after them moves nothing; a `from_now` publisher goes back no further than its creation.',
  params: idParam,
  body: body({ to: time('Give again the messages received at or after this time.'), dry_run: dryRun }, ['to']),
  response: responses(
    {
      200: data(seekResultView, 'What was given again (or would be).'),
    },
    { 400: 'A bad, missing or unknown field.', 404: 'No such publisher (`id`).' },
  ),
};

async function publisherOf(ctx: ApiContext, id: string): Promise<Publisher> {
  const publisher = await ctx.store.getPublisher(id);
  if (!publisher) throw new NotFoundError('publisher_not_found', 'id', 'publisher not found');
  return publisher;
}

/** The time of a schema-checked ISO-8601 text; a 400 naming `field` for an impossible date. */
function timeOf(text: string, field: string): number {
  const ms = parseIsoWithOffset(text);
  if (ms === undefined) throw new ValidationError({ [field]: [ISO_WHY] });
  return ms;
}

export function registerFlowRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const flow = new FlowControl(ctx.redis, ctx.keys, ctx.now);

  app.post<Params & { Body: { before?: string | null; dry_run?: boolean | null } | null }>(
    '/api/publishers/:id/purge',
    { schema: purgeSchema },
    async (request) => {
      const publisher = await publisherOf(ctx, request.params.id);
      const b = request.body ?? {};
      const now = ctx.now();
      const before = b.before == null ? now : Math.min(now, timeOf(b.before, 'before'));
      const dry = b.dry_run === true;
      const result = await flow.purge(publisher, before, dry);
      if (!dry) {
        request.log.info(
          { topic: publisher.topic, publisherId: publisher.id, before: new Date(before).toISOString(), ...result },
          'backlog purged',
        );
      }
      return { data: { ...result, before: new Date(before).toISOString(), dry_run: dry } };
    },
  );

  app.post<Params & { Body: { to: string; dry_run?: boolean | null } }>(
    '/api/publishers/:id/seek',
    { schema: seekSchema },
    async (request) => {
      const publisher = await publisherOf(ctx, request.params.id);
      const dry = request.body.dry_run === true;
      const { to, ...result } = await flow.seek(publisher, timeOf(request.body.to, 'to'), dry);
      if (!dry) {
        request.log.info(
          { topic: publisher.topic, publisherId: publisher.id, to: new Date(to).toISOString(), ...result },
          'publisher sought back',
        );
      }
      return { data: { ...result, to: new Date(to).toISOString(), dry_run: dry } };
    },
  );
}
