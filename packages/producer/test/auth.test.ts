import { expect } from 'chai';
import { createHash, createHmac } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { Auth, SESSION_LIFETIME_SECONDS } from '../src/index.js';
import { startRedis, type RedisServer } from '@postoffice/test-support';
import { call, errors, loggedApp, send, startApi, type Answer, type Api } from './helpers.js';

const A = 'first-token-0123456789abcdef';
const B = 'second-token-0123456789abcdef';
const WRONG = 'not-a-token-0123456789abcdef';

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT' | 'HEAD';

async function request(
  app: FastifyInstance,
  method: Method,
  url: string,
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<Answer> {
  if (body !== undefined) {
    return send(app, method as 'POST', url, JSON.stringify(body), { 'content-type': 'application/json', ...headers });
  }
  const res = await app.inject({ method, url, headers });
  let parsed: unknown;
  try {
    parsed = res.body === '' ? undefined : JSON.parse(res.body);
  } catch {
    parsed = res.body;
  }
  return { status: res.statusCode, body: parsed, headers: res.headers, raw: res.body };
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

/** A session value made the way the README describes it, independently of the producer's code. */
function session(token: string, expiry: number): string {
  const key = createHash('sha256').update(token).digest();
  return `v1.${expiry}.${createHmac('sha256', key).update(`v1.${expiry}`).digest('base64url')}`;
}

/** The session value of a Set-Cookie header. */
function cookieOf(answer: Answer): string {
  const header = answer.headers['set-cookie'];
  const line = Array.isArray(header) ? header[0] : header;
  const value = /^po_session=([^;]*)/.exec(line ?? '')?.[1];
  if (value === undefined) throw new Error(`no po_session cookie in ${String(line)}`);
  return value;
}

async function login(app: FastifyInstance, token: string): Promise<string> {
  const res = await request(app, 'POST', '/api/session', {}, { token });
  expect(res.status, res.raw).to.equal(204);
  return cookieOf(res);
}

describe('API authentication', function () {
  this.timeout(30_000);
  let server: RedisServer;
  const apis: Api[] = [];

  before(async () => {
    server = await startRedis();
  });
  afterEach(async () => {
    await Promise.all(apis.splice(0).map((a) => a.close()));
  });
  after(async () => {
    await server.stop();
  });

  async function api(env: Record<string, string> = {}): Promise<FastifyInstance> {
    // The tests here share one Redis and log in wrongly on purpose: only the throttling test counts failures.
    const a = await startApi({ LOGIN_MAX_FAILURES: '1000000', ...env }, server);
    apis.push(a);
    return a.app;
  }

  describe('when API_TOKENS is unset', () => {
    it('serves every route without credentials and says no login is needed', async () => {
      const app = await api();
      expect((await call(app, 'GET', '/api/topics')).status).to.equal(200);
      expect((await call(app, 'POST', '/api/topics', { name: 'open', origin_host: 'x.test' })).status).to.equal(201);
      expect((await call(app, 'GET', '/api/session')).body).to.deep.equal({
        auth_required: false,
        authenticated: true,
      });
      const loggedIn = await request(app, 'POST', '/api/session', {}, { token: 'anything' });
      expect(loggedIn.status).to.equal(204);
      expect(loggedIn.headers['set-cookie']).to.equal(undefined);
      expect((await request(app, 'DELETE', '/api/session')).status).to.equal(204);
    });
  });

  describe('when API_TOKENS has two tokens', () => {
    let app: FastifyInstance;
    beforeEach(async () => {
      app = await api({ API_TOKENS: `${A}, ${B}` });
    });

    it('answers 401 with WWW-Authenticate: Bearer and the error shape when there is no credential', async () => {
      for (const [method, url] of [
        ['GET', '/api/topics'],
        ['GET', '/api/topics/orders'],
        ['GET', '/api/messages'],
        ['GET', '/api/publishers'],
        ['GET', '/api/failing'],
        ['GET', '/api/cluster'],
        ['DELETE', '/api/publishers/1'],
        ['HEAD', '/api/topics'],
        ['GET', '/api/no-such-route'],
        ['GET', '/api'],
      ] as const) {
        const res = await request(app, method, url);
        expect(res.status, `${method} ${url}`).to.equal(401);
        expect(res.headers['www-authenticate'], `${method} ${url}`).to.equal('Bearer');
        if (method !== 'HEAD') {
          expect(res.body, `${method} ${url}`).to.deep.equal(
            errors({ authorization: ['is missing: send Authorization: Bearer <token>, or log in'] }),
          );
        }
      }
    });

    it('refuses before reading the body: a POST without credentials is a 401 whatever it carries', async () => {
      expect((await call(app, 'POST', '/api/topics', { name: 'closed', origin_host: 'x.test' })).status).to.equal(401);
      const bad = await send(app, 'POST', '/api/messages', '{not json', { 'content-type': 'application/json' });
      expect(bad.status).to.equal(401);
      const text = await send(app, 'POST', '/api/messages', 'hello', { 'content-type': 'text/plain' });
      expect(text.status).to.equal(401);
      const topics = (await request(app, 'GET', '/api/topics', bearer(A))).body as { data: { name: string }[] };
      expect(topics.data.map((t) => t.name)).to.not.include('closed');
    });

    it('answers 401 for another scheme or an empty Bearer, and 403 for a wrong token', async () => {
      for (const authorization of [`Basic ${Buffer.from(`u:${A}`).toString('base64')}`, 'Bearer', 'Bearer ', A]) {
        const res = await request(app, 'GET', '/api/topics', { authorization });
        expect(res.status, authorization).to.equal(401);
      }
      for (const token of [WRONG, `${A}x`, A.slice(0, -1), B.toUpperCase()]) {
        const res = await request(app, 'GET', '/api/topics', bearer(token));
        expect(res.status, token).to.equal(403);
        expect(res.body).to.deep.equal(errors({ authorization: ['is not a valid API token'] }));
      }
    });

    it('serves each of the two tokens, with the scheme in any case', async () => {
      expect(
        (await request(app, 'POST', '/api/topics', bearer(A), { name: 'orders', origin_host: 'x' })).status,
      ).to.equal(201);
      expect((await request(app, 'GET', '/api/topics/orders', bearer(A))).status).to.equal(200);
      expect((await request(app, 'GET', '/api/topics/orders', bearer(B))).status).to.equal(200);
      expect((await request(app, 'GET', '/api/topics', { authorization: `bearer ${B}` })).status).to.equal(200);
      // Without a token the route still refuses, so it was the token that opened it.
      expect((await request(app, 'GET', '/api/topics/orders')).status).to.equal(401);
    });

    it('judges an encoded path by the route it reaches', async () => {
      for (const url of ['/%61pi/topics', '/api/%74opics']) {
        expect((await request(app, 'GET', url)).status, url).to.equal(401);
        expect((await request(app, 'GET', url, bearer(A))).status, url).to.equal(200);
      }
    });

    it('keeps health, /metrics, the session routes and everything outside /api open', async () => {
      expect((await request(app, 'GET', '/api/health')).status).to.equal(200);
      expect((await request(app, 'GET', '/api/health?probe=1')).status).to.equal(200);
      const metrics = await request(app, 'GET', '/metrics');
      expect(metrics.status).to.equal(200);
      expect(metrics.raw).to.contain('postoffice_');
      expect((await request(app, 'GET', '/api/session')).status).to.equal(200);
      // Outside /api nothing asks for a credential: the web UI's files (served when built) and unknown paths.
      expect((await request(app, 'GET', '/')).status).to.be.oneOf([200, 404]);
      expect((await request(app, 'GET', '/ui/style.css')).status).to.be.oneOf([200, 404]);
      expect((await request(app, 'GET', '/no-such-page')).status).to.equal(404);
    });

    it('logs in with a token: an HttpOnly, SameSite=Strict session cookie for 12 hours that opens the API', async () => {
      expect((await request(app, 'GET', '/api/session')).body).to.deep.equal({
        auth_required: true,
        authenticated: false,
      });
      const res = await request(app, 'POST', '/api/session', {}, { token: A });
      expect(res.status).to.equal(204);
      const header = res.headers['set-cookie'] as string;
      expect(header).to.match(/^po_session=v1\.\d+\.[A-Za-z0-9_-]{43};/);
      expect(header.split('; ').slice(1)).to.include.members([
        `Max-Age=${SESSION_LIFETIME_SECONDS}`,
        'Path=/',
        'HttpOnly',
        'SameSite=Strict',
      ]);
      expect(header).to.not.contain('Secure');
      expect(header).to.not.contain(A);
      const value = cookieOf(res);
      const expiry = Number(value.split('.')[1]);
      expect(expiry).to.be.within(Date.now() / 1000 + SESSION_LIFETIME_SECONDS - 60, Date.now() / 1000 + 43200 + 1);

      const cookie = { cookie: `other=1; po_session=${value}` };
      expect((await request(app, 'GET', '/api/topics', cookie)).status).to.equal(200);
      expect((await request(app, 'GET', '/api/session', cookie)).body).to.deep.equal({
        auth_required: true,
        authenticated: true,
      });
      expect((await request(app, 'GET', '/api/session', bearer(B))).body).to.deep.include({ authenticated: true });
      // A wrong Bearer token is not rescued by a good cookie.
      expect((await request(app, 'GET', '/api/topics', { ...cookie, ...bearer(WRONG) })).status).to.equal(403);
    });

    it('marks the cookie Secure when the request came over HTTPS (per X-Forwarded-Proto)', async () => {
      const res = await request(app, 'POST', '/api/session', { 'x-forwarded-proto': 'https' }, { token: B });
      expect(res.status).to.equal(204);
      expect(res.headers['set-cookie']).to.match(/; Secure$/);
    });

    it('refuses a login with a wrong or missing token: 401 naming token, no cookie', async () => {
      for (const [body, why] of [
        [{ token: WRONG }, 'is not a valid API token'],
        [{ token: '' }, 'is not a valid API token'],
        [{}, "can't be blank"],
        [{ token: 42 }, "can't be blank"],
        [[A], "can't be blank"],
      ] as const) {
        const res = await request(app, 'POST', '/api/session', {}, body);
        expect(res.status, JSON.stringify(body)).to.equal(401);
        expect(res.body).to.deep.equal(errors({ token: [why] }));
        expect(res.headers['set-cookie']).to.equal(undefined);
      }
      const form = await send(app, 'POST', '/api/session', `token=${A}`, {
        'content-type': 'application/x-www-form-urlencoded',
      });
      expect(form.status).to.equal(415);
      expect(form.headers['set-cookie']).to.equal(undefined);
    });

    it('logs out: DELETE clears the cookie', async () => {
      const res = await request(app, 'DELETE', '/api/session');
      expect(res.status).to.equal(204);
      const header = res.headers['set-cookie'] as string;
      expect(header).to.match(/^po_session=;/);
      expect(header).to.contain('Max-Age=0').and.contain('HttpOnly').and.contain('SameSite=Strict');
      expect(header).to.contain('Path=/');
    });

    it('refuses an expired, tampered, malformed or unsigned session cookie with a 401', async () => {
      const now = Math.floor(Date.now() / 1000);
      const good = session(A, now + 3600);
      expect((await request(app, 'GET', '/api/topics', { cookie: `po_session=${good}` })).status).to.equal(200);
      const [, , sig] = good.split('.');
      for (const value of [
        session(A, now - 1),
        session(B, now - 3600),
        `v1.${now + 7200}.${sig}`,
        `v2.${now + 3600}.${sig}`,
        `v1.${now + 3600}.${sig}x`,
        `v1.${now + 3600}.`,
        session(WRONG, now + 3600),
        // Signed, but further away than a session lasts: a hand-made cookie for year 33658.
        session(A, now + SESSION_LIFETIME_SECONDS + 3600),
        session(A, 999_999_999_999),
        // The signed expiry with leading zeros: the same number, another text.
        good.replace(`v1.${now + 3600}.`, `v1.0${now + 3600}.`),
        good.replace(`v1.${now + 3600}.`, `v1.000${now + 3600}.`),
        'v1',
        '',
      ]) {
        const res = await request(app, 'GET', '/api/topics', { cookie: `po_session=${value}` });
        expect(res.status, value).to.equal(401);
      }
      expect((await request(app, 'GET', '/api/topics', { cookie: `session=${good}` })).status).to.equal(401);
    });

    it('refuses a change made with the cookie alone unless it is JSON or says X-Requested-With, body or not', async () => {
      const cookie = `po_session=${await login(app, A)}`;
      await request(app, 'POST', '/api/topics', bearer(A), { name: 'jobs', origin_host: 'x' });
      const pull = await request(app, 'POST', '/api/publishers', bearer(A), {
        topic: 'jobs',
        target: 'workers',
        type: 'pull',
      });
      const id = (pull.body as { data: { id: string } }).data.id;
      await request(app, 'POST', '/api/messages', bearer(A), { topic: 'jobs', payload: 1 });
      const refusal = errors({
        'content-type': ['must be application/json (or send X-Requested-With) for a change made with a session cookie'],
      });
      // What a page of a sibling subdomain can send: no content type, or a form's.
      for (const [method, url, headers, payload] of [
        ['POST', `/api/publishers/${id}/lease`, {}, undefined],
        ['POST', `/api/publishers/${id}/lease`, { 'content-type': 'text/plain' }, '{"max":1}'],
        ['POST', `/api/publishers/${id}/lease`, { 'content-type': 'application/x-www-form-urlencoded' }, 'max=1'],
        ['DELETE', `/api/publishers/${id}`, {}, undefined],
        ['PATCH', `/api/publishers/${id}`, { 'content-type': 'text/plain' }, '{"active":false}'],
      ] as const) {
        const res = await app.inject({ method, url, headers: { cookie, ...headers }, payload });
        expect(res.statusCode, `${method} ${url} ${JSON.stringify(headers)}`).to.equal(403);
        expect(JSON.parse(res.body)).to.deep.equal(refusal);
      }
      // Nothing was leased: the message is still there for a JSON request.
      const json = await request(app, 'POST', `/api/publishers/${id}/lease`, { cookie }, { max: 1 });
      expect(json.status, json.raw).to.equal(200);
      expect(json.body).to.have.nested.property('data[0].message.payload', 1);
      // X-Requested-With works without a body; a GET needs neither; a Bearer token needs neither.
      const marked = await request(app, 'POST', `/api/publishers/${id}/lease`, { cookie, 'x-requested-with': 'x' });
      expect(marked.status, marked.raw).to.equal(200);
      expect((await request(app, 'GET', '/api/topics', { cookie })).status).to.equal(200);
      expect((await request(app, 'POST', `/api/publishers/${id}/lease`, bearer(B))).status).to.equal(200);
      const charset = await send(app, 'POST', `/api/publishers/${id}/lease`, '{}', {
        cookie,
        'content-type': 'Application/JSON; charset=utf-8',
      });
      expect(charset.status, charset.raw).to.equal(200);
    });

    it('counts failed logins by the X-Forwarded-For of a proxy named in TRUST_PROXY, and ignores it from others', async () => {
      for (const [trust, prefix] of [
        ['', 'untrusted:'],
        ['10.9.0.0/16', 'trusted:'],
      ] as const) {
        const app = await api({ API_TOKENS: A, LOGIN_MAX_FAILURES: '2', TRUST_PROXY: trust, REDIS_PREFIX: prefix });
        const login = (client: string, token: string): Promise<LightMyRequestResponse> =>
          app.inject({
            method: 'POST',
            url: '/api/session',
            remoteAddress: '10.9.8.7',
            headers: { 'content-type': 'application/json', 'x-forwarded-for': client },
            payload: JSON.stringify({ token }),
          });
        await login('198.51.100.1', WRONG);
        await login('198.51.100.1', WRONG);
        // Trusted: the client the proxy names is throttled, another is not. Untrusted: all come from the proxy.
        expect((await login('198.51.100.1', A)).statusCode, trust).to.equal(429);
        expect((await login('198.51.100.2', A)).statusCode, trust).to.equal(trust === '' ? 429 : 204);
      }
    });

    it('throttles failed logins per client address: 429 with Retry-After past LOGIN_MAX_FAILURES, a right token included', async () => {
      const throttled = await api({ API_TOKENS: A, LOGIN_MAX_FAILURES: '3', LOGIN_WINDOW_SECONDS: '600' });
      const from = (remoteAddress: string, token: string): Promise<LightMyRequestResponse> =>
        throttled.inject({
          method: 'POST',
          url: '/api/session',
          remoteAddress,
          headers: { 'content-type': 'application/json' },
          payload: JSON.stringify({ token }),
        });
      for (let i = 0; i < 3; i++) expect((await from('203.0.113.7', WRONG)).statusCode).to.equal(401);
      for (const token of [WRONG, A]) {
        const res = await from('203.0.113.7', token);
        expect(res.statusCode, token).to.equal(429);
        expect(Number(res.headers['retry-after'])).to.be.within(590, 600);
        expect(JSON.parse(res.body)).to.have.nested.property('data.errors.token');
        expect(res.headers['set-cookie']).to.equal(undefined);
      }
      // Another address is not held back; the same IPv6 /64 is one client.
      expect((await from('203.0.113.8', A)).statusCode).to.equal(204);
      for (let i = 0; i < 3; i++) expect((await from(`2001:db8:1:2::${i + 1}`, WRONG)).statusCode).to.equal(401);
      expect((await from('2001:db8:1:2:ffff::9', A)).statusCode).to.equal(429);
      expect((await from('2001:db8:1:3::1', A)).statusCode).to.equal(204);
      // Counted in Redis: another replica on the same Redis refuses the address too.
      const replica = await api({ API_TOKENS: A, LOGIN_MAX_FAILURES: '3', LOGIN_WINDOW_SECONDS: '600' });
      const elsewhere = await replica.inject({
        method: 'POST',
        url: '/api/session',
        remoteAddress: '203.0.113.7',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ token: A }),
      });
      expect(elsewhere.statusCode).to.equal(429);
      // Bearer tokens are not logins: the API still answers the throttled address.
      const bearerFrom = await throttled.inject({
        method: 'GET',
        url: '/api/topics',
        remoteAddress: '203.0.113.7',
        headers: bearer(A),
      });
      expect(bearerFrom.statusCode).to.equal(200);
    });
  });

  it('a session works on every replica with the token, and ends when its token is removed from API_TOKENS', async () => {
    const first = await api({ API_TOKENS: `${A},${B}` });
    const cookieA = await login(first, A);
    const cookieB = await login(first, B);
    const replica = await api({ API_TOKENS: `${B},${A}` });
    expect((await request(replica, 'GET', '/api/topics', { cookie: `po_session=${cookieA}` })).status).to.equal(200);
    // Rotated: A removed, B kept.
    const rotated = await api({ API_TOKENS: B });
    expect((await request(rotated, 'GET', '/api/topics', { cookie: `po_session=${cookieA}` })).status).to.equal(401);
    expect((await request(rotated, 'GET', '/api/topics', { cookie: `po_session=${cookieB}` })).status).to.equal(200);
    expect((await request(rotated, 'GET', '/api/topics', bearer(A))).status).to.equal(403);
    expect((await request(rotated, 'POST', '/api/session', {}, { token: A })).status).to.equal(401);
  });

  it('never answers 5xx to random credentials, cookies and login bodies', async () => {
    const app = await api({ API_TOKENS: `${A},${B}` });
    let seed = 42;
    // mulberry32: a small seeded generator, so a failure can be replayed.
    const random = (n: number): number => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * n) | 0;
    };
    const junk = (): string => {
      const pieces = [
        'v1',
        '.',
        A,
        B,
        'Bearer',
        ' ',
        '=',
        ';',
        ',',
        '%',
        '0',
        '999999999999',
        '-',
        '_',
        'po_session',
        'é',
      ];
      return Array.from({ length: random(12) }, () => pieces[random(pieces.length)]!).join('');
    };
    const seen = new Set<number>();
    for (let i = 0; i < 400; i++) {
      const headers: Record<string, string> = {};
      if (random(2)) headers.authorization = `${random(2) ? 'Bearer ' : ''}${junk()}`.replace(/[^\x20-\x7e]/g, '');
      if (random(2)) headers.cookie = `po_session=${junk()}`.replace(/[^\x20-\x7e]/g, '');
      const url = ['/api/topics', '/api/session', '/api/health', '/metrics', `/api/${junk()}`][random(5)]!;
      const method = (['GET', 'POST', 'DELETE'] as const)[random(3)]!;
      const body =
        method === 'POST' ? [{ token: junk() }, { token: [A] }, junk(), null, { token: A }][random(5)] : undefined;
      const res = await request(app, method, encodeURI(url), headers, body);
      expect(res.status, `${method} ${url} ${JSON.stringify(headers)} ${JSON.stringify(body)}`).to.be.below(500);
      seen.add(res.status);
    }
    expect([...seen]).to.include.members([200, 401, 403]);
  });

  describe('the Auth class, with an injected clock', () => {
    it('ends a session 12 hours after the login', () => {
      let now = Date.UTC(2026, 0, 1);
      const auth = new Auth([A], () => now);
      const value = auth.openSession(A)!;
      expect(value).to.equal(session(A, now / 1000 + SESSION_LIFETIME_SECONDS));
      now += (SESSION_LIFETIME_SECONDS - 1) * 1000;
      expect(auth.isSession(value)).to.equal(true);
      now += 1000;
      expect(auth.isSession(value)).to.equal(false);
      expect(auth.openSession(B)).to.equal(undefined);
    });

    it('refuses an expiry beyond a session lifetime (a minute allowed for clocks) and one written with leading zeros', () => {
      const now = Date.UTC(2026, 0, 1);
      const auth = new Auth([A], () => now);
      const at = now / 1000;
      expect(auth.isSession(session(A, at + SESSION_LIFETIME_SECONDS + 60))).to.equal(true);
      expect(auth.isSession(session(A, at + SESSION_LIFETIME_SECONDS + 61))).to.equal(false);
      expect(auth.isSession(session(A, 1_056_000_000_000 / 1000 + 99_999_999_999))).to.equal(false);
      const good = session(A, at + 60);
      expect(auth.isSession(good)).to.equal(true);
      expect(auth.isSession(good.replace('v1.', 'v1.0'))).to.equal(false);
    });

    it('is off without tokens', () => {
      const auth = new Auth([]);
      expect(auth.required).to.equal(false);
      expect(auth.isToken('')).to.equal(false);
      expect(auth.openSession(A)).to.equal(undefined);
    });
  });
});

describe('logs with API_TOKENS set, at every level', function () {
  this.timeout(30_000);

  it('never contain a token, the Authorization or Cookie header, a session cookie or a publisher secret', async () => {
    const { app, config, logger, lines, close } = await loggedApp({ env: { API_TOKENS: `${A},${B}` } });
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    let cookie = '';
    try {
      await app.ready();
      logger.info({ config }, 'configuration');
      await request(app, 'POST', '/api/topics', bearer(A), { name: 'logged', origin_host: 'x.test' });
      await request(app, 'GET', '/api/topics', bearer(B));
      await request(app, 'GET', '/api/topics', bearer(WRONG));
      await request(app, 'GET', '/api/topics', { authorization: `Basic ${A}` });
      const res = await request(app, 'POST', '/api/session', {}, { token: A });
      cookie = cookieOf(res);
      await request(app, 'POST', '/api/session', {}, { token: WRONG });
      await request(app, 'GET', '/api/topics', { cookie: `po_session=${cookie}` });
      await request(app, 'GET', '/api/session', { cookie: `po_session=${cookie}` });
      await request(app, 'DELETE', '/api/session', { cookie: `po_session=${cookie}` });
      await request(app, 'POST', '/api/publishers', bearer(A), {
        topic: 'logged',
        target: 'http://receiver.test/hook',
        type: 'http',
        secrets: [secret],
      });
      await request(app, 'POST', '/api/publishers', bearer(A), { topic: 'nope', secrets: [secret] });
      await send(app, 'POST', '/api/messages', `{"token":"${A}"`, {
        'content-type': 'application/json',
        ...bearer(A),
      });
      // Whatever logs a request, a reply or a publisher, these paths are redacted.
      const log = logger.child({ component: 'test' });
      log.info(
        {
          req: { headers: { authorization: `Bearer ${A}`, cookie: `po_session=${cookie}` } },
          res: { headers: { 'set-cookie': `po_session=${cookie}` } },
          headers: { authorization: `Bearer ${B}`, cookie: `po_session=${cookie}`, 'set-cookie': cookie },
          body: { token: A, secrets: [secret] },
          publisher: { id: 1, secrets: [secret] },
          data: { publisher: { secrets: [secret] } },
          apiTokens: [A, B],
          token: A,
        },
        'everything at once',
      );
    } finally {
      await close();
    }
    const text = lines.join('\n');
    expect(lines.length, 'the requests were logged').to.be.above(20);
    expect(text).to.contain('incoming request').and.contain('request refused').and.contain('everything at once');
    expect(text).to.contain('[redacted]');
    for (const [what, value] of [
      ['token A', A],
      ['token B', B],
      ['the wrong token', WRONG],
      ['the session cookie', cookie.split('.')[2]!],
      ['the publisher secret', secret],
    ] as const) {
      expect(text, what).to.not.contain(value);
    }
    expect(text.toLowerCase()).to.not.match(/bearer [a-z]/);
    expect(text).to.not.contain('po_session=v1');
  });
});
