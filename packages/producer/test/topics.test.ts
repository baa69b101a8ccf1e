import { expect } from 'chai';
import { call, createPublisher, errors, startApi, type Api } from './helpers.js';

describe('topics API', () => {
  // A Redis of its own for each test: each creates the topics it needs.
  let api: Api;
  beforeEach(async () => {
    api = await startApi();
  });
  afterEach(async () => {
    await api.close();
  });

  async function topic(name: string, fields: Record<string, unknown> = {}): Promise<void> {
    const res = await call(api.app, 'POST', '/api/topics', { name, origin_host: 'https://shop.test', ...fields });
    expect(res.status, res.raw).to.equal(201);
  }

  describe('POST /api/topics', () => {
    it('creates a topic and answers 201 with its id and name', async () => {
      const res = await call(api.app, 'POST', '/api/topics', { name: 'orders', origin_host: 'https://shop.test' });
      expect(res.status).to.equal(201);
      expect(res.body).to.deep.equal({ data: { id: 1, name: 'orders' } });
      expect(await api.redis.sismember(api.keys.topics, 'orders')).to.equal(1);
      expect(await api.redis.exists(api.keys.topic('orders').meta)).to.equal(1);
    });

    it('keeps recovery_enabled when given', async () => {
      const res = await call(api.app, 'POST', '/api/topics', {
        name: 'recovering',
        origin_host: 'https://shop.test',
        recovery_enabled: true,
      });
      expect(res.status).to.equal(201);
      const one = await call(api.app, 'GET', '/api/topics/recovering');
      expect((one.body as { data: { recovery_enabled: boolean } }).data.recovery_enabled).to.equal(true);
    });

    it('answers 409 naming name when the name is taken', async () => {
      await topic('orders');
      const res = await call(api.app, 'POST', '/api/topics', { name: 'orders', origin_host: 'https://other.test' });
      expect(res.status).to.equal(409);
      expect(res.body).to.deep.equal(errors({ name: ['has already been taken'] }));
    });

    it('answers 400 naming every missing field', async () => {
      const res = await call(api.app, 'POST', '/api/topics', {});
      expect(res.status).to.equal(400);
      expect(res.body).to.deep.equal(errors({ name: ["can't be blank"], origin_host: ["can't be blank"] }));
    });

    it('answers 400 when a field is blank', async () => {
      const res = await call(api.app, 'POST', '/api/topics', { name: '  ', origin_host: '' });
      expect(res.status).to.equal(400);
      expect(res.body).to.deep.equal(errors({ name: ["can't be blank"], origin_host: ["can't be blank"] }));
    });

    it('answers 400 when the name does not fit a hash tag or a path', async () => {
      for (const name of ['has space', 'curly{brace}', '-leading-dash', 'a/b', 'x'.repeat(201)]) {
        const res = await call(api.app, 'POST', '/api/topics', { name, origin_host: 'https://shop.test' });
        expect(res.status, name).to.equal(400);
        expect(res.body, name).to.deep.equal(errors({ name: ['has invalid format'] }));
      }
    });

    it('answers 400 "is invalid" for fields of the wrong type', async () => {
      const res = await call(api.app, 'POST', '/api/topics', { name: 12, origin_host: ['x'], recovery_enabled: 'yes' });
      expect(res.status).to.equal(400);
      expect(res.body).to.deep.equal(
        errors({ name: ['is invalid'], origin_host: ['is invalid'], recovery_enabled: ['is invalid'] }),
      );
    });

    it('answers 400 naming body when the body is not a JSON object', async () => {
      const res = await call(api.app, 'POST', '/api/topics', ['orders']);
      expect(res.status).to.equal(400);
      expect(res.body).to.deep.equal(errors({ body: ['must be a JSON object'] }));
    });

    it('writes nothing when it refuses', async () => {
      await topic('orders');
      for (const body of [
        { name: 'orders', origin_host: 'https://other.test' },
        {},
        { name: '', origin_host: 'https://shop.test' },
        { name: '{bad}', origin_host: 'https://shop.test' },
        { name: 12, origin_host: ['x'], recovery_enabled: 'yes' },
        ['orders'],
      ]) {
        expect((await call(api.app, 'POST', '/api/topics', body)).status, JSON.stringify(body)).to.be.oneOf([400, 409]);
      }
      expect(await api.redis.smembers(api.keys.topics)).to.have.members(['orders']);
    });
  });

  describe('GET /api/topics', () => {
    it('lists every topic with the number of messages received', async () => {
      await topic('orders');
      await topic('recovering', { recovery_enabled: true });
      for (let i = 0; i < 2; i++) {
        expect((await call(api.app, 'POST', '/api/messages', { topic: 'orders', payload: { i } })).status).to.equal(
          201,
        );
      }
      const res = await call(api.app, 'GET', '/api/topics');
      expect(res.status).to.equal(200);
      const data = (res.body as { data: Record<string, unknown>[] }).data;
      expect(data.map((t) => [t.name, t.received])).to.deep.equal([
        ['orders', 2],
        ['recovering', 0],
      ]);
      expect(data[0]).to.include({ id: 1, name: 'orders', origin_host: 'https://shop.test', recovery_enabled: false });
      expect(data[0]).to.have.property('created_at').that.is.a('string');
    });
  });

  describe('GET /api/topics/:name', () => {
    it('answers the topic with its count and publishers', async () => {
      await topic('orders');
      for (let i = 0; i < 2; i++) {
        expect((await call(api.app, 'POST', '/api/messages', { topic: 'orders', payload: { i } })).status).to.equal(
          201,
        );
      }
      const publisher = await createPublisher(api.app, { topic: 'orders', target: 'http://127.0.0.1:9/hook' });
      const res = await call(api.app, 'GET', '/api/topics/orders');
      expect(res.status).to.equal(200);
      const data = (res.body as { data: Record<string, unknown> }).data;
      expect(data).to.include({ name: 'orders', received: 2 });
      expect(data.publishers).to.deep.equal([publisher]);
    });

    it('serves names of the longest allowed length', async () => {
      const name = 'n'.repeat(200);
      expect((await call(api.app, 'POST', '/api/topics', { name, origin_host: 'https://shop.test' })).status).to.equal(
        201,
      );
      const res = await call(api.app, 'GET', `/api/topics/${name}`);
      expect(res.status).to.equal(200);
      expect((res.body as { data: { name: string } }).data.name).to.equal(name);
    });

    it('answers 404 naming name for an unknown topic', async () => {
      const res = await call(api.app, 'GET', '/api/topics/nothing');
      expect(res.status).to.equal(404);
      expect(res.body).to.deep.equal(errors({ name: ['topic not found'] }));
    });

    it('answers 404 for a malformed name without asking Redis', async () => {
      const res = await call(api.app, 'GET', '/api/topics/%7Bbad%7D');
      expect(res.status).to.equal(404);
      expect(res.body).to.deep.equal(errors({ name: ['topic not found'] }));
    });
  });
});
