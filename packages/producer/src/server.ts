/**
 * The API server: a fastify instance with the routes, one error handler
 * that gives every failure Postoffice's error shape, and per-instance
 * metrics. Building it has no side effects: the caller owns the Redis
 * client and calls `listen` (or `inject` in tests).
 *
 * What a client can cost it is bounded: the node server's timeouts
 * (REQUEST_TIMEOUT_MS for a whole request, HEADERS_TIMEOUT_MS for its
 * headers, CONNECTION_TIMEOUT_MS idle, KEEP_ALIVE_TIMEOUT_MS between
 * requests) and MAX_CONNECTIONS; routes open without a credential read at
 * most OPEN_BODY_LIMIT_BYTES of body, and the others none before the
 * credential is checked (auth.ts). Logs carry paths, never query strings.
 */
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Socket } from 'node:net';
import { AppError, Keys, PullQueue, Store, ValidationError, trustedProxies } from '@postoffice/shared';
import { Auth, isPublic, registerAuth } from './auth.js';
import { inexactNumber } from './exact-numbers.js';
import { errorBody, toErrorReply } from './http-errors.js';
import { Ingest } from './ingest.js';
import { LeaseWaiters } from './lease-waiters.js';
import { LoginThrottle } from './login-throttle.js';
import { Metrics } from './metrics.js';
import { LazyRequestLogger } from './request-logger.js';
import { collectRoutes, registerOpenApiRoute } from './openapi.js';
import { registerFailingRoutes } from './routes/failing.js';
import { registerFlowRoutes } from './routes/flow.js';
import { registerClusterRoutes } from './routes/cluster.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerLeaseRoutes } from './routes/leases.js';
import { registerMessageRoutes } from './routes/messages.js';
import { registerMetricsRoutes } from './routes/metrics.js';
import { registerPublisherRoutes } from './routes/publishers.js';
import { registerSessionRoutes } from './routes/session.js';
import { registerSourceRoutes } from './routes/sources.js';
import { registerStatsRoutes } from './routes/stats.js';
import { registerTopicRoutes } from './routes/topics.js';
import { registerUiRoutes } from './routes/ui.js';
import { serializerCompiler, validatorCompiler } from './schema-compilers.js';
import type { ApiContext, ServerOptions } from './types.js';

/** The largest body a route open without a credential reads (the login's is a few dozen bytes). */
export const OPEN_BODY_LIMIT_BYTES = 1024;

export function buildServer(options: ServerOptions): FastifyInstance {
  const { config, redis } = options;
  const now = options.now ?? Date.now;
  // Typed as fastify's logger so that the instance (and route modules) use fastify's default generics.
  // Its `req` serializer replaces fastify's, which logs the URL with its query string (a `?token=`, say).
  const logger: FastifyBaseLogger = options.logger.child({ component: 'api' }, { serializers: { req: requestForLog } });
  const keys = new Keys(config.redisPrefix);
  const metrics = options.metrics ?? new Metrics();
  const ingest = new Ingest(redis, keys, config, metrics);
  const leaseWaiters = new LeaseWaiters(
    config.redisUrl,
    keys,
    options.logger.child({ component: 'leases' }),
    options.maxWaitingLeases,
  );
  ingest.onWritten = (topic) => leaseWaiters.wake(topic);
  const ctx: ApiContext = {
    config,
    redis,
    keys,
    store: new Store(redis, keys, config),
    ingest,
    metrics,
    pull: new PullQueue(redis, keys, now, config.retryMaxAgeSeconds),
    leaseWaiters,
    now,
  };

  const sendError = (failure: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const answer = toErrorReply(failure, config);
    const err = withoutQuery(failure, request.url);
    if (answer.unexpected) request.log.error({ err }, 'request failed');
    else if (answer.statusCode === 503) request.log.warn({ err }, 'redis unavailable');
    else request.log.debug({ err, fields: answer.fields }, 'request refused');
    if (answer.retryAfter !== undefined) void reply.header('retry-after', String(answer.retryAfter));
    return reply.code(answer.statusCode).send(errorBody(answer.fields));
  };

  const proxies = trustedProxies(config);
  const app = Fastify({
    loggerInstance: logger,
    // The request's child logger is made only when the request logs a line (request-logger.ts).
    childLoggerFactory: (parent, bindings, opts) => new LazyRequestLogger(parent, bindings, opts),
    logController: new AccessLog(),
    bodyLimit: config.bodyLimitBytes,
    // A client that sends its request (headers, body) slower than this is answered 408 and disconnected.
    requestTimeout: config.requestTimeoutMs,
    connectionTimeout: config.connectionTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    http: {
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      // Node checks both timeouts on this interval (30 s by default, which would let a slow client stay that much longer).
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(config.headersTimeoutMs / 4))),
    },
    clientErrorHandler: answerClientError,
    ...(proxies.length > 0 ? { trustProxy: proxies } : {}),
    // Topic names may be 200 characters long (TOPIC_NAME); longer path parameters are a 414.
    routerOptions: { maxParamLength: 256 },
    // Requests that arrive while closing are served (with Connection: close), not refused with
    // fastify's own 503 body, which does not have Postoffice's error shape.
    return503OnClosing: false,
    frameworkErrors: (err, request, reply) => {
      sendError(err, request, reply);
    },
  });

  // JSON only: fastify's text/plain parser would let a string body through as if it were valid.
  app.removeAllContentTypeParsers();
  // Payloads are stored as they were sent, `__proto__` keys included: handlers read only own,
  // named fields and never merge a body into another object, so plain JSON.parse is safe.
  const parseJson = app.getDefaultJsonParser('ignore', 'ignore');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    // An empty body (a DELETE sent with a JSON content type) is no body, not an error.
    if (body === '') return done(null, undefined);
    const text = body as string;
    void parseJson(request, text, (err, value) => {
      if (err) return done(err);
      // A number JSON.parse would change (1e400, 2^64) is refused: payloads are delivered exactly as sent.
      const inexact = inexactNumber(text);
      if (inexact === undefined) return done(null, value);
      const shown = inexact.number.length > 40 ? `${inexact.number.slice(0, 40)}…` : inexact.number;
      done(
        new ValidationError({
          [inexact.field]: [
            `has a number that JSON cannot carry exactly (${shown}): it would not be delivered as sent; send it as a string`,
          ],
        }),
      );
    });
  });

  app.server.maxConnections = config.maxConnections;

  // Routes open without a credential (the login, health, everything outside /api, unknown paths) take a body of
  // at most OPEN_BODY_LIMIT_BYTES, with its length declared: anything else is refused before a byte of it is read,
  // and the connection closes, so the rest is never read either.
  // (Hooks on every request are callback hooks, not async ones: no promise per request.)
  app.addHook('onRequest', (request, reply, done) => {
    if (!isOpen(request)) return done();
    const declared = request.headers['content-length'];
    if (declared === undefined && request.headers['transfer-encoding'] !== undefined) {
      void reply.header('connection', 'close');
      return done(
        new AppError('length_required', 411, 'a body without Content-Length', {
          'content-length': ['is required with a body on this route'],
        }),
      );
    }
    if (Number(declared ?? 0) > OPEN_BODY_LIMIT_BYTES) {
      void reply.header('connection', 'close');
      return done(
        new AppError('body_too_large', 413, `body is larger than ${OPEN_BODY_LIMIT_BYTES} bytes`, {
          body: [`is larger than ${OPEN_BODY_LIMIT_BYTES} bytes on this route`],
        }),
      );
    }
    done();
  });

  // Requests are validated from the routes' schemas, with Postoffice's error shape (schema-compilers.ts);
  // the same schemas describe the API at /api/openapi.json.
  app.setValidatorCompiler(validatorCompiler());
  app.setSerializerCompiler(serializerCompiler(options.onResponseMismatch));
  collectRoutes(app);

  app.setErrorHandler((err, request, reply) => sendError(err, request, reply));
  app.setNotFoundHandler((request, reply) => {
    void reply
      .code(404)
      .send(errorBody({ path: [`no route for ${request.method} ${request.url.split('?')[0] ?? ''}`] }));
  });

  app.addHook('onResponse', (request, reply, done) => {
    metrics.answered(
      request.method,
      request.routeOptions.url ?? 'unmatched',
      reply.statusCode,
      reply.elapsedTime / 1000,
    );
    done();
  });
  metrics.watchRedis(() => redis.status === 'ready');
  const onRedisError = (): void => metrics.redisError();
  redis.on('error', onRedisError);
  // Long polls end (answered with what there is) before the server waits for its requests to finish.
  app.addHook('preClose', async () => {
    await leaseWaiters.close();
  });
  app.addHook('onClose', async () => {
    await leaseWaiters.close();
    redis.off('error', onRedisError);
    if (!options.metrics) metrics.registry.clear();
  });

  const auth = new Auth(config.apiTokens, now);
  registerAuth(app, auth);
  registerSessionRoutes(app, auth, new LoginThrottle(redis, keys, config));
  registerTopicRoutes(app, ctx);
  registerPublisherRoutes(app, ctx);
  registerFailingRoutes(app, ctx);
  registerFlowRoutes(app, ctx);
  registerMessageRoutes(app, ctx);
  registerLeaseRoutes(app, ctx);
  registerHealthRoutes(app, ctx);
  registerMetricsRoutes(app, ctx);
  registerClusterRoutes(app, ctx);
  registerStatsRoutes(app, ctx);
  registerSourceRoutes(app, ctx);
  registerUiRoutes(app);
  registerOpenApiRoute(app);
  return app;
}

/** Whether a request reaches a route that is open without a credential (judged as auth.ts judges it). */
function isOpen(request: FastifyRequest): boolean {
  const path = request.url.split('?')[0] ?? '';
  return isPublic(path) && isPublic(request.routeOptions.url ?? path);
}

/** What the access log says of a request: its path without the query string, which may carry a secret. */
function requestForLog(request: FastifyRequest): Record<string, unknown> {
  return {
    method: request.method,
    url: request.url.split('?')[0],
    host: request.host,
    remoteAddress: request.ip,
  };
}

/** `err` for a log line, its message without the request's query string (fastify's bad-URL error quotes the URL). */
function withoutQuery(err: unknown, url: string): unknown {
  const q = url.indexOf('?');
  if (q < 0 || !(err instanceof Error) || !err.message.includes(url.slice(q))) return err;
  const code = (err as { code?: unknown }).code;
  return { type: err.name, code, message: err.message.split(url.slice(q)).join('?[query]') };
}

/**
 * Answers what node's HTTP parser refuses before fastify sees a request: a
 * client too slow to send its request (408), headers too large (431), bytes
 * that are not HTTP (400). In Postoffice's error shape, then disconnects.
 */
function answerClientError(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, text, fields] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Request Timeout', { request: ['took too long to arrive'] }]
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', { headers: ['are too large'] }]
        : [400, 'Bad Request', { request: ['is not valid HTTP'] }];
  // Not when an answer has begun already (a refusal sent before the body was read, say): the client has that one.
  const answering = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && !answering?.headersSent) {
    const body = JSON.stringify(errorBody(fields));
    socket.write(
      `HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}

/**
 * Per-request lines at debug level (LOG_LEVEL=debug shows every request):
 * at info, a busy producer would write two lines per message. Failures are
 * logged by the error handler (warn for 503, error for 500).
 */
class AccessLog extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    request.log.debug({ req: request }, 'incoming request');
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error) reply.log.error({ res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored');
    else reply.log.debug({ res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }
}
