import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { parseMessageId, type Attempt } from '@postoffice/shared';
import { deliveryOf, useWorld, waitFor, type World } from './helpers.js';
import { startPubsubServer, type FakePubsub } from './support/pubsub-server.js';

const PROJECT = 'test-project';

describe('delivery to a pubsub publisher', function () {
  const f = useWorld();
  let pubsub: FakePubsub;

  beforeEach(async () => {
    pubsub = await startPubsubServer([`projects/${PROJECT}/topics/orders`, 'projects/other/topics/audit']);
  });
  afterEach(async () => {
    await pubsub?.close();
  });

  const node = (world: World) => world.node({ PUBSUB_EMULATOR_HOST: pubsub.host, GCLOUD_PUBSUB_PROJECT_ID: PROJECT });

  async function record(world: World, _topic: string, publisherId: string, id: string) {
    return deliveryOf(world, id, publisherId);
  }

  it('publishes the payload as data and the attributes as Pub/Sub attributes, in the configured project', async () => {
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, 'orders', { type: 'pubsub' });
    await node(f.world);
    const payload = { hello: 'wörld', n: [1, 2.5, null], nested: { ok: true } };
    const [id] = await f.world.publish(topic, [payload, 'text'], { source: 'test', 'x-y': 'z ü' });
    await waitFor(() => pubsub.messages().length === 2, 'both messages published');
    const got = pubsub.messages().sort((a, b) => a.data.localeCompare(b.data));
    expect(got.map((m) => JSON.parse(m.data) as unknown)).to.deep.equal(['text', payload]);
    for (const m of got) expect(m.attributes).to.deep.equal({ source: 'test', 'x-y': 'z ü' });
    expect(pubsub.calls.every((c) => c.topic === `projects/${PROJECT}/topics/orders`)).to.equal(true);
    await waitFor(async () => (await record(f.world, topic, p.id, id!))?.state === 'delivered', 'history');
  });

  it('publishes to a full topic name in its own project', async () => {
    const topic = await f.world.topic();
    await f.world.publisher(topic, 'projects/other/topics/audit', { type: 'pubsub' });
    await node(f.world);
    await f.world.publish(topic, [1]);
    await waitFor(() => pubsub.messages().length === 1, 'the message');
    expect(pubsub.calls[0]!.topic).to.equal('projects/other/topics/audit');
  });

  it('gathers deliveries in flight into Publish calls of at most chunk_size messages', async () => {
    const topic = await f.world.topic();
    await f.world.publisher(topic, 'orders', { type: 'pubsub', chunk_size: 3, concurrency: 20 });
    await node(f.world);
    await f.world.publish(
      topic,
      Array.from({ length: 20 }, (_, i) => i),
    );
    await waitFor(() => pubsub.messages().length === 20, 'all 20 published');
    const sizes = pubsub.calls.map((c) => c.messages.length);
    expect(Math.max(...sizes)).to.be.at.most(3);
    expect(sizes.length, 'batched, not one call per message').to.be.below(20);
    expect(
      pubsub
        .messages()
        .map((m) => Number(m.data))
        .sort((a, b) => a - b),
    ).to.deep.equal(Array.from({ length: 20 }, (_, i) => i));
  });

  it('retries a message the server answered UNAVAILABLE, and records the failed attempt', async () => {
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, 'orders', { type: 'pubsub', seconds_retry: 0.2 });
    pubsub.failNext(grpc.status.UNAVAILABLE, 1, 'try later');
    await node(f.world);
    const [id] = await f.world.publish(topic, ['again']);
    await waitFor(async () => (await record(f.world, topic, p.id, id!))?.state === 'delivered', 'delivered at last');
    const r = (await record(f.world, topic, p.id, id!))!;
    expect(r.attempt_count).to.equal(2);
    expect((r.attempts[0] as Attempt).error).to.contain('UNAVAILABLE');
    expect(pubsub.messages().map((m) => m.data)).to.deep.equal(['"again"']);
  });

  it('says clearly that a topic does not exist, and keeps the message for a retry', async () => {
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, 'missing-topic', { type: 'pubsub', seconds_retry: 60 });
    await node(f.world);
    const [id] = await f.world.publish(topic, ['lost?']);
    await waitFor(async () => (await record(f.world, topic, p.id, id!))?.state === 'retrying', 'a failed attempt');
    const r = (await record(f.world, topic, p.id, id!))!;
    expect((r.attempts[0] as Attempt).error).to.contain(
      `Pub/Sub topic projects/${PROJECT}/topics/missing-topic does not exist`,
    );
    expect(await f.world.redis.zcard(f.world.keys.publisher(topic, p.id).retries)).to.equal(1);
    // Once the topic exists the retry goes through.
    pubsub.topics.add(`projects/${PROJECT}/topics/missing-topic`);
    await f.world.redis.zadd(f.world.keys.publisher(topic, p.id).retries, 0, parseMessageId(id!)!.streamId!);
    await f.world.redis.zadd(f.world.keys.retryDue, 0, p.id);
    await waitFor(
      async () => (await record(f.world, topic, p.id, id!))?.state === 'delivered',
      'delivered after the fix',
    );
  });

  it('makes a dead letter of a message Pub/Sub refuses as INVALID_ARGUMENT, after trying it alone', async () => {
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, 'orders', { type: 'pubsub' });
    pubsub.failNext(grpc.status.INVALID_ARGUMENT, 2, 'bad message');
    await node(f.world);
    const [id] = await f.world.publish(topic, ['bad']);
    await waitFor(async () => (await record(f.world, topic, p.id, id!))?.state === 'dead', 'a dead letter');
    const r = (await record(f.world, topic, p.id, id!))!;
    expect(r.dead_reason).to.contain('INVALID_ARGUMENT');
    expect(pubsub.attempts).to.have.length(2);
    expect(await f.world.redis.zcard(f.world.keys.publisher(topic, p.id).dead)).to.equal(1);
  });

  it('makes a dead letter at once of a message Pub/Sub could never take, without sending it', async () => {
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, 'orders', { type: 'pubsub' });
    await node(f.world);
    const [id] = await f.world.publish(topic, ['x'], { goog_reserved: 'no' });
    await waitFor(async () => (await record(f.world, topic, p.id, id!))?.state === 'dead', 'a dead letter');
    expect((await record(f.world, topic, p.id, id!))!.dead_reason).to.contain('not allowed by Pub/Sub');
    expect(pubsub.attempts).to.have.length(0);
  });
});
