import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { Writable } from 'node:stream';
import { createLogger, type DeliveryView } from '@postoffice/shared';
import { ConsumerNode } from '../src/index.js';
import { sign } from '../src/targets/http-target.js';
import type { Received } from '@postoffice/test-support';
import { deliveryOf, useWorld, waitFor, type World } from './helpers.js';

const newSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`;

/** The Standard Webhooks headers of a request, as a plain record. */
function webhookHeaders(r: Received): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
    const v = r.headers[name];
    if (typeof v === 'string') out[name] = v;
  }
  return out;
}

/** Verifies with the `standardwebhooks` package, an independent implementation of the spec. */
function verify(secret: string, body: string, r: Received): unknown {
  return new Webhook(secret).verify(body, webhookHeaders(r));
}

async function history(world: World, _topic: string, id: string, publisherId: string): Promise<DeliveryView | null> {
  return (await deliveryOf(world, id, publisherId)) ?? null;
}

describe('signed deliveries (Standard Webhooks)', function () {
  const f = useWorld();

  it('signs each delivery so that the standardwebhooks package verifies it, and a wrong secret does not', async () => {
    const secret = newSecret();
    const topic = await f.world.topic();
    await f.world.publisher(topic, f.receiver.url, { secrets: [secret] });
    await f.world.node();
    const [id] = await f.world.publish(topic, [{ hello: 'world' }], { source: 'test' });
    await waitFor(() => f.receiver.received.length === 1, 'the delivery');
    const got = f.receiver.received[0]!;
    expect(got.headers['webhook-id']).to.equal(id);
    expect(got.headers['webhook-timestamp']).to.match(/^\d+$/);
    expect(Math.abs(Number(got.headers['webhook-timestamp']) - Date.now() / 1000)).to.be.below(60);
    expect(got.headers['webhook-signature']).to.match(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(verify(secret, got.body, got)).to.deep.equal({ hello: 'world', attributes: { source: 'test' } });
    expect(() => verify(newSecret(), got.body, got)).to.throw(WebhookVerificationError);
  });

  it('detects a tampered body', async () => {
    const secret = newSecret();
    const topic = await f.world.topic();
    await f.world.publisher(topic, f.receiver.url, { secrets: [secret] });
    await f.world.node();
    await f.world.publish(topic, [{ amount: 10 }]);
    await waitFor(() => f.receiver.received.length === 1, 'the delivery');
    const got = f.receiver.received[0]!;
    expect(() => verify(secret, got.body, got)).not.to.throw();
    const tampered = got.body.replace('10', '1000');
    expect(tampered).not.to.equal(got.body);
    expect(() => verify(secret, tampered, got)).to.throw(WebhookVerificationError);
  });

  it('signs with both secrets during a rotation, and only the new one after it', async () => {
    const old = newSecret();
    const next = newSecret();
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, f.receiver.url, { secrets: [old] });
    await f.world.node();
    await f.world.publish(topic, ['before']);
    await waitFor(() => f.receiver.received.length === 1, 'the first delivery');

    await f.world.store.updatePublisher(p.id, (c) => ({ ...c, secrets: [next, old] }));
    // The change reaches the node by pub/sub: publish until a delivery carries two signatures.
    await waitFor(async () => {
      await f.world.publish(topic, ['during']);
      const last = f.receiver.received.at(-1);
      return last && String(last.headers['webhook-signature']).split(' ').length === 2;
    }, 'a delivery signed with both secrets');
    const during = f.receiver.received.at(-1)!;
    expect(() => verify(old, during.body, during)).not.to.throw();
    expect(() => verify(next, during.body, during)).not.to.throw();

    await f.world.store.updatePublisher(p.id, (c) => ({ ...c, secrets: [next] }));
    const after = await waitFor(async () => {
      await f.world.publish(topic, ['after']);
      const last = f.receiver.received.at(-1);
      if (!last || String(last.headers['webhook-signature']).split(' ').length !== 1) return undefined;
      try {
        verify(next, last.body, last);
        return last;
      } catch {
        return undefined;
      }
    }, 'a delivery signed with the new secret only');
    expect(() => verify(old, after.body, after)).to.throw(WebhookVerificationError);
  });

  it('keeps the webhook-id of a message across retries, each attempt signed anew', async () => {
    const secret = newSecret();
    let failures = 1;
    f.receiver.respond(() => (failures-- > 0 ? 503 : 200));
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, f.receiver.url, { secrets: [secret], seconds_retry: 0.05 });
    await f.world.node();
    const [id] = await f.world.publish(topic, [{ n: 1 }]);
    await waitFor(async () => (await history(f.world, topic, id!, p.id))?.state === 'delivered', 'the delivery');
    expect(f.receiver.requests).to.have.length(2);
    const first = f.receiver.requests[0]!;
    const second = f.receiver.requests[1]!;
    expect(first.headers['webhook-id']).to.equal(id);
    expect(second.headers['webhook-id']).to.equal(id);
    expect(() => verify(secret, first.body, first)).not.to.throw();
    expect(() => verify(secret, second.body, second)).not.to.throw();
  });

  it('never writes a secret to its log, even at trace level with failures and a rotation', async () => {
    const old = newSecret();
    const next = newSecret();
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    let failures = 2;
    f.receiver.respond(() => (failures-- > 0 ? 500 : 200));
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, f.receiver.url, { secrets: [old], seconds_retry: 0.05 });
    const config = f.world.config({ LOG_LEVEL: 'trace' });
    const node = new ConsumerNode({ config, logger: createLogger(config, sink) });
    f.world.nodes.push(node);
    await node.start();
    await f.world.publish(topic, ['a']);
    await waitFor(() => f.receiver.received.length === 1, 'the delivery after two failures');
    await f.world.store.updatePublisher(p.id, (c) => ({ ...c, secrets: [next, old] }));
    await waitFor(async () => {
      await f.world.publish(topic, ['b']);
      return String(f.receiver.received.at(-1)?.headers['webhook-signature']).split(' ').length === 2;
    }, 'a delivery signed with both secrets');
    const log = lines.join('');
    expect(log).to.include('delivery failed');
    for (const secret of [old, next]) expect(log).not.to.include(secret.slice('whsec_'.length));
  });

  it('adds no webhook headers for a publisher without secrets', async () => {
    const topic = await f.world.topic();
    await f.world.publisher(topic, f.receiver.url);
    await f.world.node();
    await f.world.publish(topic, ['plain']);
    await waitFor(() => f.receiver.received.length === 1, 'the delivery');
    const got = f.receiver.received[0]!;
    expect(got.headers).not.to.have.any.keys('webhook-id', 'webhook-timestamp', 'webhook-signature');
  });
});

describe('sign', function () {
  it("matches the Standard Webhooks specification's example", () => {
    // From the specification (standard-webhooks/standard-webhooks, spec/standard-webhooks.md and its libraries' tests).
    const headers: Record<string, string> = {};
    sign(
      headers,
      ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'],
      'msg_p5jXN8AQM9LWM0D4loKWxJek',
      '{"test": 2432232314}',
      1614265330_000,
    );
    expect(headers).to.deep.equal({
      'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
      'webhook-timestamp': '1614265330',
      'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    });
  });

  it('gives one space-separated signature per secret', () => {
    const a = newSecret();
    const b = newSecret();
    const headers: Record<string, string> = {};
    sign(headers, [a, b], 'msg_1', '{}', 1_700_000_000_000);
    const parts = headers['webhook-signature']!.split(' ');
    expect(parts).to.have.length(2);
    const one: Record<string, string> = {};
    sign(one, [b], 'msg_1', '{}', 1_700_000_000_000);
    expect(parts[1]).to.equal(one['webhook-signature']);
  });
});
