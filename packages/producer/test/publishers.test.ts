import { expect } from 'chai';
import { PUBLISHER_DEFAULTS } from '@postoffice/shared';
import { call, createPublisher, createTopic, errors, send, startApi, type Api } from './helpers.js';

interface GroupInfo {
  name: string;
  lastDeliveredId: string;
}

describe('publishers API', () => {
  let api: Api;
  const hook = 'http://127.0.0.1:9/hook';

  /** A publisher of orders to `target` (`hook` unless given), made for the test; its id. */
  async function made(extra: Record<string, unknown> = {}): Promise<string> {
    return String((await createPublisher(api.app, { topic: 'orders', target: hook, ...extra })).id);
  }

  async function groups(topic: string): Promise<GroupInfo[]> {
    const raw = (await api.redis.xinfo('GROUPS', api.keys.topic(topic).stream)) as unknown[][];
    return raw.map((fields) => {
      const m = new Map<string, unknown>();
      for (let i = 0; i + 1 < fields.length; i += 2) m.set(String(fields[i]), fields[i + 1]);
      return { name: String(m.get('name')), lastDeliveredId: String(m.get('last-delivered-id')) };
    });
  }

  // A Redis of its own for each test: each makes the publishers it needs.
  beforeEach(async () => {
    api = await startApi();
    await createTopic(api.app, 'orders');
    await createTopic(api.app, 'invoices');
  });
  afterEach(async () => {
    await api.close();
  });

  describe('POST /api/publishers', () => {
    it('creates a publisher with the defaults and its consumer group from the start', async () => {
      const res = await call(api.app, 'POST', '/api/publishers', { topic: 'orders', target: hook, type: 'http' });
      expect(res.status).to.equal(201);
      const data = (res.body as { data: Record<string, unknown> }).data;
      expect(data).to.include({ id: '1', topic: 'orders', target: hook, type: 'http', ...PUBLISHER_DEFAULTS });
      expect(data.created_at).to.be.a('string');
      expect(data.updated_at).to.equal(data.created_at);
      expect(await groups('orders')).to.deep.equal([{ name: '1', lastDeliveredId: '0-0' }]);
    });

    it('takes every option and starts a from_now group at the end of the stream', async () => {
      expect((await call(api.app, 'POST', '/api/messages', { topic: 'invoices', payload: 1 })).status).to.equal(201);
      const [last] = await api.redis.xrevrange(api.keys.topic('invoices').stream, '+', '-', 'COUNT', 1);
      const lastId = last?.[0];
      const options = {
        topic: 'invoices',
        target: 'https://billing.test/in',
        active: false,
        from_now: true,
        seconds_timeout: 2.5,
        seconds_retry: 10,
        chunk_size: 1000,
        concurrency: 1,
      };
      const data = await createPublisher(api.app, options);
      expect(data).to.include(options);
      expect(data).not.to.have.property('some_field_we_do_not_know');
      expect(await groups('invoices')).to.deep.equal([{ name: data.id, lastDeliveredId: lastId }]);
    });

    it('answers 409 naming target for the same topic, type and target', async () => {
      await made();
      const res = await call(api.app, 'POST', '/api/publishers', { topic: 'orders', target: hook, type: 'http' });
      expect(res.status).to.equal(409);
      expect(res.body).to.deep.equal(errors({ target: ['has already been taken'] }));
    });

    it('accepts the same target on another topic', async () => {
      await made();
      expect(
        (await call(api.app, 'POST', '/api/publishers', { topic: 'invoices', target: hook, type: 'http' })).status,
      ).to.equal(201);
    });

    it('answers 400 topic "is invalid" for an unknown topic and writes nothing', async () => {
      const before = await api.redis.hlen(api.keys.publisherIndex);
      const res = await call(api.app, 'POST', '/api/publishers', { topic: 'nothing', target: hook, type: 'http' });
      expect(res.status).to.equal(400);
      expect(res.body).to.deep.equal(errors({ topic: ['is invalid'] }));
      expect(await api.redis.hlen(api.keys.publisherIndex)).to.equal(before);
      expect(await api.redis.exists(api.keys.topic('nothing').stream)).to.equal(0);
    });

    it('answers 400 topic "is invalid" for a malformed topic name', async () => {
      const res = await call(api.app, 'POST', '/api/publishers', { topic: 'a{b}', target: hook, type: 'http' });
      expect(res.status).to.equal(400);
      expect(res.body).to.deep.equal(errors({ topic: ['is invalid'] }));
    });

    it('answers 400 naming every missing field', async () => {
      const res = await call(api.app, 'POST', '/api/publishers', {});
      expect(res.status).to.equal(400);
      expect(res.body).to.deep.equal(
        errors({ topic: ["can't be blank"], type: ["can't be blank"], target: ["can't be blank"] }),
      );
    });

    it('answers 400 type "is invalid" for an unknown type', async () => {
      for (const type of ['smtp', 5, 'HTTP']) {
        const res = await call(api.app, 'POST', '/api/publishers', { topic: 'orders', target: hook, type });
        expect(res.status, String(type)).to.equal(400);
        expect(res.body, String(type)).to.deep.equal(errors({ type: ['is invalid'] }));
      }
    });

    it('answers 400 for a blank target and a target that is not an http(s) URL', async () => {
      const blank = await call(api.app, 'POST', '/api/publishers', { topic: 'orders', target: ' ', type: 'http' });
      expect(blank.status).to.equal(400);
      expect(blank.body).to.deep.equal(errors({ target: ["can't be blank"] }));
      for (const target of ['ftp://files.test/x', 'not a url', '/relative', 'mailto:a@b.test']) {
        const res = await call(api.app, 'POST', '/api/publishers', { topic: 'orders', target, type: 'http' });
        expect(res.status, target).to.equal(400);
        expect(res.body, target).to.deep.equal(errors({ target: ['must be an http or https URL'] }));
      }
    });

    it('answers 400 when seconds_timeout is not below CLAIM_TIMEOUT_SECONDS', async () => {
      const res = await call(api.app, 'POST', '/api/publishers', {
        topic: 'orders',
        target: `${hook}/t`,
        type: 'http',
        seconds_timeout: 60,
      });
      expect(res.status).to.equal(400);
      expect(res.body).to.deep.equal(
        errors({ seconds_timeout: ['must be at most 59 seconds, below CLAIM_TIMEOUT_SECONDS (60)'] }),
      );
    });

    it('answers 400 for options of the wrong type or out of range, never coercing strings', async () => {
      const res = await call(api.app, 'POST', '/api/publishers', {
        topic: 'orders',
        target: `${hook}/o`,
        type: 'http',
        active: 'true',
        from_now: 1,
        seconds_timeout: '5',
        seconds_retry: 0,
        chunk_size: 1001,
        concurrency: 1.5,
      });
      expect(res.status).to.equal(400);
      expect(res.body).to.deep.equal(
        errors({
          from_now: ['is invalid'],
          active: ['is invalid'],
          seconds_timeout: ['must be a number of seconds from 0.001 to 59'],
          seconds_retry: ['must be a number of seconds from 0.001 to 86400'],
          chunk_size: ['must be a whole number from 1 to 1000'],
          concurrency: ['must be a whole number from 1 to 1000'],
        }),
      );
    });
  });

  describe('GET /api/publishers', () => {
    it('lists every publisher, inactive ones included', async () => {
      const first = await made();
      const inactive = String(
        (await createPublisher(api.app, { topic: 'invoices', target: 'https://billing.test/in', active: false })).id,
      );
      const elsewhere = String((await createPublisher(api.app, { topic: 'invoices', target: hook })).id);
      const res = await call(api.app, 'GET', '/api/publishers');
      expect(res.status).to.equal(200);
      const data = (res.body as { data: { id: string; active: boolean }[] }).data;
      expect(data.map((p) => [p.id, p.active])).to.deep.equal([
        [first, true],
        [inactive, false],
        [elsewhere, true],
      ]);
    });
  });

  describe('GET /api/publishers/:id', () => {
    it('answers the publisher', async () => {
      expect(await made()).to.equal('1');
      const res = await call(api.app, 'GET', '/api/publishers/1');
      expect(res.status).to.equal(200);
      expect((res.body as { data: Record<string, unknown> }).data).to.include({
        id: '1',
        topic: 'orders',
        target: hook,
      });
    });

    it('answers 404 naming id for an unknown or malformed id', async () => {
      for (const id of ['999', 'abc', '0']) {
        const res = await call(api.app, 'GET', `/api/publishers/${id}`);
        expect(res.status, id).to.equal(404);
        expect(res.body, id).to.deep.equal(errors({ id: ['publisher not found'] }));
      }
    });
  });

  describe('PATCH /api/publishers/:id', () => {
    it('applies the change and keeps it', async () => {
      expect(await made()).to.equal('1');
      const res = await call(api.app, 'PATCH', '/api/publishers/1', {
        active: false,
        target: 'https://new.test/hook',
        seconds_timeout: 30,
        seconds_retry: 5,
        chunk_size: 10,
        concurrency: 3,
      });
      expect(res.status).to.equal(200);
      const expected = {
        id: '1',
        topic: 'orders',
        type: 'http',
        active: false,
        target: 'https://new.test/hook',
        seconds_timeout: 30,
        seconds_retry: 5,
        chunk_size: 10,
        concurrency: 3,
      };
      expect((res.body as { data: Record<string, unknown> }).data).to.include(expected);
      const read = await call(api.app, 'GET', '/api/publishers/1');
      expect((read.body as { data: Record<string, unknown> }).data).to.include(expected);
    });

    it('changes one field and leaves the others', async () => {
      expect(await made({ target: 'https://new.test/hook', concurrency: 3, active: false })).to.equal('1');
      const res = await call(api.app, 'PATCH', '/api/publishers/1', { active: true });
      expect(res.status).to.equal(200);
      expect((res.body as { data: Record<string, unknown> }).data).to.include({
        active: true,
        target: 'https://new.test/hook',
        concurrency: 3,
      });
    });

    it('answers 400 "cannot be changed" for topic, type and from_now', async () => {
      expect(await made()).to.equal('1');
      const res = await call(api.app, 'PATCH', '/api/publishers/1', {
        topic: 'invoices',
        type: 'http',
        from_now: true,
        active: true,
      });
      expect(res.status).to.equal(400);
      expect(res.body).to.deep.equal(
        errors({ topic: ['cannot be changed'], type: ['cannot be changed'], from_now: ['cannot be changed'] }),
      );
    });

    it('answers 400 naming body for an empty body, and naming an unknown field', async () => {
      expect(await made()).to.equal('1');
      const res = await call(api.app, 'PATCH', '/api/publishers/1', {});
      expect(res.status).to.equal(400);
      expect(res.body).to.deep.equal(
        errors({
          body: [
            'must change at least one of active, target, seconds_timeout, seconds_retry, chunk_size, concurrency, parallelism, rate_limit, secrets, headers, dead_on_status, retry_max_attempts, retry_max_age_seconds, filter, batch_size',
          ],
        }),
      );
      const unknown = await call(api.app, 'PATCH', '/api/publishers/1', { colour: 'red' });
      expect(unknown.status).to.equal(400);
      expect(Object.keys((unknown.body as { data: { errors: object } }).data.errors)).to.deep.equal(['colour']);
      const none = await send(api.app, 'PATCH', '/api/publishers/1', '', { 'content-type': 'application/json' });
      expect(none.status).to.equal(400);
      expect(none.body).to.deep.equal(errors({ body: ["can't be blank"] }));
    });

    it('validates like creation', async () => {
      expect(await made()).to.equal('1');
      const res = await call(api.app, 'PATCH', '/api/publishers/1', {
        target: null,
        seconds_timeout: 0,
        concurrency: 'many',
        active: null,
      });
      expect(res.status).to.equal(400);
      expect(res.body).to.deep.equal(
        errors({
          target: ["can't be blank"],
          active: ['is invalid'],
          seconds_timeout: ['must be a number of seconds from 0.001 to 59'],
          concurrency: ['must be a whole number from 1 to 1000'],
        }),
      );
      const bad = await call(api.app, 'PATCH', '/api/publishers/1', { target: 'ftp://x.test' });
      expect(bad.body).to.deep.equal(errors({ target: ['must be an http or https URL'] }));
    });

    it('answers 409 naming target when another publisher of the topic has that target', async () => {
      expect(await made({ target: 'https://new.test/hook' })).to.equal('1');
      const other = await createPublisher(api.app, { topic: 'orders', target: 'https://taken.test/hook' });
      const res = await call(api.app, 'PATCH', '/api/publishers/1', { target: 'https://taken.test/hook' });
      expect(res.status).to.equal(409);
      expect(res.body).to.deep.equal(errors({ target: ['has already been taken'] }));
      // The old target is still its own: no index entry was lost.
      const again = await call(api.app, 'POST', '/api/publishers', {
        topic: 'orders',
        target: 'https://new.test/hook',
        type: 'http',
      });
      expect(again.status).to.equal(409);
      expect((await call(api.app, 'GET', `/api/publishers/${String(other.id)}`)).status).to.equal(200);
    });

    it('answers 404 for an unknown id', async () => {
      const res = await call(api.app, 'PATCH', '/api/publishers/999', { active: false });
      expect(res.status).to.equal(404);
      expect(res.body).to.deep.equal(errors({ id: ['publisher not found'] }));
    });
  });

  describe('DELETE /api/publishers/:id', () => {
    it('answers 204 with no body and removes the publisher and its consumer group', async () => {
      const id = await made({ target: 'https://taken.test/hook' });
      expect((await groups('orders')).map((g) => g.name)).to.include(id);
      const res = await call(api.app, 'DELETE', `/api/publishers/${id}`);
      expect(res.status).to.equal(204);
      expect(res.raw).to.equal('');
      expect((await groups('orders')).map((g) => g.name)).not.to.include(id);
      expect((await call(api.app, 'GET', `/api/publishers/${id}`)).status).to.equal(404);
      expect(await api.redis.hexists(api.keys.publisherIndex, id)).to.equal(0);
      // Its target is free again.
      await made({ target: 'https://taken.test/hook' });
    });

    it('accepts a JSON content type with an empty body', async () => {
      const id = await made();
      const res = await send(api.app, 'DELETE', `/api/publishers/${id}`, '', {
        'content-type': 'application/json',
      });
      expect(res.status).to.equal(204);
    });

    it('answers 404 naming id for an unknown publisher', async () => {
      const deleted = await made();
      expect((await call(api.app, 'DELETE', `/api/publishers/${deleted}`)).status).to.equal(204);
      for (const id of [deleted, '999', 'nope']) {
        const res = await call(api.app, 'DELETE', `/api/publishers/${id}`);
        expect(res.status).to.equal(404);
        expect(res.body).to.deep.equal(errors({ id: ['publisher not found'] }));
      }
    });
  });
});
