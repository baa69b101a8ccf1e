import { expect } from 'chai';
import { call, createTopic, errors, startApi, type Api } from './helpers.js';

describe('publisher slots, order and rate limits in the API, and GET /api/cluster', () => {
  let api: Api;
  const hook = 'http://127.0.0.1:9/hook';
  let n = 0;
  const target = () => `${hook}?${++n}`;

  before(async () => {
    api = await startApi();
    await createTopic(api.app, 'orders');
  });
  after(async () => {
    await api.close();
  });

  async function create(fields: Record<string, unknown>): Promise<Record<string, unknown>> {
    const res = await call(api.app, 'POST', '/api/publishers', {
      topic: 'orders',
      type: 'http',
      target: target(),
      ...fields,
    });
    expect(res.status, JSON.stringify(res.body)).to.equal(201);
    return (res.body as { data: Record<string, unknown> }).data;
  }

  it('defaults to one slot, unordered, no rate limit', async () => {
    expect(await create({})).to.include({ parallelism: 1, ordered: false, rate_limit: null });
  });

  it('takes parallelism, ordered and a rate limit', async () => {
    const data = await create({ parallelism: 4, ordered: true, rate_limit: { per_second: 2.5, burst: 10 } });
    expect(data).to.deep.include({ parallelism: 4, ordered: true, rate_limit: { per_second: 2.5, burst: 10 } });
  });

  it('answers 400 naming each bad field', async () => {
    const res = await call(api.app, 'POST', '/api/publishers', {
      topic: 'orders',
      type: 'http',
      target: target(),
      parallelism: 0,
      ordered: 'yes',
      rate_limit: { per_second: -1, burst: 1.5, per_minute: 3 },
    });
    expect(res.status).to.equal(400);
    expect(res.body).to.deep.equal(
      errors({
        parallelism: ['must be a whole number from 1 to 100'],
        ordered: ['is invalid'],
        rate_limit: [
          'has an unknown field "per_minute"',
          'per_second must be a number from 0.001 to 1000000',
          'burst must be a whole number from 1 to 1000000',
        ],
      }),
    );
    for (const rate_limit of [5, 'fast', [1, 2], {}]) {
      const bad = await call(api.app, 'POST', '/api/publishers', {
        topic: 'orders',
        type: 'http',
        target: target(),
        rate_limit,
      });
      expect(bad.status).to.equal(400);
      expect(Object.keys((bad.body as { data: { errors: object } }).data.errors)).to.deep.equal(['rate_limit']);
    }
  });

  it('changes parallelism and the rate limit with PATCH, removes the limit with null, and refuses to change ordered', async () => {
    const { id } = await create({});
    const changed = await call(api.app, 'PATCH', `/api/publishers/${String(id)}`, {
      parallelism: 3,
      rate_limit: { per_second: 100, burst: 5 },
    });
    expect(changed.status).to.equal(200);
    expect((changed.body as { data: object }).data).to.deep.include({
      parallelism: 3,
      rate_limit: { per_second: 100, burst: 5 },
    });
    const lifted = await call(api.app, 'PATCH', `/api/publishers/${String(id)}`, { rate_limit: null });
    expect(lifted.status).to.equal(200);
    expect((lifted.body as { data: object }).data).to.deep.include({ parallelism: 3, rate_limit: null });
    const fixed = await call(api.app, 'PATCH', `/api/publishers/${String(id)}`, { ordered: true });
    expect(fixed.status).to.equal(400);
    expect(fixed.body).to.deep.equal(errors({ ordered: ['cannot be changed'] }));
    const nulled = await call(api.app, 'PATCH', `/api/publishers/${String(id)}`, { parallelism: null });
    expect(nulled.status).to.equal(400);
    expect(nulled.body).to.deep.equal(errors({ parallelism: ['is invalid'] }));
  });

  it('lists live nodes with their slots, the janitor, and each publisher’s lag, pending and retrying counts', async () => {
    const { id } = await create({ parallelism: 2 });
    const pid = String(id);
    for (let i = 0; i < 3; i++) {
      expect((await call(api.app, 'POST', '/api/messages', { topic: 'orders', payload: i })).status).to.equal(201);
    }
    // What consumer nodes write: heartbeats, a slot lease, the janitor's lease, one entry read and one waiting for a retry.
    const now = Date.now();
    await api.redis.zadd(api.keys.nodes, now, 'node-a', now - 60_000, 'node-dead', 0, 'node-left');
    await api.redis.set(api.keys.node('node-a'), JSON.stringify({ id: 'node-a', host: 'h', pid: 1, started_at: 'x' }));
    await api.redis.set(api.keys.slotLease('orders', pid, 0), 'node-a token');
    await api.redis.set(api.keys.slotLease('orders', pid, 1), 'node-dead token');
    await api.redis.set(api.keys.lock('janitor'), 'node-a token');
    const stream = api.keys.topic('orders').stream;
    const read = (await api.redis.xreadgroup('GROUP', pid, 'node-a', 'COUNT', 2, 'STREAMS', stream, '>')) as [
      string,
      [string, string[]][],
    ][];
    const first = read[0]?.[1][0]?.[0] as string;
    await api.redis.zadd(api.keys.publisher('orders', pid).retries, now + 60_000, first);

    const res = await call(api.app, 'GET', '/api/cluster');
    expect(res.status).to.equal(200);
    const data = (res.body as { data: any }).data;
    expect(data.nodes).to.have.length(1);
    expect(data.nodes[0]).to.include({ id: 'node-a', host: 'h', pid: 1 });
    expect(data.nodes[0].slots).to.deep.equal([`${pid}/0`]);
    expect(data.singletons).to.deep.equal({ janitor: 'node-a' });
    const p = data.publishers.find((x: { id: string }) => x.id === pid);
    expect(p).to.deep.include({
      parallelism: 2,
      ordered: false,
      rate_limit: null,
      slots: [
        { slot: 0, node: 'node-a' },
        { slot: 1, node: null },
      ],
      lag: 1,
      pending: 2,
      retrying: 1,
    });
  });
});
