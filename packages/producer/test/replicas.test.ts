import { expect } from 'chai';
import { call, createTopic, errors, startApi, type Api } from './helpers.js';

describe('with REDIS_MIN_REPLICAS above 0 and no replica', () => {
  let api: Api;
  before(async () => {
    api = await startApi({ REDIS_MIN_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '20' });
    await createTopic(api.app, 'orders');
  });
  after(async () => {
    await api.close();
  });

  it('POST /api/messages answers 503 naming redis with Retry-After', async () => {
    const res = await call(api.app, 'POST', '/api/messages', { topic: 'orders', payload: { a: 1 } });
    expect(res.status).to.equal(503);
    expect(res.headers['retry-after']).to.equal('1');
    expect(res.body).to.deep.equal(errors({ redis: ['not enough replicas acknowledged the write'] }));
  });

  it('POST /api/bulk_messages answers 503 too', async () => {
    const res = await call(api.app, 'POST', '/api/bulk_messages', { topic: 'orders', payload: [1, 2] });
    expect(res.status).to.equal(503);
    expect(res.body).to.deep.equal(errors({ redis: ['not enough replicas acknowledged the write'] }));
  });

  it('still answers 400 for an unknown topic', async () => {
    const res = await call(api.app, 'POST', '/api/messages', { topic: 'nothing', payload: 1 });
    expect(res.status).to.equal(400);
    expect(res.body).to.deep.equal(errors({ topic: ['is invalid'] }));
  });
});
