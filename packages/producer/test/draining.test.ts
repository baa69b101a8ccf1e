import { expect } from 'chai';
import { startDraining } from '../src/draining.js';
import { startApi, type Api } from './helpers.js';

describe('a producer that drains before a stop', () => {
  let api: Api;
  let url: string;

  before(async () => {
    api = await startApi();
    url = await api.app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(() => api.close());

  it('is ready, and keeps connections open, until it drains', async () => {
    const res = await fetch(`${url}/api/health`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('connection')).to.equal('keep-alive');
  });

  it('then fails readiness, stays live, and serves every request with Connection: close', async () => {
    startDraining(api.app);
    startDraining(api.app);
    const health = await fetch(`${url}/api/health`);
    expect(health.status).to.equal(503);
    expect(health.headers.get('retry-after')).to.equal('1');
    expect(await health.json()).to.deep.equal({ status: 'draining' });
    const live = await fetch(`${url}/api/health/live`);
    expect(live.status).to.equal(200);
    const created = await fetch(`${url}/api/topics`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'orders', origin_host: 'shop.example' }),
    });
    expect(created.status).to.equal(201);
    expect(created.headers.get('connection')).to.equal('close');
    const missing = await fetch(`${url}/nothing`);
    expect(missing.status).to.equal(404);
    expect(missing.headers.get('connection')).to.equal('close');
  });
});
