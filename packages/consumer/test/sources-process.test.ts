/**
 * End to end through the built processes: a producer and consumer nodes
 * started as the chart runs them, message recovery from an origin server,
 * an SQS queue (a JSON-protocol server) and a Pub/Sub subscription (a gRPC
 * Subscriber), each delivering into a topic and on to an http receiver; and
 * a reading node killed (SIGKILL) between its write and its deletion or
 * acknowledgement at the source: the message arrives once in the topic.
 */
import { expect } from 'chai';
import { startRedis, type RedisServer } from '@postoffice/test-support/redis-server';
import { waitFor } from '@postoffice/test-support/wait';
import { startReceiver, type Receiver } from '@postoffice/test-support/receiver';
import { api, killAll, startApp, type AppProcess } from '@postoffice/test-support/processes';
import { startOrigin, type OriginServer } from '@postoffice/test-support/origin-server';
import { startSqsServer, type FakeSqs } from '@postoffice/test-support/sqs-server';
import { startPubsubSubscriber, type FakeSubscriber } from './support/pubsub-subscriber-server.js';

const CONSUMER_ENV = {
  HEARTBEAT_SECONDS: '1',
  CLAIM_TIMEOUT_SECONDS: '3',
  RETRY_POLL_MS: '50',
  RECOVERY_INTERVAL_SECONDS: '1',
  RECOVERY_TIMEOUT_SECONDS: '2',
};

describe('recovery and sources, end to end through the processes', function () {
  this.timeout(90_000);
  let redis: RedisServer;
  let receiver: Receiver;
  let producer: AppProcess;
  let apps: AppProcess[];

  beforeEach(async () => {
    redis = await startRedis();
    receiver = await startReceiver();
    apps = [];
    producer = await startApp('producer', { REDIS_URL: redis.url });
    apps.push(producer);
  });
  afterEach(async () => {
    await killAll(apps);
    await receiver.close();
    await redis.stop();
  });

  async function consumer(env: Record<string, string>): Promise<AppProcess> {
    const app = await startApp('consumer', { REDIS_URL: redis.url, ...CONSUMER_ENV, ...env });
    apps.push(app);
    return app;
  }

  async function topicWithPublisher(name: string, extra: Record<string, unknown> = {}): Promise<void> {
    expect((await api(producer, 'POST', '/api/topics', { name, origin_host: 'test', ...extra })).status).to.equal(201);
    const p = await api(producer, 'POST', '/api/publishers', { topic: name, target: receiver.url, type: 'http' });
    expect(p.status).to.equal(201);
  }

  /** Messages of the topic, as the search finds them. */
  async function inTopic(topic: string): Promise<unknown[]> {
    const res = await api(producer, 'GET', `/api/messages?topic=${topic}`);
    return (res.json.data as { payload: unknown }[]).map((m) => m.payload);
  }

  it('recovers single and bulk items from a topic’s origin_host and delivers them', async () => {
    const origin: OriginServer = await startOrigin();
    try {
      await topicWithPublisher('orders', { origin_host: origin.url, recovery_enabled: true });
      origin.add(
        { id: 1, topic: 'orders', payload: { n: 1 }, attributes: { kind: 'single' } },
        { id: 2, topic: 'orders', bulk: true, payload: [{ payload: { n: 2 } }, { payload: { n: 3 } }] },
      );
      await consumer({});
      await waitFor(() => receiver.received.length === 3, 'three deliveries');
      expect(origin.deleted.sort()).to.deep.equal(['1', '2']);
      expect(receiver.received.map((r) => JSON.parse(r.body) as unknown)).to.have.deep.members([
        { n: 1, attributes: { kind: 'single' } },
        { n: 2, attributes: {} },
        { n: 3, attributes: {} },
      ]);
      const topic = await waitFor(async () => {
        const t = (await api(producer, 'GET', '/api/topics/orders')).json.data as Record<string, unknown>;
        return t.recovered === 3 ? t : undefined;
      }, 'the recovered count on the topic');
      expect(topic).to.deep.include({ last_recovery_error: null, received: 3 });
      expect(Date.parse(topic.last_recovery_at as string)).to.be.above(0);
    } finally {
      await origin.close();
    }
  });

  describe('an SQS source', () => {
    let sqs: FakeSqs;
    beforeEach(async () => {
      sqs = await startSqsServer();
    });
    afterEach(async () => {
      await sqs.close();
    });

    const awsEnv = (): Record<string, string> => ({
      AWS_ENDPOINT_URL_SQS: sqs.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
    });

    it('delivers into the topic, and a crash between the write and the deletion stores the message once', async () => {
      await topicWithPublisher('orders');
      const queue = sqs.createQueue('orders', 2);
      const created = await api(producer, 'POST', '/api/sources', {
        topic: 'orders',
        type: 'sqs',
        queue_url: queue,
        wait_seconds: 1,
      });
      expect(created.status).to.equal(201);
      const id = created.json.data.id as string;
      const a = await consumer({ ...awsEnv(), NODE_ID: 'node-a' });
      const b = await consumer({ ...awsEnv(), NODE_ID: 'node-b' });
      sqs.send(queue, '{"n": 1}', { kind: { DataType: 'String', StringValue: 'first' } });
      await waitFor(() => receiver.received.length === 1, 'the first delivery');
      expect(JSON.parse(receiver.received[0]!.body)).to.deep.equal({ n: 1, attributes: { kind: 'first' } });
      const seen = await waitFor(async () => {
        const s = (await api(producer, 'GET', `/api/sources/${id}`)).json.data as Record<string, unknown>;
        return s.ingested === 1 ? s : undefined;
      }, 'the source counters');
      expect(seen).to.deep.include({ state: 'reading', read: 1, failed: 0 });
      const reader = seen.node === 'node-a' ? a : b;
      const survivor = reader === a ? 'node-b' : 'node-a';

      sqs.holdDeletes();
      sqs.send(queue, '{"n": 2}');
      await waitFor(
        async () => sqs.heldDeletes() > 0 && (await inTopic('orders')).length === 2,
        'written, not deleted',
      );
      reader.kill('SIGKILL');
      await reader.exited;
      sqs.releaseDeletes();
      await waitFor(() => sqs.remaining(queue).length === 0, 'the message deleted by the other node');
      const after = (await api(producer, 'GET', `/api/sources/${id}`)).json.data as Record<string, unknown>;
      expect(after.node).to.equal(survivor);
      expect(await inTopic('orders')).to.have.deep.members([{ n: 1 }, { n: 2 }]);
      await waitFor(() => receiver.received.length === 2, 'the second delivery');
    });
  });

  describe('a Pub/Sub source', () => {
    let sub: FakeSubscriber;
    const name = 'projects/p/subscriptions/orders';
    beforeEach(async () => {
      sub = await startPubsubSubscriber();
      sub.createSubscription(name, 2);
    });
    afterEach(async () => {
      await sub.close();
    });

    it('delivers into the topic, and a crash between the write and the acknowledgement stores the message once', async () => {
      await topicWithPublisher('orders');
      const created = await api(producer, 'POST', '/api/sources', {
        topic: 'orders',
        type: 'pubsub',
        subscription: name,
      });
      expect(created.status).to.equal(201);
      const id = created.json.data.id as string;
      const env = { PUBSUB_EMULATOR_HOST: sub.host };
      const a = await consumer({ ...env, NODE_ID: 'node-a' });
      const b = await consumer({ ...env, NODE_ID: 'node-b' });
      sub.publish(name, '{"n": 1}', { kind: 'first' });
      await waitFor(() => receiver.received.length === 1, 'the first delivery');
      expect(JSON.parse(receiver.received[0]!.body)).to.deep.equal({ n: 1, attributes: { kind: 'first' } });
      const seen = await waitFor(async () => {
        const s = (await api(producer, 'GET', `/api/sources/${id}`)).json.data as Record<string, unknown>;
        return s.ingested === 1 ? s : undefined;
      }, 'the source counters');
      const reader = seen.node === 'node-a' ? a : b;

      sub.holdAcks();
      sub.publish(name, '{"n": 2}');
      await waitFor(async () => sub.heldAcks() > 0 && (await inTopic('orders')).length === 2, 'written, not acked');
      reader.kill('SIGKILL');
      await reader.exited;
      sub.releaseAcks();
      await waitFor(() => sub.remaining(name).length === 0, 'the message acknowledged by the other node', 30_000);
      expect(await inTopic('orders')).to.have.deep.members([{ n: 1 }, { n: 2 }]);
      await waitFor(() => receiver.received.length === 2, 'the second delivery');
    });
  });
});
