import { expect } from 'chai';
import { scripts } from '@postoffice/shared';
import { apiWithTopic, call, type Api } from './helpers.js';

describe('POST /api/schedule_messages', () => {
  const fixture = apiWithTopic('orders');
  let api: Api;
  before(() => {
    api = fixture.api;
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

  describe('with delay_seconds instead of schedule_at', () => {
    it('is due that many seconds from now', async () => {
      const sent = Date.now();
      const res = await call(api.app, 'POST', '/api/schedule_messages', {
        topic: 'orders',
        payload: 1,
        delay_seconds: 90.5,
      });
      expect(res.status).to.equal(201);
      const { id, schedule_at } = (res.body as { data: { id: string; schedule_at: string } }).data;
      const due = Number(await api.redis.zscore(api.keys.topic('orders').scheduled, id));
      expect(due).to.be.within(sent + 90_500, Date.now() + 90_500);
      expect(schedule_at).to.equal(new Date(due).toISOString());
      const got = await call(api.app, 'GET', `/api/messages/${id}`);
      expect(got.body).to.have.nested.property('data.schedule_at', schedule_at);
    });

    it('refuses both times, neither, and a delay out of range, naming the field', async () => {
      const both = await call(api.app, 'POST', '/api/schedule_messages', {
        topic: 'orders',
        payload: 1,
        schedule_at: '2999-01-01T10:00:00Z',
        delay_seconds: 5,
      });
      expect(both.status).to.equal(400);
      expect(both.body).to.deep.equal({
        data: { errors: { delay_seconds: ['cannot be given with schedule_at: give one of them'] } },
      });
      const neither = await call(api.app, 'POST', '/api/schedule_messages', { topic: 'orders', payload: 1 });
      expect(neither.status).to.equal(400);
      expect(neither.body).to.deep.equal({
        data: { errors: { schedule_at: ["can't be blank (or give delay_seconds)"] } },
      });
      for (const delay of [-1, 365 * 86_400 + 1, '5', null]) {
        const bad = await call(api.app, 'POST', '/api/schedule_messages', {
          topic: 'orders',
          payload: 1,
          delay_seconds: delay,
        });
        expect(bad.status, String(delay)).to.equal(400);
        expect(bad.body, String(delay)).to.have.nested.property('data.errors.delay_seconds');
      }
    });
  });
});

describe('DELETE /api/schedule_messages/:id', () => {
  const fixture = apiWithTopic('orders');
  let api: Api;
  before(() => {
    api = fixture.api;
  });

  async function schedule(delaySeconds: number): Promise<string> {
    const res = await call(api.app, 'POST', '/api/schedule_messages', {
      topic: 'orders',
      payload: 1,
      delay_seconds: delaySeconds,
    });
    return (res.body as { data: { id: string } }).data.id;
  }

  it('cancels a message not yet released: it is gone, and never enters the stream', async () => {
    const id = await schedule(3600);
    const kept = await schedule(3600);
    const res = await call(api.app, 'DELETE', `/api/schedule_messages/${id}`);
    expect(res.status).to.equal(204);
    expect(res.raw).to.equal('');
    expect((await call(api.app, 'GET', `/api/messages/${id}`)).status).to.equal(404);
    expect((await call(api.app, 'GET', `/api/messages/${kept}`)).status).to.equal(200);
    const tk = api.keys.topic('orders');
    expect(await api.redis.zrange(tk.scheduled, 0, -1)).to.deep.equal([kept]);
    const again = await call(api.app, 'DELETE', `/api/schedule_messages/${id}`);
    expect(again.status).to.equal(404);
    expect(again.body).to.deep.equal({ data: { errors: { id: ['scheduled message not found'] } } });
  });

  it('answers 404 saying so once the message was released into its topic', async () => {
    const id = await schedule(0);
    const tk = api.keys.topic('orders');
    const released = await scripts.releaseScheduled(
      api.redis,
      { topic: tk.meta, stream: tk.stream, ids: tk.ids, scheduled: tk.scheduled, scheduledData: tk.scheduledData },
      { now: Date.now(), max: 10 },
    );
    expect(released.moved).to.be.at.least(1);
    const res = await call(api.app, 'DELETE', `/api/schedule_messages/${id}`);
    expect(res.status).to.equal(404);
    expect(res.body)
      .to.have.nested.property('data.errors.id[0]')
      .that.matches(/released into its topic already/);
    expect((await call(api.app, 'GET', `/api/messages/${id}`)).status).to.equal(200);
  });

  it('answers 404 for an id that is no scheduled message', async () => {
    for (const id of ['orders.1700000000000-0', 'nope.sAbc', 'not-an-id', 'orders.sUnknown']) {
      const res = await call(api.app, 'DELETE', `/api/schedule_messages/${encodeURIComponent(id)}`);
      expect(res.status, id).to.equal(404);
      expect(res.body, id).to.deep.equal({ data: { errors: { id: ['scheduled message not found'] } } });
    }
  });
});
