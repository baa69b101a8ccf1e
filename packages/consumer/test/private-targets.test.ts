import { expect } from 'chai';
import type { LookupAddress } from 'node:dns';
import { PUBLISHER_DEFAULTS, type Attempt, type DeliveryView, type Lookup, type Publisher } from '@postoffice/shared';
import { HttpTarget } from '../src/index.js';
import { deliveryOf, startReceiver, useWorld, waitFor, type World } from './helpers.js';

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

describe('the connect-time check of REFUSE_PRIVATE_TARGETS, with a resolver hook', function () {
  /**
   * Names that only this resolver knows; each resolves to addresses that stay on this machine if dialled
   * (loopback in IPv4-mapped form), so a broken check could not send traffic anywhere else.
   */
  const table: Record<string, string[]> = {
    'mapped.test': ['::ffff:127.0.0.1'],
    'mixed.test': ['127.0.0.1', '::ffff:7f00:1'],
  };
  const asked: string[] = [];
  const lookup: Lookup = (hostname, _options, callback) => {
    asked.push(hostname);
    const found = table[hostname] ?? [];
    callback(
      null,
      found.map((address): LookupAddress => ({ address, family: address.includes(':') ? 6 : 4 })),
    );
  };
  const publisher = (target: string): Publisher =>
    ({
      ...PUBLISHER_DEFAULTS,
      id: '1',
      topic: 't',
      type: 'http',
      target,
      active: true,
      seconds_timeout: 5,
    }) as Publisher;
  const message = { streamId: '1-0', id: 'm-1', payload: '{}', attributes: {}, receivedAt: Date.now() };

  it('refuses, before connecting, a name whose resolved address is private, and an IPv6 literal of one', async () => {
    const receiver = await startReceiver();
    const target = new HttpTarget(Date.now, { refusePrivateTargets: true, lookup });
    try {
      const port = new URL(receiver.url).port;
      for (const [url, error] of [
        [`http://mapped.test:${port}/hook`, 'target resolves to a private address (mapped.test -> ::ffff:127.0.0.1)'],
        [`http://mixed.test:${port}/hook`, 'target resolves to a private address (mixed.test -> 127.0.0.1)'],
        [`http://[::ffff:7f00:1]:${port}/hook`, 'target is a private address (::ffff:7f00:1)'],
      ] as const) {
        const result = await target.deliver(publisher(url), message);
        expect(result.ok, url).to.equal(false);
        expect(result.error, url).to.equal(`${error}; REFUSE_PRIVATE_TARGETS is on`);
      }
      expect(asked).to.deep.equal(['mapped.test', 'mixed.test']);
      expect(receiver.requests).to.have.length(0);
    } finally {
      await target.close();
      await receiver.close();
    }
  });
});
