import { expect } from 'chai';
import type { Attempt } from '@postoffice/shared';
import { deliveryOf, startReceiver, useWorld, waitFor } from './helpers.js';

describe('when deliveries fail', function () {
  const f = useWorld();

  it('retries a message the target answered 503 until it takes it, recording every attempt', async () => {
    let failures = 3;
    f.receiver.respond(() => (failures-- > 0 ? 503 : 200));
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, f.receiver.url, { seconds_retry: 0.05 });
    await f.world.node();
    const [id] = await f.world.publish(topic, [{ n: 1 }]);
    await waitFor(() => f.receiver.received.length === 1, 'the delivery after three failures');
    const rec = await waitFor(async () => {
      const r = await deliveryOf(f.world, id!, p.id);
      return r?.state === 'delivered' ? r : undefined;
    }, 'the delivered record');
    expect(rec.attempt_count).to.equal(4);
    expect((rec.attempts as Attempt[]).map((a) => a.status)).to.deep.equal([503, 503, 503, 200]);
    expect((rec.attempts[0] as Attempt).error).to.equal('HTTP 503');
    expect(await f.world.redis.zcard(f.world.keys.publisher(topic, p.id).retries)).to.equal(0);
    const summary = await f.world.redis.xpending(f.world.keys.topic(topic).stream, p.id);
    expect(summary[0]).to.equal(0);
  });

  it('treats a target slower than seconds_timeout as a failure and retries', async () => {
    let first = true;
    f.receiver.respond(async () => {
      if (first) {
        first = false;
        // The receiver answers the first request after the publisher's timeout (0.2 s) has passed.
        await new Promise((r) => setTimeout(r, 1500));
      }
      return 200;
    });
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, f.receiver.url, { seconds_timeout: 0.2, seconds_retry: 0.05 });
    await f.world.node();
    const [id] = await f.world.publish(topic, ['slow']);
    const rec = await waitFor(async () => {
      const r = await deliveryOf(f.world, id!, p.id);
      return r?.state === 'delivered' ? r : undefined;
    }, 'delivery after a timeout');
    expect((rec.attempts[0] as Attempt).error).to.match(/timeout/);
  });

  it('retries when the target refuses connections', async () => {
    const down = await startReceiver();
    const url = down.url;
    await down.close();
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, url, { seconds_retry: 0.05 });
    await f.world.node();
    const [id] = await f.world.publish(topic, ['x']);
    const rec = await waitFor(async () => {
      const r = await deliveryOf(f.world, id!, p.id);
      return r && r.attempt_count >= 2 ? r : undefined;
    }, 'two failed attempts');
    expect(rec.state).to.equal('retrying');
    expect((rec.attempts[0] as Attempt).error).to.equal('connection refused');
    expect(rec.next_attempt_at).to.be.a('string');
  });

  it('makes a message a dead letter once it is older than the max age', async () => {
    f.receiver.respond(() => 500);
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, f.receiver.url, { seconds_retry: 0.1 });
    await f.world.node({ RETRY_MAX_AGE_SECONDS: '1', RETENTION_SECONDS: '60' });
    const [id] = await f.world.publish(topic, ['doomed']);
    const rec = await waitFor(async () => {
      const r = await deliveryOf(f.world, id!, p.id);
      return r?.state === 'dead' ? r : undefined;
    }, 'the dead letter');
    expect(rec.dead_reason).to.match(/max age 1 s.*HTTP 500/);
    const pk = f.world.keys.publisher(topic, p.id);
    expect(await f.world.redis.zcard(pk.dead)).to.equal(1);
    expect(await f.world.redis.zcard(pk.retries)).to.equal(0);
  });

  it('stops taking new messages after repeated failures and probes with one, then resumes', async () => {
    let healthy = false;
    f.receiver.respond(() => (healthy ? 200 : 503));
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, f.receiver.url, { seconds_retry: 0.2, concurrency: 1 });
    const node = await f.world.node({ BREAKER_THRESHOLD: '3', RETRY_MAX_BACKOFF_SECONDS: '1' });
    await f.world.publish(
      topic,
      Array.from({ length: 50 }, (_, i) => i),
    );
    await waitFor(() => node.pipeline(p.id)?.state === 'open', 'the circuit to open');
    // Its record in Redis (GET /api/stats and the UI show it): failures in a row, and the next probe while open.
    const reported = async () => {
      const json = await f.world.redis.get(f.world.keys.publisher(topic, p.id).circuit);
      return json === null
        ? undefined
        : (JSON.parse(json) as { state: string; failures: number; next_probe_at: number | null });
    };
    const open = await waitFor(reported, 'the circuit recorded');
    expect(open.state).to.be.oneOf(['open', 'probing']);
    expect(open.failures).to.be.at.least(3);
    if (open.state === 'open') expect(open.next_probe_at).to.be.above(Date.now() - 60_000);
    // While open, probes go one at a time and pick retries, not new messages: the backlog stays in the stream.
    const requestsWhenOpened = f.receiver.requests.length;
    await waitFor(() => f.receiver.requests.length >= requestsWhenOpened + 2, 'two probes');
    const groups = (await f.world.redis.xinfo('GROUPS', f.world.keys.topic(topic).stream)) as (string | number)[][];
    const g = groups.find((row) => row[1] === p.id)!;
    expect(g[g.indexOf('lag') + 1]).to.be.at.least(45);
    healthy = true;
    await waitFor(() => f.receiver.received.length === 50, 'every message after recovery', 30_000);
    expect(node.pipeline(p.id)?.state).to.equal('running');
    await waitFor(async () => (await reported()) === undefined, 'the record of the closed circuit gone');
  });

  it('applies a changed target to messages not yet delivered', async () => {
    const second = await startReceiver();
    try {
      f.receiver.respond(() => 503);
      const topic = await f.world.topic();
      const p = await f.world.publisher(topic, f.receiver.url, { seconds_retry: 0.2 });
      await f.world.node();
      await f.world.publish(topic, ['moved']);
      await waitFor(() => f.receiver.requests.length >= 1, 'the first failed attempt');
      await f.world.store.updatePublisher(p.id, (c) => ({ ...c, target: second.url }));
      await waitFor(() => second.received.length === 1, 'delivery to the new target');
    } finally {
      await second.close();
    }
  });
});
