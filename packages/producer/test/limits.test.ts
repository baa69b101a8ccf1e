import { expect } from 'chai';
import { Keys, PUBLISHER_DEFAULTS, Store } from '@postoffice/shared';
import { MAX_ATTRIBUTES, MAX_ATTRIBUTE_KEY_BYTES, MAX_ATTRIBUTE_VALUE_BYTES } from '../src/validate.js';
import { type Api, apiWithTopic, call, createPublisher, createTopic, errors, send, startApi } from './helpers.js';

const tooMany = Object.fromEntries(Array.from({ length: MAX_ATTRIBUTES + 1 }, (_, i) => [`k${i}`, 'v']));
const atMost = Object.fromEntries(Array.from({ length: MAX_ATTRIBUTES }, (_, i) => [`k${i}`, 'v']));
const longKey = 'k'.repeat(MAX_ATTRIBUTE_KEY_BYTES + 1);
/** Multi-byte characters: the limits count bytes, not characters. */
const longValue = 'é'.repeat(MAX_ATTRIBUTE_VALUE_BYTES / 2 + 1);

/** Each bad attributes object, and the errors it must give under `field`. */
function badAttributes(field: string): [Record<string, unknown>, Record<string, string[]>][] {
  return [
    [tooMany, { [field]: [`must have at most ${MAX_ATTRIBUTES} attributes`] }],
    [{ '': 'x' }, { [field]: ['must not have an empty key'] }],
    [{ [longKey]: 'x' }, { [field]: [`must not have a key longer than ${MAX_ATTRIBUTE_KEY_BYTES} bytes`] }],
    [{ ok: 'x', big: longValue }, { [`${field}.big`]: [`must be at most ${MAX_ATTRIBUTE_VALUE_BYTES} bytes`] }],
    [{ n: 1 }, { [field]: ['must be a map of strings'] }],
  ];
}

describe('input limits', () => {
  describe('attributes', () => {
    let api: Api;
    let pullId: string;

    before(async () => {
      api = await startApi();
      await createTopic(api.app, 'orders');
      await createTopic(api.app, 'jobs');
      pullId = String((await createPublisher(api.app, { topic: 'jobs', target: 'workers', type: 'pull' })).id);
    });
    after(async () => {
      await api.close();
    });

    const routes: [string, (attributes: unknown) => Record<string, unknown>, number][] = [
      ['/api/messages', (attributes) => ({ topic: 'orders', payload: { a: 1 }, attributes }), 201],
      ['/api/bulk_messages', (attributes) => ({ topic: 'orders', payload: [1, 2], attributes }), 201],
      [
        '/api/schedule_messages',
        (attributes) => ({
          topic: 'orders',
          payload: 1,
          attributes,
          schedule_at: new Date(Date.now() + 3_600_000).toISOString(),
        }),
        201,
      ],
    ];

    for (const [route, body, ok] of routes) {
      it(`${route}: answers 400 naming attributes past the limits, and takes attributes at the limits`, async () => {
        for (const [attributes, expected] of badAttributes('attributes')) {
          const res = await call(api.app, 'POST', route, body(attributes));
          expect(res.status, JSON.stringify(expected)).to.equal(400);
          expect(res.body).to.deep.equal(errors(expected));
        }
        const edge = {
          ...atMost,
          ['k'.repeat(MAX_ATTRIBUTE_KEY_BYTES)]: 'v',
          k0: 'x'.repeat(MAX_ATTRIBUTE_VALUE_BYTES),
        };
        delete (edge as Record<string, string>).k1;
        expect(Object.keys(edge)).to.have.length(MAX_ATTRIBUTES);
        const res = await call(api.app, 'POST', route, body(edge));
        expect(res.status, res.raw).to.equal(ok);
      });
    }

    it('/api/leases/:token/replace: answers 400 naming messages[i].attributes past the limits', async () => {
      for (const [attributes, expected] of badAttributes('messages[0].attributes')) {
        expect((await call(api.app, 'POST', '/api/messages', { topic: 'jobs', payload: 1 })).status).to.equal(201);
        const leased = await call(api.app, 'POST', `/api/publishers/${pullId}/lease`, { max: 1 });
        const token = (leased.body as { data: { token: string }[] }).data[0]!.token;
        const res = await call(api.app, 'POST', `/api/leases/${token}/replace`, {
          messages: [{ topic: 'orders', payload: 1, attributes }],
        });
        expect(res.status, JSON.stringify(expected)).to.equal(400);
        expect(res.body).to.deep.equal(errors(expected));
        expect((await call(api.app, 'POST', `/api/leases/${token}/complete`)).status).to.equal(200);
      }
    });
  });

  describe('topic names', () => {
    let api: Api;
    let publisherId: string;
    before(async () => {
      api = await startApi();
      await createTopic(api.app, 'orders');
      publisherId = String((await createPublisher(api.app, { topic: 'orders', target: 'http://127.0.0.1:9/' })).id);
    });
    after(async () => {
      await api.close();
    });

    const bad = ['a b', 'a{b}', 'a/b', '-a', 'é', 'a'.repeat(201)];

    it('answers 400 naming name when creating a topic with characters outside [A-Za-z0-9._-]', async () => {
      for (const name of bad) {
        const res = await call(api.app, 'POST', '/api/topics', { name, origin_host: 'x' });
        expect(res.status, name).to.equal(400);
        expect(res.body, name).to.deep.equal(errors({ name: ['has invalid format'] }));
      }
    });

    it('answers 400 (406 for bulk, as Postoffice does) naming topic on every route that takes one', async () => {
      for (const topic of bad) {
        const answers = [
          await call(api.app, 'POST', '/api/messages', { topic, payload: 1 }),
          await call(api.app, 'POST', '/api/schedule_messages', {
            topic,
            payload: 1,
            schedule_at: new Date(Date.now() + 60_000).toISOString(),
          }),
          await call(api.app, 'POST', '/api/publishers', { topic, type: 'http', target: 'http://127.0.0.1:9/x' }),
          await call(api.app, 'GET', `/api/messages?topic=${encodeURIComponent(topic)}`),
          await call(api.app, 'GET', `/api/publishers/${publisherId}/failing?topic=${encodeURIComponent(topic)}`),
        ];
        for (const res of answers) {
          expect(res.status, topic).to.equal(400);
          expect(res.body, topic).to.deep.equal(errors({ topic: ['is invalid'] }));
        }
        const bulk = await call(api.app, 'POST', '/api/bulk_messages', { topic, payload: [1] });
        expect(bulk.status, topic).to.equal(406);
        expect(bulk.body, topic).to.deep.equal(errors({ topic: ['is invalid'] }));
      }
    });
  });

  describe('http targets', () => {
    const orders = apiWithTopic('orders');

    it('answers 400 naming target for a scheme other than http(s), no host, or credentials in the URL', async () => {
      const id = String(
        (await createPublisher(orders.api.app, { topic: 'orders', target: 'http://127.0.0.1:9/a' })).id,
      );
      for (const [target, why] of [
        ['ftp://example.test/x', 'must be an http or https URL'],
        ['file:///etc/passwd', 'must be an http or https URL'],
        ['javascript:alert(1)', 'must be an http or https URL'],
        ['http://', 'must be an http or https URL'],
        ['example.test/hook', 'must be an http or https URL'],
        ['https://user:pass@example.test/hook', 'must not contain a user or password'],
        ['https://token@example.test/hook', 'must not contain a user or password'],
      ] as const) {
        const created = await call(orders.api.app, 'POST', '/api/publishers', {
          topic: 'orders',
          type: 'http',
          target,
        });
        expect(created.status, target).to.equal(400);
        expect(created.body, target).to.deep.equal(errors({ target: [why] }));
        const patched = await call(orders.api.app, 'PATCH', `/api/publishers/${id}`, { target });
        expect(patched.status, target).to.equal(400);
        expect(patched.body, target).to.deep.equal(errors({ target: [why] }));
      }
    });
  });

  describe('sizes', () => {
    let api: Api;
    before(async () => {
      api = await startApi({ BODY_LIMIT_BYTES: '2048', MAX_BULK_MESSAGES: '3' });
      await createTopic(api.app, 'orders');
    });
    after(async () => {
      await api.close();
    });

    it('answers 413 naming body past BODY_LIMIT_BYTES', async () => {
      const body = JSON.stringify({ topic: 'orders', payload: 'x'.repeat(4096) });
      const res = await send(api.app, 'POST', '/api/messages', body, { 'content-type': 'application/json' });
      expect(res.status).to.equal(413);
      expect(res.body).to.have.nested.property('data.errors.body');
    });

    it('answers 406 naming payload past MAX_BULK_MESSAGES', async () => {
      const res = await call(api.app, 'POST', '/api/bulk_messages', { topic: 'orders', payload: [1, 2, 3, 4] });
      expect(res.status).to.equal(406);
      expect(res.body).to.have.nested.property('data.errors.payload');
    });
  });
});

describe('with REFUSE_PRIVATE_TARGETS', () => {
  for (const on of [true, false]) {
    describe(on ? 'on' : 'off (the default)', () => {
      let api: Api;
      before(async () => {
        api = await startApi(on ? { REFUSE_PRIVATE_TARGETS: 'true' } : {});
        await createTopic(api.app, 'orders');
      });
      after(async () => {
        await api.close();
      });

      const privateTargets = [
        'http://127.0.0.1:9/hook',
        'http://localhost:9/hook',
        'http://[::1]:9/hook',
        'http://10.1.2.3/hook',
        'http://172.16.0.1/hook',
        'http://192.168.1.1/hook',
        'http://169.254.169.254/latest/meta-data',
        'http://100.64.0.1/hook',
        'http://0.0.0.0/hook',
        'http://224.0.0.1/hook',
        'http://[fd00::1]/hook',
        'http://[fe80::1]/hook',
        'http://[::ffff:127.0.0.1]/hook',
      ];

      it(on ? 'answers 400 naming target for a private or loopback target' : 'takes private targets', async () => {
        for (const target of privateTargets) {
          const res = await call(api.app, 'POST', '/api/publishers', { topic: 'orders', type: 'http', target });
          if (!on) {
            expect(res.status, target).to.equal(201);
            continue;
          }
          expect(res.status, target).to.equal(400);
          const why = (res.body as { data: { errors: Record<string, string[]> } }).data.errors.target;
          expect(why, target).to.have.length(1);
          expect(why![0], target).to.match(/^is or resolves to a private, loopback or link-local address \(.+\)/);
        }
      });

      it(on ? 'refuses a PATCH to a private target' : 'takes a PATCH to a private target', async () => {
        const store = new Store(api.redis, new Keys(api.config.redisPrefix));
        // Written via the store, as when the option was off.
        const p = await store.createPublisher({
          topic: 'orders',
          type: 'http',
          target: 'http://8.8.8.8/hook',
          ...PUBLISHER_DEFAULTS,
        });
        const res = await call(api.app, 'PATCH', `/api/publishers/${p.id}`, { target: 'http://localhost:4000/x' });
        expect(res.status).to.equal(on ? 400 : 200);
        if (on) expect(res.body).to.have.nested.property('data.errors.target');
        expect((await store.getPublisher(p.id))?.target).to.equal(
          on ? 'http://8.8.8.8/hook' : 'http://localhost:4000/x',
        );
      });

      it('takes a public address', async () => {
        const res = await call(api.app, 'POST', '/api/publishers', {
          topic: 'orders',
          type: 'http',
          target: 'https://93.184.215.14/hook',
        });
        expect(res.status).to.equal(201);
      });
    });
  }
});
