import { expect } from 'chai';
import { testClock, type TestClock } from '@postoffice/test-support';
import { call, createPublisher, createTopic, errors, startApi, type Api, type Answer } from './helpers.js';

interface Leased {
  token: string;
  expires_at: string;
  attempt: number;
  message: { id: string; topic: string; payload: unknown; attributes: Record<string, string>; received_at: string };
}

interface Delivery {
  publisher_id: string;
  state: string;
  attempt_count: number;
  attempts: { outcome?: string; worker?: Record<string, unknown>; error?: string; at: string }[];
  dead_reason?: string;
  next_attempt_at?: string;
  replaced_by?: string[];
}

describe('pull publishers: leases', () => {
  let api: Api;
  let pullId: string;
  /** The server's clock: a lease's end, a retry's delay come by moving it, not by sleeping. */
  let clock: TestClock;
  const worker = { host: 'worker-1', pid: 4242 };

  beforeEach(async () => {
    clock = testClock();
    api = await startApi({}, undefined, { now: clock.now });
    await createTopic(api.app, 'jobs');
    await createTopic(api.app, 'results');
    pullId = String((await createPublisher(api.app, { topic: 'jobs', target: 'workers', type: 'pull' })).id);
  });
  afterEach(async () => {
    await api.close();
  });

  async function send(payload: unknown, attributes?: Record<string, string>, topic = 'jobs'): Promise<string> {
    const res = await call(api.app, 'POST', '/api/messages', { topic, payload, ...(attributes ? { attributes } : {}) });
    expect(res.status).to.equal(201);
    return (res.body as { data: { id: string } }).data.id;
  }

  async function lease(body: Record<string, unknown> = {}): Promise<Leased[]> {
    const res = await call(api.app, 'POST', `/api/publishers/${pullId}/lease`, { worker, ...body });
    expect(res.status, res.raw).to.equal(200);
    return (res.body as { data: Leased[] }).data;
  }

  function answer(token: string, what: string, body?: unknown): Promise<Answer> {
    return call(api.app, 'POST', `/api/leases/${encodeURIComponent(token)}/${what}`, body ?? {});
  }

  async function delivery(id: string): Promise<Delivery> {
    const res = await call(api.app, 'GET', `/api/messages/${id}`);
    expect(res.status).to.equal(200);
    const d = (res.body as { data: { deliveries: Delivery[] } }).data.deliveries.find((x) => x.publisher_id === pullId);
    return d!;
  }

  it('hands out up to max messages with a token each, the payload and attributes', async () => {
    const a = await send({ n: 1 }, { kind: 'x' });
    await send({ n: 2 });
    await send({ n: 3 });
    const got = await lease({ max: 2, lease_seconds: 60 });
    expect(got).to.have.length(2);
    expect(got[0]!.message).to.include({ id: a, topic: 'jobs' });
    expect(got[0]!.message.payload).to.deep.equal({ n: 1 });
    expect(got[0]!.message.attributes).to.deep.equal({ kind: 'x' });
    expect(got[0]!.attempt).to.equal(1);
    expect(new Set(got.map((l) => l.token)).size).to.equal(2);
    expect(await lease({ max: 5 })).to.have.length(1);
    expect(await lease({ max: 5 })).to.have.length(0);
  });

  it('never gives two workers leasing at once the same message within a lease', async () => {
    const ids = [];
    for (let i = 0; i < 30; i++) ids.push(await send(i));
    const rounds = await Promise.all(
      Array.from({ length: 6 }, (_, w) =>
        call(api.app, 'POST', `/api/publishers/${pullId}/lease`, { max: 7, worker: { host: `w${w}` } }),
      ),
    );
    const got = rounds.flatMap((r) => (r.body as { data: Leased[] }).data.map((l) => l.message.id));
    expect(got).to.have.length(30);
    expect(new Set(got).size).to.equal(30);
    expect(await lease({ max: 10 })).to.have.length(0);
  });

  it('gives a message out again once its lease expired, and refuses the stale token with 409', async () => {
    const id = await send('slow');
    const [first] = await lease({ lease_seconds: 0.3 });
    expect(await lease({ worker: { host: 'worker-2' } })).to.have.length(0);
    clock.advance(300);
    const [again] = await lease({ worker: { host: 'worker-2' } });
    if (!again) throw new Error('the message was not given out again');
    expect(again.message.id).to.equal(id);
    expect(again.attempt).to.equal(2);
    expect(again.token).to.not.equal(first!.token);
    const stale = await answer(first!.token, 'complete');
    expect(stale.status).to.equal(409);
    expect(Object.keys((stale.body as { data: { errors: object } }).data.errors)).to.deep.equal(['token']);
    expect((await answer(again.token, 'complete')).status).to.equal(200);
    const d = await delivery(id);
    expect(d.state).to.equal('delivered');
    expect(d.attempts.map((a) => [a.outcome, a.worker?.host])).to.deep.equal([
      ['expired', 'worker-1'],
      ['completed', 'worker-2'],
    ]);
  });

  it('does not hand out a completed message again, and refuses a second answer with 409', async () => {
    const id = await send('once');
    const [l] = await lease({ lease_seconds: 0.2 });
    const done = await answer(l!.token, 'complete');
    expect(done.status).to.equal(200);
    expect((done.body as { data: object }).data).to.include({ id, state: 'delivered' });
    expect((await answer(l!.token, 'complete')).status).to.equal(409);
    expect((await answer(l!.token, 'fail', { reason: 'x' })).status).to.equal(409);
    clock.advance(300);
    expect(await lease()).to.have.length(0);
    expect((await delivery(id)).state).to.equal('delivered');
  });

  it('retry in N gives the message out again no earlier than N seconds later', async () => {
    const id = await send('later');
    const [l] = await lease();
    const res = await answer(l!.token, 'retry', { in_seconds: 1, reason: 'busy' });
    expect(res.status).to.equal(200);
    expect(await lease()).to.have.length(0);
    clock.advance(999);
    expect(await lease()).to.have.length(0);
    clock.advance(1);
    const [again] = await lease();
    if (!again) throw new Error('the retry was not given out');
    expect(again.message.id).to.equal(id);
    expect(again.attempt).to.equal(2);
    const d = await delivery(id);
    expect(d.attempts[0]).to.include({ outcome: 'retry', error: 'busy' });
    expect(d.state).to.equal('leased');
  });

  it('fail makes a dead letter, shown with its reason', async () => {
    const id = await send('bad');
    const [l] = await lease();
    const res = await answer(l!.token, 'fail', { reason: 'cannot parse' });
    expect(res.status).to.equal(200);
    expect(await api.redis.zcard(api.keys.publisher('jobs', pullId).dead)).to.equal(1);
    const d = await delivery(id);
    expect(d).to.include({ state: 'dead', dead_reason: 'cannot parse' });
    expect(d.attempts[0]).to.include({ outcome: 'failed', error: 'cannot parse' });
    expect(await lease()).to.have.length(0);
    const blank = await answer(l!.token, 'fail', {});
    expect(blank.status).to.equal(400);
  });

  it('extend keeps the message leased past the first end', async () => {
    await send('long');
    const [l] = await lease({ lease_seconds: 0.5 });
    const res = await answer(l!.token, 'extend', { lease_seconds: 60 });
    expect(res.status).to.equal(200);
    clock.advance(700);
    expect(await lease()).to.have.length(0);
    expect((await answer(l!.token, 'complete')).status).to.equal(200);
  });

  it('leases only messages whose attributes match the filter, leaving the others available', async () => {
    await send('a1', { kind: 'a' });
    const b = await send('b1', { kind: 'b' });
    await send('a2', { kind: 'a' });
    const got = await lease({ max: 5, filter: { kind: 'b' } });
    expect(got.map((l) => l.message.id)).to.deep.equal([b]);
    const rest = await lease({ max: 5 });
    expect(rest.map((l) => l.message.payload).sort()).to.deep.equal(['a1', 'a2']);
  });

  it('records the worker of each lease', async () => {
    const id = await send('w');
    await lease({ worker: { host: 'box', pid: 7, name: 'resizer' } });
    const d = await delivery(id);
    expect(d.state).to.equal('leased');
    expect(d.attempts[0]!.worker).to.deep.equal({ host: 'box', pid: 7, name: 'resizer' });
  });

  it('refuses bad requests with 400 naming the field, unknown publishers and tokens with 404', async () => {
    const bad = await call(api.app, 'POST', `/api/publishers/${pullId}/lease`, {
      max: 0,
      lease_seconds: -1,
      worker: { pid: 'x' },
      filter: { a: 1 },
    });
    expect(bad.status).to.equal(400);
    expect(Object.keys((bad.body as { data: { errors: object } }).data.errors).sort()).to.deep.equal([
      'filter',
      'lease_seconds',
      'max',
      'worker.pid',
    ]);
    expect((await call(api.app, 'POST', '/api/publishers/999/lease', {})).status).to.equal(404);
    const http = await createPublisher(api.app, { topic: 'jobs', target: 'http://127.0.0.1:9/x' });
    const notPull = await call(api.app, 'POST', `/api/publishers/${String(http.id)}/lease`, {});
    expect(notPull.status).to.equal(400);
    expect(Object.keys((notPull.body as { data: { errors: object } }).data.errors)).to.deep.equal(['id']);
    for (const token of ['nope', `${pullId}.1-0.abc`, '999.1-0.abc']) {
      const res = await answer(token, 'complete');
      expect(res.status, token).to.equal(404);
      expect(res.body).to.deep.equal(errors({ token: ['lease not found'] }));
    }
  });

  it('never answers 5xx to random bodies and tokens, and every error has the Postoffice shape', async () => {
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)] as T;
    const atoms: unknown[] = [null, true, 0, -1, 1.5, 1e308, '', 'jobs', 'results', 'x'.repeat(300), '__proto__', 5];
    const fields = ['max', 'lease_seconds', 'worker', 'filter', 'in_seconds', 'reason', 'messages', 'topic'];
    const inner = ['topic', 'payload', 'attributes', 'host', 'pid', 'name', 'constructor'];
    const value = (depth = 0): unknown => {
      const r = rand();
      if (depth > 2 || r < 0.5) return pick(atoms);
      if (r < 0.75) return Array.from({ length: Math.floor(rand() * 3) }, () => value(depth + 1));
      return Object.fromEntries(Array.from({ length: Math.floor(rand() * 4) }, () => [pick(inner), value(depth + 1)]));
    };
    for (let i = 0; i < 20; i++) await send(i);
    const tokens = (await lease({ max: 20, lease_seconds: 600 })).map((l) => l.token);
    tokens.push('x', '1.1-1.a', `${pullId}.0-0.zz`, '%00', 'a'.repeat(300));
    const actions = ['complete', 'retry', 'fail', 'extend', 'replace'];
    for (let i = 0; i < 600; i++) {
      const b = Object.fromEntries(Array.from({ length: Math.floor(rand() * 4) }, () => [pick(fields), value()]));
      const url =
        rand() < 0.3
          ? `/api/publishers/${pick([pullId, '1', '999', 'abc'])}/lease`
          : `/api/leases/${encodeURIComponent(pick(tokens))}/${pick(actions)}`;
      const res = await call(api.app, 'POST', url, rand() < 0.1 ? value() : b);
      expect(res.status, `${url} ${JSON.stringify(b)} ${res.raw}`).to.be.below(500);
      if (res.status >= 400) {
        const errs = (res.body as { data?: { errors?: Record<string, unknown> } }).data?.errors;
        expect(errs, url).to.be.an('object');
      }
    }
  });

  describe('replace', () => {
    it('completes the message and publishes the new ones, shown in its details', async () => {
      const id = await send({ step: 1 });
      const [l] = await lease();
      const res = await answer(l!.token, 'replace', {
        messages: [
          { topic: 'results', payload: { step: 2 }, attributes: { from: id } },
          { topic: 'jobs', payload: { step: 'again' } },
        ],
      });
      expect(res.status, res.raw).to.equal(200);
      const ids = (res.body as { data: { replaced_by: string[] } }).data.replaced_by;
      expect(ids).to.have.length(2);
      const first = await call(api.app, 'GET', `/api/messages/${ids[0]!}`);
      expect(first.status).to.equal(200);
      expect((first.body as { data: object }).data).to.deep.include({
        topic: 'results',
        payload: { step: 2 },
        attributes: { from: id },
      });
      const d = await delivery(id);
      expect(d).to.deep.include({ state: 'delivered', replaced_by: ids });
      expect(d.attempts[0]).to.include({ outcome: 'replaced' });
      // the new message of the same topic is available to workers
      const next = await lease();
      expect(next.map((x) => x.message.id)).to.deep.equal([ids[1]]);
      expect(await api.redis.hlen(api.keys.topic('jobs').outbox)).to.equal(0);
    });

    it('refuses an unknown topic with 400 and changes nothing', async () => {
      const id = await send('x');
      const [l] = await lease();
      const res = await answer(l!.token, 'replace', {
        messages: [
          { topic: 'results', payload: 1 },
          { topic: 'nowhere', payload: 2 },
        ],
      });
      expect(res.status).to.equal(400);
      expect(res.body).to.deep.equal(errors({ 'messages[1].topic': ['is invalid'] }));
      expect(await api.redis.xlen(api.keys.topic('results').stream)).to.equal(0);
      expect((await delivery(id)).state).to.equal('leased');
      expect((await answer(l!.token, 'complete')).status).to.equal(200);
    });

    it('refuses a stale token with 409 and publishes nothing', async () => {
      await send('x');
      const [l] = await lease();
      expect((await answer(l!.token, 'complete')).status).to.equal(200);
      const res = await answer(l!.token, 'replace', { messages: [{ topic: 'results', payload: 1 }] });
      expect(res.status).to.equal(409);
      expect(await api.redis.xlen(api.keys.topic('results').stream)).to.equal(0);
    });

    it('leaves neither half when the step that commits both fails', async () => {
      const id = await send('x');
      const [l] = await lease();
      // Force the commit to fail after its checks: the publisher's notes are not a hash.
      void id;
      const pid = (await api.store.listPublishers()).find((p) => p.topic === 'jobs')!.id;
      const history = api.keys.publisher('jobs', pid).notes;
      const saved = await api.redis.hgetall(history);
      await api.redis.set(history, 'not a hash');
      const res = await answer(l!.token, 'replace', { messages: [{ topic: 'results', payload: 1 }] });
      expect(res.status).to.equal(500);
      expect(await api.redis.xlen(api.keys.topic('results').stream)).to.equal(0);
      expect(await api.redis.hlen(api.keys.topic('jobs').outbox)).to.equal(0);
      await api.redis.del(history);
      if (Object.keys(saved).length > 0) await api.redis.hset(history, saved);
      // the lease is still the worker's: nothing was completed
      const retry = await answer(l!.token, 'replace', { messages: [{ topic: 'results', payload: 1 }] });
      expect(retry.status).to.equal(200);
      expect(await api.redis.xlen(api.keys.topic('results').stream)).to.equal(1);
    });

    it('answers 400 for a malformed list of messages', async () => {
      await send('x');
      const [l] = await lease();
      const res = await answer(l!.token, 'replace', {
        messages: [{ topic: 'results' }, { payload: 1 }, { topic: 'results', payload: 1, attributes: { a: 2 } }, 5],
      });
      expect(res.status).to.equal(400);
      expect(Object.keys((res.body as { data: { errors: object } }).data.errors).sort()).to.deep.equal([
        'messages[0].payload',
        'messages[1].topic',
        'messages[2].attributes',
        'messages[3]',
      ]);
      expect((await answer(l!.token, 'replace', { messages: [] })).status).to.equal(400);
    });
  });
});

describe('pull publishers: the max age', () => {
  let api: Api;
  let clock: TestClock;

  before(async () => {
    clock = testClock();
    api = await startApi({ RETRY_MAX_AGE_SECONDS: '1' }, undefined, { now: clock.now });
    await createTopic(api.app, 'jobs');
  });
  after(async () => {
    await api.close();
  });

  it('makes a dead letter of a message whose lease ran out after the max age, and of a retry past it', async () => {
    // The messages' age runs on Redis's clock (their stream ids): start this test's leases from the real time.
    clock.advanceTo(Date.now());
    const pull = String((await createPublisher(api.app, { topic: 'jobs', target: 'w', type: 'pull' })).id);
    const ids: string[] = [];
    for (const payload of ['crashes workers', 'keeps failing']) {
      const r = await call(api.app, 'POST', '/api/messages', { topic: 'jobs', payload });
      ids.push((r.body as { data: { id: string } }).data.id);
    }
    const leaseOne = async (seconds: number) =>
      (await call(api.app, 'POST', `/api/publishers/${pull}/lease`, { lease_seconds: seconds })).body as {
        data: Leased[];
      };
    const [crash] = (await leaseOne(0.2)).data;
    const [failing] = (await leaseOne(30)).data;
    expect([crash!.message.id, failing!.message.id]).to.deep.equal(ids);
    // Past the max age (1 s) of messages received before now, whatever the steps above took in real time.
    clock.advanceTo(Date.now() + 2000);
    const retried = await call(api.app, 'POST', `/api/leases/${failing!.token}/retry`, { in_seconds: 0 });
    expect(retried.status).to.equal(200);
    expect((retried.body as { data: { state: string } }).data.state).to.equal('dead');
    expect((await leaseOne(30)).data).to.have.length(0);
    const outcomes = [['expired'], ['failed']];
    for (const [i, id] of ids.entries()) {
      const d = await call(api.app, 'GET', `/api/messages/${id}`);
      const delivery = (d.body as { data: { deliveries: Delivery[] } }).data.deliveries[0]!;
      expect(delivery.state).to.equal('dead');
      expect(delivery.dead_reason).to.contain('max age');
      expect(delivery.attempts.map((a) => a.outcome)).to.deep.equal(outcomes[i]);
    }
    expect(await api.redis.zcard(api.keys.publisher('jobs', pull).dead)).to.equal(2);
  });
});
