import { expect } from 'chai';
import type { Attempt, DeliveryView } from '@postoffice/shared';
import { deliveryOf, useWorld, waitFor, type World } from './helpers.js';

async function history(world: World, _topic: string, id: string, publisherId: string): Promise<DeliveryView | null> {
  return (await deliveryOf(world, id, publisherId)) ?? null;
}

describe('with REFUSE_PRIVATE_TARGETS on', function () {
  const f = useWorld();

  for (const [what, host] of [
    ['an IP literal', '127.0.0.1'],
    ['a name that resolves to loopback', 'localhost'],
  ] as const) {
    it(`fails the delivery to ${what} made before the option was on, and retries it like any failure`, async () => {
      const topic = await f.world.topic();
      const target = f.receiver.url.replace('127.0.0.1', host);
      // Written straight to the store, as a publisher created while the option was off.
      const p = await f.world.publisher(topic, target, { seconds_retry: 0.05 });
      await f.world.node({ REFUSE_PRIVATE_TARGETS: 'true' });
      const [id] = await f.world.publish(topic, ['x']);
      const rec = await waitFor(async () => {
        const r = await history(f.world, topic, id!, p.id);
        return r && r.attempt_count >= 2 ? r : undefined;
      }, 'two failed attempts');
      expect(rec.state).to.equal('retrying');
      expect((rec.attempts[0] as Attempt).error).to.match(
        /^target (resolves to|is) a private address \((.+ -> )?(127\.0\.0\.1|::1)\)/,
      );
      expect(f.receiver.requests).to.have.length(0);
    });
  }

  it('makes such a message a dead letter like any failure', async () => {
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, f.receiver.url, { seconds_retry: 0.1 });
    await f.world.node({ REFUSE_PRIVATE_TARGETS: 'true', RETRY_MAX_AGE_SECONDS: '1', RETENTION_SECONDS: '60' });
    const [id] = await f.world.publish(topic, ['doomed']);
    const rec = await waitFor(async () => {
      const r = await history(f.world, topic, id!, p.id);
      return r?.state === 'dead' ? r : undefined;
    }, 'the dead letter');
    expect(rec.dead_reason).to.match(/private address/);
    expect(f.receiver.requests).to.have.length(0);
  });
});

describe('with REFUSE_PRIVATE_TARGETS off (the default)', function () {
  const f = useWorld();

  it('delivers to loopback targets as before', async () => {
    const topic = await f.world.topic();
    await f.world.publisher(topic, f.receiver.url.replace('127.0.0.1', 'localhost'));
    await f.world.publisher(topic, f.receiver.url);
    await f.world.node();
    await f.world.publish(topic, ['x']);
    await waitFor(() => f.receiver.received.length === 2, 'both deliveries');
  });
});
