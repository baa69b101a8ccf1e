/**
 * Publishers: create and delete (Postoffice's routes), list, read and
 * change (ours). Topic, type, from_now, ordered and ordering_attribute are
 * fixed at creation; a change to the rest applies to messages not yet
 * delivered. Signing secrets and target headers are write-only: answers
 * show `secrets_count` and `header_names`, never the values.
 */
import {
  MAX_SECRETS,
  MAX_KEY_BYTES,
  MIN_KEY_BYTES,
  NotFoundError,
  PUBLISHER_BOUNDS,
  PULL_NAME,
  ValidationError,
  isPubsubTopic,
  privateAddressOf,
  secretKey,
  PUBLISHER_DEFAULTS,
  PUBLISHER_TYPES,
  maxPublisherTimeout,
  type Config,
  type MessageFilter,
  type Publisher,
  type PublisherType,
  type RateLimit,
} from '@postoffice/shared';
import {
  batchSizeSchema,
  deadOnStatusSchema,
  filterSchema,
  headersProblem,
  headersSchema,
  orderingAttributeSchema,
  retryMaxAgeSchema,
  retryMaxAttemptsSchema,
  typeWhy,
} from '../publisher-fields.js';
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../types.js';
import { httpUrlProblem, isHttpUrl } from '../validate.js';
import { BLANK, INVALID } from '../schema-compilers.js';
import { DEFAULT_PAGE, decodeListCursor, encodeListCursor, listQuery, type ListQuery } from './list-page.js';
import {
  MAX_TARGET,
  body,
  boolean,
  cursorProperty,
  data,
  integer,
  noContent,
  number,
  params,
  publisherId,
  publisherView as publisherSchema,
  rangeWhy,
  responses,
  topicName,
  type Schema,
} from '../schemas.js';

/** Fields PATCH may change. */
const EDITABLE = [
  'active',
  'target',
  'seconds_timeout',
  'seconds_retry',
  'chunk_size',
  'concurrency',
  'parallelism',
  'rate_limit',
  'secrets',
  'headers',
  'dead_on_status',
  'retry_max_attempts',
  'retry_max_age_seconds',
  'filter',
  'batch_size',
] as const;
/** Fields fixed at creation. */
const FIXED = ['topic', 'type', 'from_now', 'ordered', 'ordering_attribute'] as const;

/** A publisher as the API shows it: its secrets replaced by how many there are, its headers by their names. */
export type PublisherView = Omit<Publisher, 'secrets' | 'headers'> & {
  readonly secrets_count: number;
  readonly header_names: string[];
};

export function publisherView(p: Publisher): PublisherView {
  const { secrets, headers, ...rest } = p;
  return {
    ...rest,
    secrets_count: secrets?.length ?? 0,
    header_names: Object.keys(headers ?? {}),
  };
}

const SECRETS_WHY = `must be a list of at most ${MAX_SECRETS} distinct secrets "whsec_<base64>", each key ${MIN_KEY_BYTES} to ${MAX_KEY_BYTES} bytes, or null`;

/** The body's fields, as the schemas let them through: null is "not given" in POST, a value of its own in PATCH. */
interface Fields {
  topic?: string;
  type?: PublisherType;
  target?: string | null;
  active?: boolean | null;
  from_now?: boolean | null;
  ordered?: boolean | null;
  seconds_timeout?: number | null;
  seconds_retry?: number | null;
  chunk_size?: number | null;
  concurrency?: number | null;
  parallelism?: number | null;
  rate_limit?: RateLimit | null;
  secrets?: string[] | null;
  headers?: Record<string, string> | null;
  dead_on_status?: number[] | null;
  retry_max_attempts?: number | null;
  retry_max_age_seconds?: number | null;
  filter?: MessageFilter | null;
  batch_size?: number | null;
  ordering_attribute?: string | null;
  deleted?: false | null;
}

/** The fields POST and PATCH share. In PATCH, null is refused where it means nothing (`nullable` false). */
function optionFields(config: Config, nullable: boolean): Record<string, Schema> {
  const b = PUBLISHER_BOUNDS;
  const maxTimeout = maxPublisherTimeout(config);
  return {
    active: boolean('Whether it delivers; an inactive publisher keeps its messages. Default true.', nullable),
    seconds_timeout: number(
      b.seconds_timeout.min,
      maxTimeout,
      `Seconds a delivery may take, ${b.seconds_timeout.min} to ${maxTimeout} (below CLAIM_TIMEOUT_SECONDS). Default ${PUBLISHER_DEFAULTS.seconds_timeout}.`,
      {
        nullable,
        error: {
          maximum: `must be at most ${maxTimeout} seconds, below CLAIM_TIMEOUT_SECONDS (${config.claimTimeoutSeconds})`,
          default: rangeWhy(b.seconds_timeout.min, maxTimeout, false, ' of seconds'),
        },
      },
    ),
    seconds_retry: number(
      b.seconds_retry.min,
      b.seconds_retry.max,
      `First wait before a retry, in seconds (then doubling, up to RETRY_MAX_BACKOFF_SECONDS), ${b.seconds_retry.min} to ${b.seconds_retry.max}. Default ${PUBLISHER_DEFAULTS.seconds_retry}.`,
      { nullable, unit: ' of seconds' },
    ),
    chunk_size: integer(
      b.chunk_size.min,
      b.chunk_size.max,
      `Most messages per Pub/Sub publish call. Default ${PUBLISHER_DEFAULTS.chunk_size}.`,
      nullable,
    ),
    concurrency: integer(
      b.concurrency.min,
      b.concurrency.max,
      `Deliveries in flight per slot. Default ${PUBLISHER_DEFAULTS.concurrency}.`,
      nullable,
    ),
    parallelism: integer(
      b.parallelism.min,
      b.parallelism.max,
      `Slots spread over the consumer nodes. Default ${PUBLISHER_DEFAULTS.parallelism}.`,
      nullable,
    ),
    rate_limit: {
      type: ['object', 'null'],
      required: ['per_second', 'burst'],
      additionalProperties: false,
      properties: {
        per_second: {
          type: 'number',
          minimum: b.per_second.min,
          maximum: b.per_second.max,
          description: `Deliveries started per second, across the cluster, ${b.per_second.min} to ${b.per_second.max}.`,
          'x-error': `per_second ${rangeWhy(b.per_second.min, b.per_second.max, false)}`,
        },
        burst: {
          type: 'integer',
          minimum: b.burst.min,
          maximum: b.burst.max,
          description: `Most deliveries started at once, ${b.burst.min} to ${b.burst.max}.`,
          'x-error': `burst ${rangeWhy(b.burst.min, b.burst.max, true)}`,
        },
      },
      description: 'A token bucket over the whole cluster, or null for no limit (the default).',
      'x-group': true,
      'x-error': { type: 'must be an object {"per_second": number, "burst": number} or null' },
    },
    secrets: {
      type: ['array', 'null'],
      maxItems: MAX_SECRETS,
      uniqueItems: true,
      items: { type: 'string', minLength: 1, maxLength: 200 },
      description: `http publishers: up to ${MAX_SECRETS} signing secrets \`whsec_<base64>\` (keys of ${MIN_KEY_BYTES} to ${MAX_KEY_BYTES} bytes); [] or null for none. Write-only.`,
      'x-group': true,
      'x-error': SECRETS_WHY,
    },
    headers: headersSchema,
    dead_on_status: deadOnStatusSchema,
    retry_max_attempts: retryMaxAttemptsSchema,
    retry_max_age_seconds: retryMaxAgeSchema(config.retryMaxAgeSeconds),
    filter: filterSchema(
      'http and pubsub publishers: only messages whose attributes match are sent (each named attribute equal to the value, or to one of the list); the others are skipped. null for none.',
    ),
    batch_size: batchSizeSchema(nullable),
  };
}

const target: Schema = {
  type: 'string',
  minLength: 1,
  maxLength: MAX_TARGET,
  pattern: '\\S',
  description: `An http(s) URL (\`http\`), a Pub/Sub topic id or \`projects/<p>/topics/<t>\` (\`pubsub\`), or a subscription name (\`pull\`). At most ${MAX_TARGET} characters.`,
};

const idParam = params({ id: { ...publisherId, 'x-error': 'publisher not found' } });

function createSchema(config: Config) {
  return {
    tags: ['publishers'],
    summary: 'Create a publisher',
    body: body(
      {
        topic: topicName('The topic it delivers.'),
        type: {
          type: 'string',
          enum: [...PUBLISHER_TYPES],
          description: 'How it delivers: `http`, `pubsub` or `pull`.',
          'x-error': { default: INVALID },
        },
        target,
        from_now: boolean('Only messages sent after its creation (default false: the retained ones too). Fixed.'),
        ordered: boolean(
          'Exact order (default false): one slot, one delivery in flight, or with `ordering_attribute` one per key. Pull publishers: one lease out at a time (per key). Fixed.',
        ),
        ordering_attribute: orderingAttributeSchema,
        ...optionFields(config, true),
        deleted: {
          enum: [false, null],
          description: 'Accepted for Postoffice compatibility; only false.',
          'x-error': 'must be false: delete a publisher with DELETE /api/publishers/:id',
        },
      },
      ['topic', 'type', 'target'],
    ),
    response: responses(
      { 201: data(publisherSchema, 'Created.') },
      {
        400: 'A field is missing, blank, malformed, out of range or unknown; an unknown topic (`topic`).',
        409: 'The topic has a publisher of that type and target (`target`).',
      },
    ),
  };
}

function patchSchema(config: Config) {
  const fixed = Object.fromEntries(
    FIXED.map((f) => [f, { not: {}, 'x-error': 'cannot be changed', description: 'Fixed at creation: refused.' }]),
  );
  return {
    tags: ['publishers'],
    summary: 'Change a publisher',
    description: 'Applies to every message not yet delivered, retries included.',
    params: idParam,
    body: body({ ...fixed, target: { ...target, 'x-error': { null: BLANK } }, ...optionFields(config, false) }, [], {
      minProperties: 1,
      'x-error': {
        type: 'must be a JSON object',
        null: BLANK,
        minProperties: `must change at least one of ${EDITABLE.join(', ')}`,
      },
    }),
    response: responses(
      { 200: data(publisherSchema, 'The changed publisher.') },
      {
        400: 'A bad or unknown field, a fixed one, or nothing to change.',
        404: 'No such publisher (`id`).',
        409: 'Another publisher of the topic has that target, or a concurrent change.',
      },
    ),
  };
}

const listSchema = {
  tags: ['publishers'],
  summary: 'List publishers',
  description:
    'Every publisher, inactive ones included, by id. With `limit` or `cursor`: one page and the cursor of the next.',
  querystring: listQuery('publishers'),
  response: responses(
    { 200: data({ type: 'array', items: publisherSchema }, 'The publishers.', {}, { cursor: cursorProperty }) },
    { 400: 'A bad `limit` or `cursor`.' },
  ),
};

const getSchema = {
  tags: ['publishers'],
  summary: 'Read a publisher',
  params: idParam,
  response: responses({ 200: data(publisherSchema, 'The publisher.') }, { 404: 'No such publisher (`id`).' }),
};

const deleteSchema = {
  tags: ['publishers'],
  summary: 'Delete a publisher',
  params: idParam,
  response: responses({ 204: noContent('Deleted.') }, { 404: 'No such publisher (`id`).' }),
};

/** Signing secrets that parse: the list, [] for none (`[]` or null), undefined when not given; a 400 otherwise. */
function secretsOf(fields: Fields): string[] | undefined {
  if (fields.secrets === undefined) return undefined;
  if (fields.secrets === null) return [];
  if (!fields.secrets.every((s) => secretKey(s) !== undefined)) throw new ValidationError({ secrets: [SECRETS_WHY] });
  return fields.secrets;
}

/** The publisher with `secrets` set, or left out when there are none. */
function withSecrets<P extends Publisher | Omit<Publisher, 'id' | 'created_at' | 'updated_at'>>(
  p: P,
  secrets: readonly string[] | undefined,
): P {
  const { secrets: _old, ...rest } = p;
  return (secrets && secrets.length > 0 ? { ...rest, secrets } : rest) as P;
}

/** 400 naming `target` when the option is on and the http target is or resolves to a refused address. */
async function refusePrivate(ctx: ApiContext, target: string): Promise<string | undefined> {
  if (!ctx.config.refusePrivateTargets || !isHttpUrl(target)) return undefined;
  const address = await privateAddressOf(new URL(target).hostname);
  return address === undefined
    ? undefined
    : `is or resolves to a private, loopback or link-local address (${address}), refused by REFUSE_PRIVATE_TARGETS`;
}

function notFound(): NotFoundError {
  return new NotFoundError('publisher_not_found', 'id', 'publisher not found');
}

/** Why `target` does not suit a publisher of `type`; undefined when it does. */
function targetProblem(type: PublisherType, target: string): string | undefined {
  switch (type) {
    case 'http':
      return httpUrlProblem(target);
    case 'pubsub':
      return isPubsubTopic(target) ? undefined : 'must be a Pub/Sub topic id or projects/<project>/topics/<topic id>';
    case 'pull':
      return PULL_NAME.test(target)
        ? undefined
        : 'must be a subscription name: letters, digits, ".", "_" and "-", at most 200';
  }
}

/** The options given (null and absent left out). */
function options(fields: Fields): Partial<Publisher> {
  const out: Record<string, unknown> = {};
  for (const f of [
    'active',
    'seconds_timeout',
    'seconds_retry',
    'chunk_size',
    'concurrency',
    'parallelism',
    'batch_size',
  ] as const)
    if (fields[f] != null) out[f] = fields[f];
  return out;
}

/**
 * The delivery policy fields given, with null as a value of its own
 * (no limit, the default max age, no filter, no extra status): the same in POST and PATCH.
 */
function policy(fields: Fields): Partial<Publisher> {
  const out: Record<string, unknown> = {};
  if (fields.dead_on_status !== undefined)
    out.dead_on_status = [...(fields.dead_on_status ?? [])].sort((a, b) => a - b);
  if (fields.retry_max_attempts !== undefined) out.retry_max_attempts = fields.retry_max_attempts;
  if (fields.retry_max_age_seconds !== undefined) out.retry_max_age_seconds = fields.retry_max_age_seconds;
  if (fields.filter !== undefined) out.filter = fields.filter;
  return out;
}

/** Target headers that can be sent: the object, {} for none (`{}` or null), undefined when not given; a 400 otherwise. */
function headersOf(fields: Fields): Record<string, string> | undefined {
  if (fields.headers === undefined) return undefined;
  if (fields.headers === null) return {};
  const problem = headersProblem(fields.headers);
  if (problem) throw new ValidationError({ headers: [problem] });
  return { ...fields.headers };
}

/** The publisher with `headers` set, or left out when there are none. */
function withHeaders<P extends Publisher | Omit<Publisher, 'id' | 'created_at' | 'updated_at'>>(
  p: P,
  headers: Readonly<Record<string, string>> | undefined,
): P {
  const { headers: _old, ...rest } = p;
  return (headers && Object.keys(headers).length > 0 ? { ...rest, headers } : rest) as P;
}

/**
 * What a publisher of its type with these settings cannot do: fields its
 * type does not take, and combinations that would be accepted and ignored.
 */
function combinationProblems(p: Omit<Publisher, 'id' | 'created_at' | 'updated_at'>, given: readonly string[]) {
  const problems: Record<string, string[]> = {};
  for (const field of given) {
    const why = typeWhy(field, p.type);
    if (why) problems[field] = [why];
  }
  if (p.ordering_attribute && !p.ordered) problems.ordering_attribute = ['needs ordered: true'];
  if (p.batch_size > 1 && p.ordered && problems.batch_size === undefined)
    problems.batch_size = ['cannot be above 1 for an ordered publisher (one message in flight at a time, or per key)'];
  return problems;
}

/** Fields given with a value that means something for the type check (null and [] clear, so any type may send them). */
function givenFields(fields: Fields): string[] {
  const out: string[] = [];
  if (fields.headers != null && Object.keys(fields.headers).length > 0) out.push('headers');
  if (fields.dead_on_status != null && fields.dead_on_status.length > 0) out.push('dead_on_status');
  if (fields.batch_size != null && fields.batch_size > 1) out.push('batch_size');
  if (fields.filter != null) out.push('filter');
  return out;
}

export function registerPublisherRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post<{ Body: Fields }>('/api/publishers', { schema: createSchema(ctx.config) }, async (request, reply) => {
    const fields = request.body;
    const type = fields.type as PublisherType;
    const target = (fields.target as string).trim();
    const problems: Record<string, string[]> = {};
    const problem = targetProblem(type, target);
    if (problem) problems.target = [problem];
    const secrets = secretsOf(fields);
    if (secrets && secrets.length > 0 && type !== 'http')
      problems.secrets = ['only http publishers sign their deliveries'];
    const headers = headersOf(fields);
    const d = PUBLISHER_DEFAULTS;
    const input = withHeaders(
      withSecrets(
        {
          topic: fields.topic as string,
          type,
          target,
          active: d.active,
          from_now: fields.from_now ?? d.from_now,
          seconds_timeout: Math.min(d.seconds_timeout, maxPublisherTimeout(ctx.config)),
          seconds_retry: d.seconds_retry,
          chunk_size: d.chunk_size,
          concurrency: d.concurrency,
          parallelism: d.parallelism,
          ordered: fields.ordered ?? d.ordered,
          rate_limit: fields.rate_limit ?? d.rate_limit,
          dead_on_status: [],
          retry_max_attempts: null,
          retry_max_age_seconds: null,
          filter: null,
          batch_size: d.batch_size,
          ordering_attribute: fields.ordering_attribute ?? null,
          ...options(fields),
          ...policy(fields),
        },
        secrets,
      ),
      headers,
    );
    Object.assign(problems, combinationProblems(input, givenFields(fields)));
    if (Object.keys(problems).length > 0) throw new ValidationError(problems);
    const refused = type === 'http' ? await refusePrivate(ctx, target) : undefined;
    if (refused) throw new ValidationError({ target: [refused] });
    const publisher = await ctx.store.createPublisher(input);
    request.log.info({ topic: publisher.topic, publisherId: publisher.id }, 'publisher created');
    return reply.code(201).send({ data: publisherView(publisher) });
  });

  app.get<{ Querystring: ListQuery }>('/api/publishers', { schema: listSchema }, async (request) => {
    const { limit, cursor } = request.query;
    if (limit === undefined && cursor === undefined)
      return { data: (await ctx.store.listPublishers()).map(publisherView) };
    const after = cursor === undefined ? undefined : decodeListCursor(cursor, 'publisher');
    const page = await ctx.store.listPublishersPage(after, limit ?? DEFAULT_PAGE);
    return {
      data: page.items.map(publisherView),
      cursor: page.next === null ? null : encodeListCursor('publisher', page.next),
    };
  });

  app.get<{ Params: { id: string } }>('/api/publishers/:id', { schema: getSchema }, async (request) => {
    const publisher = await ctx.store.getPublisher(request.params.id);
    if (!publisher) throw notFound();
    return { data: publisherView(publisher) };
  });

  app.patch<{ Params: { id: string }; Body: Fields }>(
    '/api/publishers/:id',
    { schema: patchSchema(ctx.config) },
    async (request) => {
      const { id } = request.params;
      const fields = request.body;
      const secrets = secretsOf(fields);
      const headers = headersOf(fields);
      const changes: Partial<Publisher> = {
        ...options(fields),
        ...policy(fields),
        ...(fields.target == null ? {} : { target: fields.target.trim() }),
        ...(fields.rate_limit === undefined ? {} : { rate_limit: fields.rate_limit }),
      };
      const refused = changes.target === undefined ? undefined : await refusePrivate(ctx, changes.target);
      const publisher = await ctx.store.updatePublisher(id, (current) => {
        const problem = changes.target === undefined ? undefined : targetProblem(current.type, changes.target);
        if (problem) throw new ValidationError({ target: [problem] });
        if (refused && current.type === 'http') throw new ValidationError({ target: [refused] });
        if (secrets && secrets.length > 0 && current.type !== 'http')
          throw new ValidationError({ secrets: ['only http publishers sign their deliveries'] });
        let next = { ...current, ...changes };
        if (secrets !== undefined) next = withSecrets(next, secrets);
        if (headers !== undefined) next = withHeaders(next, headers);
        const problems = combinationProblems(next, givenFields(fields));
        if (Object.keys(problems).length > 0) throw new ValidationError(problems);
        return next;
      });
      const changed = [
        ...Object.keys(changes),
        ...(secrets === undefined ? [] : ['secrets']),
        ...(headers === undefined ? [] : ['headers']),
      ];
      request.log.info({ topic: publisher.topic, publisherId: id, changed }, 'publisher changed');
      return { data: publisherView(publisher) };
    },
  );

  app.delete<{ Params: { id: string } }>('/api/publishers/:id', { schema: deleteSchema }, async (request, reply) => {
    const { id } = request.params;
    await ctx.store.deletePublisher(id);
    request.log.info({ publisherId: id }, 'publisher deleted');
    return reply.code(204).send();
  });
}
