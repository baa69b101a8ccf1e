/**
 * The publisher fields of issue 17 through the built processes: the
 * producer's API sets them, the consumer process delivers by them, the
 * API shows the outcome.
 */
import { expect } from 'chai';
import { Keys, closeRedis, createRedis } from '@postoffice/shared';
import { startRedis, type RedisServer } from '@postoffice/test-support/redis-server';
import { waitFor } from '@postoffice/test-support/wait';
import { subscribers } from '@postoffice/test-support/commands';
import { startReceiver, type Receiver } from '@postoffice/test-support/receiver';
import { api, killAll, startApp, type AppProcess } from '@postoffice/test-support/processes';

const ENV = { HEARTBEAT_SECONDS: '1', CLAIM_TIMEOUT_SECONDS: '3', RETRY_POLL_MS: '50' };

interface Delivery {
  state: string;
  attempt_count: number;
  dead_reason?: string;
  next_attempt_at?: string;
  attempts: { status?: number; response?: string; outcome?: string }[];
}

describe('delivery settings through the built processes', function () {
  this.timeout(120_000);
  let redis: RedisServer;
  let receiver: Receiver;
  let producer: AppProcess;
  let consumer: AppProcess;
  let topics = 0;

  before(async () => {
    redis = await startRedis();
    receiver = await startReceiver();
    producer = await startApp('producer', { REDIS_URL: redis.url, ...ENV });
    consumer = await startApp('consumer', { REDIS_URL: redis.url, ...ENV });
  });
  after(async () => {
    await killAll([producer, consumer]);
    await receiver.close();
    await redis.stop();
  });

  async function publisher(fields: Record<string, unknown>): Promise<{ topic: string; id: string }> {
    const topic = `t${++topics}`;
    expect((await api(producer, 'POST', '/api/topics', { name: topic, origin_host: 'test' })).status).to.equal(201);
    const res = await api(producer, 'POST', '/api/publishers', {
      topic,
      type: 'http',
      target: `${receiver.url}?${topic}`,
      ...fields,
    });
    expect(res.status, JSON.stringify(res.json)).to.equal(201);
    return { topic, id: String(res.json.data.id) };
  }

  async function send(topic: string, payload: unknown, attributes?: Record<string, string>): Promise<string> {
    const res = await api(producer, 'POST', '/api/messages', { topic, payload, ...(attributes ? { attributes } : {}) });
    expect(res.status).to.equal(201);
    return String(res.json.data.id);
  }

  async function delivery(id: string): Promise<Delivery> {
    const { json } = await api(producer, 'GET', `/api/messages/${id}`);
    return json.data.deliveries[0] as Delivery;
  }

  const until = (id: string, state: string): Promise<Delivery> =>
    waitFor(async () => {
      const d = await delivery(id);
      return d.state === state ? d : undefined;
    }, `${id} ${state}`);

  const requestsOf = (topic: string) => receiver.requests.filter((r) => r.path.endsWith(`?${topic}`));

  it('dead_on_status and retry_max_attempts make dead letters naming why, with the answer kept', async () => {
    receiver.respond((req) =>
      req.body.includes('refused') ? { status: 404, body: 'no such account' } : { status: 500, body: 'boom' },
    );
    const { topic } = await publisher({ dead_on_status: [404], retry_max_attempts: 2, seconds_retry: 0.05 });
    const refused = await until(await send(topic, 'refused'), 'dead');
    expect(refused.dead_reason).to.match(/404, final by the publisher's dead_on_status/);
    expect(refused.attempts[0]).to.include({ status: 404, response: 'no such account' });
    const failing = await until(await send(topic, 'failing'), 'dead');
    expect(failing.dead_reason).to.equal('undelivered after 2 attempts (retry_max_attempts 2); last error: HTTP 500');
    expect(failing.attempts.map((a) => a.response)).to.deep.equal(['boom', 'boom']);
  });

  it('retry_max_age_seconds makes a dead letter once the message is that old', async () => {
    receiver.respond(() => 503);
    const { topic } = await publisher({ retry_max_age_seconds: 1, seconds_retry: 0.2 });
    const dead = await until(await send(topic, 'old'), 'dead');
    expect(dead.dead_reason).to.match(/retry_max_age_seconds 1 s/);
  });

  it('a 429 with Retry-After sets the next attempt no earlier than it asks', async () => {
    receiver.respond(() => ({ status: 429, headers: { 'retry-after': '30' } }));
    const { topic } = await publisher({ seconds_retry: 0.05 });
    const id = await send(topic, 'wait');
    const retrying = await until(id, 'retrying');
    const first = requestsOf(topic)[0]!;
    expect(Date.parse(retrying.next_attempt_at!) - first.at).to.be.at.least(29_000);
  });

  it('headers, a filter and batches shape what the receiver gets', async () => {
    receiver.respond(() => 200);
    const { topic } = await publisher({
      active: false,
      headers: { Authorization: 'Bearer abc' },
      filter: { attributes: { kind: ['a', 'b'] } },
      batch_size: 3,
    });
    const ids: string[] = [];
    for (const kind of ['a', 'x', 'b', 'a', 'x', 'b', 'a']) ids.push(await send(topic, { kind }, { kind }));
    const { json } = await api(producer, 'GET', `/api/topics/${topic}`);
    const pid = String(json.data.publishers[0].id);
    expect((await api(producer, 'PATCH', `/api/publishers/${pid}`, { active: true })).status).to.equal(200);
    await waitFor(() => requestsOf(topic).length === 2, 'two batches');
    const bodies = requestsOf(topic).map((r) => JSON.parse(r.body) as { payload: { kind: string } }[]);
    expect(bodies.map((b) => b.map((m) => m.payload.kind))).to.deep.equal([
      ['a', 'b', 'a'],
      ['b', 'a'],
    ]);
    expect(requestsOf(topic)[0]!.headers.authorization).to.equal('Bearer abc');
    expect((await until(ids[1]!, 'skipped')).attempt_count).to.equal(0);
    await until(ids[6]!, 'delivered');
    const stats = await api(producer, 'GET', '/api/stats');
    const mine = stats.json.data.per_publisher.find((p: { id: string }) => p.id === pid);
    expect(mine).to.include({ skipped: 2, delivered: 5 });
  });

  it('an ordering attribute keeps each key in order while keys go in parallel', async () => {
    receiver.respond(async () => {
      // The receiver answers a little late, so that requests of different keys overlap.
      await new Promise((r) => setTimeout(r, 3));
      return 200;
    });
    const { topic } = await publisher({ ordered: true, ordering_attribute: 'account', concurrency: 8 });
    for (let n = 0; n < 10; n++) for (const account of ['a', 'b', 'c']) await send(topic, { account, n }, { account });
    await waitFor(() => requestsOf(topic).length === 30, 'every message');
    for (const account of ['a', 'b', 'c']) {
      const seq = requestsOf(topic)
        .map((r) => JSON.parse(r.body) as { account: string; n: number })
        .filter((b) => b.account === account)
        .map((b) => b.n);
      expect(seq, account).to.deep.equal([...Array(10).keys()]);
    }
  });

  it('a pull publisher honours ordered, rate_limit and a long poll', async () => {
    const { topic, id } = await publisher({
      type: 'pull',
      target: 'workers',
      ordered: true,
      rate_limit: { per_second: 100, burst: 5 },
    });
    // The producer subscribes to wake-ups when its first lease request starts waiting: then it waits.
    const client = createRedis(redis.url, 'consumer');
    const wake = new Keys('po:').wakeChannel;
    const already = await subscribers(client, wake);
    const waiting = api(producer, 'POST', `/api/publishers/${id}/lease`, { max: 10, wait_seconds: 10 });
    try {
      await waitFor(async () => (await subscribers(client, wake)) > already, 'the lease request to wait');
    } finally {
      await closeRedis(client);
    }
    const started = Date.now();
    for (let n = 0; n < 3; n++) await send(topic, n);
    const first = await waiting;
    expect(Date.now() - started).to.be.below(5000);
    expect(first.json.data.map((l: { message: { payload: number } }) => l.message.payload)).to.deep.equal([0]);
    const none = await api(producer, 'POST', `/api/publishers/${id}/lease`, { max: 10 });
    expect(none.json.data).to.deep.equal([]);
    const done = await api(producer, 'POST', `/api/leases/${encodeURIComponent(first.json.data[0].token)}/complete`);
    expect(done.status).to.equal(200);
    const next = await api(producer, 'POST', `/api/publishers/${id}/lease`, { max: 10 });
    expect(next.json.data.map((l: { message: { payload: number } }) => l.message.payload)).to.deep.equal([1]);
  });
});
