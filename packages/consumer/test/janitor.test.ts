import { expect } from 'chai';
import { useWorld, waitFor } from './helpers.js';

describe('the janitor', function () {
  const f = useWorld();

  it('trims delivered messages past the retention period but never one a publisher has not delivered', async () => {
    const topic = await f.world.topic();
    await f.world.publisher(topic, f.receiver.url);
    const idle = await f.world.publisher(topic, f.receiver.url + '?idle', { active: false });
    const node = await f.world.node({ RETENTION_SECONDS: '1', RETRY_MAX_AGE_SECONDS: '1', TRIM_INTERVAL_SECONDS: '1' });
    await f.world.publish(topic, ['a', 'b', 'c']);
    await waitFor(() => f.receiver.received.length === 3, 'delivery to the active publisher');
    const stream = f.world.keys.topic(topic).stream;
    // Older than the retention period, but the inactive publisher still needs them.
    await waitFor(
      async () =>
        Date.now() - Number((await f.world.redis.xrange(stream, '-', '+', 'COUNT', 1))[0]![0].split('-')[0]) > 1500,
      'time to pass',
    );
    expect(await node.janitor.trimTopic(topic)).to.equal(0);
    expect(await f.world.redis.xlen(stream)).to.equal(3);
    await f.world.store.updatePublisher(idle.id, (p) => ({ ...p, active: true }));
    await waitFor(() => f.receiver.received.length === 6, 'delivery to the re-activated publisher');
    await waitFor(async () => (await f.world.redis.xlen(stream)) === 0, 'the stream to be trimmed');
    expect(await f.world.redis.hlen(f.world.keys.topic(topic).ids)).to.equal(0);
  });

  it('takes over the messages a dead node had in flight, after the claim timeout', async () => {
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, f.receiver.url);
    const stream = f.world.keys.topic(topic).stream;
    await f.world.publish(topic, ['x', 'y']);
    // A node that read two messages, then died: its heartbeat stops.
    await f.world.redis.xreadgroup('GROUP', p.id, 'ghost', 'COUNT', 2, 'STREAMS', stream, '>');
    const diedAt = Date.now();
    await f.world.redis.zadd(f.world.keys.nodes, diedAt, 'ghost');
    await f.world.node({ CLAIM_TIMEOUT_SECONDS: '2', HEARTBEAT_SECONDS: '1' });
    await waitFor(() => f.receiver.received.length === 2, 'the two messages', 20_000);
    expect(Date.now() - diedAt).to.be.at.least(2000);
    expect(await f.world.redis.zscore(f.world.keys.nodes, 'ghost')).to.equal(null);
    const consumers = (await f.world.redis.xinfo('CONSUMERS', stream, p.id)) as string[][];
    expect(consumers.map((c) => c[1])).to.not.include('ghost');
  });

  it('takes over at once the messages of a node that left on SIGTERM', async () => {
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, f.receiver.url);
    const stream = f.world.keys.topic(topic).stream;
    await f.world.publish(topic, ['x']);
    await f.world.redis.xreadgroup('GROUP', p.id, 'gone', 'COUNT', 1, 'STREAMS', stream, '>');
    await f.world.redis.zadd(f.world.keys.nodes, 0, 'gone');
    await f.world.node({ CLAIM_TIMEOUT_SECONDS: '60' });
    await waitFor(() => f.receiver.received.length === 1, 'the message', 10_000);
  });
});
