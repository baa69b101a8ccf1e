import { expect } from 'chai';
import { call, createPublisher, loggedApp, publishersApi } from './helpers.js';

type Errors = { data: { errors: Record<string, string[]> } };

describe('publisher delivery fields', () => {
  const f = publishersApi();
  const { hook, stored } = f;

  async function refused(method: 'POST' | 'PATCH', url: string, body: unknown): Promise<Record<string, string[]>> {
    const res = await call(f.api.app, method, url, body);
    expect(res.status, res.raw).to.equal(400);
    return (res.body as Errors).data.errors;
  }

  it('shows every new field with its default on a publisher created without them', async () => {
    const p = await createPublisher(f.api.app, { topic: 'orders', target: hook() });
    expect(p).to.deep.include({
      header_names: [],
      dead_on_status: [],
      retry_max_attempts: null,
      retry_max_age_seconds: null,
      filter: null,
      batch_size: 1,
      ordering_attribute: null,
    });
  });

  it('keeps each field given at creation, and PATCH changes and clears them', async () => {
    const p = await createPublisher(f.api.app, {
      topic: 'orders',
      target: hook(),
      dead_on_status: [404, 400],
      retry_max_attempts: 5,
      retry_max_age_seconds: 3600,
      filter: { attributes: { kind: 'order', region: ['eu', 'us'] } },
      batch_size: 50,
    });
    expect(p).to.deep.include({
      dead_on_status: [400, 404],
      retry_max_attempts: 5,
      retry_max_age_seconds: 3600,
      filter: { attributes: { kind: 'order', region: ['eu', 'us'] } },
      batch_size: 50,
    });
    const res = await call(f.api.app, 'PATCH', `/api/publishers/${String(p.id)}`, {
      dead_on_status: null,
      retry_max_attempts: null,
      retry_max_age_seconds: 60,
      filter: null,
      batch_size: 1,
    });
    expect(res.status, res.raw).to.equal(200);
    expect((res.body as { data: Record<string, unknown> }).data).to.deep.include({
      dead_on_status: [],
      retry_max_attempts: null,
      retry_max_age_seconds: 60,
      filter: null,
      batch_size: 1,
    });
  });

  describe('headers', () => {
    it('are write-only: answers show their names, the record keeps them, PATCH replaces and null removes them', async () => {
      const p = await createPublisher(f.api.app, {
        topic: 'orders',
        target: hook(),
        headers: { Authorization: 'Bearer secret-token', 'X-Api-Key': 'k3y' },
      });
      expect(p.header_names).to.deep.equal(['Authorization', 'X-Api-Key']);
      expect(p).not.to.have.property('headers');
      expect((await stored(p.id)).headers).to.deep.equal({ Authorization: 'Bearer secret-token', 'X-Api-Key': 'k3y' });
      const one = await call(f.api.app, 'GET', `/api/publishers/${String(p.id)}`);
      const topic = await call(f.api.app, 'GET', '/api/topics/orders');
      for (const res of [one, topic]) expect(res.raw).not.to.include('secret-token');

      const changed = await call(f.api.app, 'PATCH', `/api/publishers/${String(p.id)}`, {
        headers: { 'X-Other': '1' },
      });
      expect((changed.body as { data: Record<string, unknown> }).data.header_names).to.deep.equal(['X-Other']);
      expect((await stored(p.id)).headers).to.deep.equal({ 'X-Other': '1' });
      const removed = await call(f.api.app, 'PATCH', `/api/publishers/${String(p.id)}`, { headers: null });
      expect((removed.body as { data: Record<string, unknown> }).data.header_names).to.deep.equal([]);
      expect((await stored(p.id)).headers).to.equal(undefined);
    });

    it('refuses hop-by-hop and reserved names, CR/LF, more than 20 and more than 8 KB, naming headers', async () => {
      const bad: Record<string, string>[] = [
        { Connection: 'close' },
        { 'Transfer-Encoding': 'chunked' },
        { 'content-type': 'text/plain' },
        { 'Content-Length': '1' },
        { Host: 'evil.test' },
        { 'Message-Id': 'x' },
        { 'webhook-signature': 'v1,x' },
        { 'X-Ok': 'a\r\nInjected: yes' },
        { 'X-Ok': 'a\nb' },
        { 'bad name': 'x' },
        { 'X-A': '1', 'x-a': '2' },
        Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`X-H${i}`, 'v'])),
        { 'X-Big': 'v'.repeat(8 * 1024) },
      ];
      for (const headers of bad) {
        const errors = await refused('POST', '/api/publishers', {
          topic: 'orders',
          type: 'http',
          target: hook(),
          headers,
        });
        expect(Object.keys(errors), JSON.stringify(headers)).to.deep.equal(['headers']);
      }
      const p = await createPublisher(f.api.app, { topic: 'orders', target: hook() });
      expect(
        Object.keys(await refused('PATCH', `/api/publishers/${String(p.id)}`, { headers: { Upgrade: 'h2c' } })),
      ).to.deep.equal(['headers']);
    });

    it('are never written to the log', async () => {
      const { app, log } = await loggedApp({ server: f.api.server, redis: f.api.redis });
      try {
        const made = await call(app, 'POST', '/api/publishers', {
          topic: 'orders',
          type: 'http',
          target: hook(),
          headers: { Authorization: 'Bearer very-secret-1' },
        });
        expect(made.status).to.equal(201);
        const id = String((made.body as { data: { id: string } }).data.id);
        const patched = await call(app, 'PATCH', `/api/publishers/${id}`, {
          headers: { Authorization: 'Bearer very-secret-2' },
        });
        expect(patched.status).to.equal(200);
        await call(app, 'PATCH', `/api/publishers/${id}`, { headers: { Authorization: 'Bearer very-secret-3\n' } });
        expect(log()).to.include('publisher changed');
        expect(log()).not.to.include('very-secret');
      } finally {
        await app.close();
      }
    });
  });

  it('refuses fields the publisher type does not take, naming each', async () => {
    const pubsub = await refused('POST', '/api/publishers', {
      topic: 'orders',
      type: 'pubsub',
      target: 'some-topic',
      headers: { 'X-A': '1' },
      dead_on_status: [400],
      batch_size: 10,
    });
    expect(Object.keys(pubsub).sort()).to.deep.equal(['batch_size', 'dead_on_status', 'headers']);
    const pull = await refused('POST', '/api/publishers', {
      topic: 'orders',
      type: 'pull',
      target: 'workers',
      filter: { attributes: { kind: 'x' } },
    });
    expect(pull.filter).to.deep.equal(['pull publishers filter per lease: give the lease a filter']);
    // A pubsub publisher takes a filter, and nothing else asks for a clearing value to be refused.
    const ok = await call(f.api.app, 'POST', '/api/publishers', {
      topic: 'orders',
      type: 'pubsub',
      target: 'filtered-topic',
      filter: { attributes: { kind: 'x' } },
      headers: null,
      dead_on_status: [],
    });
    expect(ok.status, ok.raw).to.equal(201);
  });

  it('refuses an ordering attribute without ordered, batches on an ordered publisher, and changing either later', async () => {
    expect(
      await refused('POST', '/api/publishers', {
        topic: 'orders',
        type: 'http',
        target: hook(),
        ordering_attribute: 'c',
      }),
    ).to.deep.equal({ ordering_attribute: ['needs ordered: true'] });
    const batched = await refused('POST', '/api/publishers', {
      topic: 'orders',
      type: 'http',
      target: hook(),
      ordered: true,
      batch_size: 5,
    });
    expect(Object.keys(batched)).to.deep.equal(['batch_size']);
    const p = await createPublisher(f.api.app, {
      topic: 'orders',
      target: hook(),
      ordered: true,
      ordering_attribute: 'c',
    });
    expect(p).to.deep.include({ ordered: true, ordering_attribute: 'c' });
    const url = `/api/publishers/${String(p.id)}`;
    expect(await refused('PATCH', url, { ordering_attribute: 'd' })).to.deep.equal({
      ordering_attribute: ['cannot be changed'],
    });
    expect(Object.keys(await refused('PATCH', url, { batch_size: 10 }))).to.deep.equal(['batch_size']);
  });

  it('refuses malformed values with 400 naming the field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ dead_on_status: [200] }, 'dead_on_status'],
      [{ dead_on_status: [400, 400] }, 'dead_on_status'],
      [{ dead_on_status: '400' }, 'dead_on_status'],
      [{ retry_max_attempts: 0 }, 'retry_max_attempts'],
      [{ retry_max_attempts: 1.5 }, 'retry_max_attempts'],
      [{ retry_max_age_seconds: 0 }, 'retry_max_age_seconds'],
      [{ filter: { kind: 'x' } }, 'filter'],
      [{ filter: { attributes: {} } }, 'filter'],
      [{ filter: { attributes: { kind: 1 } } }, 'filter'],
      [{ filter: { attributes: { kind: [] } } }, 'filter'],
      [{ filter: { attributes: { kind: 'x' }, other: 1 } }, 'filter'],
      [{ batch_size: 0 }, 'batch_size'],
      [{ batch_size: 501 }, 'batch_size'],
      [{ ordered: true, ordering_attribute: '' }, 'ordering_attribute'],
    ];
    for (const [fields, field] of cases) {
      const errors = await refused('POST', '/api/publishers', {
        topic: 'orders',
        type: 'http',
        target: hook(),
        ...fields,
      });
      expect(Object.keys(errors), JSON.stringify(fields)).to.deep.equal([field]);
    }
  });
});
