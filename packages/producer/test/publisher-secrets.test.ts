import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { call, createPublisher, errors, loggedApp, publishersApi } from './helpers.js';

const secret = (bytes = 32): string => `whsec_${randomBytes(bytes).toString('base64')}`;
const SECRETS_WHY = ['must be a list of at most 2 distinct secrets "whsec_<base64>", each key 24 to 64 bytes, or null'];

describe('publisher signing secrets', () => {
  const f = publishersApi();
  const { hook, stored } = f;

  it('keeps secrets given at creation and shows only their count, on every route that shows publishers', async () => {
    const a = secret();
    const b = secret(24);
    const data = await createPublisher(f.api.app, { topic: 'orders', target: hook(), secrets: [a, b] });
    expect(data).to.include({ secrets_count: 2 });
    expect(data).not.to.have.property('secrets');
    const id = String(data.id);
    expect((await stored(id)).secrets).to.deep.equal([a, b]);

    const one = await call(f.api.app, 'GET', `/api/publishers/${id}`);
    const list = await call(f.api.app, 'GET', '/api/publishers');
    const topic = await call(f.api.app, 'GET', '/api/topics/orders');
    for (const res of [one, list, topic]) {
      expect(res.status).to.equal(200);
      expect(res.raw).not.to.include(a.slice(6));
      expect(res.raw).not.to.include(b.slice(6));
      expect(res.raw).not.to.include('"secrets"');
    }
    expect((one.body as { data: Record<string, unknown> }).data).to.include({ secrets_count: 2 });
  });

  it('rotates with PATCH (new and old, then new alone) and removes signing with [] or null', async () => {
    const old = secret();
    const next = secret();
    const id = String((await createPublisher(f.api.app, { topic: 'orders', target: hook(), secrets: [old] })).id);

    const rotating = await call(f.api.app, 'PATCH', `/api/publishers/${id}`, { secrets: [next, old] });
    expect(rotating.status).to.equal(200);
    expect((rotating.body as { data: Record<string, unknown> }).data).to.include({ secrets_count: 2 });
    expect(rotating.raw).not.to.include(next.slice(6));
    expect((await stored(id)).secrets).to.deep.equal([next, old]);

    const rotated = await call(f.api.app, 'PATCH', `/api/publishers/${id}`, { secrets: [next] });
    expect((rotated.body as { data: Record<string, unknown> }).data).to.include({ secrets_count: 1 });
    expect((await stored(id)).secrets).to.deep.equal([next]);

    // Another change leaves the secrets alone.
    await call(f.api.app, 'PATCH', `/api/publishers/${id}`, { seconds_retry: 7 });
    expect((await stored(id)).secrets).to.deep.equal([next]);

    for (const none of [[], null]) {
      await call(f.api.app, 'PATCH', `/api/publishers/${id}`, { secrets: [next] });
      const res = await call(f.api.app, 'PATCH', `/api/publishers/${id}`, { secrets: none });
      expect(res.status).to.equal(200);
      expect((res.body as { data: Record<string, unknown> }).data).to.include({ secrets_count: 0 });
      expect(await stored(id)).not.to.have.property('secrets');
    }
  });

  it('answers 400 naming secrets for anything but 0 to 2 valid whsec_ secrets', async () => {
    const good = secret();
    const bad: unknown[] = [
      'whsec_abc',
      [good, secret(), secret()],
      [good, good],
      ['abc'],
      [`whsec_${randomBytes(16).toString('base64')}`], // key too short
      [`whsec_${randomBytes(65).toString('base64')}`], // key too long
      ['whsec_not base64!!'],
      [`whsec_${randomBytes(32).toString('base64url')}_`],
      [42],
      {},
    ];
    const id = String((await createPublisher(f.api.app, { topic: 'orders', target: hook() })).id);
    for (const secrets of bad) {
      const created = await call(f.api.app, 'POST', '/api/publishers', {
        topic: 'orders',
        type: 'http',
        target: hook(),
        secrets,
      });
      expect(created.status, JSON.stringify(secrets)).to.equal(400);
      expect(created.body, JSON.stringify(secrets)).to.deep.equal(errors({ secrets: SECRETS_WHY }));
      const patched = await call(f.api.app, 'PATCH', `/api/publishers/${id}`, { secrets });
      expect(patched.status, JSON.stringify(secrets)).to.equal(400);
      expect(patched.body, JSON.stringify(secrets)).to.deep.equal(errors({ secrets: SECRETS_WHY }));
    }
    expect(await stored(id)).not.to.have.property('secrets');
  });

  it('answers 400 naming secrets for pubsub and pull publishers', async () => {
    for (const [type, target] of [
      ['pubsub', 'signed-topic'],
      ['pull', 'signed-workers'],
    ] as const) {
      const res = await call(f.api.app, 'POST', '/api/publishers', {
        topic: 'orders',
        type,
        target,
        secrets: [secret()],
      });
      expect(res.status, type).to.equal(400);
      expect(res.body, type).to.deep.equal(errors({ secrets: ['only http publishers sign their deliveries'] }));
      const made = await createPublisher(f.api.app, { topic: 'orders', type, target });
      const patched = await call(f.api.app, 'PATCH', `/api/publishers/${String(made.id)}`, { secrets: [secret()] });
      expect(patched.status, type).to.equal(400);
      expect(patched.body, type).to.deep.equal(errors({ secrets: ['only http publishers sign their deliveries'] }));
      expect(await stored(String(made.id))).not.to.have.property('secrets');
    }
  });

  it('never writes a secret to its log, even at trace level and on refused requests', async () => {
    const { app, log } = await loggedApp({ server: f.api.server, redis: f.api.redis });
    try {
      const a = secret();
      const b = secret();
      const made = await call(app, 'POST', '/api/publishers', {
        topic: 'orders',
        type: 'http',
        target: hook(),
        secrets: [a],
      });
      expect(made.status).to.equal(201);
      const id = String((made.body as { data: { id: string } }).data.id);
      expect((await call(app, 'PATCH', `/api/publishers/${id}`, { secrets: [b, a] })).status).to.equal(200);
      // Refused: a good secret next to a bad field, and a bad list holding a good secret.
      expect((await call(app, 'PATCH', `/api/publishers/${id}`, { secrets: [b], concurrency: 0 })).status).to.equal(
        400,
      );
      expect((await call(app, 'PATCH', `/api/publishers/${id}`, { secrets: [b, a, b] })).status).to.equal(400);
      await call(app, 'GET', `/api/publishers/${id}`);
      expect(log()).to.include('publisher changed');
      for (const s of [a, b]) expect(log()).not.to.include(s.slice('whsec_'.length));
    } finally {
      await app.close();
    }
  });
});
