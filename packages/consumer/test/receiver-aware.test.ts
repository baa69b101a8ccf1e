import { createHmac } from 'node:crypto';
import { expect } from 'chai';
import type { Attempt } from '@postoffice/shared';
import { deliveryOf, useWorld, waitFor } from './helpers.js';

describe('delivery that listens to the receiver', function () {
  const f = useWorld();

  describe('when the receiver answers', () => {
    it('makes a message a dead letter at once on 410 Gone, keeping the start of the answer', async () => {
      f.receiver.respond(() => ({ status: 410, body: `gone: ${'x'.repeat(3000)}` }));
      const topic = await f.world.topic();
      const p = await f.world.publisher(topic, f.receiver.url, { seconds_retry: 0.05 });
      await f.world.node();
      const [id] = await f.world.publish(topic, ['bye']);
      const rec = await waitFor(async () => {
        const r = await deliveryOf(f.world, id!, p.id);
        return r?.state === 'dead' ? r : undefined;
      }, 'the dead letter');
      expect(rec.dead_reason).to.equal('the target answered 410 Gone: it will never take this message');
      expect(rec.attempt_count).to.equal(1);
      const [attempt] = rec.attempts as Attempt[];
      expect(attempt).to.include({ status: 410, error: 'HTTP 410' });
      expect(attempt!.response).to.equal(`gone: ${'x'.repeat(1024 - 6)}`);
      expect(f.receiver.requests).to.have.length(1);
    });

    it('makes a message a dead letter at once on a status of dead_on_status, and retries other failures', async () => {
      f.receiver.respond((req) => (req.body.includes('bad') ? 400 : 500));
      const topic = await f.world.topic();
      const p = await f.world.publisher(topic, f.receiver.url, { seconds_retry: 0.05, dead_on_status: [400] });
      await f.world.node();
      const [bad, flaky] = await f.world.publish(topic, ['bad', 'flaky']);
      const dead = await waitFor(async () => {
        const r = await deliveryOf(f.world, bad!, p.id);
        return r?.state === 'dead' ? r : undefined;
      }, 'the dead letter');
      expect(dead.dead_reason).to.match(/400, final by the publisher's dead_on_status/);
      await waitFor(async () => ((await deliveryOf(f.world, flaky!, p.id))?.attempt_count ?? 0) >= 2, 'retries');
      expect((await deliveryOf(f.world, flaky!, p.id))?.state).to.equal('retrying');
    });

    it('waits for the Retry-After of a 429 before the next attempt, without opening the circuit', async () => {
      let first = true;
      f.receiver.respond(() => {
        if (!first) return 200;
        first = false;
        return { status: 429, headers: { 'retry-after': '2' }, body: 'slow down' };
      });
      const topic = await f.world.topic();
      const p = await f.world.publisher(topic, f.receiver.url, { seconds_retry: 0.05, concurrency: 1 });
      const node = await f.world.node({ BREAKER_THRESHOLD: '1' });
      const [id] = await f.world.publish(topic, ['later']);
      await waitFor(() => f.receiver.requests.length === 1, 'the first attempt');
      const retrying = await waitFor(async () => {
        const r = await deliveryOf(f.world, id!, p.id);
        return r?.state === 'retrying' ? r : undefined;
      }, 'the retry');
      expect(Date.parse(retrying.next_attempt_at!) - f.receiver.requests[0]!.at).to.be.at.least(1900);
      expect((retrying.attempts[0] as Attempt).response).to.equal('slow down');
      // A 429 says the target is up: the breaker (threshold 1) stays closed.
      expect(node.pipeline(p.id)?.state).to.equal('running');
      await waitFor(() => f.receiver.received.length === 1, 'the delivery after the Retry-After', 10_000);
      expect(f.receiver.requests[1]!.at - f.receiver.requests[0]!.at).to.be.at.least(1900);
    });

    it('makes a message a dead letter after retry_max_attempts, naming it', async () => {
      f.receiver.respond(() => 503);
      const topic = await f.world.topic();
      const p = await f.world.publisher(topic, f.receiver.url, { seconds_retry: 0.02, retry_max_attempts: 3 });
      await f.world.node({ BREAKER_THRESHOLD: '100' });
      const [id] = await f.world.publish(topic, ['x']);
      const rec = await waitFor(async () => {
        const r = await deliveryOf(f.world, id!, p.id);
        return r?.state === 'dead' ? r : undefined;
      }, 'the dead letter');
      expect(rec.dead_reason).to.equal('undelivered after 3 attempts (retry_max_attempts 3); last error: HTTP 503');
      expect(f.receiver.requests).to.have.length(3);
    });
  });

  it('sends the publisher’s headers with every delivery', async () => {
    const topic = await f.world.topic();
    await f.world.publisher(topic, f.receiver.url, { headers: { Authorization: 'Bearer t0k3n', 'X-Api-Key': 'k' } });
    await f.world.node();
    await f.world.publish(topic, [1]);
    await waitFor(() => f.receiver.received.length === 1, 'the delivery');
    expect(f.receiver.received[0]!.headers).to.include({ authorization: 'Bearer t0k3n', 'x-api-key': 'k' });
  });

  describe('with a filter', () => {
    it('sends only matching messages; the others are skipped, acknowledged and counted', async () => {
      const topic = await f.world.topic();
      const p = await f.world.publisher(topic, f.receiver.url, {
        filter: { attributes: { kind: 'order', region: ['eu', 'us'] } },
      });
      await f.world.node();
      const [eu] = await f.world.publish(topic, ['eu'], { kind: 'order', region: 'eu' });
      const [asia] = await f.world.publish(topic, ['asia'], { kind: 'order', region: 'asia' });
      const [none] = await f.world.publish(topic, ['none']);
      const [us] = await f.world.publish(topic, ['us'], { kind: 'order', region: 'us', extra: '1' });
      await waitFor(() => f.receiver.received.length === 2, 'the matching messages');
      const skipped = await waitFor(async () => {
        const r = await deliveryOf(f.world, none!, p.id);
        return r?.state === 'skipped' ? r : undefined;
      }, 'the skipped state');
      expect(skipped.attempt_count).to.equal(0);
      expect((await deliveryOf(f.world, asia!, p.id))?.state).to.equal('skipped');
      expect((await deliveryOf(f.world, eu!, p.id))?.state).to.equal('delivered');
      expect((await deliveryOf(f.world, us!, p.id))?.state).to.equal('delivered');
      expect(f.receiver.received.map((r) => JSON.parse(r.body) as unknown)).to.deep.equal(['eu', 'us']);
      expect(await f.world.redis.hget(f.world.keys.publisher(topic, p.id).counts, 'skipped')).to.equal('2');
      const summary = await f.world.redis.xpending(f.world.keys.topic(topic).stream, p.id);
      expect(summary[0]).to.equal(0);
    });

    it('applies a changed filter to messages not yet delivered, retries included', async () => {
      f.receiver.respond(() => 503);
      const topic = await f.world.topic();
      const p = await f.world.publisher(topic, f.receiver.url, { seconds_retry: 0.1 });
      await f.world.node();
      const [id] = await f.world.publish(topic, ['x'], { kind: 'noise' });
      await waitFor(() => f.receiver.requests.length >= 1, 'a failed attempt');
      await f.world.store.updatePublisher(p.id, (c) => ({ ...c, filter: { attributes: { kind: 'order' } } }));
      const rec = await waitFor(async () => {
        const r = await deliveryOf(f.world, id!, p.id);
        return r?.state === 'skipped' ? r : undefined;
      }, 'the retry to be skipped');
      expect(rec.attempt_count).to.be.at.least(1);
    });
  });

  describe('with batch_size', () => {
    it('posts up to batch_size messages as one JSON array with their ids, signed over the whole body', async () => {
      const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
      const topic = await f.world.topic();
      const p = await f.world.publisher(topic, f.receiver.url, {
        active: false,
        batch_size: 10,
        concurrency: 2,
        secrets: [secret],
      });
      const ids = await f.world.publish(
        topic,
        Array.from({ length: 25 }, (_, i) => ({ n: i })),
        { k: 'v' },
      );
      await f.world.store.updatePublisher(p.id, (c) => ({ ...c, active: true }));
      await f.world.node();
      await waitFor(() => f.receiver.received.length === 3, 'three batches');
      const bodies = f.receiver.received.map((r) => JSON.parse(r.body) as { id: string; payload: unknown }[]);
      expect(bodies.map((b) => b.length)).to.deep.equal([10, 10, 5]);
      expect(bodies.flat().map((m) => m.id)).to.deep.equal(ids);
      expect(bodies[0]![0]).to.deep.equal({ id: ids[0], payload: { n: 0 }, attributes: { k: 'v' } });
      const first = f.receiver.received[0]!;
      expect(first.headers['message-ids']).to.equal(ids.slice(0, 10).join(','));
      const signed = `${String(first.headers['webhook-id'])}.${String(first.headers['webhook-timestamp'])}.${first.body}`;
      const mac = createHmac('sha256', Buffer.alloc(32, 7)).update(signed).digest('base64');
      expect(first.headers['webhook-signature']).to.equal(`v1,${mac}`);
      const rec = await waitFor(async () => {
        const r = await deliveryOf(f.world, ids[24]!, p.id);
        return r?.state === 'delivered' ? r : undefined;
      }, 'the last message delivered');
      expect(rec.attempt_count).to.equal(1);
    });

    it('retries every message of a batch that failed, and settles them together when it goes through', async () => {
      let fail = true;
      f.receiver.respond(() => (fail ? 500 : 200));
      const topic = await f.world.topic();
      const p = await f.world.publisher(topic, f.receiver.url, { active: false, batch_size: 5, seconds_retry: 0.1 });
      const ids = await f.world.publish(topic, [1, 2, 3]);
      await f.world.store.updatePublisher(p.id, (c) => ({ ...c, active: true }));
      await f.world.node();
      await waitFor(async () => (await deliveryOf(f.world, ids[2]!, p.id))?.state === 'retrying', 'the retries');
      for (const id of ids) expect((await deliveryOf(f.world, id, p.id))?.state).to.equal('retrying');
      fail = false;
      await waitFor(async () => {
        const states = await Promise.all(ids.map(async (id) => (await deliveryOf(f.world, id, p.id))?.state));
        return states.every((s) => s === 'delivered');
      }, 'every message delivered');
      const last = f.receiver.received[f.receiver.received.length - 1]!;
      expect((JSON.parse(last.body) as unknown[]).length).to.be.at.least(1);
      for (const id of ids) expect((await deliveryOf(f.world, id, p.id))?.attempt_count).to.equal(2);
    });
  });
});
