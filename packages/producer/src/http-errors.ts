/**
 * How an error becomes an HTTP answer. Every error body has Postoffice's
 * shape, `{"data":{"errors":{"<field>":["<why>"]}}}`: typed `AppError`s
 * carry their fields; fastify's own errors (bad JSON, body too large, bad
 * content type) name the part of the request at fault; Redis being
 * unreachable, in the middle of a failover or reshard, or out of memory (at `maxmemory` with `noeviction`, it
 * refuses writes with an `OOM` error), is a 503 with Retry-After; anything
 * else is a 500.
 */
import { AppError, UnavailableError, isTopologyError, type FieldErrors } from '@postoffice/shared';

export interface ErrorReply {
  readonly statusCode: number;
  readonly fields: FieldErrors;
  /** Seconds the client should wait before trying again (503). */
  readonly retryAfter?: number;
  /** Whether this is our fault: log it as an error. */
  readonly unexpected?: boolean;
}

export function errorBody(fields: FieldErrors): { data: { errors: FieldErrors } } {
  return { data: { errors: fields } };
}

const REDIS_DOWN_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

const REDIS_DOWN_MESSAGES = [
  /Stream isn't writeable/,
  /Connection is closed/,
  /Command timed out/,
  /max retries per request/i,
  // ioredis Cluster: no slot map yet, or the cluster is down.
  /Cluster isn't ready/,
  /Failed to refresh slots cache/,
  /None of startup nodes is available/,
  /Too many Cluster redirections/,
  // A script Redis is busy running.
  /^BUSY\b/,
];

/** Seconds a client should wait when Redis is out of memory: room comes back only as messages are delivered and trimmed. */
export const OUT_OF_MEMORY_RETRY_AFTER = 5;

/** Whether `err` (or its cause) is Redis refusing a write at `maxmemory` (`-OOM command not allowed …`). */
export function isRedisOutOfMemory(err: unknown, depth = 0): boolean {
  if (!(err instanceof Error) || depth > 3) return false;
  if (/^OOM\b|\bOOM command not allowed\b/.test(err.message)) return true;
  return isRedisOutOfMemory(err.cause, depth + 1);
}

/** Redis refusing a stream id or range given to XRANGE, XPENDING, XCLAIM and the like. */
const REDIS_BAD_STREAM_ID = /Invalid stream ID|invalid (start|end) ID for the interval/i;

/** Whether `err` (or its cause) says Redis cannot be reached or cannot serve right now. */
export function isRedisUnavailable(err: unknown, depth = 0): boolean {
  if (!(err instanceof Error) || depth > 3) return false;
  if (err instanceof UnavailableError || err.name === 'MaxRetriesPerRequestError') return true;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && REDIS_DOWN_CODES.has(code)) return true;
  // A failover, reshard or restart under way (MOVED, ASK, TRYAGAIN, CLUSTERDOWN, READONLY, LOADING, …): 503, never 500.
  if (isTopologyError(err) || REDIS_DOWN_MESSAGES.some((re) => re.test(err.message))) return true;
  return isRedisUnavailable(err.cause, depth + 1);
}

export function toErrorReply(err: unknown, limits: { bodyLimitBytes: number }): ErrorReply {
  if (err instanceof UnavailableError) return { statusCode: 503, fields: err.fields, retryAfter: 1 };
  if (err instanceof AppError) {
    if (err.statusCode >= 500) return { statusCode: 500, fields: { server: ['internal error'] }, unexpected: true };
    const fields = Object.keys(err.fields).length > 0 ? err.fields : { [err.code]: [err.message] };
    // An error that says when to come back (a 429) carries its `retryAfter` in seconds.
    const retryAfter = (err as { retryAfter?: unknown }).retryAfter;
    return { statusCode: err.statusCode, fields, ...(typeof retryAfter === 'number' ? { retryAfter } : {}) };
  }
  if (isRedisOutOfMemory(err)) {
    return {
      statusCode: 503,
      fields: { redis: ['is out of memory, try again later'] },
      retryAfter: OUT_OF_MEMORY_RETRY_AFTER,
    };
  }
  if (isRedisUnavailable(err)) {
    return { statusCode: 503, fields: { redis: ['is unavailable, try again'] }, retryAfter: 1 };
  }
  // A cursor, token or id from the request that decodes to a stream position Redis refuses reached Redis: bad input
  // (every id Postoffice makes is valid), so a 400 rather than a 500, whatever a route failed to check.
  if (err instanceof Error && err.name === 'ReplyError' && REDIS_BAD_STREAM_ID.test(err.message)) {
    return {
      statusCode: 400,
      fields: { request: ['names a message position that cannot exist (a cursor, token or id out of range)'] },
    };
  }
  const code = err instanceof Error ? (err as { code?: unknown }).code : undefined;
  switch (code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { statusCode: 400, fields: { body: ['is not valid JSON'] } };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { statusCode: 400, fields: { body: ["can't be blank"] } };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { statusCode: 413, fields: { body: [`is larger than ${limits.bodyLimitBytes} bytes`] } };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { statusCode: 415, fields: { 'content-type': ['must be application/json'] } };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { statusCode: 400, fields: { 'content-length': ['does not match the body'] } };
    case 'FST_ERR_BAD_URL':
      return { statusCode: 400, fields: { path: ['is not a valid URL'] } };
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return { statusCode: 414, fields: { path: ['is too long'] } };
  }
  const status = err instanceof Error ? (err as { statusCode?: unknown }).statusCode : undefined;
  if (err instanceof SyntaxError && status === 400) return { statusCode: 400, fields: { body: ['is not valid JSON'] } };
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return { statusCode: status, fields: { request: [err instanceof Error ? err.message : 'is invalid'] } };
  }
  return { statusCode: 500, fields: { server: ['internal error'] }, unexpected: true };
}
