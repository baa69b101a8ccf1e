import { expect } from 'chai';
import { type Api, apiWithTopic, call, createTopic, errors, startApi } from './helpers.js';

type View = Record<string, unknown>;

describe('sources: /api/sources', () => {
  const orders = apiWithTopic('orders');

  it('creates an SQS source with its defaults, shows it waiting, lists, reads, switches off and deletes it', async () => {
    const created = await call(orders.api.app, 'POST', '/api/sources', {
      topic: 'orders',
      type: 'sqs',
      queue_url: 'https://sqs.eu-west-1.amazonaws.com/123456789012/orders',
    });
    expect(created.status).to.equal(201);
    const source = (created.body as { data: View }).data;
    expect(source).to.deep.include({
      topic: 'orders',
      type: 'sqs',
      active: true,
      batch_size: 10,
      wait_seconds: 20,
      state: 'waiting',
      read: 0,
      ingested: 0,
      failed: 0,
      lag: null,
      node: null,
      last_error: null,
    });
    const id = source.id as string;
    const list = await call(orders.api.app, 'GET', '/api/sources');
    expect((list.body as { data: View[] }).data.map((s) => s.id)).to.include(id);
    const one = await call(orders.api.app, 'GET', `/api/sources/${id}`);
    expect((one.body as { data: View }).data).to.deep.equal(source);
    const off = await call(orders.api.app, 'PATCH', `/api/sources/${id}`, { active: false, batch_size: 5 });
    expect(off.status).to.equal(200);
    expect((off.body as { data: View }).data).to.deep.include({ active: false, batch_size: 5, state: 'inactive' });
    expect((await call(orders.api.app, 'DELETE', `/api/sources/${id}`)).status).to.equal(204);
    expect((await call(orders.api.app, 'GET', `/api/sources/${id}`)).status).to.equal(404);
    expect((await call(orders.api.app, 'DELETE', `/api/sources/${id}`)).body).to.deep.equal(
      errors({ id: ['source not found'] }),
    );
  });

  it('creates a Pub/Sub source from a full name or an id', async () => {
    for (const subscription of ['projects/p/subscriptions/orders-sub', 'orders-sub-2']) {
      const res = await call(orders.api.app, 'POST', '/api/sources', { topic: 'orders', type: 'pubsub', subscription });
      expect(res.status, subscription).to.equal(201);
      expect((res.body as { data: View }).data).to.deep.include({ subscription, batch_size: 100 });
      expect((res.body as { data: View }).data).to.not.have.property('wait_seconds');
    }
  });

  it('answers 409 naming the queue when another source reads it', async () => {
    const body = { topic: 'orders', type: 'sqs', queue_url: 'https://sqs.example.com/1/twice' };
    expect((await call(orders.api.app, 'POST', '/api/sources', body)).status).to.equal(201);
    const again = await call(orders.api.app, 'POST', '/api/sources', body);
    expect(again.status).to.equal(409);
    expect(again.body).to.deep.equal(errors({ queue_url: ['is read by another source'] }));
  });

  it('answers 400 naming each field that is missing, malformed, out of range or not for the type', async () => {
    const cases: [unknown, Record<string, string[]>][] = [
      [{ topic: 'nope', type: 'sqs', queue_url: 'https://q.example/1/a' }, { topic: ['is invalid'] }],
      [{ topic: 'orders', type: 'kafka' }, { type: ['is invalid'] }],
      [{ topic: 'orders', type: 'sqs' }, { queue_url: ["can't be blank"] }],
      [{ topic: 'orders', type: 'sqs', queue_url: 'ftp://x/y' }, { queue_url: ['must be an http or https URL'] }],
      [
        { topic: 'orders', type: 'sqs', queue_url: 'https://q.example/1/b', batch_size: 11 },
        { batch_size: ['must be a whole number from 1 to 10 for sqs sources'] },
      ],
      [
        { topic: 'orders', type: 'pubsub', subscription: 'goog-x', wait_seconds: 3 },
        {
          subscription: ['must be a subscription id or projects/<project>/subscriptions/<id>'],
          wait_seconds: ['is only for sqs sources'],
        },
      ],
      [
        { topic: 'orders', type: 'pubsub', subscription: 's-1', queue_url: 'https://q.example/1/c' },
        { queue_url: ['is only for sqs sources'] },
      ],
    ];
    for (const [body, expected] of cases) {
      const res = await call(orders.api.app, 'POST', '/api/sources', body);
      expect(res.status, JSON.stringify(body)).to.equal(400);
      expect(res.body, JSON.stringify(body)).to.deep.equal(errors(expected));
    }
    const unknown = await call(orders.api.app, 'POST', '/api/sources', { topic: 'orders', type: 'sqs', nope: 1 });
    expect(unknown.status).to.equal(400);
  });

  it('refuses to change the topic, type or queue, and answers 404 for an unknown source', async () => {
    const created = await call(orders.api.app, 'POST', '/api/sources', {
      topic: 'orders',
      type: 'sqs',
      queue_url: 'https://q.example/1/fixed',
    });
    const id = (created.body as { data: View }).data.id as string;
    const fixed = await call(orders.api.app, 'PATCH', `/api/sources/${id}`, { queue_url: 'https://q.example/1/other' });
    expect(fixed.status).to.equal(400);
    expect(fixed.body).to.deep.equal(errors({ queue_url: ['cannot be changed'] }));
    expect((await call(orders.api.app, 'PATCH', '/api/sources/999999', { active: true })).status).to.equal(404);
  });

  it('keeps a topic with sources from being deleted', async () => {
    await createTopic(orders.api.app, 'fed');
    const created = await call(orders.api.app, 'POST', '/api/sources', {
      topic: 'fed',
      type: 'pubsub',
      subscription: 'fed-sub',
    });
    const refused = await call(orders.api.app, 'DELETE', '/api/topics/fed');
    expect(refused.status).to.equal(409);
    expect(refused.body).to.deep.equal(
      errors({ name: ['has sources: delete them first (deleting a topic deletes its messages)'] }),
    );
    await call(orders.api.app, 'DELETE', `/api/sources/${(created.body as { data: View }).data.id as string}`);
    expect((await call(orders.api.app, 'DELETE', '/api/topics/fed')).status).to.equal(204);
  });

  it('shows recovery state on topics', async () => {
    const res = await call(orders.api.app, 'GET', '/api/topics/orders');
    expect((res.body as { data: View }).data).to.deep.include({
      recovered: 0,
      last_recovery_at: null,
      last_recovery_error: null,
    });
  });

  describe('with REFUSE_PRIVATE_TARGETS on', () => {
    let strict: Api;
    before(async () => {
      strict = await startApi({ REFUSE_PRIVATE_TARGETS: 'true' });
      await createTopic(strict.app, 'orders');
    });
    after(async () => {
      await strict.close();
    });

    it('refuses an SQS queue at a private address', async () => {
      const res = await call(strict.app, 'POST', '/api/sources', {
        topic: 'orders',
        type: 'sqs',
        queue_url: 'http://10.1.2.3/000/orders',
      });
      expect(res.status).to.equal(400);
      expect((res.body as { data: { errors: Record<string, string[]> } }).data.errors.queue_url?.[0]).to.match(
        /private, loopback or link-local address \(10\.1\.2\.3\)/,
      );
    });
  });
});
