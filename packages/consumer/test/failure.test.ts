import { expect } from 'chai';
import type { DeliveryRecord } from '@postoffice/shared';
import { createWorld, startReceiver, waitFor, type World } from './helpers.js';
import type { Receiver } from '../../shared/test/support/receiver.js';

async function history(
  world: World,
  topic: string,
  messageId: string,
  publisherId: string,
): Promise<DeliveryRecord | undefined> {
  const raw = await world.redis.hget(world.keys.history(topic, messageId), publisherId);
  return raw ? (JSON.parse(raw) as DeliveryRecord) : undefined;
}

describe('when deliveries fail', function () {
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

  it('retries a message the target answered 503 until it takes it, recording every attempt', async () => {
    let failures = 3;
    receiver.respond(() => (failures-- > 0 ? 503 : 200));
    const topic = await world.topic();
    const p = await world.publisher(topic, receiver.url, { seconds_retry: 0.05 });
    await world.node();
    const [id] = await world.publish(topic, [{ n: 1 }]);
    await waitFor(() => receiver.received.length === 1, 'the delivery after three failures');
    const rec = await waitFor(async () => {
      const r = await history(world, topic, id!, p.id);
      return r?.state === 'delivered' ? r : undefined;
    }, 'the delivered record');
    expect(rec.attempt_count).to.equal(4);
    expect(rec.attempts.map((a) => a.status)).to.deep.equal([503, 503, 503, 200]);
    expect(rec.attempts[0]!.error).to.equal('HTTP 503');
    expect(await world.redis.zcard(world.keys.publisher(topic, p.id).retries)).to.equal(0);
    const summary = await world.redis.xpending(world.keys.topic(topic).stream, p.id);
    expect(summary[0]).to.equal(0);
  });

  it('treats a target slower than seconds_timeout as a failure and retries', async () => {
    let first = true;
    receiver.respond(async () => {
      if (first) {
        first = false;
        await new Promise((r) => setTimeout(r, 1500));
      }
      return 200;
    });
    const topic = await world.topic();
    const p = await world.publisher(topic, receiver.url, { seconds_timeout: 0.2, seconds_retry: 0.05 });
    await world.node();
    const [id] = await world.publish(topic, ['slow']);
    const rec = await waitFor(async () => {
      const r = await history(world, topic, id!, p.id);
      return r?.state === 'delivered' ? r : undefined;
    }, 'delivery after a timeout');
    expect(rec.attempts[0]!.error).to.match(/timeout/);
  });

  it('retries when the target refuses connections', async () => {
    const down = await startReceiver();
    const url = down.url;
    await down.close();
    const topic = await world.topic();
    const p = await world.publisher(topic, url, { seconds_retry: 0.05 });
    await world.node();
    const [id] = await world.publish(topic, ['x']);
    const rec = await waitFor(async () => {
      const r = await history(world, topic, id!, p.id);
      return r && r.attempt_count >= 2 ? r : undefined;
    }, 'two failed attempts');
    expect(rec.state).to.equal('retrying');
    expect(rec.attempts[0]!.error).to.equal('connection refused');
    expect(rec.next_attempt_at).to.be.a('string');
  });

  it('makes a message a dead letter once it is older than the max age', async () => {
    receiver.respond(() => 500);
    const topic = await world.topic();
    const p = await world.publisher(topic, receiver.url, { seconds_retry: 0.1 });
    await world.node({ RETRY_MAX_AGE_SECONDS: '1', RETENTION_SECONDS: '60' });
    const [id] = await world.publish(topic, ['doomed']);
    const rec = await waitFor(async () => {
      const r = await history(world, topic, id!, p.id);
      return r?.state === 'dead' ? r : undefined;
    }, 'the dead letter');
    expect(rec.dead_reason).to.match(/max age 1 s.*HTTP 500/);
    const pk = world.keys.publisher(topic, p.id);
    expect(await world.redis.zcard(pk.dead)).to.equal(1);
    expect(await world.redis.zcard(pk.retries)).to.equal(0);
  });

  it('stops taking new messages after repeated failures and probes with one, then resumes', async () => {
    let healthy = false;
    receiver.respond(() => (healthy ? 200 : 503));
    const topic = await world.topic();
    const p = await world.publisher(topic, receiver.url, { seconds_retry: 0.2, concurrency: 1 });
    const node = await world.node({ BREAKER_THRESHOLD: '3', RETRY_MAX_BACKOFF_SECONDS: '1' });
    await world.publish(
      topic,
      Array.from({ length: 50 }, (_, i) => i),
    );
    await waitFor(() => node.pipeline(p.id)?.state === 'open', 'the circuit to open');
    // While open, probes go one at a time and pick retries, not new messages: the backlog stays in the stream.
    const requestsWhenOpened = receiver.requests.length;
    await waitFor(() => receiver.requests.length >= requestsWhenOpened + 2, 'two probes');
    const groups = (await world.redis.xinfo('GROUPS', world.keys.topic(topic).stream)) as (string | number)[][];
    const g = groups.find((row) => row[1] === p.id)!;
    expect(g[g.indexOf('lag') + 1]).to.be.at.least(45);
    healthy = true;
    await waitFor(() => receiver.received.length === 50, 'every message after recovery', 30_000);
    expect(node.pipeline(p.id)?.state).to.equal('running');
  });

  it('applies a changed target to messages not yet delivered', async () => {
    const second = await startReceiver();
    try {
      receiver.respond(() => 503);
      const topic = await world.topic();
      const p = await world.publisher(topic, receiver.url, { seconds_retry: 0.2 });
      await world.node();
      await world.publish(topic, ['moved']);
      await waitFor(() => receiver.requests.length >= 1, 'the first failed attempt');
      await world.store.updatePublisher(p.id, (c) => ({ ...c, target: second.url }));
      await waitFor(() => second.received.length === 1, 'delivery to the new target');
    } finally {
      await second.close();
    }
  });
});
