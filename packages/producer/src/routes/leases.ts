/**
 * Pull publishers: workers lease messages and answer for each lease
 * (complete, retry later, fail for good, extend, replace). The state
 * machine lives in `PullQueue` (shared); these routes validate and map.
 */
import {
  ValidationError,
  NotFoundError,
  scripts,
  type Config,
  type LeaseTarget,
  type LeaseWorker,
  type LeasedMessage,
  type MessageFilter,
  type Publisher,
  type Replacement,
} from '@postoffice/shared';
import { filterSchema } from '../publisher-fields.js';
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../types.js';
import { MAX_PAYLOAD_DEPTH, attributeProblems, nestedDeeperThan } from '../validate.js';
import {
  MAX_ID,
  attributes,
  body,
  data,
  integer,
  leaseView as leaseSchema,
  number,
  object,
  optionalBody,
  params,
  payload,
  publisherId,
  responses,
  settledView,
  topicName,
  type Schema,
} from '../schemas.js';

/** Longest lease a worker may ask for (12 hours), and the shortest (a millisecond). */
export const MAX_LEASE_SECONDS = 12 * 3600;
export const MIN_LEASE_SECONDS = 0.001;
export const DEFAULT_LEASE_SECONDS = 30;
/** Most messages one lease call hands out. */
export const MAX_LEASE_COUNT = 1000;
/** Longest a lease request may wait for messages (`wait_seconds`). */
export const MAX_WAIT_SECONDS = 20;
/** Longest reason kept; a longer one is cut. */
const MAX_REASON = 2000;
const MAX_WORKER_TEXT = 255;
const MAX_PID = 4_294_967_295;

const leaseSeconds = (what: string): Schema =>
  number(
    MIN_LEASE_SECONDS,
    MAX_LEASE_SECONDS,
    `${what}, ${MIN_LEASE_SECONDS} to ${MAX_LEASE_SECONDS} seconds; default ${DEFAULT_LEASE_SECONDS}.`,
    { unit: ' of seconds' },
  );

const workerText = (what: string): Schema => ({
  type: ['string', 'null'],
  maxLength: MAX_WORKER_TEXT,
  description: what,
  'x-error': `must be a string of at most ${MAX_WORKER_TEXT} characters`,
});

const reason: Schema = {
  type: ['string', 'null'],
  description: `Why, recorded in the message's history (cut to ${MAX_REASON} characters).`,
};

const tokenParam = params({
  token: {
    type: 'string',
    minLength: 1,
    maxLength: MAX_ID,
    description: 'The token the lease came with.',
    'x-error': 'lease not found',
  },
});

const settledResponses = (ok: string, extra: Record<number, string> = {}) =>
  responses(
    { 200: data(settledView, ok) },
    {
      404: 'No such lease (`token`).',
      409: 'The lease has ended: expired, answered, or given to another worker (`token`).',
      ...extra,
    },
  );

function leaseSchemas(config: Config) {
  const maxBulk = config.maxBulkMessages;
  return {
    lease: {
      tags: ['pull'],
      summary: 'Lease messages of a pull publisher',
      description:
        'Up to `max` available messages, oldest first, each with a token; maybe none (at once, or after `wait_seconds`). An ordered publisher gives out one message at a time (per key); a rate limit gives out at most its tokens.',
      params: params({ id: { ...publisherId, 'x-error': 'publisher not found' } }),
      body: optionalBody({
        max: integer(1, MAX_LEASE_COUNT, `How many at most, 1 to ${MAX_LEASE_COUNT}; default 1.`),
        lease_seconds: leaseSeconds('How long the lease lasts'),
        worker: object(
          {
            host: workerText('The worker’s host.'),
            pid: integer(0, MAX_PID, 'The worker’s process id.'),
            name: workerText('The worker’s name.'),
          },
          [],
          {
            type: ['object', 'null'],
            description: 'Who leases: recorded with the lease.',
            'x-error': { type: 'must be an object with host, pid and name' },
          },
        ),
        filter: {
          anyOf: [
            attributes('Only messages whose attributes include all of these (the shape before `{"attributes": …}`).'),
            filterSchema(
              'Only messages whose attributes match: each named attribute equal to the value, or to one of the list.',
            ),
          ],
          description:
            'Only messages whose attributes match: `{"attributes": {"kind": "order", "region": ["eu", "us"]}}` (a list: any of its values), as a publisher’s filter; `{"kind": "order"}` still works.',
          'x-group': true,
          'x-error':
            'must be {"attributes": {"<name>": "<value>" or ["<value>", …]}} (or a map of attribute names to strings)',
        },
        wait_seconds: number(
          0,
          MAX_WAIT_SECONDS,
          `With nothing to lease, wait up to this long for messages (a long poll), 0 (default) to ${MAX_WAIT_SECONDS}.`,
          { unit: ' of seconds' },
        ),
      }),
      response: responses(
        { 200: data({ type: 'array', items: leaseSchema }, 'The leased messages.') },
        {
          400: 'A bad or unknown field, or not a pull publisher (`id`).',
          404: 'No such publisher (`id`).',
          429: 'Too many lease requests wait on this producer (`wait_seconds`); try again (`Retry-After`).',
        },
      ),
    },
    complete: {
      tags: ['pull'],
      summary: 'Complete a lease: the message is done',
      params: tokenParam,
      body: optionalBody({}),
      response: settledResponses('Delivered.'),
    },
    retry: {
      tags: ['pull'],
      summary: 'Give a leased message back, to lease again later',
      description:
        'A message older than its max age (`retry_max_age_seconds`, else RETRY_MAX_AGE_SECONDS), or leased `retry_max_attempts` times, becomes a dead letter instead.',
      params: tokenParam,
      body: optionalBody({
        in_seconds: number(
          0,
          config.retryMaxAgeSeconds,
          `Seconds before it may be leased again, 0 (default) to RETRY_MAX_AGE_SECONDS (${config.retryMaxAgeSeconds}).`,
        ),
        reason,
      }),
      response: settledResponses('Retrying (or dead past the max age).', { 400: 'A bad or unknown field.' }),
    },
    fail: {
      tags: ['pull'],
      summary: 'Fail a leased message for good: a dead letter',
      params: tokenParam,
      body: body({ reason: { ...reason, type: 'string', minLength: 1, pattern: '\\S' } }, ['reason']),
      response: settledResponses('Dead.', { 400: 'A blank reason, or an unknown field.' }),
    },
    extend: {
      tags: ['pull'],
      summary: 'Extend a lease',
      params: tokenParam,
      body: optionalBody({ lease_seconds: leaseSeconds('The lease now ends this long from now') }),
      response: settledResponses('Leased, with the new `expires_at`.', { 400: 'A bad or unknown field.' }),
    },
    replace: {
      tags: ['pull'],
      summary: 'Complete a lease and publish new messages, all or nothing',
      params: tokenParam,
      body: body(
        {
          messages: {
            type: 'array',
            minItems: 1,
            maxItems: maxBulk,
            items: object({ topic: topicName('Its topic.'), payload, attributes: attributes() }, ['topic', 'payload'], {
              'x-error': { type: 'must be an object with topic, payload and attributes' },
            }),
            description: `The new messages, 1 to MAX_BULK_MESSAGES (${maxBulk}), to any topics.`,
            'x-error': {
              type: 'must be a non-empty list of {topic, payload, attributes}',
              minItems: 'must be a non-empty list of {topic, payload, attributes}',
              maxItems: `has more than ${maxBulk} messages`,
            },
          },
        },
        ['messages'],
      ),
      response: settledResponses('Delivered, `replaced_by` the new ids.', {
        400: 'A bad message or an unknown topic.',
      }),
    },
  };
}

function leaseView(l: LeasedMessage, topic: string) {
  return {
    token: l.token,
    expires_at: new Date(l.expiresAt).toISOString(),
    attempt: l.attempt,
    message: {
      id: l.message.id,
      topic,
      payload: JSON.parse(l.message.payload) as unknown,
      attributes: l.message.attributes,
      received_at: new Date(l.message.receivedAt).toISOString(),
    },
  };
}

function settled(t: LeaseTarget, state: string, extra: Record<string, unknown> = {}) {
  return { data: { id: t.message.id, publisher_id: t.publisher.id, state, ...extra } };
}

interface NewMessage {
  topic: string;
  payload: unknown;
  attributes?: Record<string, string> | null;
}

/** What the schema cannot say about replacement messages: depth and attribute bytes. */
function replacements(list: readonly NewMessage[]): Replacement[] {
  const problems: Record<string, string[]> = {};
  list.forEach((m, i) => {
    const at = `messages[${i}]`;
    if (nestedDeeperThan(m.payload, MAX_PAYLOAD_DEPTH))
      problems[`${at}.payload`] = [`is nested more than ${MAX_PAYLOAD_DEPTH} levels deep`];
    if (m.attributes != null)
      for (const [field, why] of attributeProblems(m.attributes, `${at}.attributes`))
        (problems[field] ??= []).push(why);
  });
  if (Object.keys(problems).length > 0) throw new ValidationError(problems);
  return list.map((m) => ({
    topic: m.topic,
    payload: m.payload,
    ...(m.attributes ? { attributes: m.attributes } : {}),
  }));
}

type Token = { Params: { token: string } };

type LeaseFilter = Readonly<Record<string, string | readonly string[]>>;

/** The lease filter as pull-lease.lua takes it (attribute -> value or list), from either shape; 400 on bad bytes. */
function leaseFilter(given: Record<string, string> | MessageFilter | null | undefined): LeaseFilter | undefined {
  if (given == null) return undefined;
  const wrapped =
    Object.keys(given).length === 1 &&
    typeof (given as { attributes?: unknown }).attributes === 'object' &&
    (given as { attributes?: unknown }).attributes !== null;
  const filter: LeaseFilter = wrapped ? (given as MessageFilter).attributes : (given as Record<string, string>);
  const flat: Record<string, string> = {};
  for (const [key, value] of Object.entries(filter))
    for (const [i, v] of (typeof value === 'string' ? [value] : value).entries())
      flat[i === 0 ? key : `${key}[${i}]`] = v;
  const problems = attributeProblems(flat, 'filter');
  if (problems.length > 0) throw new ValidationError(Object.fromEntries(problems.map(([f, why]) => [f, [why]])));
  return Object.keys(filter).length > 0 ? filter : undefined;
}

/**
 * A pull publisher's rate limit: up to `n` tokens of its bucket (the same
 * cluster-wide bucket and script as pushed deliveries), and the ms until
 * the next token when none was left.
 */
async function takeTokens(ctx: ApiContext, p: Publisher, n: number): Promise<{ granted: number; waitMs: number }> {
  const limit = p.rate_limit;
  if (!limit) return { granted: n, waitMs: 0 };
  return scripts.rateLimit(
    ctx.redis,
    { bucket: ctx.keys.publisher(p.topic, p.id).bucket },
    { perSecond: limit.per_second, burst: limit.burst, tokens: n },
  );
}

async function giveTokensBack(ctx: ApiContext, p: Publisher, n: number): Promise<void> {
  const limit = p.rate_limit;
  if (!limit || n <= 0) return;
  await scripts.rateLimit(
    ctx.redis,
    { bucket: ctx.keys.publisher(p.topic, p.id).bucket },
    { perSecond: limit.per_second, burst: limit.burst, tokens: -n },
  );
}

/** The earliest time after `now` at which a retry or a lease of the publisher comes due, if any. */
async function nextDue(ctx: ApiContext, p: Publisher, now: number): Promise<number | undefined> {
  const first = await ctx.redis.zrange(
    ctx.keys.publisher(p.topic, p.id).retries,
    `(${now}`,
    '+inf',
    'BYSCORE',
    'LIMIT',
    0,
    1,
    'WITHSCORES',
  );
  return first[1] === undefined ? undefined : Number(first[1]);
}

export function registerLeaseRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { pull } = ctx;
  const schemas = leaseSchemas(ctx.config);

  app.post<{
    Params: { id: string };
    Body: {
      max?: number | null;
      lease_seconds?: number | null;
      worker?: { host?: string | null; pid?: number | null; name?: string | null } | null;
      filter?: Record<string, string> | MessageFilter | null;
      wait_seconds?: number | null;
    } | null;
  }>('/api/publishers/:id/lease', { schema: schemas.lease }, async (request) => {
    const { id } = request.params;
    const b = request.body ?? {};
    const w = b.worker ?? {};
    const worker: LeaseWorker = {
      ...(w.host == null ? {} : { host: w.host }),
      ...(w.pid == null ? {} : { pid: w.pid }),
      ...(w.name == null ? {} : { name: w.name }),
    };
    const filter = leaseFilter(b.filter);
    // Inactive while its topic is paused: the lease hands out nothing.
    const publisher = await ctx.store.getEffectivePublisher(id);
    if (!publisher) throw new NotFoundError('publisher_not_found', 'id', 'publisher not found');
    if (publisher.type !== 'pull') {
      throw new ValidationError({ id: [`is a ${publisher.type} publisher; only pull publishers are leased`] });
    }
    const deadline = ctx.now() + Math.round((b.wait_seconds ?? 0) * 1000);
    const wanted = b.max ?? 1;
    // A long poll: look, and when there is nothing, wait to be woken (new messages, a retry or lease coming due,
    // a rate-limit token) or for the wait's end, then look again.
    for (;;) {
      const { granted, waitMs } = await takeTokens(ctx, publisher, wanted);
      let leased: LeasedMessage[] = [];
      try {
        if (granted > 0)
          leased = await pull.lease(publisher, {
            max: granted,
            leaseSeconds: b.lease_seconds ?? DEFAULT_LEASE_SECONDS,
            worker,
            ...(filter ? { filter } : {}),
            byteBudget: ctx.config.answerByteBudget,
          });
      } finally {
        await giveTokensBack(ctx, publisher, granted - leased.length);
      }
      const now = ctx.now();
      if (leased.length > 0 || now >= deadline || !publisher.active)
        return { data: leased.map((l) => leaseView(l, publisher.topic)) };
      const due = granted === 0 ? now + waitMs : await nextDue(ctx, publisher, now);
      await ctx.leaseWaiters.wait(publisher.topic, Math.min(deadline, due ?? deadline) - now);
    }
  });

  app.post<Token>('/api/leases/:token/complete', { schema: schemas.complete }, async (request) => {
    return settled(await pull.complete(request.params.token), 'delivered');
  });

  app.post<Token & { Body: { in_seconds?: number | null; reason?: string | null } | null }>(
    '/api/leases/:token/retry',
    { schema: schemas.retry },
    async (request) => {
      const b = request.body ?? {};
      const inSeconds = b.in_seconds ?? 0;
      const why = (b.reason ?? '').slice(0, MAX_REASON);
      const target = await pull.resolve(request.params.token);
      const own = target.publisher.retry_max_age_seconds;
      const maxAge = own ?? ctx.config.retryMaxAgeSeconds;
      const deadline = target.message.receivedAt + maxAge * 1000;
      const because = why ? `: ${why}` : '';
      if (ctx.now() >= deadline) {
        const dead = `retried after ${own == null ? 'the max age' : 'retry_max_age_seconds'} (${maxAge} s)${because}`;
        return settled(await pull.fail(request.params.token, dead), 'dead', { dead_reason: dead });
      }
      const maxAttempts = target.publisher.retry_max_attempts;
      const attempt = target.lease?.attempt ?? 0;
      if (maxAttempts != null && attempt >= maxAttempts) {
        const dead = `retried after ${attempt} lease${attempt === 1 ? '' : 's'} (retry_max_attempts ${maxAttempts})${because}`;
        return settled(await pull.fail(request.params.token, dead), 'dead', { dead_reason: dead });
      }
      const t = await pull.retry(request.params.token, inSeconds, why);
      return settled(t, 'retrying', { next_attempt_at: new Date(t.dueAt).toISOString() });
    },
  );

  app.post<Token & { Body: { reason: string } }>(
    '/api/leases/:token/fail',
    { schema: schemas.fail },
    async (request) => {
      const why = request.body.reason.slice(0, MAX_REASON);
      return settled(await pull.fail(request.params.token, why), 'dead', { dead_reason: why });
    },
  );

  app.post<Token & { Body: { lease_seconds?: number | null } | null }>(
    '/api/leases/:token/extend',
    { schema: schemas.extend },
    async (request) => {
      const t = await pull.extend(request.params.token, request.body?.lease_seconds ?? DEFAULT_LEASE_SECONDS);
      return settled(t, 'leased', { expires_at: new Date(t.expiresAt).toISOString() });
    },
  );

  app.post<Token & { Body: { messages: NewMessage[] } }>(
    '/api/leases/:token/replace',
    { schema: schemas.replace },
    async (request) => {
      const t = await pull.replace(request.params.token, replacements(request.body.messages));
      if (!t.moved) {
        request.log.warn(
          { publisherId: t.publisher.id, messageId: t.message.id },
          'replacement messages recorded but not yet added to their topics; the janitor will add them',
        );
      }
      return settled(t, 'delivered', { replaced_by: t.ids });
    },
  );
}
