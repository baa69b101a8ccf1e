/**
 * Fault: 10,000 random and malformed requests over every route of a real
 * producer process (wrong types, unknown fields, huge strings within and
 * above the body limit, deep JSON, bad UTF-8, random paths, methods and
 * content types). No answer is a 5xx, the process stays up, memory stays
 * stable. (packages/producer/test/fuzz.test.ts fuzzes the app in-process;
 * this one goes through real sockets to the built process.)
 */
import { expect } from 'chai';
import { startRedis, waitFor, type RedisServer } from '../packages/shared/test/support/redis-server.js';
import { api, killAll, startApp, type AppProcess } from '../packages/shared/test/support/processes.js';
import {
  createPublisher,
  createTopic,
  growth,
  pool,
  rawRequest,
  report,
  sampleRss,
  startSink,
  type Sink,
} from './support/harness.js';
import { prng } from '../packages/shared/test/support/prng.js';

const REQUESTS = 10_000;
const BODY_LIMIT = 262_144;

describe('fault: random and malformed requests to the producer process', function () {
  this.timeout(300_000);
  let redis: RedisServer;
  let sink: Sink;
  const apps: AppProcess[] = [];

  before(async () => {
    redis = await startRedis();
    sink = await startSink();
  });
  after(async () => {
    await killAll(apps);
    await sink.close();
    await redis.stop();
  });

  it(`answers ${REQUESTS} of them without a 5xx, stays up, and keeps its memory`, async () => {
    const seed = Number(process.env.FAULTS_SEED ?? 20261126);
    const rand = prng(seed);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)] as T;
    const producer = await startApp('producer', {
      REDIS_URL: redis.url,
      BODY_LIMIT_BYTES: String(BODY_LIMIT),
      MAX_BULK_MESSAGES: '50',
    });
    apps.push(producer);
    const topic = await createTopic(producer, 'fuzz');
    const http = await createPublisher(producer, { topic, target: sink.url('/hook'), active: false });
    const pull = await createPublisher(producer, { topic, target: 'fuzz-workers', type: 'pull' });
    const published = await api(producer, 'POST', '/api/bulk_messages', { topic, payload: [1, 2, 3, 4, 5, 6, 7, 8] });
    expect(published.status).to.equal(201);
    const messageIds = published.json.data.ids as string[];
    const leased = await api(producer, 'POST', `/api/publishers/${pull}/lease`, { max: 8, lease_seconds: 600 });
    expect(leased.status).to.equal(200);
    const tokens = (leased.json.data as { token: string }[]).map((l) => l.token);

    const huge = (n: number): string => 'é'.repeat(n);
    /** Percent-encodes; a lone surrogate (not encodable) becomes the bytes of one, which are not UTF-8. */
    const enc = (v: string): string => {
      try {
        return enc(v);
      } catch {
        return '%ed%a0%80';
      }
    };
    const atoms: unknown[] = [
      null,
      true,
      false,
      0,
      -1,
      1.5,
      1e308,
      -0,
      2 ** 53 + 1,
      '',
      ' ',
      topic,
      'nothing',
      'a{b}',
      'http',
      'pull',
      'pubsub',
      sink.url('/hook'),
      'ftp://x',
      '__proto__',
      '5',
      '\u0000\uffff',
      '\ud800',
      '2030-01-01T00:00:00Z',
      'not-a-date',
      '275760-09-13T00:00:00Z',
      http,
      pull,
      ...messageIds.slice(0, 2),
      ...tokens.slice(0, 2),
      'x'.repeat(300),
      'x'.repeat(70_000),
      [],
      {},
      { per_second: 'a' },
      { per_second: 1, burst: 0 },
    ];
    const fields = [
      'name',
      'origin_host',
      'recovery_enabled',
      'topic',
      'target',
      'type',
      'active',
      'from_now',
      'seconds_timeout',
      'seconds_retry',
      'chunk_size',
      'concurrency',
      'parallelism',
      'ordered',
      'rate_limit',
      'payload',
      'attributes',
      'schedule_at',
      'ids',
      'all',
      'since',
      'next_attempt_at',
      'max',
      'lease_seconds',
      'worker',
      'filter',
      'in_seconds',
      'reason',
      'messages',
      '__proto__',
      'constructor',
      'unknown_field',
    ];
    const value = (depth = 0): unknown => {
      const r = rand();
      if (depth > 3 || r < 0.6) return pick(atoms);
      if (r < 0.8) return Array.from({ length: Math.floor(rand() * 4) }, () => value(depth + 1));
      return Object.fromEntries(Array.from({ length: Math.floor(rand() * 4) }, () => [pick(fields), value(depth + 1)]));
    };
    const object = (): Record<string, unknown> =>
      Object.fromEntries(Array.from({ length: Math.floor(rand() * 6) }, () => [pick(fields), value()]));
    const plausible = (): Record<string, unknown> => {
      const base: Record<string, unknown> = { topic, payload: value(), ...object() };
      if (rand() < 0.3) base.payload = Array.from({ length: Math.floor(rand() * 60) }, () => value());
      return base;
    };

    const id = (): string =>
      pick([http, pull, '999', '0', '-1', 'abc', '1e3', '%00', '%c3%a9', '%ff', 'x'.repeat(300)]);
    const token = (): string => pick([...tokens, 'nope', '', 'x'.repeat(300), '..', '%2F', '%ff%fe']);
    const routes: [string, () => string][] = [
      ['GET', () => '/api/health'],
      ['GET', () => '/metrics'],
      ['GET', () => '/api/cluster'],
      ['POST', () => '/api/topics'],
      ['GET', () => '/api/topics'],
      ['GET', () => `/api/topics/${enc(String(pick(atoms)))}`],
      // The topic in use keeps its publishers, so a DELETE of it is refused (409) and the run goes on.
      ['PATCH', () => `/api/topics/${enc(String(pick([topic, ...atoms])))}`],
      ['DELETE', () => `/api/topics/${enc(String(pick([topic, 'nope', '%ff', 'x'.repeat(300)])))}`],
      ['GET', () => '/api/stats'],
      [pick(['GET', 'POST', 'DELETE']), () => '/api/session'],
      ['GET', () => pick(['/', '/ui/style.css', '/ui/js/app.js', '/ui/%ff', '/ui/../package.json'])],
      ['POST', () => '/api/publishers'],
      ['GET', () => '/api/publishers'],
      ['GET', () => `/api/publishers/${id()}`],
      ['PATCH', () => `/api/publishers/${id()}`],
      ['DELETE', () => `/api/publishers/${pick(['999', 'abc', '-1'])}`],
      ['POST', () => '/api/messages'],
      ['GET', () => `/api/messages/${pick([...messageIds, 'nope', '%ff', 'x'.repeat(300)])}`],
      ['GET', () => `/api/messages?${query()}`],
      ['POST', () => '/api/bulk_messages'],
      ['POST', () => '/api/schedule_messages'],
      ['GET', () => `/api/publishers/${id()}/failing?${query()}`],
      ['POST', () => `/api/publishers/${id()}/failing/${pick(['retry', 'next_attempt', 'recover', 'delete'])}`],
      ['POST', () => `/api/publishers/${id()}/lease`],
      ['POST', () => `/api/leases/${token()}/${pick(['complete', 'retry', 'fail', 'extend', 'replace'])}`],
      [pick(['PUT', 'OPTIONS', 'HEAD', 'TRACE', 'DELETE']), () => pick(['/api/messages', '/api/topics', '/x', '/'])],
    ];
    const query = (): string =>
      Array.from({ length: Math.floor(rand() * 4) }, () => {
        const name = pick(['topic', 'publisher', 'state', 'from', 'to', 'id', 'attributes.k', 'q', 'limit', 'cursor']);
        const v = rand() < 0.1 ? Buffer.from(JSON.stringify(value())).toString('base64url') : String(pick(atoms));
        return `${enc(name)}=${rand() < 0.05 ? '%ff%fe' : enc(v)}`;
      }).join('&');

    /** A body: mostly JSON of the wrong shape, sometimes raw bytes that are not JSON or not UTF-8. */
    const body = (): { bytes?: Buffer | string; type?: string; kind: string } => {
      const r = rand();
      if (r < 0.55) return { bytes: JSON.stringify(rand() < 0.5 ? plausible() : object()), kind: 'json' };
      if (r < 0.62) return { bytes: JSON.stringify(value()), kind: 'json-value' };
      if (r < 0.7) {
        const bad = Buffer.concat([
          Buffer.from('{"topic":"'),
          Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80]),
          Buffer.from('","payload":"\u00e9"}'),
        ]);
        return { bytes: bad, kind: 'bad-utf8' };
      }
      if (r < 0.76) {
        const depth = pick([50, 101, 1000, 20_000]);
        return { bytes: `{"topic":"${topic}","payload":${'['.repeat(depth)}${']'.repeat(depth)}}`, kind: 'deep' };
      }
      if (r < 0.8) {
        const within = rand() < 0.5;
        const size = within ? BODY_LIMIT / 2 - 100 : BODY_LIMIT + 1000;
        return {
          bytes: JSON.stringify({ topic, payload: huge(size / 2), name: huge(50) }),
          kind: within ? 'huge' : 'too-large',
        };
      }
      if (r < 0.86) return { bytes: '{"topic":', kind: 'truncated' };
      if (r < 0.9)
        return {
          bytes: JSON.stringify(plausible()),
          type: pick([
            'text/plain',
            'application/x-www-form-urlencoded',
            'application/json; charset=latin1',
            'multipart/form-data; boundary=x',
            '',
          ]),
          kind: 'content-type',
        };
      if (r < 0.95) return { kind: 'none' };
      return {
        bytes: Buffer.from(Array.from({ length: Math.floor(rand() * 200) }, () => Math.floor(rand() * 256))),
        kind: 'random-bytes',
      };
    };

    const sampler = sampleRss(producer, 250);
    const statuses = new Map<number, number>();
    const errors: string[] = [];
    const kinds = new Map<string, number>();
    // Everything is drawn before sending, so that the run does not depend on timing.
    const plan = Array.from({ length: REQUESTS }, () => {
      const [method, path] = pick(routes);
      return { method, path: path(), ...body() };
    });
    await pool(REQUESTS, 8, async (i) => {
      const p = plan[i]!;
      kinds.set(p.kind, (kinds.get(p.kind) ?? 0) + 1);
      const sendBody = p.method !== 'GET' && p.method !== 'HEAD' ? p.bytes : undefined;
      const headers: Record<string, string> = {};
      if (sendBody !== undefined) headers['content-type'] = p.type ?? 'application/json';
      try {
        const res = await rawRequest(producer.url, p.method, p.path, sendBody, headers);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status >= 500) {
          errors.push(
            `${res.status} ${p.method} ${p.path.slice(0, 100)} ${p.kind} ${String(sendBody ?? '').slice(0, 300)} -> ${res.body.slice(0, 300)}`,
          );
        }
      } catch (err) {
        // Only a body over the limit may be cut off (the server answers 413 and closes before reading it all).
        if (p.kind !== 'too-large')
          errors.push(`${(err as Error).message} ${p.method} ${p.path.slice(0, 100)} ${p.kind}`);
      }
    });
    const samples = sampler.stop();
    const alive = producer.child.exitCode === null && producer.child.signalCode === null;
    const health = await waitFor(async () => (await api(producer, 'GET', '/api/health')).status, 'health');
    // The requests are drawn uniformly, so the load is the same all along: the first half warms up
    // (heap sizing for bodies up to the limit), a leak would show as growth over the second half.
    const g = growth(samples, 0.5);
    const figures = {
      requests: REQUESTS,
      seed,
      kinds: Object.fromEntries(kinds),
      statuses: Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])),
      responses5xx: [...statuses].filter(([s]) => s >= 500).reduce((n, [, c]) => n + c, 0),
      failures: errors.length,
      alive,
      rssMb: { afterWarmup: g.warmMb, end: g.endMb, max: g.maxMb },
      growthAfterWarmupMb: g.growthMb,
      growthAfterWarmupPct: g.growthPct,
    };
    report('fuzz', figures);
    expect(errors.slice(0, 20)).to.deep.equal([]);
    expect(figures.responses5xx).to.equal(0);
    expect(alive, producer.output().slice(-2000)).to.be.true;
    expect(health).to.equal(200);
    expect(g.growthMb).to.be.below(100);
    expect(g.growthPct).to.be.below(50);
  });
});
