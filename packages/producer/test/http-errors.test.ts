import { expect } from 'chai';
import { toErrorReply } from '../src/index.js';
import { call, createTopic, errors, send, startApi, type Api } from './helpers.js';

describe('errors of the HTTP layer', () => {
  let api: Api;
  before(async () => {
    api = await startApi({ BODY_LIMIT_BYTES: '1024' });
    await createTopic(api.app, 'orders');
  });
  after(async () => {
    await api.close();
  });

  it('answers 400 naming body for malformed JSON', async () => {
    const res = await send(api.app, 'POST', '/api/messages', '{"topic": "orders", "payload": ', {
      'content-type': 'application/json',
    });
    expect(res.status).to.equal(400);
    expect(res.body).to.deep.equal(errors({ body: ['is not valid JSON'] }));
  });

  it('answers 400 naming body for an empty JSON body', async () => {
    const res = await send(api.app, 'POST', '/api/messages', '', { 'content-type': 'application/json' });
    expect(res.status).to.equal(400);
    expect(res.body).to.deep.equal(errors({ body: ["can't be blank"] }));
  });

  it('answers 400 naming body for JSON that is not an object', async () => {
    for (const payload of ['"text"', '42', 'null', '[{"topic":"orders"}]']) {
      const res = await send(api.app, 'POST', '/api/messages', payload, { 'content-type': 'application/json' });
      expect(res.status, payload).to.equal(400);
      expect(res.body, payload).to.have.nested.property('data.errors.body');
    }
  });

  it('answers 413 naming body when the body is larger than BODY_LIMIT_BYTES', async () => {
    const res = await call(api.app, 'POST', '/api/messages', { topic: 'orders', payload: 'x'.repeat(2000) });
    expect(res.status).to.equal(413);
    expect(res.body).to.deep.equal(errors({ body: ['is larger than 1024 bytes'] }));
    expect(await api.redis.xlen(api.keys.topic('orders').stream)).to.equal(0);
  });

  it('answers 415 naming content-type for a body that is not JSON', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
      const res = await send(api.app, 'POST', '/api/messages', '{"topic":"orders","payload":1}', {
        'content-type': type,
      });
      expect(res.status, type).to.equal(415);
      expect(res.body).to.deep.equal(errors({ 'content-type': ['must be application/json'] }));
    }
  });

  it('answers 415 for a body without a content type', async () => {
    const res = await send(api.app, 'POST', '/api/messages', '{"topic":"orders","payload":1}', {});
    expect(res.status).to.equal(415);
    expect(res.body).to.deep.equal(errors({ 'content-type': ['must be application/json'] }));
  });

  it('accepts JSON with a charset', async () => {
    const res = await send(api.app, 'POST', '/api/messages', '{"topic":"orders","payload":1}', {
      'content-type': 'application/json; charset=utf-8',
    });
    expect(res.status).to.equal(201);
  });

  it('answers 404 naming path for an unknown route', async () => {
    const res = await call(api.app, 'GET', '/api/nothing?x=1');
    expect(res.status).to.equal(404);
    expect(res.body).to.deep.equal(errors({ path: ['no route for GET /api/nothing'] }));
    const wrongMethod = await call(api.app, 'PUT', '/api/topics', {});
    expect(wrongMethod.status).to.equal(404);
    expect(wrongMethod.body).to.have.nested.property('data.errors.path');
  });

  it('answers 400 naming path for a malformed URL', async () => {
    const res = await call(api.app, 'GET', '/api/publishers/%E0%A4%A');
    expect(res.status).to.equal(400);
    expect(res.body).to.deep.equal(errors({ path: ['is not a valid URL'] }));
  });

  it('answers 400 naming request, not 500, when a stream position from the request is one Redis refuses', async () => {
    for (const message of [
      'ERR Invalid stream ID specified as stream command argument',
      'ERR invalid end ID for the interval',
      'ERR invalid start ID for the interval',
    ]) {
      const err = Object.assign(new Error(message), { name: 'ReplyError' });
      expect(toErrorReply(err, api.config)).to.deep.equal({
        statusCode: 400,
        fields: { request: ['names a message position that cannot exist (a cursor, token or id out of range)'] },
      });
    }
    // Through a route: a search cursor naming a position below the first possible one.
    const cursor = Buffer.from(JSON.stringify({ top: 1, p: { orders: '0-0' } })).toString('base64url');
    const res = await call(api.app, 'GET', `/api/messages?topic=orders&cursor=${cursor}`);
    expect(res.status, res.raw).to.be.oneOf([400, 404]);
    // Any other Redis reply error is still ours: a logged 500.
    expect(
      toErrorReply(Object.assign(new Error('ERR wrong number of arguments'), { name: 'ReplyError' }), api.config),
    ).to.include({
      statusCode: 500,
      unexpected: true,
    });
  });

  it('keeps keys like __proto__ in payloads as sent, without touching any prototype', async () => {
    const raw =
      '{"topic":"orders","payload":{"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}}},"attributes":{"__proto__":"a"}}';
    const res = await send(api.app, 'POST', '/api/messages', raw, { 'content-type': 'application/json' });
    expect(res.status).to.equal(201);
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    const id = (res.body as { data: { id: string } }).data.id;
    const read = await call(api.app, 'GET', `/api/messages/${id}`);
    expect(read.raw).to.include('"payload":{"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}}}');
    expect(read.raw).to.include('"attributes":{"__proto__":"a"}');
  });
});

describe('errors of a Redis topology change', () => {
  const limits = { bodyLimitBytes: 1024 };
  const replyError = (message: string): Error => Object.assign(new Error(message), { name: 'ReplyError' });

  it('are 503 with Retry-After naming redis, never 500: redirections, refusals, a dropped WAIT', () => {
    for (const err of [
      replyError('MOVED 15876 127.0.0.1:7002'),
      replyError('ASK 15876 127.0.0.1:7002'),
      replyError('TRYAGAIN Multiple keys request during rehashing of slot'),
      replyError('CLUSTERDOWN The cluster is down'),
      replyError("READONLY You can't write against a read only replica."),
      replyError('LOADING Redis is loading the dataset in memory'),
      replyError('UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)'),
      Object.assign(new Error('Command aborted due to connection close'), { name: 'AbortError' }),
    ]) {
      expect(toErrorReply(err, limits), err.message).to.deep.equal({
        statusCode: 503,
        fields: { redis: ['is unavailable, try again'] },
        retryAfter: 1,
      });
    }
  });
});
