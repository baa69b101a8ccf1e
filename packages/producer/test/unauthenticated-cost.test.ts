import { expect } from 'chai';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { OPEN_BODY_LIMIT_BYTES } from '../src/index.js';
import { loggedApp, startApi, type Api } from './helpers.js';

const TOKEN = 'a-token-for-these-tests-0123456789';
const BODY_LIMIT = 6 * 1024 * 1024;

/** `{"token":[[[…]]]}` of about `bytes` bytes: the body that froze the producer for 2 s a request. */
function nested(bytes: number): string {
  const depth = Math.floor((bytes - 12) / 2);
  return `{"token":${'['.repeat(depth)}${']'.repeat(depth)}}`;
}

/**
 * Counts JSON.parse calls on texts longer than 100 KB while `fn` runs: each is a body that was parsed.
 * A positive control in each test shows the count sees the API's parser.
 */
async function bigParses(fn: () => Promise<void>): Promise<number> {
  const parse = JSON.parse;
  let count = 0;
  JSON.parse = function (text: string, reviver?: (this: unknown, key: string, value: unknown) => unknown) {
    if (typeof text === 'string' && text.length > 100_000) count++;
    return parse.call(JSON, text, reviver) as unknown;
  } as typeof JSON.parse;
  try {
    await fn();
  } finally {
    JSON.parse = parse;
  }
  return count;
}

describe('what a request without a credential can cost the producer', function () {
  this.timeout(60_000);
  let api: Api;
  let app: FastifyInstance;
  const huge = nested(5 * 1024 * 1024);

  before(async () => {
    api = await startApi({ API_TOKENS: TOKEN, BODY_LIMIT_BYTES: String(BODY_LIMIT) });
    app = api.app;
  });
  after(async () => {
    await api.close();
  });

  const post = (url: string, payload: string, headers: Record<string, string> = {}, method = 'POST') =>
    app.inject({
      method: method as 'POST',
      url,
      payload,
      headers: { 'content-type': 'application/json', ...headers },
    });

  it('parses a nested body only with a credential: the control', async () => {
    let status = 0;
    const parses = await bigParses(async () => {
      status = (await post('/api/messages', nested(200_000), { authorization: `Bearer ${TOKEN}` })).statusCode;
    });
    expect(parses).to.equal(1);
    expect(status).to.equal(400);
  });

  it('refuses a 5 MB nested body to a protected route with 401 before reading it, and a larger one too', async () => {
    const parses = await bigParses(async () => {
      for (const url of ['/api/messages', '/api/topics', '/api/publishers/1/lease', '/api/no-such-route']) {
        const res = await post(url, huge);
        expect(res.statusCode, url).to.equal(401);
      }
      // Past BODY_LIMIT_BYTES: a body that was read would be a 413.
      const larger = await post('/api/messages', nested(BODY_LIMIT + 1024));
      expect(larger.statusCode).to.equal(401);
    });
    expect(parses).to.equal(0);
  });

  it(`refuses a body over ${OPEN_BODY_LIMIT_BYTES} bytes to an open route with 413 before reading it, and closes the connection`, async () => {
    const parses = await bigParses(async () => {
      for (const [method, url] of [
        ['POST', '/api/session'],
        ['DELETE', '/api/session'],
        ['GET', '/api/health'],
        ['POST', '/metrics'],
        ['POST', '/no-such-page'],
        ['POST', '/'],
      ] as const) {
        for (const body of [huge, JSON.stringify({ token: 'x'.repeat(OPEN_BODY_LIMIT_BYTES) })]) {
          const res = await post(url, body, {}, method);
          expect(res.statusCode, `${method} ${url} ${body.length}`).to.equal(413);
          expect(res.headers.connection).to.equal('close');
          expect(JSON.parse(res.body)).to.deep.equal({
            data: { errors: { body: [`is larger than ${OPEN_BODY_LIMIT_BYTES} bytes on this route`] } },
          });
        }
      }
    });
    expect(parses).to.equal(0);
    // At the limit, the login reads its body as before.
    const edge = JSON.stringify({ token: 'x'.repeat(OPEN_BODY_LIMIT_BYTES - 12) });
    expect(edge.length).to.equal(OPEN_BODY_LIMIT_BYTES);
    const login = await post('/api/session', edge);
    expect(login.statusCode).to.equal(401);
    expect(JSON.parse(login.body)).to.deep.equal({ data: { errors: { token: ['is not a valid API token'] } } });
  });

  it('refuses a body without Content-Length to an open route with 411', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/session',
      payload: Readable.from([Buffer.from('{"token":"x"}')]),
      headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
    });
    expect(res.statusCode).to.equal(411);
    expect(JSON.parse(res.body)).to.deep.equal({
      data: { errors: { 'content-length': ['is required with a body on this route'] } },
    });
  });

  it('keeps the limit when authentication is off', async () => {
    const open = await startApi({}, api.server);
    try {
      const res = await open.app.inject({
        method: 'POST',
        url: '/api/session',
        payload: huge,
        headers: { 'content-type': 'application/json' },
      });
      expect(res.statusCode).to.equal(413);
    } finally {
      await open.close();
    }
  });
});

describe('the access log', function () {
  this.timeout(30_000);

  it('writes paths without their query string, at every level, for good, refused and malformed requests', async () => {
    const { app, lines, close } = await loggedApp({ env: { API_TOKENS: TOKEN } });
    try {
      await app.ready();
      for (const url of [
        '/api/topics?token=SECRET-1&x=1',
        '/api/health?token=SECRET-2',
        '/%ff?token=SECRET-3',
        '/api/%ff?token=SECRET-4',
        '/api/no-such-route?token=SECRET-5',
      ]) {
        await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${TOKEN}` } });
      }
      await app.inject({ method: 'GET', url: '/api/topics?token=SECRET-6' });
    } finally {
      await close();
    }
    const text = lines.join('\n');
    expect(text).to.contain('"url":"/api/topics"').and.contain('"url":"/api/health"');
    expect(text).to.contain('is not a valid url component');
    expect(text).to.not.contain('SECRET');
    expect(text).to.not.contain('token=');
  });
});
