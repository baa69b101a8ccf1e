/**
 * Publishers: create and delete (Postoffice's routes), list, read and
 * change (ours). Topic, type and from_now are fixed at creation; a change
 * to the rest applies to messages not yet delivered. Signing secrets are
 * write-only: answers show `secrets_count`, never the secrets.
 */
import {
  MAX_SECRETS,
  MAX_KEY_BYTES,
  MIN_KEY_BYTES,
  NotFoundError,
  PULL_NAME,
  ValidationError,
  isPubsubTopic,
  privateAddressOf,
  secretKey,
  PUBLISHER_DEFAULTS,
  PUBLISHER_TYPES,
  maxPublisherTimeout,
  type Config,
  type Publisher,
  type PublisherType,
} from '@postoffice/shared';
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../types.js';
import { BLANK, Checker, INVALID, httpUrlProblem, isHttpUrl, objectBody } from '../validate.js';

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
] as const;
/** Fields fixed at creation. */
const FIXED = ['topic', 'type', 'from_now', 'ordered'] as const;
/** Editable fields for which null is a value (no rate limit, no signing), not a mistake. */
const NULLABLE: readonly string[] = ['rate_limit', 'secrets'];

/** Most slots a publisher may have, and most deliveries per second a rate limit may allow. */
const MAX_PARALLELISM = 100;
const MAX_RATE = 1_000_000;

type Options = Pick<
  Publisher,
  'active' | 'seconds_timeout' | 'seconds_retry' | 'chunk_size' | 'concurrency' | 'parallelism' | 'rate_limit'
>;
type Changes = Partial<Options & Pick<Publisher, 'target' | 'secrets'>>;

/** A publisher as the API shows it: its secrets replaced by how many there are. */
export type PublisherView = Omit<Publisher, 'secrets'> & { readonly secrets_count: number };

export function publisherView(p: Publisher): PublisherView {
  const { secrets, ...rest } = p;
  return { ...rest, secrets_count: secrets?.length ?? 0 };
}

const SECRETS_WHY = `must be a list of at most ${MAX_SECRETS} distinct secrets "whsec_<base64>", each key ${MIN_KEY_BYTES} to ${MAX_KEY_BYTES} bytes, or null`;

/** Signing secrets: undefined when absent or invalid, [] for none (`[]` or null). */
function secretsOf(c: Checker): string[] | undefined {
  if (!Object.hasOwn(c.body, 'secrets')) return undefined;
  const v = c.body.secrets;
  if (v === null) return [];
  if (
    !Array.isArray(v) ||
    v.length > MAX_SECRETS ||
    new Set(v).size !== v.length ||
    !v.every((s) => typeof s === 'string' && secretKey(s) !== undefined)
  ) {
    c.add('secrets', SECRETS_WHY);
    return undefined;
  }
  return v as string[];
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

const ID = /^[1-9]\d{0,17}$/;

function notFound(): NotFoundError {
  return new NotFoundError('publisher_not_found', 'id', 'publisher not found');
}

function publisherType(c: Checker): PublisherType | undefined {
  const v = c.value('type');
  if (v === undefined || v === null || v === '') {
    c.add('type', BLANK);
    return undefined;
  }
  if (typeof v !== 'string' || !(PUBLISHER_TYPES as readonly string[]).includes(v)) {
    c.add('type', INVALID);
    return undefined;
  }
  return v as PublisherType;
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

/** The target, checked against the type when the type is known. */
function targetOf(c: Checker, type: PublisherType | undefined): string | undefined {
  const s = c.requiredString('target');
  if (s === undefined || type === undefined) return s;
  const problem = targetProblem(type, s);
  if (problem) {
    c.add('target', problem);
    return undefined;
  }
  return s;
}

/** The options shared by POST and PATCH; each is undefined when absent or invalid. */
function options(c: Checker, config: Config): Partial<Options> {
  const max = maxPublisherTimeout(config);
  return {
    active: c.optionalBoolean('active'),
    seconds_timeout: c.optionalPositiveNumber('seconds_timeout', {
      value: max,
      why: `must be at most ${max} seconds, below CLAIM_TIMEOUT_SECONDS (${config.claimTimeoutSeconds})`,
    }),
    seconds_retry: c.optionalPositiveNumber('seconds_retry'),
    chunk_size: c.optionalInteger('chunk_size', 1, 1000),
    concurrency: c.optionalInteger('concurrency', 1, 1000),
    parallelism: c.optionalInteger('parallelism', 1, MAX_PARALLELISM),
    rate_limit: c.optionalRateLimit('rate_limit', MAX_RATE),
  };
}

export function registerPublisherRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post('/api/publishers', async (request, reply) => {
    const c = new Checker(objectBody(request.body));
    const topic = c.topicName('topic');
    const type = publisherType(c);
    const target = targetOf(c, type);
    const from_now = c.optionalBoolean('from_now');
    const ordered = c.optionalBoolean('ordered');
    const o = options(c, ctx.config);
    const secrets = secretsOf(c);
    if (secrets && secrets.length > 0 && type !== undefined && type !== 'http')
      c.add('secrets', 'only http publishers sign their deliveries');
    c.done();
    const refused = type === 'http' ? await refusePrivate(ctx, target as string) : undefined;
    if (refused) throw new ValidationError({ target: [refused] });
    const input = withSecrets(
      {
        topic: topic as string,
        type: type as PublisherType,
        target: target as string,
        active: o.active ?? PUBLISHER_DEFAULTS.active,
        from_now: from_now ?? PUBLISHER_DEFAULTS.from_now,
        seconds_timeout:
          o.seconds_timeout ?? Math.min(PUBLISHER_DEFAULTS.seconds_timeout, maxPublisherTimeout(ctx.config)),
        seconds_retry: o.seconds_retry ?? PUBLISHER_DEFAULTS.seconds_retry,
        chunk_size: o.chunk_size ?? PUBLISHER_DEFAULTS.chunk_size,
        concurrency: o.concurrency ?? PUBLISHER_DEFAULTS.concurrency,
        parallelism: o.parallelism ?? PUBLISHER_DEFAULTS.parallelism,
        ordered: ordered ?? PUBLISHER_DEFAULTS.ordered,
        rate_limit: o.rate_limit ?? PUBLISHER_DEFAULTS.rate_limit,
      },
      secrets,
    );
    const publisher = await ctx.store.createPublisher(input);
    request.log.info({ topic: publisher.topic, publisherId: publisher.id }, 'publisher created');
    return reply.code(201).send({ data: publisherView(publisher) });
  });

  app.get('/api/publishers', async () => {
    return { data: (await ctx.store.listPublishers()).map(publisherView) };
  });

  app.get<{ Params: { id: string } }>('/api/publishers/:id', async (request) => {
    const { id } = request.params;
    if (!ID.test(id)) throw notFound();
    const publisher = await ctx.store.getPublisher(id);
    if (!publisher) throw notFound();
    return { data: publisherView(publisher) };
  });

  app.patch<{ Params: { id: string } }>('/api/publishers/:id', async (request) => {
    const { id } = request.params;
    if (!ID.test(id)) throw notFound();
    const c = new Checker(objectBody(request.body));
    for (const field of FIXED) if (Object.hasOwn(c.body, field)) c.add(field, 'cannot be changed');
    // In a change, null is not "leave as is": it is a value, and a wrong one.
    for (const field of EDITABLE)
      if (Object.hasOwn(c.body, field) && c.body[field] === null && !NULLABLE.includes(field))
        c.add(field, field === 'target' ? BLANK : INVALID);
    const changes: Changes = {
      ...options(c, ctx.config),
      ...(c.present('target') ? { target: c.requiredString('target') } : {}),
      secrets: secretsOf(c),
    };
    const given = EDITABLE.filter((f) => Object.hasOwn(c.body, f));
    if (c.ok && given.length === 0) c.add('body', `must change at least one of ${EDITABLE.join(', ')}`);
    c.done();
    const { secrets, ...rest } = changes;
    const defined = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) as Changes;
    const refused = defined.target === undefined ? undefined : await refusePrivate(ctx, defined.target);
    const publisher = await ctx.store.updatePublisher(id, (current) => {
      const problem = defined.target === undefined ? undefined : targetProblem(current.type, defined.target);
      if (problem) throw new ValidationError({ target: [problem] });
      if (refused && current.type === 'http') throw new ValidationError({ target: [refused] });
      if (secrets && secrets.length > 0 && current.type !== 'http')
        throw new ValidationError({ secrets: ['only http publishers sign their deliveries'] });
      const next = { ...current, ...defined };
      return secrets === undefined ? next : withSecrets(next, secrets);
    });
    const changed = [...Object.keys(defined), ...(secrets === undefined ? [] : ['secrets'])];
    request.log.info({ topic: publisher.topic, publisherId: id, changed }, 'publisher changed');
    return { data: publisherView(publisher) };
  });

  app.delete<{ Params: { id: string } }>('/api/publishers/:id', async (request, reply) => {
    const { id } = request.params;
    if (!ID.test(id)) throw notFound();
    await ctx.store.deletePublisher(id);
    request.log.info({ publisherId: id }, 'publisher deleted');
    return reply.code(204).send();
  });
}
