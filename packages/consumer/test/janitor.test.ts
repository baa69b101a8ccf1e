import { expect } from 'chai';
import { createWorld, startReceiver, waitFor, type World } from './helpers.js';
import type { Receiver } from '../../shared/test/support/receiver.js';

describe('the janitor', function () {
  let world: World;
  let receiver: Receiver;

  beforeEach(async () => {
    world = await createWorld();
    receiver = await startReceiver();
  });
  afterEach(async () => {
    await world.close();
    await receiver.close();
  });

  it('trims delivered messages past the retention period but never one a publisher has not delivered', async () => {
    const topic = await world.topic();
    await world.publisher(topic, receiver.url);
    const idle = await world.publisher(topic, receiver.url + '?idle', { active: false });
    const node = await world.node({ RETENTION_SECONDS: '1', RETRY_MAX_AGE_SECONDS: '1', TRIM_INTERVAL_SECONDS: '1' });
    await world.publish(topic, ['a', 'b', 'c']);
    await waitFor(() => receiver.received.length === 3, 'delivery to the active publisher');
    const stream = world.keys.topic(topic).stream;
    // Older than the retention period, but the inactive publisher still needs them.
    await waitFor(
      async () =>
        Date.now() - Number((await world.redis.xrange(stream, '-', '+', 'COUNT', 1))[0]![0].split('-')[0]) > 1500,
      'time to pass',
    );
    expect(await node.janitor.trimTopic(topic)).to.equal(0);
    expect(await world.redis.xlen(stream)).to.equal(3);
    await world.store.updatePublisher(idle.id, (p) => ({ ...p, active: true }));
    await waitFor(() => receiver.received.length === 6, 'delivery to the re-activated publisher');
    await waitFor(async () => (await world.redis.xlen(stream)) === 0, 'the stream to be trimmed');
    expect(await world.redis.hlen(world.keys.topic(topic).ids)).to.equal(0);
  });

  it('takes over the messages a dead node had in flight, after the claim timeout', async () => {
    const topic = await world.topic();
    const p = await world.publisher(topic, receiver.url);
    const stream = world.keys.topic(topic).stream;
    await world.publish(topic, ['x', 'y']);
    // A node that read two messages, then died: its heartbeat stops.
    await world.redis.xreadgroup('GROUP', p.id, 'ghost', 'COUNT', 2, 'STREAMS', stream, '>');
    const diedAt = Date.now();
    await world.redis.zadd(world.keys.nodes, diedAt, 'ghost');
    await world.node({ CLAIM_TIMEOUT_SECONDS: '2', HEARTBEAT_SECONDS: '1' });
    await waitFor(() => receiver.received.length === 2, 'the two messages', 20_000);
    expect(Date.now() - diedAt).to.be.at.least(2000);
    expect(await world.redis.zscore(world.keys.nodes, 'ghost')).to.equal(null);
    const consumers = (await world.redis.xinfo('CONSUMERS', stream, p.id)) as string[][];
    expect(consumers.map((c) => c[1])).to.not.include('ghost');
  });

  it('takes over at once the messages of a node that left on SIGTERM', async () => {
    const topic = await world.topic();
    const p = await world.publisher(topic, receiver.url);
    const stream = world.keys.topic(topic).stream;
    await world.publish(topic, ['x']);
    await world.redis.xreadgroup('GROUP', p.id, 'gone', 'COUNT', 1, 'STREAMS', stream, '>');
    await world.redis.zadd(world.keys.nodes, 0, 'gone');
    await world.node({ CLAIM_TIMEOUT_SECONDS: '60' });
    await waitFor(() => receiver.received.length === 1, 'the message', 10_000);
  });
});
