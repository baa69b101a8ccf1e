/**
 * Sources: SQS queues and Pub/Sub subscriptions read into topics by
 * consumer nodes in this process, through the real AWS and Google clients
 * pointed at servers on 127.0.0.1.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { SOURCE_BOUNDS, SourceStore, createLogger, sourceState, type Source } from '@postoffice/shared';
import { ConsumerNode } from '../src/index.js';
import { createWorld, messagesOf, waitFor, type World } from './helpers.js';
import { startSqsServer, type FakeSqs } from '@postoffice/test-support/sqs-server';
import { startPubsubSubscriber, type FakeSubscriber } from './support/pubsub-subscriber-server.js';

describe('sources', function () {
  let world: World;
  let sources: SourceStore;

  beforeEach(async () => {
    world = await createWorld();
    sources = new SourceStore(world.redis, world.keys);
  });
  afterEach(async () => {
    await world.close();
  });

  describe('an SQS queue', () => {
    let sqs: FakeSqs;
    beforeEach(async () => {
      sqs = await startSqsServer();
    });
    afterEach(async () => {
      await sqs.close();
    });

    async function node(env: Record<string, string> = {}): Promise<ConsumerNode> {
      const config = world.config(env);
      const n = new ConsumerNode({
        config,
        logger: createLogger(config),
        sqsClientConfig: {
          endpoint: sqs.endpoint,
          region: 'us-east-1',
          credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
        },
      });
      world.nodes.push(n);
      await n.start();
      return n;
    }

    async function sqsSource(topic: string, queueUrl: string, extra: Partial<Source> = {}): Promise<Source> {
      return sources.create({
        topic,
        type: 'sqs',
        active: true,
        queue_url: queueUrl,
        batch_size: SOURCE_BOUNDS.sqs.batch_size.default,
        wait_seconds: 1,
        ...extra,
      });
    }

    it('writes each message to the topic, String attributes and all, then deletes it from the queue', async () => {
      const topic = await world.topic('orders');
      const queue = sqs.createQueue('orders');
      const source = await sqsSource(topic, queue);
      sqs.send(queue, '{"order": 1}', {
        kind: { DataType: 'String', StringValue: 'order' },
        shop: { DataType: 'String.custom', StringValue: 'north' },
        count: { DataType: 'Number', StringValue: '3' },
      });
      sqs.send(queue, 'plain text, not JSON');
      const n = await node();
      await waitFor(() => sqs.remaining(queue).length === 0, 'the queue emptied');
      expect(await messagesOf(world, topic)).to.deep.equal([
        { payload: { order: 1 }, attributes: { kind: 'order', shop: 'north' } },
        { payload: 'plain text, not JSON', attributes: { payload_format: 'text' } },
      ]);
      const [stats] = await waitFor(async () => {
        const s = await sources.stats([source]);
        return s[0]!.ingested === 2 ? s : undefined;
      }, 'the counters');
      expect(stats).to.deep.include({ read: 2, ingested: 2, failed: 0, node: n.nodeId, failing: false });
      expect(sourceState(source, stats!)).to.equal('reading');
      expect(n.sources.held()).to.deep.equal([source.id]);
      const text = await n.metrics.registry.metrics();
      expect(text).to.match(/postoffice_source_messages_ingested_total\{source="1",topic="orders",type="sqs"\} 2/);
    });

    it('receives a message again when its deletion failed, and does not store it twice', async () => {
      const topic = await world.topic('orders');
      const queue = sqs.createQueue('orders', 1);
      const source = await sqsSource(topic, queue);
      sqs.failNext('DeleteMessageBatch', 3);
      const id = sqs.send(queue, '{"n": 1}');
      await node();
      await waitFor(() => sqs.remaining(queue).length === 0, 'the message deleted at last');
      expect(sqs.calls.filter((c) => c === 'ReceiveMessage').length).to.be.at.least(2);
      expect(await messagesOf(world, topic)).to.deep.equal([{ payload: { n: 1 }, attributes: {} }]);
      // The round that deleted it records its counters just after the deletion.
      const [stats] = await waitFor(async () => {
        const s = await sources.stats([source]);
        return s[0]!.read >= 2 ? s : undefined;
      }, 'the second round counted');
      expect(stats!.last_error).to.match(/DeleteMessageBatch failed for 1 written message/);
      expect(stats!.read).to.be.at.least(2);
      expect(id).to.be.a('string');
    });

    it('leaves a message it cannot write in the queue, counts it, and shows the source failing', async () => {
      const topic = await world.topic('orders');
      const queue = sqs.createQueue('orders', 1);
      const source = await sqsSource(topic, queue);
      // The topic's record gone from under the source (as if deleted while a write was on its way).
      await world.redis.del(world.keys.topic(topic).meta);
      sqs.send(queue, '{"n": 1}');
      const n = await node();
      const [stats] = await waitFor(async () => {
        const s = await sources.stats([source]);
        return s[0]!.failed > 0 ? s : undefined;
      }, 'a failed message');
      expect(stats!.last_error).to.match(/topic orders does not exist/);
      expect(sourceState(source, stats!)).to.equal('failing');
      expect(sqs.remaining(queue)).to.have.length(1);
      const text = await n.metrics.registry.metrics();
      expect(text).to.match(/postoffice_source_messages_failed_total\{[^}]*reason="topic_not_found"\} [1-9]/);
    });

    it('shows a receive that fails, and goes on reading once it works', async () => {
      const topic = await world.topic('orders');
      const queue = sqs.createQueue('orders');
      const source = await sqsSource(topic, queue);
      sqs.failNext('ReceiveMessage', 3);
      await node();
      const [stats] = await waitFor(async () => {
        const s = await sources.stats([source]);
        return s[0]!.last_error ? s : undefined;
      }, 'the failed receive');
      expect(stats!.last_error).to.match(/^receive: .*failing as the test asked/);
      sqs.send(queue, '{"n": 2}');
      await waitFor(() => sqs.remaining(queue).length === 0, 'the message read after the failure');
      expect(await messagesOf(world, topic)).to.have.length(1);
    });

    it('is read by one node of two, by the other once the first stops, and not at all when switched off', async () => {
      const topic = await world.topic('orders');
      const queue = sqs.createQueue('orders');
      const source = await sqsSource(topic, queue);
      const a = await node({ NODE_ID: 'node-a' });
      const b = await node({ NODE_ID: 'node-b' });
      await waitFor(() => a.sources.held().length + b.sources.held().length === 1, 'one reader');
      const reader = a.sources.held().length === 1 ? a : b;
      const other = reader === a ? b : a;
      sqs.send(queue, '{"n": 1}');
      await waitFor(() => sqs.remaining(queue).length === 0, 'the first message');
      await reader.close();
      await waitFor(() => other.sources.held().length === 1, 'the other node reading');
      sqs.send(queue, '{"n": 2}');
      await waitFor(() => sqs.remaining(queue).length === 0, 'the second message');
      await sources.update(source.id, (s) => ({ ...s, active: false }));
      await waitFor(() => other.sources.held().length === 0, 'the reader stopped');
      sqs.send(queue, '{"n": 3}');
      const receives = sqs.calls.filter((c) => c === 'ReceiveMessage').length;
      await waitFor(async () => (await world.redis.exists(world.keys.sourceLease(topic, source.id))) === 0, 'no lease');
      expect(sqs.calls.filter((c) => c === 'ReceiveMessage').length).to.equal(receives);
      expect((await messagesOf(world, topic)).map((m) => m.payload)).to.deep.equal([{ n: 1 }, { n: 2 }]);
      await sources.delete(source.id);
      expect(await sources.get(source.id)).to.equal(undefined);
    });
  });

  describe('a Pub/Sub subscription', () => {
    let sub: FakeSubscriber;
    const name = 'projects/p/subscriptions/orders';
    beforeEach(async () => {
      sub = await startPubsubSubscriber();
      sub.createSubscription(name, 1);
    });
    afterEach(async () => {
      await sub.close();
    });

    it('writes each message to the topic with its attributes, then acknowledges it', async () => {
      const topic = await world.topic('orders');
      const source = await sources.create({ topic, type: 'pubsub', active: true, subscription: name, batch_size: 100 });
      sub.publish(name, '{"order": 1}', { kind: 'order' });
      sub.publish(name, 'not json');
      await world.node({ PUBSUB_EMULATOR_HOST: sub.host });
      await waitFor(() => sub.remaining(name).length === 0, 'both acknowledged');
      expect(await messagesOf(world, topic)).to.deep.equal([
        { payload: { order: 1 }, attributes: { kind: 'order' } },
        { payload: 'not json', attributes: { payload_format: 'text' } },
      ]);
      const [stats] = await waitFor(async () => {
        const s = await sources.stats([source]);
        return s[0]!.ingested === 2 ? s : undefined;
      }, 'the counters');
      expect(stats!.lag).to.equal(null);
    });

    it('takes a bare subscription id in GCLOUD_PUBSUB_PROJECT_ID', async () => {
      const topic = await world.topic('orders');
      await sources.create({ topic, type: 'pubsub', active: true, subscription: 'orders', batch_size: 10 });
      sub.publish(name, '{"n": 1}');
      await world.node({ PUBSUB_EMULATOR_HOST: sub.host, GCLOUD_PUBSUB_PROJECT_ID: 'p' });
      await waitFor(() => sub.remaining(name).length === 0, 'acknowledged');
      expect(await messagesOf(world, topic)).to.have.length(1);
    });

    it('gets a message again when its acknowledgement failed, and does not store it twice', async () => {
      const topic = await world.topic('orders');
      const source = await sources.create({ topic, type: 'pubsub', active: true, subscription: name, batch_size: 100 });
      sub.failNext('Acknowledge', grpc.status.INVALID_ARGUMENT, 1);
      sub.publish(name, '{"n": 1}');
      await world.node({ PUBSUB_EMULATOR_HOST: sub.host });
      await waitFor(() => sub.remaining(name).length === 0, 'acknowledged at last');
      expect(sub.calls.filter((c) => c === 'Acknowledge').length).to.be.at.least(2);
      expect(await messagesOf(world, topic)).to.deep.equal([{ payload: { n: 1 }, attributes: {} }]);
      const [stats] = await sources.stats([source]);
      expect(stats!.last_error).to.match(/Acknowledge failed for 1 written message.*INVALID_ARGUMENT/);
    });
  });
});
