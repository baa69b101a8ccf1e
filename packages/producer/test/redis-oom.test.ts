import { expect } from 'chai';
import { Redis } from 'ioredis';
import { startRedis, type RedisServer } from '@postoffice/test-support';
import { call, createTopic, errors, startApi, type Api } from './helpers.js';

describe('when Redis is out of memory (maxmemory with noeviction)', () => {
  let server: RedisServer;
  let api: Api;
  let admin: Redis;

  before(async () => {
    // One server: a cluster's masters would each need filling.
    server = await startRedis({ cluster: false, args: ['--maxmemory-policy', 'noeviction'] });
    api = await startApi({}, server);
    admin = new Redis(server.port, '127.0.0.1');
    await createTopic(api.app, 'orders');
    // Any use is over one byte: every write is refused with "OOM command not allowed".
    await admin.config('SET', 'maxmemory', '1');
  });
  after(async () => {
    admin.disconnect();
    await api.close();
    await server.stop();
  });

  it('POST /api/messages answers 503 naming redis, with Retry-After, not 500', async () => {
    await admin.config('SET', 'maxmemory', '1');
    const res = await call(api.app, 'POST', '/api/messages', { topic: 'orders', payload: { a: 1 }, attributes: {} });
    expect(res.status).to.equal(503);
    expect(res.headers['retry-after']).to.equal('5');
    expect(res.body).to.deep.equal(errors({ redis: ['is out of memory, try again later'] }));
  });

  it('POST /api/bulk_messages and POST /api/topics answer 503 too', async () => {
    await admin.config('SET', 'maxmemory', '1');
    const bulk = await call(api.app, 'POST', '/api/bulk_messages', {
      topic: 'orders',
      payload: [{ a: 1 }],
      attributes: {},
    });
    expect(bulk.status).to.equal(503);
    expect(bulk.headers['retry-after']).to.equal('5');
    const topic = await call(api.app, 'POST', '/api/topics', { name: 'more', origin_host: 'x' });
    expect(topic.status).to.equal(503);
  });

  it('takes messages again once Redis has room', async () => {
    await admin.config('SET', 'maxmemory', '0');
    const res = await call(api.app, 'POST', '/api/messages', { topic: 'orders', payload: { a: 1 }, attributes: {} });
    expect(res.status).to.equal(201);
  });
});
