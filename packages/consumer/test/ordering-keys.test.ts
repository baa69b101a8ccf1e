import { expect } from 'chai';
import type { Received } from '@postoffice/test-support';
import { useWorld, waitFor } from './helpers.js';

/** The `n` of each delivery of key `key`, in the order they arrived (duplicates included). */
function sequence(received: readonly Received[], key: string): number[] {
  return received
    .map((r) => JSON.parse(r.body) as { key: string; n: number })
    .filter((b) => b.key === key)
    .map((b) => b.n);
}

describe('an ordered publisher with an ordering attribute', function () {
  const f = useWorld();

  it('delivers each key in stream order, one at a time, with different keys in parallel, retries included', async () => {
    const inFlight = new Map<string, number>();
    let mostPerKey = 0;
    const failedOnce = new Set<string>();
    f.receiver.respond(async (req) => {
      const { key, n } = JSON.parse(req.body) as { key: string; n: number };
      const now = (inFlight.get(key) ?? 0) + 1;
      inFlight.set(key, now);
      mostPerKey = Math.max(mostPerKey, now);
      // The receiver holds each request a moment, so that a second one of the same key would overlap it.
      await new Promise((r) => setTimeout(r, 5));
      inFlight.set(key, now - 1);
      // Every third message fails once: its key waits for its retry.
      const id = `${key}/${n}`;
      if (n % 3 === 0 && !failedOnce.has(id)) {
        failedOnce.add(id);
        return 503;
      }
      return 200;
    });
    const topic = await f.world.topic();
    await f.world.publisher(topic, f.receiver.url, {
      active: false,
      ordered: true,
      ordering_attribute: 'customer',
      concurrency: 10,
      seconds_retry: 0.05,
    });
    const keys = ['a', 'b', 'c', 'd'];
    const messages: { key: string; n: number }[] = [];
    for (let n = 0; n < 12; n++) for (const key of keys) messages.push({ key, n });
    for (const m of messages) await f.world.publish(topic, [{ key: m.key, n: m.n }], { customer: m.key });
    const p = (await f.world.store.listPublishersOfTopic(topic))[0]!;
    await f.world.store.updatePublisher(p.id, (c) => ({ ...c, active: true }));
    await f.world.node({ BREAKER_THRESHOLD: '1000' });
    await waitFor(() => f.receiver.received.length === messages.length, 'every message', 30_000);
    for (const key of keys) expect(sequence(f.receiver.received, key), key).to.deep.equal([...Array(12).keys()]);
    expect(mostPerKey).to.equal(1);
    expect(f.receiver.inFlight.max).to.be.at.least(2);
  });

  it('sends messages without the attribute as one key of their own', async () => {
    f.receiver.respond(async () => {
      // The receiver holds each request a moment, so that requests overlap.
      await new Promise((r) => setTimeout(r, 2));
      return 200;
    });
    const topic = await f.world.topic();
    await f.world.publisher(topic, f.receiver.url, { ordered: true, ordering_attribute: 'customer', concurrency: 5 });
    await f.world.node();
    for (let n = 0; n < 20; n++) await f.world.publish(topic, [{ key: 'none', n }]);
    await waitFor(() => f.receiver.received.length === 20, 'every message');
    expect(sequence(f.receiver.received, 'none')).to.deep.equal([...Array(20).keys()]);
    expect(f.receiver.inFlight.max).to.equal(1);
  });

  it('sends what an earlier owner left pending first, in each key’s order, once the claim timeout has passed', async () => {
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, f.receiver.url, {
      ordered: true,
      ordering_attribute: 'customer',
      concurrency: 5,
      active: false,
    });
    for (let n = 0; n < 6; n++)
      for (const key of ['a', 'b']) await f.world.publish(topic, [{ key, n }], { customer: key });
    // A node that died after reading the first 5 messages (in flight or held behind their key).
    const stream = f.world.keys.topic(topic).stream;
    await f.world.redis.xreadgroup('GROUP', p.id, 'dead-node', 'COUNT', 5, 'STREAMS', stream, '>');
    // And one of them had failed already: it waits in the retry set, due later than the others.
    const [entry] = await f.world.redis.xrange(stream, '-', '+', 'COUNT', 1);
    await f.world.redis.zadd(f.world.keys.publisher(topic, p.id).retries, Date.now() + 500, entry![0]);
    await f.world.store.updatePublisher(p.id, (c) => ({ ...c, active: true }));
    const started = Date.now();
    await f.world.node();
    await waitFor(() => f.receiver.received.length === 12, 'every message', 20_000);
    expect(f.receiver.received[0]!.at - started).to.be.at.least(2000);
    for (const key of ['a', 'b']) expect(sequence(f.receiver.received, key), key).to.deep.equal([0, 1, 2, 3, 4, 5]);
  });
});
