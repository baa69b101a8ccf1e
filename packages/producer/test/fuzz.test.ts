import { expect } from 'chai';
import { call, createPublisher, createTopic, send, startApi, type Answer, type Api } from './helpers.js';
import { MESSAGE_FIELDS, PROTOTYPE_KEYS, TOPIC_AND_PUBLISHER_FIELDS, prng } from '@postoffice/test-support';

const ATOMS: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  1000,
  1001,
  1e308,
  '',
  ' ',
  'orders',
  'nothing',
  'a{b}',
  'http',
  'pubsub',
  'http://127.0.0.1:9/x',
  'https://fuzz.test/y',
  'ftp://x',
  '__proto__',
  '5',
  'x'.repeat(300),
  '\u0000\uffff',
  '2030-01-01T00:00:00Z',
  '0001-01-01T00:00:00+01:00',
  '275760-09-13T00:00:00Z',
];

const FIELDS = [...TOPIC_AND_PUBLISHER_FIELDS, 'per_second', 'burst', ...MESSAGE_FIELDS, ...PROTOTYPE_KEYS, 'extra'];

describe('the API under random input', () => {
  let api: Api;
  const rand = prng(20240601);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)] as T;

  function value(depth = 0): unknown {
    const r = rand();
    if (depth > 3 || r < 0.6) return pick(ATOMS);
    if (r < 0.8) return Array.from({ length: Math.floor(rand() * 4) }, () => value(depth + 1));
    return Object.fromEntries(Array.from({ length: Math.floor(rand() * 4) }, () => [pick(FIELDS), value(depth + 1)]));
  }

  function body(): unknown {
    if (rand() < 0.1) return value();
    return Object.fromEntries(Array.from({ length: Math.floor(rand() * 6) }, () => [pick(FIELDS), value()]));
  }

  function expectWellFormed(res: Answer, what: string): void {
    expect(res.status, what).to.be.below(500);
    if (res.status >= 400) {
      const errors = (res.body as { data?: { errors?: Record<string, unknown> } }).data?.errors;
      expect(errors, what).to.be.an('object');
      for (const reasons of Object.values(errors ?? {})) {
        expect(reasons, what).to.be.an('array').that.is.not.empty;
        for (const r of reasons as unknown[]) expect(r, what).to.be.a('string');
      }
    }
  }

  before(async () => {
    api = await startApi({ MAX_BULK_MESSAGES: '3' });
    await createTopic(api.app, 'orders');
    await createPublisher(api.app, { topic: 'orders', target: 'http://127.0.0.1:9/hook' });
  });
  after(async () => {
    await api.close();
  });

  it('never answers 5xx to random JSON bodies, and every error has the Postoffice shape', async () => {
    const routes: ['POST' | 'PATCH', string][] = [
      ['POST', '/api/topics'],
      ['POST', '/api/publishers'],
      ['PATCH', '/api/publishers/1'],
      ['POST', '/api/messages'],
      ['POST', '/api/bulk_messages'],
      ['POST', '/api/schedule_messages'],
      ['POST', '/api/publishers/1/failing/retry'],
      ['POST', '/api/publishers/1/failing/next_attempt'],
      ['POST', '/api/publishers/1/failing/recover'],
      ['POST', '/api/publishers/1/failing/delete'],
    ];
    for (let i = 0; i < 1500; i++) {
      const [method, url] = pick(routes);
      const b = body();
      const res = await call(api.app, method, url, b);
      expectWellFormed(res, `${method} ${url} ${JSON.stringify(b)}`);
    }
  });

  it('never answers 5xx to random bytes or random paths', async () => {
    const alphabet = '{}[]":,0123456789abc-\\%/?#. \u00e9\u0000';
    for (let i = 0; i < 300; i++) {
      const text = Array.from({ length: Math.floor(rand() * 40) }, () => pick([...alphabet])).join('');
      const res = await send(api.app, 'POST', '/api/messages', text, { 'content-type': 'application/json' });
      expectWellFormed(res, `body ${JSON.stringify(text)}`);
      const path = encodeURI(text).replace(/%25/g, '%');
      for (const prefix of ['/api/topics/', '/api/publishers/', '/api/messages/']) {
        const get = await call(api.app, 'GET', `${prefix}${path}`);
        expectWellFormed(get, `GET ${prefix}${path}`);
      }
    }
  });

  it('never answers 5xx to random search and failing-list queries', async () => {
    const params = ['topic', 'publisher', 'state', 'from', 'to', 'id', 'attributes.k', 'q', 'limit', 'cursor'];
    const cursors = [
      Buffer.from('{"top":-5,"p":{}}').toString('base64url'),
      Buffer.from('{"top":1,"p":{"orders":"1-0"}}').toString('base64url'),
      Buffer.from('{"s":"r","score":-1e300,"sid":"1-0"}').toString('base64url'),
      Buffer.from('[]').toString('base64url'),
    ];
    for (let i = 0; i < 400; i++) {
      const query = Array.from({ length: Math.floor(rand() * 4) }, () => {
        const name = pick(params);
        const v = rand() < 0.2 ? pick(cursors) : String(pick(ATOMS));
        return `${encodeURIComponent(name)}=${encodeURIComponent(v)}`;
      }).join('&');
      for (const url of ['/api/messages', '/api/publishers/1/failing']) {
        const res = await call(api.app, 'GET', `${url}?${query}`);
        expectWellFormed(res, `GET ${url}?${query}`);
      }
    }
  });

  it('answers 400 for payloads nested too deeply to serialize', async () => {
    const deep = `${'['.repeat(200000)}${']'.repeat(200000)}`;
    const one = await send(api.app, 'POST', '/api/messages', `{"topic":"orders","payload":${deep}}`, {
      'content-type': 'application/json',
    });
    expect(one.status).to.equal(400);
    expect(one.body).to.deep.equal({ data: { errors: { payload: ['is nested more than 100 levels deep'] } } });
    const bulk = await send(api.app, 'POST', '/api/bulk_messages', `{"topic":"orders","payload":[1,${deep}]}`, {
      'content-type': 'application/json',
    });
    expect(bulk.status).to.equal(400);
    expect(bulk.body).to.deep.equal({
      data: { errors: { payload: ['has an element nested more than 100 levels deep'] } },
    });
    const fine = await call(api.app, 'POST', '/api/messages', {
      topic: 'orders',
      payload: JSON.parse(`${'['.repeat(100)}${']'.repeat(100)}`),
    });
    expect(fine.status).to.equal(201);
  });
});
