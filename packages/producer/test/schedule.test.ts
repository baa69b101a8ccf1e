import { expect } from 'chai';
import { call, createTopic, startApi, type Api } from './helpers.js';

describe('POST /api/schedule_messages', () => {
  let api: Api;

  before(async () => {
    api = await startApi();
    await createTopic(api.app, 'orders');
  });

  after(async () => {
    await api?.close();
  });

  it('keeps the message aside, indexed by its due time, and shows it as scheduled', async () => {
    const at = new Date(Date.now() + 3600_000);
    const local = at.toISOString().replace('Z', '+00:00');
    const res = await call(api.app, 'POST', '/api/schedule_messages', {
      topic: 'orders',
      payload: { n: 1 },
      attributes: { k: 'v' },
      schedule_at: local,
    });
    expect(res.status).to.equal(201);
    const { id, schedule_at } = (res.body as { data: { id: string; schedule_at: string } }).data;
    expect(schedule_at).to.equal(at.toISOString());
    const tk = api.keys.topic('orders');
    expect(await api.redis.xlen(tk.stream)).to.equal(0);
    expect(Number(await api.redis.zscore(tk.scheduled, id))).to.equal(at.getTime());
    expect(Number(await api.redis.zscore(api.keys.scheduleDue, 'orders'))).to.equal(at.getTime());
    const got = await call(api.app, 'GET', `/api/messages/${id}`);
    expect(got.status).to.equal(200);
    expect(got.body).to.deep.equal({
      data: {
        id,
        topic: 'orders',
        payload: { n: 1 },
        attributes: { k: 'v' },
        state: 'scheduled',
        schedule_at: at.toISOString(),
        deliveries: [],
      },
    });
  });

  it('accepts an offset other than Z', async () => {
    const res = await call(api.app, 'POST', '/api/schedule_messages', {
      topic: 'orders',
      payload: 1,
      schedule_at: '2999-01-01T10:00:00+02:00',
    });
    expect(res.status).to.equal(201);
    expect((res.body as { data: { schedule_at: string } }).data.schedule_at).to.equal('2999-01-01T08:00:00.000Z');
  });

  it('accepts a time a few seconds in the past (clocks differ)', async () => {
    const res = await call(api.app, 'POST', '/api/schedule_messages', {
      topic: 'orders',
      payload: 1,
      schedule_at: new Date(Date.now() - 2000).toISOString(),
    });
    expect(res.status).to.equal(201);
  });

  for (const [title, value, why] of [
    ['a time well in the past', new Date(Date.now() - 3600_000).toISOString(), 'is in the past'],
    ['a time without an offset', '2999-01-01T10:00:00', 'must be an ISO-8601 date and time with an offset'],
    ['a date alone', '2999-01-01', 'must be an ISO-8601 date and time with an offset'],
    ['an impossible date', '2999-13-45T10:00:00Z', 'must be an ISO-8601 date and time with an offset'],
    ['a number', 1893456000000, 'is invalid'],
  ] as const) {
    it(`refuses ${title} with a 400 naming schedule_at`, async () => {
      const res = await call(api.app, 'POST', '/api/schedule_messages', {
        topic: 'orders',
        payload: 1,
        schedule_at: value,
      });
      expect(res.status).to.equal(400);
      expect(res.body).to.deep.equal({ data: { errors: { schedule_at: [why] } } });
    });
  }

  it('refuses a missing schedule_at and an unknown topic', async () => {
    const missing = await call(api.app, 'POST', '/api/schedule_messages', { topic: 'orders', payload: 1 });
    expect(missing.status).to.equal(400);
    expect(missing.body).to.have.nested.property('data.errors.schedule_at');
    const unknown = await call(api.app, 'POST', '/api/schedule_messages', {
      topic: 'nope',
      payload: 1,
      schedule_at: '2999-01-01T10:00:00Z',
    });
    expect(unknown.status).to.equal(400);
    expect(unknown.body).to.deep.equal({ data: { errors: { topic: ['is invalid'] } } });
  });
});
