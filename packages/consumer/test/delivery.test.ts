import { expect } from 'chai';
import { createWorld, startReceiver, waitFor, type World } from './helpers.js';
import type { Receiver } from '../../shared/test/support/receiver.js';

describe('delivery to an http publisher', function () {
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

  it('posts the payload with its attributes and the message-id header', async () => {
    const topic = await world.topic();
    await world.publisher(topic, receiver.url);
    await world.node();
    const [id] = await world.publish(topic, [{ hello: 'world' }], { source: 'test' });
    await waitFor(() => receiver.received.length === 1, 'the delivery');
    const got = receiver.received[0]!;
    expect(JSON.parse(got.body)).to.deep.equal({ hello: 'world', attributes: { source: 'test' } });
    expect(got.headers['message-id']).to.equal(id);
    expect(got.headers['content-type']).to.equal('application/json');
    expect(got.headers.topic).to.equal(topic);
  });

  it('delivers to every active publisher of the topic, and nothing to an inactive one', async () => {
    const other = await startReceiver();
    const off = await startReceiver();
    try {
      const topic = await world.topic();
      await world.publisher(topic, receiver.url);
      await world.publisher(topic, other.url);
      const inactive = await world.publisher(topic, off.url, { active: false });
      await world.node();
      await world.publish(topic, [1, 2, 3]);
      await waitFor(() => receiver.received.length === 3 && other.received.length === 3, 'both publishers');
      expect(off.requests).to.have.length(0);
      const [info] = (await world.redis.xinfo('GROUPS', world.keys.topic(topic).stream)) as unknown[][];
      expect(info).to.exist;
      // the inactive publisher keeps its backlog: nothing read from its group
      const groups = (await world.redis.xinfo('GROUPS', world.keys.topic(topic).stream)) as (string | number)[][];
      const g = groups.find((row) => row[1] === inactive.id)!;
      expect(g[g.indexOf('lag') + 1]).to.equal(3);
    } finally {
      await other.close();
      await off.close();
    }
  });

  it('delivers the backlog once a publisher is activated again', async () => {
    const topic = await world.topic();
    const p = await world.publisher(topic, receiver.url, { active: false });
    await world.node();
    await world.publish(topic, ['a', 'b']);
    await world.store.updatePublisher(p.id, (c) => ({ ...c, active: true }));
    await waitFor(() => receiver.received.length === 2, 'the backlog');
  });

  it('skips messages sent before a from_now publisher was created', async () => {
    const topic = await world.topic();
    await world.publish(topic, ['old']);
    await world.publisher(topic, receiver.url, { from_now: true });
    await world.node();
    await world.publish(topic, ['new']);
    await waitFor(() => receiver.received.length === 1, 'the new message');
    expect(receiver.received[0]!.body).to.equal('"new"');
  });

  it('delivers messages sent before a publisher (without from_now) was created', async () => {
    const topic = await world.topic();
    await world.publish(topic, ['old']);
    await world.publisher(topic, receiver.url);
    await world.node();
    await waitFor(() => receiver.received.length === 1, 'the old message');
  });

  it('never has more than concurrency deliveries in flight, and leaves the backlog in Redis', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    receiver.respond(async () => {
      await gate;
      return 200;
    });
    const topic = await world.topic();
    const p = await world.publisher(topic, receiver.url, { concurrency: 5 });
    await world.node();
    await world.publish(
      topic,
      Array.from({ length: 200 }, (_, i) => i),
    );
    await waitFor(() => receiver.inFlight.now === 5, 'five deliveries in flight');
    const groups = (await world.redis.xinfo('GROUPS', world.keys.topic(topic).stream)) as (string | number)[][];
    const g = groups.find((row) => row[1] === p.id)!;
    expect(g[g.indexOf('pending') + 1]).to.equal(5);
    expect(g[g.indexOf('lag') + 1]).to.equal(195);
    release();
    await waitFor(() => receiver.received.length === 200, 'all 200');
    expect(receiver.inFlight.max).to.equal(5);
  });
});

describe('when a publisher’s consumer group vanishes', function () {
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

  it('creates it again and goes on delivering instead of wedging on NOGROUP', async () => {
    const topic = await world.topic();
    const p = await world.publisher(topic, receiver.url);
    await world.node();
    await world.publish(topic, ['before']);
    await waitFor(() => receiver.received.length === 1, 'the first message');
    await world.redis.xgroup('DESTROY', world.keys.topic(topic).stream, p.id);
    await world.publish(topic, ['after']);
    await waitFor(() => receiver.received.some((r) => r.body === '"after"'), 'the message sent after the loss');
  });
});
