import { expect } from 'chai';
import { createLogger, loadConfig } from '@postoffice/shared';
import { subscribers } from '@postoffice/test-support';
import { buildServer } from '../src/index.js';
import { call, createPublisher, createTopic, startApi, waitFor, type Api, type Answer } from './helpers.js';

interface Leased {
  token: string;
  attempt: number;
  message: { id: string; payload: unknown; attributes: Record<string, string> };
}

describe('pull publishers honour what they accept', () => {
  let api: Api;

  beforeEach(async () => {
    api = await startApi();
    await createTopic(api.app, 'jobs');
  });
  afterEach(async () => {
    await api.close();
  });

  async function pull(extra: Record<string, unknown> = {}): Promise<string> {
    return String(
      (await createPublisher(api.app, { topic: 'jobs', target: `w${Math.random()}`, type: 'pull', ...extra })).id,
    );
  }

  async function send(payload: unknown, attributes?: Record<string, string>): Promise<string> {
    const res = await call(api.app, 'POST', '/api/messages', {
      topic: 'jobs',
      payload,
      ...(attributes ? { attributes } : {}),
    });
    expect(res.status).to.equal(201);
    return (res.body as { data: { id: string } }).data.id;
  }

  async function leaseRaw(id: string, body: Record<string, unknown> = {}): Promise<Answer> {
    return call(api.app, 'POST', `/api/publishers/${id}/lease`, body);
  }

  async function lease(id: string, body: Record<string, unknown> = {}): Promise<Leased[]> {
    const res = await leaseRaw(id, body);
    expect(res.status, res.raw).to.equal(200);
    return (res.body as { data: Leased[] }).data;
  }

  const answer = (token: string, what: string, body: unknown = {}): Promise<Answer> =>
    call(api.app, 'POST', `/api/leases/${encodeURIComponent(token)}/${what}`, body);

  describe('ordered', () => {
    it('gives out one message at a time, in order, the next once the first is answered', async () => {
      const id = await pull({ ordered: true });
      for (let i = 0; i < 3; i++) await send(i);
      const [first, ...more] = await lease(id, { max: 10 });
      expect(more).to.have.length(0);
      expect(first!.message.payload).to.equal(0);
      expect(await lease(id, { max: 10 })).to.have.length(0);
      expect((await answer(first!.token, 'retry', { in_seconds: 0 })).status).to.equal(200);
      const [again] = await lease(id, { max: 10 });
      expect(again!.message.payload).to.equal(0);
      expect((await answer(again!.token, 'complete')).status).to.equal(200);
      expect((await lease(id, { max: 10 })).map((l) => l.message.payload)).to.deep.equal([1]);
    });

    it('with an ordering attribute, gives out one message per key at a time', async () => {
      const id = await pull({ ordered: true, ordering_attribute: 'customer' });
      await send('a1', { customer: 'a' });
      await send('a2', { customer: 'a' });
      await send('b1', { customer: 'b' });
      const first = await lease(id, { max: 10 });
      expect(first.map((l) => l.message.payload)).to.deep.equal(['a1', 'b1']);
      expect((await answer(first[0]!.token, 'complete')).status).to.equal(200);
      expect((await lease(id, { max: 10 })).map((l) => l.message.payload)).to.deep.equal(['a2']);
    });
  });

  it('gives out at most the tokens of its rate limit, across calls', async () => {
    const id = await pull({ rate_limit: { per_second: 0.01, burst: 2 } });
    for (let i = 0; i < 5; i++) await send(i);
    expect(await lease(id, { max: 5 })).to.have.length(2);
    expect(await lease(id, { max: 5 })).to.have.length(0);
  });

  it('takes the filter shape of publishers, with lists', async () => {
    const id = await pull();
    await send('eu', { region: 'eu' });
    await send('asia', { region: 'asia' });
    await send('us', { region: 'us' });
    const got = await lease(id, { max: 10, filter: { attributes: { region: ['eu', 'us'] } } });
    expect(got.map((l) => l.message.payload)).to.deep.equal(['eu', 'us']);
    const bad = await leaseRaw(id, { filter: { attributes: { region: 5 } } });
    expect(bad.status).to.equal(400);
    expect(Object.keys((bad.body as { data: { errors: object } }).data.errors)).to.deep.equal(['filter']);
  });

  it('makes a message a dead letter when a worker retries it after retry_max_attempts leases', async () => {
    const id = await pull({ retry_max_attempts: 2 });
    const mid = await send('x');
    const [first] = await lease(id);
    await answer(first!.token, 'retry');
    const [second] = await lease(id);
    expect(second!.attempt).to.equal(2);
    const res = await answer(second!.token, 'retry', { reason: 'still broken' });
    expect(res.status).to.equal(200);
    expect((res.body as { data: Record<string, unknown> }).data).to.deep.include({
      state: 'dead',
      dead_reason: 'retried after 2 leases (retry_max_attempts 2): still broken',
    });
    const view = await call(api.app, 'GET', `/api/messages/${mid}`);
    expect(JSON.stringify(view.body)).to.include('"state":"dead"');
  });

  describe('wait_seconds', () => {
    it('answers as soon as a message arrives, woken by the ingest, not at the end of its wait', async () => {
      const id = await pull();
      const started = Date.now();
      const waiting = lease(id, { wait_seconds: 10 });
      // The producer subscribes to wake-ups when its first lease request starts waiting.
      await waitFor(async () => (await subscribers(api.redis, api.keys.wakeChannel)) > 0, 'the lease request to wait');
      await send('late');
      const got = await waiting;
      expect(got.map((l) => l.message.payload)).to.deep.equal(['late']);
      expect(Date.now() - started).to.be.below(5000);
    });

    it('is woken by a message another producer wrote, through the wake channel', async () => {
      const id = await pull();
      const other = await startApi({}, api.server);
      try {
        const waiting = lease(id, { wait_seconds: 10 });
        // Subscribed: a message published from now on wakes it.
        await waitFor(async () => (await subscribers(api.redis, api.keys.wakeChannel)) > 0, 'the lease to wait');
        const sent = await call(other.app, 'POST', '/api/messages', { topic: 'jobs', payload: 'elsewhere' });
        expect(sent.status).to.equal(201);
        const started = Date.now();
        expect((await waiting).map((l) => l.message.payload)).to.deep.equal(['elsewhere']);
        expect(Date.now() - started).to.be.below(5000);
      } finally {
        await other.close();
      }
    });

    it('answers empty at the end of its wait, and wakes for a lease that runs out meanwhile', async () => {
      const id = await pull();
      const started = Date.now();
      expect(await lease(id, { wait_seconds: 0.3 })).to.deep.equal([]);
      expect(Date.now() - started).to.be.at.least(290);
      await send('m');
      const [held] = await lease(id, { lease_seconds: 0.3 });
      const again = await lease(id, { wait_seconds: 5 });
      expect(again.map((l) => l.message.id)).to.deep.equal([held!.message.id]);
    });

    it('refuses more than 20 seconds, naming wait_seconds', async () => {
      const id = await pull();
      const res = await leaseRaw(id, { wait_seconds: 21 });
      expect(res.status).to.equal(400);
      expect(Object.keys((res.body as { data: { errors: object } }).data.errors)).to.deep.equal(['wait_seconds']);
    });

    it('answers 429 with Retry-After when too many requests already wait on this producer', async () => {
      const id = await pull();
      const config = loadConfig({ REDIS_URL: api.server.url, LOG_LEVEL: 'silent' }, 'producer');
      const app = buildServer({ config, redis: api.redis, logger: createLogger(config), maxWaitingLeases: 2 });
      try {
        await app.ready();
        const waiting = [1, 2].map(() => call(app, 'POST', `/api/publishers/${id}/lease`, { wait_seconds: 2 }));
        await waitFor(async () => {
          const res = await call(app, 'POST', `/api/publishers/${id}/lease`, { wait_seconds: 0.1 });
          return res.status === 429 ? res : undefined;
        }, 'a refused third request').then((res) => {
          expect(res.headers['retry-after']).to.equal('1');
          expect(Object.keys((res.body as { data: { errors: object } }).data.errors)).to.deep.equal(['wait_seconds']);
        });
        // Without a wait, a lease is still answered at once.
        expect((await call(app, 'POST', `/api/publishers/${id}/lease`, {})).status).to.equal(200);
        await send('one');
        const got = await Promise.all(waiting);
        expect(got.map((r) => r.status)).to.deep.equal([200, 200]);
      } finally {
        await app.close();
      }
    });
  });

  describe('the dashboard and the failing list', () => {
    it('count leased messages as leased, not retrying', async () => {
      const id = await pull();
      await send(1);
      await send(2);
      const [held] = await lease(id, { lease_seconds: 600 });
      const [other] = await lease(id);
      await answer(other!.token, 'retry', { in_seconds: 600 });
      const stats = await call(api.app, 'GET', '/api/stats');
      const mine = (stats.body as { data: { per_publisher: Record<string, unknown>[] } }).data.per_publisher.find(
        (p) => p.id === id,
      );
      expect(mine).to.include({ leased: 1, retrying: 1 });
      const failing = await call(api.app, 'GET', `/api/publishers/${id}/failing`);
      const items = (failing.body as { data: { id: string; state: string; lease_expires_at?: string }[] }).data;
      const leased = items.find((i) => i.id === held!.message.id);
      expect(leased).to.include({ state: 'leased' });
      expect(leased!.lease_expires_at).to.be.a('string');
      expect(items.find((i) => i.id === other!.message.id)).to.include({ state: 'retrying' });
    });

    it('never count deleted messages as delivered', async () => {
      const id = await pull();
      const mid = await send(1);
      const [held] = await lease(id);
      await answer(held!.token, 'retry', { in_seconds: 600 });
      const del = await call(api.app, 'POST', `/api/publishers/${id}/failing/delete`, { ids: [mid] });
      expect(del.status).to.equal(200);
      const stats = await call(api.app, 'GET', '/api/stats');
      const mine = (stats.body as { data: { per_publisher: Record<string, unknown>[] } }).data.per_publisher.find(
        (p) => p.id === id,
      );
      expect(mine).to.include({ delivered: 0, deleted: 1 });
    });
  });
});
