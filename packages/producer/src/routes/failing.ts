/**
 * A publisher's failing messages (retrying and dead letters): a paginated
 * list and the operator's actions, so that nobody needs a Redis shell to
 * unstick a publisher. See `failing.ts`.
 */
import { NotFoundError, type Publisher } from '@postoffice/shared';
import type { FastifyInstance } from 'fastify';
import { Failing, type FailingState, type Selection } from '../failing.js';
import { parseIsoWithOffset } from '../schedule.js';
import type { ApiContext } from '../types.js';
import { BLANK, Checker, INVALID, isTopicName, objectBody } from '../validate.js';

const ID = /^[1-9]\d{0,17}$/;
const MAX_IDS = 10_000;
const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 500;
const ISO_WHY = 'must be an ISO-8601 date and time with an offset';

type Params = { Params: { id: string } };
type Query = Record<string, string | string[] | undefined>;

async function publisherOf(ctx: ApiContext, id: string): Promise<Publisher> {
  const notFound = new NotFoundError('publisher_not_found', 'id', 'publisher not found');
  if (!ID.test(id)) throw notFound;
  const publisher = await ctx.store.getPublisher(id);
  if (!publisher) throw notFound;
  return publisher;
}

/** `{ids: [...]}` or `{all: true}`, exactly one. */
function selection(c: Checker): Selection | undefined {
  const ids = c.value('ids');
  const all = c.value('all');
  if (all !== undefined && all !== null) {
    if (all !== true) c.add('all', 'must be true when given');
    else if (ids !== undefined && ids !== null) c.add('ids', 'cannot be given with all');
    else return { all: true };
    return undefined;
  }
  if (ids === undefined || ids === null) {
    c.add('ids', `${BLANK} (or send "all": true)`);
    return undefined;
  }
  if (!Array.isArray(ids) || ids.length === 0 || !ids.every((v) => typeof v === 'string' && v !== '')) {
    c.add('ids', 'must be a non-empty list of message ids');
    return undefined;
  }
  if (ids.length > MAX_IDS) {
    c.add('ids', `must have at most ${MAX_IDS} ids`);
    return undefined;
  }
  return { ids: ids as string[] };
}

function time(c: Checker, field: string): number | undefined {
  const text = c.requiredString(field);
  if (text === undefined) return undefined;
  const ms = parseIsoWithOffset(text);
  if (ms === undefined) c.add(field, ISO_WHY);
  return ms;
}

function single(query: Query, field: string, c: Checker): string | undefined {
  const v = query[field];
  if (Array.isArray(v)) {
    c.add(field, 'must be given once');
    return undefined;
  }
  return v;
}

export function registerFailingRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const failing = new Failing(ctx.redis, ctx.keys);

  app.get<Params & { Querystring: Query }>('/api/publishers/:id/failing', async (request) => {
    const publisher = await publisherOf(ctx, request.params.id);
    const query = request.query;
    const c = new Checker({});
    const state = single(query, 'state', c);
    if (state !== undefined && state !== 'retrying' && state !== 'dead') c.add('state', 'must be retrying or dead');
    const limitText = single(query, 'limit', c);
    const limit = limitText === undefined ? DEFAULT_LIMIT : Number(limitText);
    if (!/^\d+$/.test(limitText ?? '1') || limit < 1 || limit > MAX_LIMIT)
      c.add('limit', `must be a whole number from 1 to ${MAX_LIMIT}`);
    const cursor = single(query, 'cursor', c);
    if (cursor !== undefined && !Failing.validCursor(cursor)) c.add('cursor', INVALID);
    const topic = single(query, 'topic', c);
    if (topic !== undefined && !isTopicName(topic)) c.add('topic', INVALID);
    c.done();
    if (topic !== undefined && topic !== publisher.topic) return { data: [], cursor: null };
    const page = await failing.list(publisher, {
      limit,
      ...(state === undefined ? {} : { state: state as FailingState }),
      ...(cursor === undefined ? {} : { cursor }),
    });
    return { data: page.items, cursor: page.cursor };
  });

  app.post<Params>('/api/publishers/:id/failing/retry', async (request) => {
    const publisher = await publisherOf(ctx, request.params.id);
    const c = new Checker(objectBody(request.body));
    const selected = selection(c);
    c.done();
    const now = Date.now();
    const result = await failing.act(
      publisher,
      { kind: 'retry', at: now, note: 'retry_now' },
      selected as Selection,
      now,
    );
    request.log.info({ publisherId: publisher.id, count: result.ids.length }, 'retry now');
    return { data: { count: result.ids.length, ids: result.ids, missing: result.missing } };
  });

  app.post<Params>('/api/publishers/:id/failing/next_attempt', async (request) => {
    const publisher = await publisherOf(ctx, request.params.id);
    const c = new Checker(objectBody(request.body));
    const selected = selection(c);
    if (selected && 'all' in selected) c.add('all', 'is not accepted here: list the ids');
    const at = time(c, 'next_attempt_at');
    c.done();
    const now = Date.now();
    const result = await failing.act(
      publisher,
      { kind: 'retry', at: Math.max(at as number, now), note: 'rescheduled' },
      selected as Selection,
      now,
    );
    request.log.info({ publisherId: publisher.id, count: result.ids.length }, 'next attempt set');
    return { data: { count: result.ids.length, ids: result.ids, missing: result.missing } };
  });

  app.post<Params>('/api/publishers/:id/failing/recover', async (request) => {
    const publisher = await publisherOf(ctx, request.params.id);
    const c = new Checker(objectBody(request.body));
    const since = time(c, 'since');
    c.done();
    const result = await failing.act(publisher, { kind: 'recover', since: since as number }, { all: true });
    request.log.info({ publisherId: publisher.id, count: result.ids.length }, 'dead letters recovered');
    return { data: { count: result.ids.length, ids: result.ids } };
  });

  app.post<Params>('/api/publishers/:id/failing/delete', async (request) => {
    const publisher = await publisherOf(ctx, request.params.id);
    const c = new Checker(objectBody(request.body));
    const selected = selection(c);
    c.done();
    const result = await failing.act(publisher, { kind: 'delete' }, selected as Selection);
    request.log.info({ publisherId: publisher.id, count: result.ids.length }, 'failing messages deleted');
    return { data: { count: result.ids.length, ids: result.ids, missing: result.missing } };
  });
}
