/**
 * Test support for the producer: an API server (fastify `inject`, no port)
 * on a private redis-server, with a silent logger.
 */
import {
  Keys,
  Store,
  closeRedis,
  createLogger,
  createRedis,
  loadConfig,
  type Config,
  type Logger,
  type Publisher,
  type ScriptClient,
} from '@postoffice/shared';
import { Writable } from 'node:stream';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildServer } from '../src/index.js';
import { startRedis, waitFor, type RedisServer } from '@postoffice/test-support';

export interface Api {
  readonly server: RedisServer;
  readonly config: Config;
  readonly redis: ScriptClient;
  readonly keys: Keys;
  readonly store: Store;
  readonly app: FastifyInstance;
  /** Closes the app and the client, then stops the server unless it was given. */
  close(): Promise<void>;
}

/** `now`: the server's clock (`buildServer`'s option), a `testClock()`'s to move time forward without sleeping. */
export async function startApi(
  env: Record<string, string> = {},
  given?: RedisServer,
  options: { now?: () => number } = {},
): Promise<Api> {
  const server = given ?? (await startRedis());
  const config = loadConfig({ REDIS_URL: server.url, LOG_LEVEL: 'silent', ...env }, 'producer');
  const redis = createRedis(config.redisUrl, 'producer');
  await waitFor(() => redis.status === 'ready', 'the producer client to connect');
  // Every answer is checked against its route's schema: the OpenAPI document must say what the API does.
  const mismatches: string[] = [];
  const app = buildServer({
    config,
    redis,
    logger: createLogger(config),
    onResponseMismatch: (problem) => mismatches.push(problem),
    ...(options.now ? { now: options.now } : {}),
  });
  await app.ready();
  let closed = false;
  const keys = new Keys(config.redisPrefix);
  return {
    server,
    config,
    redis,
    keys,
    store: new Store(redis, keys, config),
    app,
    async close() {
      if (closed) return;
      closed = true;
      await app.close();
      await closeRedis(redis);
      if (!given) await server.stop();
      if (mismatches.length > 0)
        throw new Error(`answers that do not match their schema:\n${[...new Set(mismatches)].join('\n')}`);
    },
  };
}

export interface Answer {
  readonly status: number;
  readonly body: unknown;
  readonly headers: LightMyRequestResponse['headers'];
  readonly raw: string;
}

function answer(res: LightMyRequestResponse): Answer {
  let body: unknown;
  try {
    body = res.body === '' ? undefined : JSON.parse(res.body);
  } catch {
    body = res.body;
  }
  return { status: res.statusCode, body, headers: res.headers, raw: res.body };
}

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT';

/** Sends `body` as JSON (when given) and parses the answer. */
export async function call(app: FastifyInstance, method: Method, url: string, body?: unknown): Promise<Answer> {
  const res = await app.inject({
    method,
    url,
    ...(body === undefined ? {} : { payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  return answer(res);
}

/** Sends a raw body with the given headers. */
export async function send(
  app: FastifyInstance,
  method: Method,
  url: string,
  payload: string,
  headers: Record<string, string>,
): Promise<Answer> {
  return answer(await app.inject({ method, url, payload, headers }));
}

/** Postoffice's error body. */
export function errors(fields: Record<string, string[]>): unknown {
  return { data: { errors: fields } };
}

export async function createTopic(app: FastifyInstance, name: string): Promise<void> {
  const res = await call(app, 'POST', '/api/topics', { name, origin_host: 'https://example.test' });
  if (res.status !== 201) throw new Error(`topic ${name}: ${res.status} ${res.raw}`);
}

export async function createPublisher(
  app: FastifyInstance,
  body: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const res = await call(app, 'POST', '/api/publishers', { type: 'http', ...body });
  if (res.status !== 201) throw new Error(`publisher: ${res.status} ${res.raw}`);
  return (res.body as { data: Record<string, unknown> }).data;
}

/** An app whose log is kept in memory (`loggedApp`). */
export interface LoggedApp {
  readonly app: FastifyInstance;
  readonly config: Config;
  readonly logger: Logger;
  /** The log's lines so far. */
  readonly lines: string[];
  /** The log so far, one line per line. */
  readonly log: () => string;
  /** Closes the app, and the Redis client and server unless they were given. */
  readonly close: () => Promise<void>;
}

/**
 * An app (`env` on top of a trace log level) whose log is kept in memory:
 * for tests of what is written to the log. It runs on `server` and `redis`
 * when given (a test's Api's), else on a redis-server and a client of its
 * own, which `close` stops.
 */
export async function loggedApp(
  options: { server?: RedisServer; redis?: ScriptClient; env?: Record<string, string> } = {},
): Promise<LoggedApp> {
  const server = options.server ?? (await startRedis());
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const config = loadConfig({ REDIS_URL: server.url, LOG_LEVEL: 'trace', ...options.env }, 'producer');
  const redis = options.redis ?? createRedis(config.redisUrl, 'producer');
  await waitFor(() => redis.status === 'ready', 'the producer client to connect');
  const logger = createLogger(config, stream);
  const app = buildServer({ config, redis, logger });
  await app.ready();
  return {
    app,
    config,
    logger,
    lines,
    log: () => lines.join('\n'),
    async close() {
      await app.close();
      if (!options.redis) await closeRedis(redis);
      if (!options.server) await server.stop();
    },
  };
}

/** An API set up by a describe's hooks (`apiWithTopic`), read once its before hook ran. */
export interface ApiFixture {
  readonly api: Api;
}

/**
 * Registers, in the calling describe, an API with the topic `topic`
 * (before, closed after).
 */
export function apiWithTopic(topic: string): ApiFixture {
  let api: Api | undefined;
  before(async () => {
    api = await startApi();
    await createTopic(api.app, topic);
  });
  after(async () => {
    await api?.close();
  });
  return {
    get api(): Api {
      if (!api) throw new Error('the API is used before its before hook ran');
      return api;
    },
  };
}

/** What `publishersApi` gives: the API, fresh target URLs, publishers as stored. */
export interface PublishersApi extends ApiFixture {
  /** A target URL no other publisher of the file has. */
  readonly hook: () => string;
  /** The publisher's record as the store has it. */
  readonly stored: (id: unknown) => Promise<Publisher>;
}

/** An API with the topic `orders` (`apiWithTopic`): for tests of publishers' fields. */
export function publishersApi(): PublishersApi {
  const fixture = apiWithTopic('orders');
  let n = 0;
  return {
    get api(): Api {
      return fixture.api;
    },
    hook: () => `http://127.0.0.1:9/hook/${++n}`,
    stored: async (id) => {
      const api = fixture.api;
      const p = await new Store(api.redis, new Keys(api.config.redisPrefix)).getPublisher(String(id));
      if (!p) throw new Error(`no publisher ${String(id)}`);
      return p;
    },
  };
}

export { waitFor };
