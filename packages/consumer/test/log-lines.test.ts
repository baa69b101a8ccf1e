/**
 * The log lines of a real producer and consumer at LOG_LEVEL=debug, through
 * a full round: deliveries, failures and retries, a circuit that opens, a
 * pull lease, bad requests, a deleted publisher and a SIGTERM. Every line
 * is read as a strict log pipeline would: one JSON object, no key twice,
 * `level` a level's name.
 */
import { expect } from 'chai';
import { freePort, startRedis, type RedisServer } from '@postoffice/test-support/redis-server';
import { waitFor } from '@postoffice/test-support/wait';
import { startReceiver, type Receiver } from '@postoffice/test-support/receiver';
import { killAll, startApp, type AppProcess } from '@postoffice/test-support/processes';
import { logLineProblems, parseStrictJson } from '@postoffice/test-support/log-lines';

const TOKEN = 'a-log-test-token-of-enough-length';

describe('the log lines of the producer and consumer processes', function () {
  this.timeout(120_000);
  let redis: RedisServer;
  let receiver: Receiver;
  const apps: AppProcess[] = [];

  before(async () => {
    redis = await startRedis();
    let calls = 0;
    // The first three attempts fail (a retry each), then every one succeeds.
    receiver = await startReceiver(() => (++calls <= 3 ? 503 : 200));
  });
  after(async () => {
    await killAll(apps);
    await receiver.close();
    await redis.stop();
  });

  it('are read by a parser that refuses a key written twice (JSON.parse keeps the last one)', () => {
    const line = '{"level":"info","component":"consumer","a":{"b":1},"component":"pipeline"}';
    expect(() => parseStrictJson(line)).to.throw('key "component" appears twice');
    expect(() => parseStrictJson('{"a":{"b":1,"b":2}}')).to.throw('key "b" appears twice');
    expect(parseStrictJson('{"a":[1,"x\\"y",{"b":null}],"c":-1.5e3}')).to.deep.equal(
      JSON.parse('{"a":[1,"x\\"y",{"b":null}],"c":-1.5e3}'),
    );
    expect(logLineProblems('{"level":30,"msg":"x"}\n')).to.have.length(1);
  });

  it('are JSON objects with no key twice and level names, through failures, retries, leases and shutdown', async () => {
    const env = {
      REDIS_URL: redis.url,
      LOG_LEVEL: 'debug',
      API_TOKENS: TOKEN,
      HEARTBEAT_SECONDS: '1',
      RETRY_POLL_MS: '100',
      BREAKER_THRESHOLD: '2',
      SHUTDOWN_TIMEOUT_SECONDS: '5',
    };
    const producer = await startApp('producer', env);
    const consumer = await startApp('consumer', { ...env, NODE_ID: 'log-node' });
    apps.push(producer, consumer);
    const call = async (method: string, path: string, body?: unknown, token = TOKEN) => {
      const res = await fetch(`${producer.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, json: text ? JSON.parse(text) : undefined };
    };

    expect((await call('POST', '/api/topics', { name: 'orders', origin_host: 'shop.example' })).status).to.equal(201);
    const good = await call('POST', '/api/publishers', {
      topic: 'orders',
      target: receiver.url,
      type: 'http',
      active: true,
      seconds_retry: 1,
    });
    // Nothing listens on this port: connection refused, twice, opens the circuit.
    const down = await call('POST', '/api/publishers', {
      topic: 'orders',
      target: `http://127.0.0.1:${await freePort()}/hook`,
      type: 'http',
      active: true,
      seconds_retry: 1,
    });
    const pull = await call('POST', '/api/publishers', {
      topic: 'orders',
      target: 'workers',
      type: 'pull',
      active: true,
    });
    for (const p of [good, down, pull]) expect(p.status, JSON.stringify(p.json)).to.equal(201);
    await waitFor(async () => {
      const res = await fetch(`${consumer.url}/healthz`);
      return ((await res.json()) as { pipelines: number }).pipelines === 2;
    }, 'the consumer to run both http publishers');

    for (let i = 0; i < 3; i++) {
      expect(
        (await call('POST', '/api/messages', { topic: 'orders', payload: { n: i }, attributes: {} })).status,
      ).to.equal(201);
    }
    // Refused requests (logged at debug): no token, a wrong one, a bad body, an unknown route.
    expect((await call('GET', '/api/topics', undefined, '')).status).to.equal(401);
    expect((await call('GET', '/api/topics', undefined, 'not-a-configured-token-at-all')).status).to.equal(403);
    expect((await call('POST', '/api/messages', { topic: 'nope', payload: {}, attributes: {} })).status).to.equal(400);
    expect((await call('GET', '/api/nothing-here')).status).to.equal(404);

    const leased = await call('POST', `/api/publishers/${pull.json.data.id}/lease`, { max: 3, lease_seconds: 30 });
    expect(leased.json.data).to.have.length(3);
    for (const lease of leased.json.data as { token: string }[]) {
      expect((await call('POST', `/api/leases/${lease.token}/complete`)).status).to.equal(200);
    }

    await waitFor(() => receiver.received.length === 3, 'every message delivered after its retries');
    await waitFor(() => /circuit open/.test(consumer.output()), 'the failing publisher to open its circuit');
    expect((await call('DELETE', `/api/publishers/${down.json.data.id}`)).status).to.equal(204);
    await waitFor(async () => {
      const res = await fetch(`${consumer.url}/healthz`);
      return ((await res.json()) as { pipelines: number }).pipelines === 1;
    }, 'the deleted publisher to stop');

    producer.kill('SIGTERM');
    consumer.kill('SIGTERM');
    expect(await producer.exited).to.equal(0);
    expect(await consumer.exited).to.equal(0);

    const lines = (app: AppProcess) =>
      app
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => parseStrictJson(l) as Record<string, unknown>);
    for (const app of [producer, consumer]) expect(logLineProblems(app.output()), app.output()).to.deep.equal([]);
    const consumerLines = lines(consumer);
    const producerLines = lines(producer);
    // The lines that once carried "component" and "publisherId" twice are among those read.
    const failed = consumerLines.filter((l) => l.msg === 'delivery failed');
    expect(failed.length).to.be.at.least(3);
    expect(failed[0]).to.include({ component: 'pipeline', nodeId: 'log-node', topic: 'orders', level: 'debug' });
    expect(consumerLines.some((l) => String(l.msg).includes('circuit open') && l.level === 'warn')).to.equal(true);
    expect(consumerLines.some((l) => l.msg === 'consumer node stopped')).to.equal(true);
    expect(producerLines.some((l) => l.msg === 'request refused' && l.level === 'debug')).to.equal(true);
    expect(producerLines.some((l) => l.msg === 'stopped' && l.level === 'info')).to.equal(true);
  });
});
