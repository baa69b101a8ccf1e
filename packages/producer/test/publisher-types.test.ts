import { expect } from 'chai';
import { apiWithTopic, call, errors } from './helpers.js';

describe('publishers of type pubsub and pull', () => {
  const orders = apiWithTopic('orders');

  it('creates a pubsub publisher whose target is a topic id or a full topic name', async () => {
    for (const target of ['events', 'projects/my-project/topics/events.v2']) {
      const res = await call(orders.api.app, 'POST', '/api/publishers', { topic: 'orders', target, type: 'pubsub' });
      expect(res.status, target).to.equal(201);
      expect((res.body as { data: { type: string; target: string } }).data).to.include({ type: 'pubsub', target });
    }
  });

  it('answers 400 for a pubsub target that is not a Pub/Sub topic', async () => {
    for (const target of ['http://x.test/hook', 'ab', 'goog-topic', 'projects/p/subscriptions/s', 'a b c']) {
      const res = await call(orders.api.app, 'POST', '/api/publishers', { topic: 'orders', target, type: 'pubsub' });
      expect(res.status, target).to.equal(400);
      expect(res.body, target).to.deep.equal(
        errors({ target: ['must be a Pub/Sub topic id or projects/<project>/topics/<topic id>'] }),
      );
    }
  });

  it('creates a pull publisher named by its target, and refuses a name with other characters', async () => {
    const ok = await call(orders.api.app, 'POST', '/api/publishers', {
      topic: 'orders',
      target: 'workers',
      type: 'pull',
    });
    expect(ok.status).to.equal(201);
    const bad = await call(orders.api.app, 'POST', '/api/publishers', { topic: 'orders', target: 'a/b', type: 'pull' });
    expect(bad.status).to.equal(400);
    expect(Object.keys((bad.body as { data: { errors: object } }).data.errors)).to.deep.equal(['target']);
  });

  it('checks a changed target against the type the publisher has', async () => {
    const made = await call(orders.api.app, 'POST', '/api/publishers', {
      topic: 'orders',
      target: 'patched',
      type: 'pubsub',
    });
    const id = (made.body as { data: { id: string } }).data.id;
    const bad = await call(orders.api.app, 'PATCH', `/api/publishers/${id}`, { target: 'http://x.test/hook' });
    expect(bad.status).to.equal(400);
    expect(Object.keys((bad.body as { data: { errors: object } }).data.errors)).to.deep.equal(['target']);
    const good = await call(orders.api.app, 'PATCH', `/api/publishers/${id}`, { target: 'projects/p-1/topics/other' });
    expect(good.status).to.equal(200);
  });
});
