import { expect } from 'chai';
import type { FastifyInstance } from 'fastify';
import { createTopic, errors, startApi, type Answer, type Api } from './helpers.js';

async function post(app: FastifyInstance, url: string, body: unknown, key?: string): Promise<Answer> {
  const res = await app.inject({
    method: 'POST',
    url,
    payload: JSON.stringify(body),
    headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { 'idempotency-key': key }) },
  });
  return { status: res.statusCode, body: JSON.parse(res.body) as unknown, headers: res.headers, raw: res.body };
}

describe('Idempotency-Key on ingest', () => {
  let api: Api;

  before(async () => {
    api = await startApi();
    await createTopic(api.app, 'orders');
    await createTopic(api.app, 'refunds');
  });

  after(async () => {
    await api?.close();
  });

  const length = (topic: string) => api.redis.xlen(api.keys.topic(topic).stream);

  it('answers a repeated POST /api/messages with the first answer and stores nothing new', async () => {
    const before = await length('orders');
    const first = await post(api.app, '/api/messages', { topic: 'orders', payload: { n: 1 } }, 'order-1');
    expect(first.status).to.equal(201);
    const again = await post(api.app, '/api/messages', { topic: 'orders', payload: { n: 1 } }, 'order-1');
    expect(again.status).to.equal(201);
    expect(again.body).to.deep.equal(first.body);
    expect(again.headers['idempotent-replayed']).to.equal('true');
    expect(first.headers['idempotent-replayed']).to.equal(undefined);
    expect(await length('orders')).to.equal(before + 1);
    const ttl = await api.redis.ttl(api.keys.idempotency('orders', 'order-1'));
    expect(ttl).to.be.within(24 * 3600 - 60, 24 * 3600);
  });

  it('answers a repeated POST /api/bulk_messages with the first ids and stores nothing new', async () => {
    const before = await length('orders');
    const first = await post(api.app, '/api/bulk_messages', { topic: 'orders', payload: [1, 2, 3] }, 'batch-7');
    expect(first.status).to.equal(201);
    expect((first.body as { data: { ids: string[] } }).data.ids).to.have.length(3);
    const again = await post(api.app, '/api/bulk_messages', { topic: 'orders', payload: [1, 2, 3] }, 'batch-7');
    expect(again.status).to.equal(201);
    expect(again.body).to.deep.equal(first.body);
    expect(await length('orders')).to.equal(before + 3);
  });

  it('refuses with 422 naming the header a different request under a used key, and writes nothing', async () => {
    const before = await length('orders');
    const first = await post(api.app, '/api/messages', { topic: 'orders', payload: 'x' }, 'shared-key');
    expect(first.status).to.equal(201);
    const refusals = [
      await post(api.app, '/api/bulk_messages', { topic: 'orders', payload: ['x'] }, 'shared-key'),
      await post(api.app, '/api/messages', { topic: 'orders', payload: 'y' }, 'shared-key'),
      await post(api.app, '/api/messages', { topic: 'orders', payload: 'x', attributes: { a: 'b' } }, 'shared-key'),
    ];
    for (const r of refusals) {
      expect(r.status, r.raw).to.equal(422);
      expect(r.body).to.have.nested.property('data.errors.idempotency-key');
    }
    expect(await length('orders')).to.equal(before + 1);
    const again = await post(api.app, '/api/messages', { topic: 'orders', payload: 'x' }, 'shared-key');
    expect(again.status).to.equal(201);
    expect(again.body).to.deep.equal(first.body);
  });

  it('writes once when the same key arrives twice at the same time', async () => {
    const before = await length('orders');
    const answers = await Promise.all(
      [1, 2, 3, 4].map(() => post(api.app, '/api/messages', { topic: 'orders', payload: 'same' }, 'race')),
    );
    const ids = new Set(answers.map((a) => (a.body as { data: { id: string } }).data.id));
    expect(ids.size).to.equal(1);
    expect(await length('orders')).to.equal(before + 1);
  });

  it('writes again without a key, with another key, or on another topic', async () => {
    const before = await length('orders');
    await post(api.app, '/api/messages', { topic: 'orders', payload: 1 });
    await post(api.app, '/api/messages', { topic: 'orders', payload: 1 });
    await post(api.app, '/api/messages', { topic: 'orders', payload: 1 }, 'k-a');
    await post(api.app, '/api/messages', { topic: 'orders', payload: 1 }, 'k-b');
    expect(await length('orders')).to.equal(before + 4);
    const r = await post(api.app, '/api/messages', { topic: 'refunds', payload: 1 }, 'k-a');
    expect(r.status).to.equal(201);
    expect(await length('refunds')).to.equal(1);
  });

  it('refuses a malformed key with a 400 naming the header, and keeps nothing for a refused request', async () => {
    const bad = await post(api.app, '/api/messages', { topic: 'orders', payload: 1 }, 'x'.repeat(256));
    expect(bad.status).to.equal(400);
    expect(bad.body).to.have.nested.property('data.errors.idempotency-key');
    const unknown = await post(api.app, '/api/messages', { topic: 'nope', payload: 1 }, 'k-unknown');
    expect(unknown.status).to.equal(400);
    expect(unknown.body).to.deep.equal(errors({ topic: ['is invalid'] }));
    expect(await api.redis.exists(api.keys.idempotency('nope', 'k-unknown'))).to.equal(0);
  });
});
