/**
 * API authentication (API_TOKENS). Off when no token is configured.
 *
 * When on, every route under `/api` except `/api/health*` and `/api/session`
 * needs a credential, checked in an `onRequest` hook before the body is read:
 *  - `Authorization: Bearer <token>`, one of the configured tokens;
 *  - or a session cookie (`po_session`), which a browser gets from
 *    `POST /api/session` with a token.
 * No credential (or an unusable one: another scheme, an expired or unknown
 * cookie) is a 401 with `WWW-Authenticate: Bearer`; a Bearer token that is
 * not configured is a 403.
 *
 * Tokens are compared in constant time over their SHA-256 digests, so
 * neither a token's length nor its prefix leaks through timing.
 *
 * A session is stateless, so it works across producer replicas with no
 * shared state: `v1.<expiry epoch seconds>.<base64url HMAC-SHA256(key =
 * SHA-256(token), "v1.<expiry>")>`. It is valid until its expiry and only
 * while the token that signed it is still configured: removing a token from
 * API_TOKENS ends its sessions. An expiry written with leading zeros, or
 * further away than a session lasts (plus a minute for replicas' clocks),
 * is refused: only values this code could have issued are valid.
 *
 * CSRF: a request authenticated by the cookie alone that changes something
 * (any method but GET, HEAD, OPTIONS) must carry `Content-Type:
 * application/json` or an `X-Requested-With` header, body or not: a page
 * of another site (a sibling subdomain is the same site, so SameSite does
 * not stop it) can send neither without a CORS preflight, which Postoffice
 * never grants. Otherwise 403 naming `content-type`.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errorBody } from './http-errors.js';

export const SESSION_COOKIE = 'po_session';
export const SESSION_LIFETIME_SECONDS = 12 * 3600;
const SESSION_VERSION = 'v1';
/** How far a session's expiry may lie beyond a full lifetime from now: the clocks of replicas differ a little. */
const CLOCK_SKEW_SECONDS = 60;
/** Methods that change nothing, so a cookie alone may send them. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** What a request's credentials amount to. */
export type Verdict = 'ok' | 'missing' | 'wrong';

export class Auth {
  /** SHA-256 of each token: what Bearer tokens are compared with. */
  private readonly digests: readonly Buffer[];

  constructor(
    tokens: readonly string[],
    /** Milliseconds since the epoch; injected by tests. */
    private readonly now: () => number = Date.now,
  ) {
    this.digests = tokens.map((t) => sha256(t));
  }

  /** Whether any token is configured, i.e. whether authentication is on. */
  get required(): boolean {
    return this.digests.length > 0;
  }

  /** Whether `token` is one of the configured tokens (constant time for each of them). */
  isToken(token: string): boolean {
    return this.matching(token) !== undefined;
  }

  /** A Bearer token in the header, or the session cookie: ok, missing (401) or wrong (403). */
  verdict(headers: FastifyRequest['headers']): Verdict {
    const authorization = headers.authorization;
    if (authorization !== undefined && authorization !== '') {
      const match = /^Bearer +(\S+) *$/i.exec(authorization);
      if (!match) return 'missing';
      return this.isToken(match[1]!) ? 'ok' : 'wrong';
    }
    const cookie = readCookie(headers.cookie, SESSION_COOKIE);
    return cookie !== undefined && this.isSession(cookie) ? 'ok' : 'missing';
  }

  /** A session value signed with `token`, valid for SESSION_LIFETIME_SECONDS; undefined when it is no token. */
  openSession(token: string): string | undefined {
    const digest = this.matching(token);
    if (digest === undefined) return undefined;
    const expiry = Math.floor(this.now() / 1000) + SESSION_LIFETIME_SECONDS;
    return `${SESSION_VERSION}.${expiry}.${sign(digest, expiry)}`;
  }

  /** Whether a session value is unexpired and signed with a token still configured. */
  isSession(value: string): boolean {
    const parts = value.split('.');
    if (parts.length !== 3 || parts[0] !== SESSION_VERSION || !/^[1-9]\d{0,11}$/.test(parts[1]!)) return false;
    const expiry = Number(parts[1]);
    const now = this.now();
    if (expiry * 1000 <= now) return false;
    if (expiry * 1000 > now + (SESSION_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS) * 1000) return false;
    // Compared as text, not decoded: base64 decoding is lenient, and only the exact signature is valid.
    const given = Buffer.from(parts[2]!);
    let valid = false;
    for (const digest of this.digests) {
      const expected = Buffer.from(sign(digest, expiry));
      if (given.length === expected.length && timingSafeEqual(given, expected)) valid = true;
    }
    return valid;
  }

  private matching(token: string): Buffer | undefined {
    const given = sha256(token);
    let found: Buffer | undefined;
    // Every digest is compared, so the time taken does not say which token (if any) matched.
    for (const digest of this.digests) if (timingSafeEqual(given, digest)) found = digest;
    return found;
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function sign(key: Buffer, expiry: number): string {
  return createHmac('sha256', key).update(`${SESSION_VERSION}.${expiry}`).digest('base64url');
}

/** The value of one cookie in a Cookie header (first occurrence), undefined when absent. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * Whether a route is open without credentials: everything outside `/api`
 * (the UI's assets, `/metrics` for Prometheus scrapers), health checks and
 * the session routes. `path` is the matched route pattern when there is one,
 * so encoded or oddly written URLs are judged by the route they reach.
 */
export function isPublic(path: string): boolean {
  if (path !== '/api' && !path.startsWith('/api/')) return true;
  return path === '/api/session' || path === '/api/health' || path.startsWith('/api/health/');
}

export function sendUnauthorized(reply: FastifyReply, verdict: Exclude<Verdict, 'ok'>): FastifyReply {
  if (verdict === 'wrong') {
    return reply.code(403).send(errorBody({ authorization: ['is not a valid API token'] }));
  }
  return reply
    .code(401)
    .header('www-authenticate', 'Bearer')
    .send(errorBody({ authorization: ['is missing: send Authorization: Bearer <token>, or log in'] }));
}

/** Whether a request's credential is the session cookie: no Authorization header (which, when present, decides alone). */
function byCookie(headers: FastifyRequest['headers']): boolean {
  return headers.authorization === undefined || headers.authorization === '';
}

/** Whether a request carries what a page of another site cannot send without a CORS preflight. */
function preflighted(headers: FastifyRequest['headers']): boolean {
  const type = headers['content-type']?.split(';')[0]?.trim().toLowerCase();
  const requestedWith = headers['x-requested-with'];
  return type === 'application/json' || (requestedWith !== undefined && requestedWith !== '');
}

/** Requires credentials on every non-public route when `auth` has tokens; nothing when it has none. */
export function registerAuth(app: FastifyInstance, auth: Auth): void {
  if (!auth.required) return;
  app.addHook('onRequest', async (request, reply) => {
    // Both the path as sent and the route it reached must be public: `/%61pi/topics` reaches `/api/topics`,
    // and a catch-all route (the UI's) must not open what is under `/api`.
    const path = request.url.split('?')[0] ?? '';
    const route = request.routeOptions.url ?? path;
    if (isPublic(path) && isPublic(route)) return;
    const verdict = auth.verdict(request.headers);
    if (verdict !== 'ok') {
      request.log.debug({ verdict, route }, 'request refused: credentials');
      return sendUnauthorized(reply, verdict);
    }
    if (!SAFE_METHODS.has(request.method) && byCookie(request.headers) && !preflighted(request.headers)) {
      request.log.debug({ route }, 'request refused: a change by cookie without a JSON content type');
      return reply.code(403).send(
        errorBody({
          'content-type': [
            'must be application/json (or send X-Requested-With) for a change made with a session cookie',
          ],
        }),
      );
    }
  });
}
