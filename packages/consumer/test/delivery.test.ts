import { expect } from 'chai';
import { startReceiver, useWorld, waitFor } from './helpers.js';

describe('delivery to an http publisher', function () {
  const f = useWorld();

  it('posts the payload with its attributes and the message-id header', async () => {
    const topic = await f.world.topic();
    await f.world.publisher(topic, f.receiver.url);
    await f.world.node();
    const [id] = await f.world.publish(topic, [{ hello: 'world' }], { source: 'test' });
    await waitFor(() => f.receiver.received.length === 1, 'the delivery');
    const got = f.receiver.received[0]!;
    expect(JSON.parse(got.body)).to.deep.equal({ hello: 'world', attributes: { source: 'test' } });
    expect(got.headers['message-id']).to.equal(id);
    expect(got.headers['content-type']).to.equal('application/json');
    expect(got.headers.topic).to.equal(topic);
  });

  it('delivers to every active publisher of the topic, and nothing to an inactive one', async () => {
    const other = await startReceiver();
    const off = await startReceiver();
    try {
      const topic = await f.world.topic();
      await f.world.publisher(topic, f.receiver.url);
      await f.world.publisher(topic, other.url);
      const inactive = await f.world.publisher(topic, off.url, { active: false });
      await f.world.node();
      await f.world.publish(topic, [1, 2, 3]);
      await waitFor(() => f.receiver.received.length === 3 && other.received.length === 3, 'both publishers');
      expect(off.requests).to.have.length(0);
      const [info] = (await f.world.redis.xinfo('GROUPS', f.world.keys.topic(topic).stream)) as unknown[][];
      expect(info).to.exist;
      // the inactive publisher keeps its backlog: nothing read from its group
      const groups = (await f.world.redis.xinfo('GROUPS', f.world.keys.topic(topic).stream)) as (string | number)[][];
      const g = groups.find((row) => row[1] === inactive.id)!;
      expect(g[g.indexOf('lag') + 1]).to.equal(3);
    } finally {
      await other.close();
      await off.close();
    }
  });

  it('delivers the backlog once a publisher is activated again', async () => {
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, f.receiver.url, { active: false });
    await f.world.node();
    await f.world.publish(topic, ['a', 'b']);
    await f.world.store.updatePublisher(p.id, (c) => ({ ...c, active: true }));
    await waitFor(() => f.receiver.received.length === 2, 'the backlog');
  });

  it('skips messages sent before a from_now publisher was created', async () => {
    const topic = await f.world.topic();
    await f.world.publish(topic, ['old']);
    await f.world.publisher(topic, f.receiver.url, { from_now: true });
    await f.world.node();
    await f.world.publish(topic, ['new']);
    await waitFor(() => f.receiver.received.length === 1, 'the new message');
    expect(f.receiver.received[0]!.body).to.equal('"new"');
  });

  it('delivers messages sent before a publisher (without from_now) was created', async () => {
    const topic = await f.world.topic();
    await f.world.publish(topic, ['old']);
    await f.world.publisher(topic, f.receiver.url);
    await f.world.node();
    await waitFor(() => f.receiver.received.length === 1, 'the old message');
  });

  it('never has more than concurrency deliveries in flight, and leaves the backlog in Redis', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    f.receiver.respond(async () => {
      await gate;
      return 200;
    });
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, f.receiver.url, { concurrency: 5 });
    await f.world.node();
    await f.world.publish(
      topic,
      Array.from({ length: 200 }, (_, i) => i),
    );
    await waitFor(() => f.receiver.inFlight.now === 5, 'five deliveries in flight');
    const groups = (await f.world.redis.xinfo('GROUPS', f.world.keys.topic(topic).stream)) as (string | number)[][];
    const g = groups.find((row) => row[1] === p.id)!;
    expect(g[g.indexOf('pending') + 1]).to.equal(5);
    expect(g[g.indexOf('lag') + 1]).to.equal(195);
    release();
    await waitFor(() => f.receiver.received.length === 200, 'all 200');
    expect(f.receiver.inFlight.max).to.equal(5);
  });
});

describe('when a publisher’s consumer group vanishes', function () {
  const f = useWorld();

  it('creates it again and goes on delivering instead of wedging on NOGROUP', async () => {
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, f.receiver.url);
    await f.world.node();
    await f.world.publish(topic, ['before']);
    await waitFor(() => f.receiver.received.length === 1, 'the first message');
    await f.world.redis.xgroup('DESTROY', f.world.keys.topic(topic).stream, p.id);
    await f.world.publish(topic, ['after']);
    await waitFor(() => f.receiver.received.some((r) => r.body === '"after"'), 'the message sent after the loss');
  });
});
