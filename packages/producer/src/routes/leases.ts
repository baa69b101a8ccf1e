/**
 * Pull publishers: workers lease messages and answer for each lease
 * (complete, retry later, fail for good, extend, replace). The state
 * machine lives in `PullQueue` (shared); these routes validate and map.
 */
import {
  NotFoundError,
  ValidationError,
  type LeaseTarget,
  type LeaseWorker,
  type LeasedMessage,
  type Replacement,
} from '@postoffice/shared';
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../types.js';
import {
  attributeProblems,
  Checker,
  INVALID,
  isStringMap,
  isTopicName,
  nestedDeeperThan,
  MAX_PAYLOAD_DEPTH,
  type Body,
} from '../validate.js';

/** Longest lease a worker may ask for (12 hours). */
export const MAX_LEASE_SECONDS = 12 * 3600;
export const DEFAULT_LEASE_SECONDS = 30;
/** Most messages one lease call hands out. */
export const MAX_LEASE_COUNT = 1000;
const MAX_REASON = 2000;

const ID = /^[1-9]\d{0,17}$/;

/** The body as an object; an absent body counts as `{}` (these routes have only optional fields, or say so). */
function optionalBody(body: unknown): Body {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw new ValidationError({ body: ['must be a JSON object'] });
  return body as Body;
}

function worker(c: Checker): LeaseWorker {
  const v = c.value('worker');
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) {
    c.add('worker', 'must be an object with host, pid and name');
    return {};
  }
  const w = v as Record<string, unknown>;
  const out: { host?: string; pid?: number; name?: string } = {};
  for (const field of ['host', 'name'] as const) {
    const s = Object.hasOwn(w, field) ? w[field] : undefined;
    if (s === undefined || s === null) continue;
    if (typeof s !== 'string' || s.length > 255) c.add(`worker.${field}`, 'must be a string of at most 255 characters');
    else out[field] = s;
  }
  const pid = Object.hasOwn(w, 'pid') ? w.pid : undefined;
  if (pid !== undefined && pid !== null) {
    if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid < 0) c.add('worker.pid', 'must be a whole number');
    else out.pid = pid;
  }
  return out;
}

function reason(c: Checker, required: boolean): string {
  const v = c.value('reason');
  if (v === undefined || v === null || v === '') {
    if (required) c.add('reason', "can't be blank");
    return '';
  }
  if (typeof v !== 'string') {
    c.add('reason', INVALID);
    return '';
  }
  return v.slice(0, MAX_REASON);
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

function replacements(c: Checker, maxCount: number): Replacement[] {
  const v = c.value('messages');
  if (v === undefined || v === null) {
    c.add('messages', "can't be blank");
    return [];
  }
  if (!Array.isArray(v) || v.length === 0) {
    c.add('messages', 'must be a non-empty list of {topic, payload, attributes}');
    return [];
  }
  if (v.length > maxCount) {
    c.add('messages', `has more than ${maxCount} messages`);
    return [];
  }
  const out: Replacement[] = [];
  v.forEach((m: unknown, i) => {
    const at = `messages[${i}]`;
    if (m === null || typeof m !== 'object' || Array.isArray(m)) {
      c.add(at, 'must be an object with topic, payload and attributes');
      return;
    }
    const r = m as Record<string, unknown>;
    const topic = Object.hasOwn(r, 'topic') ? r.topic : undefined;
    const payload = Object.hasOwn(r, 'payload') ? r.payload : undefined;
    const attributes = Object.hasOwn(r, 'attributes') ? r.attributes : undefined;
    let ok = true;
    if (typeof topic !== 'string' || !isTopicName(topic.trim())) {
      c.add(`${at}.topic`, topic === undefined || topic === null || topic === '' ? "can't be blank" : INVALID);
      ok = false;
    }
    if (payload === undefined || payload === null) {
      c.add(`${at}.payload`, "can't be blank");
      ok = false;
    } else if (nestedDeeperThan(payload, MAX_PAYLOAD_DEPTH)) {
      c.add(`${at}.payload`, `is nested more than ${MAX_PAYLOAD_DEPTH} levels deep`);
      ok = false;
    }
    if (attributes !== undefined && attributes !== null) {
      const problems = attributeProblems(attributes, `${at}.attributes`);
      for (const [field, why] of problems) c.add(field, why);
      if (problems.length > 0) ok = false;
    }
    if (ok) {
      out.push({
        topic: (topic as string).trim(),
        payload,
        ...(isStringMap(attributes) ? { attributes } : {}),
      });
    }
  });
  return out;
}

export function registerLeaseRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { pull } = ctx;

  app.post<{ Params: { id: string } }>('/api/publishers/:id/lease', async (request) => {
    const { id } = request.params;
    const notFound = () => new NotFoundError('publisher_not_found', 'id', 'publisher not found');
    if (!ID.test(id)) throw notFound();
    const c = new Checker(optionalBody(request.body));
    const max = c.optionalInteger('max', 1, MAX_LEASE_COUNT) ?? 1;
    const leaseSeconds =
      c.optionalPositiveNumber('lease_seconds', {
        value: MAX_LEASE_SECONDS,
        why: `must be at most ${MAX_LEASE_SECONDS} seconds`,
      }) ?? DEFAULT_LEASE_SECONDS;
    const w = worker(c);
    const filter = c.optionalAttributes('filter');
    c.done();
    const publisher = await ctx.store.getPublisher(id);
    if (!publisher) throw notFound();
    if (publisher.type !== 'pull') {
      throw new ValidationError({ id: [`is a ${publisher.type} publisher; only pull publishers are leased`] });
    }
    const leased = await pull.lease(publisher, { max, leaseSeconds, worker: w, ...(filter ? { filter } : {}) });
    return { data: leased.map((l) => leaseView(l, publisher.topic)) };
  });

  app.post<{ Params: { token: string } }>('/api/leases/:token/complete', async (request) => {
    return settled(await pull.complete(request.params.token), 'delivered');
  });

  app.post<{ Params: { token: string } }>('/api/leases/:token/retry', async (request) => {
    const c = new Checker(optionalBody(request.body));
    const v = c.value('in_seconds');
    let inSeconds = 0;
    if (v !== undefined && v !== null) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > ctx.config.retryMaxAgeSeconds) {
        c.add('in_seconds', `must be a number from 0 to ${ctx.config.retryMaxAgeSeconds}`);
      } else inSeconds = v;
    }
    const why = reason(c, false);
    c.done();
    const target = await pull.resolve(request.params.token);
    const deadline = target.message.receivedAt + ctx.config.retryMaxAgeSeconds * 1000;
    if (Date.now() >= deadline) {
      const dead = `retried after the max age (${ctx.config.retryMaxAgeSeconds} s)${why ? `: ${why}` : ''}`;
      return settled(await pull.fail(request.params.token, dead), 'dead', { dead_reason: dead });
    }
    const t = await pull.retry(request.params.token, inSeconds, why);
    return settled(t, 'retrying', { next_attempt_at: new Date(t.dueAt).toISOString() });
  });

  app.post<{ Params: { token: string } }>('/api/leases/:token/fail', async (request) => {
    const c = new Checker(optionalBody(request.body));
    const why = reason(c, true);
    c.done();
    return settled(await pull.fail(request.params.token, why), 'dead', { dead_reason: why });
  });

  app.post<{ Params: { token: string } }>('/api/leases/:token/extend', async (request) => {
    const c = new Checker(optionalBody(request.body));
    const leaseSeconds =
      c.optionalPositiveNumber('lease_seconds', {
        value: MAX_LEASE_SECONDS,
        why: `must be at most ${MAX_LEASE_SECONDS} seconds`,
      }) ?? DEFAULT_LEASE_SECONDS;
    c.done();
    const t = await pull.extend(request.params.token, leaseSeconds);
    return settled(t, 'leased', { expires_at: new Date(t.expiresAt).toISOString() });
  });

  app.post<{ Params: { token: string } }>('/api/leases/:token/replace', async (request) => {
    const c = new Checker(optionalBody(request.body));
    const list = replacements(c, ctx.config.maxBulkMessages);
    c.done();
    const t = await pull.replace(request.params.token, list);
    if (!t.moved) {
      request.log.warn(
        { publisherId: t.publisher.id, messageId: t.message.id },
        'replacement messages recorded but not yet added to their topics; the janitor will add them',
      );
    }
    return settled(t, 'delivered', { replaced_by: t.ids });
  });
}
