import { expect } from 'chai';
import { masterNodes } from '@postoffice/shared';
import { createWorld, startReceiver, waitFor, type World } from './helpers.js';
import type { Receiver } from '@postoffice/test-support';

/**
 * A consumer node on a Redis Cluster of three masters, whatever
 * POSTOFFICE_TEST_REDIS says (`pnpm test:cluster` runs every other consumer
 * test on a cluster too).
 */
describe('a consumer node on a Redis Cluster', function () {
  let world: World;
  let receiver: Receiver;

  before(async () => {
    world = await createWorld({ cluster: true });
    receiver = await startReceiver();
  });
  after(async () => {
    await world.close();
    await receiver.close();
  });
  afterEach(async () => {
    await world.closeNodes();
  });

  it('delivers the messages of topics on every master, retrying failures, woken through cluster Pub/Sub', async () => {
    expect(masterNodes(world.redis)).to.have.length(3);
    const topics: string[] = [];
    for (let i = 0; i < 12; i++) {
      const topic = await world.topic(`orders-${i}`);
      await world.publisher(topic, receiver.url, { seconds_retry: 0.05 });
      topics.push(topic);
    }
    // Every master holds some of the topics' streams.
    const streamsPerNode = await Promise.all(
      masterNodes(world.redis).map(async (n) => (await n.keys('po:{*}:stream')).length),
    );
    expect(
      streamsPerNode.every((count) => count > 0),
      String(streamsPerNode),
    ).to.equal(true);

    let failures = 5;
    receiver.respond(() => (failures-- > 0 ? 503 : 200));
    await world.node();
    const ids = new Set<string>();
    for (const topic of topics) for (const id of await world.publish(topic, [topic, `${topic}-2`])) ids.add(id);
    await waitFor(
      () => [...ids].every((id) => receiver.received.some((r) => r.headers['message-id'] === id)),
      'every message delivered',
    );
    expect(receiver.requests.filter((r) => r.status === 503)).to.have.length(5);
  });
});
