import { expect } from 'chai';
import { Redis } from 'ioredis';
import { startRedis, type RedisServer } from '@postoffice/test-support';
import { call, createTopic, errors, startApi, waitFor, type Api } from './helpers.js';

describe('when Redis goes away', () => {
  let first: RedisServer;
  let second: RedisServer | undefined;
  let api: Api;

  before(async () => {
    first = await startRedis();
    api = await startApi({}, first);
    await createTopic(api.app, 'orders');
  });
  after(async () => {
    await api.close();
    await first.stop();
  });

  it('GET /api/health answers 200 while Redis answers', async () => {
    const res = await call(api.app, 'GET', '/api/health');
    expect(res.status).to.equal(200);
    expect(res.body).to.deep.equal({ status: 'ok' });
    expect((await call(api.app, 'GET', '/metrics')).raw).to.match(/^postoffice_redis_up 1$/m);
  });

  it('GET /api/health answers 503 when Redis does not answer within a second', async () => {
    // Every server of the cluster, or the one server, pauses.
    const admins = first.ports.map((port) => new Redis(port, '127.0.0.1'));
    try {
      await Promise.all(admins.map((admin) => admin.client('PAUSE', 1500, 'ALL')));
      const started = Date.now();
      const res = await call(api.app, 'GET', '/api/health');
      expect(res.status).to.equal(503);
      expect(res.headers['retry-after']).to.equal('1');
      expect(Date.now() - started).to.be.below(1400);
      await waitFor(async () => (await call(api.app, 'GET', '/api/health')).status === 200, 'the pause to end');
    } finally {
      for (const admin of admins) admin.disconnect();
    }
  });

  describe('and is stopped', () => {
    before(async () => {
      await first.stop({ keepData: true });
      await waitFor(() => api.redis.status !== 'ready', 'the client to notice');
    });
    // The Redis that comes back is started by the test that brings it back.
    afterEach(async () => {
      await second?.stop();
      second = undefined;
    });

    it('GET /api/health answers 503 with Retry-After', async () => {
      const res = await call(api.app, 'GET', '/api/health');
      expect(res.status).to.equal(503);
      expect(res.headers['retry-after']).to.equal('1');
      expect(res.body).to.deep.equal({ status: 'unavailable' });
    });

    it('counts the connection errors in postoffice_redis_errors_total', async () => {
      const errors = await waitFor(async () => {
        const text = (await call(api.app, 'GET', '/metrics')).raw;
        const n = Number(/^postoffice_redis_errors_total (\d+)$/m.exec(text)?.[1] ?? 0);
        return n > 0 ? n : undefined;
      }, 'a Redis error counted');
      expect(errors).to.be.above(0);
    });

    it('GET /api/health/live still answers 200: liveness does not depend on Redis', async () => {
      const res = await call(api.app, 'GET', '/api/health/live');
      expect(res.status).to.equal(200);
      expect(res.body).to.deep.equal({ status: 'ok' });
    });

    it('says so in postoffice_redis_up (1 while the connection is ready)', async () => {
      const text = (await call(api.app, 'GET', '/metrics')).raw;
      expect(text).to.match(/^postoffice_redis_up 0$/m);
    });

    it('POST /api/messages answers 503 naming redis with Retry-After, at once', async () => {
      const started = Date.now();
      const res = await call(api.app, 'POST', '/api/messages', { topic: 'orders', payload: { a: 1 } });
      expect(res.status).to.equal(503);
      expect(res.headers['retry-after']).to.equal('1');
      expect(res.body).to.deep.equal(errors({ redis: ['is unavailable, try again'] }));
      expect(Date.now() - started).to.be.below(1000);
    });

    it('every route that needs Redis answers 503 naming redis', async () => {
      const requests: [string, string, unknown?][] = [
        ['POST', '/api/bulk_messages', { topic: 'orders', payload: [1, 2] }],
        ['POST', '/api/topics', { name: 'new', origin_host: 'h' }],
        ['GET', '/api/topics'],
        ['GET', '/api/topics/orders'],
        ['POST', '/api/publishers', { topic: 'orders', target: 'http://a.test/', type: 'http' }],
        ['GET', '/api/publishers'],
        ['GET', '/api/publishers/1'],
        ['PATCH', '/api/publishers/1', { active: false }],
        ['DELETE', '/api/publishers/1'],
        ['GET', '/api/messages/00000000-0000-4000-8000-000000000000'],
      ];
      for (const [method, url, body] of requests) {
        const res = await call(api.app, method as 'GET', url, body);
        expect(res.status, `${method} ${url}`).to.equal(503);
        expect(res.headers['retry-after'], `${method} ${url}`).to.equal('1');
        expect(res.body, `${method} ${url}`).to.deep.equal(errors({ redis: ['is unavailable, try again'] }));
      }
    });

    it('still answers 400 for bad input, without asking Redis', async () => {
      const res = await call(api.app, 'POST', '/api/messages', { topic: 'orders' });
      expect(res.status).to.equal(400);
    });

    it('recovers by itself once Redis is back', async () => {
      second = await startRedis({ ports: first.ports });
      await waitFor(async () => (await call(api.app, 'GET', '/api/health')).status === 200, 'health to recover');
      // The new server is empty: the topic is gone, which is a 400, not a 503.
      const res = await call(api.app, 'POST', '/api/messages', { topic: 'orders', payload: 1 });
      expect(res.status).to.equal(400);
    });
  });
});
