/**
 * Browser sessions for the web UI (see auth.ts): GET tells whether a login
 * is needed, POST exchanges a token for an HttpOnly, SameSite=Strict cookie,
 * DELETE clears it. All three are open. When authentication is off there is
 * nothing to log into: GET says so and POST and DELETE answer 204 without a
 * cookie. Failed logins are throttled per client address (login-throttle.ts).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { SESSION_COOKIE, SESSION_LIFETIME_SECONDS, type Auth } from '../auth.js';
import { errorBody } from '../http-errors.js';
import type { LoginThrottle } from '../login-throttle.js';

/** `GET /api/session`'s answer. */
export interface SessionView {
  readonly auth_required: boolean;
  readonly authenticated: boolean;
}

export function registerSessionRoutes(app: FastifyInstance, auth: Auth, throttle: LoginThrottle): void {
  app.get('/api/session', async (request): Promise<SessionView> => ({
    auth_required: auth.required,
    authenticated: !auth.required || auth.verdict(request.headers) === 'ok',
  }));

  app.post('/api/session', async (request, reply) => {
    if (!auth.required) return reply.code(204).send();
    const wait = await throttle.retryAfter(request.ip);
    if (wait > 0) {
      request.log.debug({ retryAfter: wait }, 'login refused: too many failures from this address');
      return reply
        .code(429)
        .header('retry-after', String(wait))
        .send(errorBody({ token: [`too many failed logins from this address; try again in ${wait} s`] }));
    }
    const body = request.body;
    const token =
      typeof body === 'object' && body !== null && !Array.isArray(body)
        ? (body as Record<string, unknown>).token
        : undefined;
    const session = typeof token === 'string' ? auth.openSession(token) : undefined;
    if (session === undefined) {
      await throttle.failed(request.ip);
      request.log.debug('login refused');
      return reply
        .code(401)
        .send(errorBody({ token: [typeof token === 'string' ? 'is not a valid API token' : "can't be blank"] }));
    }
    return reply
      .code(204)
      .header('set-cookie', cookie(request, session, SESSION_LIFETIME_SECONDS))
      .send();
  });

  app.delete('/api/session', async (request, reply) => {
    if (!auth.required) return reply.code(204).send();
    return reply
      .code(204)
      .header('set-cookie', cookie(request, '', 0))
      .send();
  });
}

/**
 * The Set-Cookie value. `Secure` when the request came over HTTPS: as the
 * server saw it, or as a TLS-terminating proxy says in X-Forwarded-Proto
 * (trusting that header can only add `Secure`, which never weakens the cookie).
 */
function cookie(request: FastifyRequest, value: string, maxAge: number): string {
  const forwarded = request.headers['x-forwarded-proto'];
  const proto = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim().toLowerCase();
  const secure = request.protocol === 'https' || proto === 'https';
  const expires = maxAge === 0 ? '; Expires=Thu, 01 Jan 1970 00:00:00 GMT' : '';
  return `${SESSION_COOKIE}=${value}; Max-Age=${maxAge}${expires}; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}
