/**
 * The API server: a fastify instance with the routes, one error handler
 * that gives every failure Postoffice's error shape, and per-instance
 * metrics. Building it has no side effects: the caller owns the Redis
 * client and calls `listen` (or `inject` in tests).
 */
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { Keys, PullQueue, Store, ValidationError } from '@postoffice/shared';
import { Auth, registerAuth } from './auth.js';
import { inexactNumber } from './exact-numbers.js';
import { errorBody, toErrorReply } from './http-errors.js';
import { Ingest } from './ingest.js';
import { Metrics } from './metrics.js';
import { collectRoutes, registerOpenApiRoute } from './openapi.js';
import { registerFailingRoutes } from './routes/failing.js';
import { registerClusterRoutes } from './routes/cluster.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerLeaseRoutes } from './routes/leases.js';
import { registerMessageRoutes } from './routes/messages.js';
import { registerMetricsRoutes } from './routes/metrics.js';
import { registerPublisherRoutes } from './routes/publishers.js';
import { registerSessionRoutes } from './routes/session.js';
import { registerStatsRoutes } from './routes/stats.js';
import { registerTopicRoutes } from './routes/topics.js';
import { registerUiRoutes } from './routes/ui.js';
import { serializerCompiler, validatorCompiler } from './schema-compilers.js';
import type { ApiContext, ServerOptions } from './types.js';

export function buildServer(options: ServerOptions): FastifyInstance {
  const { config, redis } = options;
  // Typed as fastify's logger so that the instance (and route modules) use fastify's default generics.
  const logger: FastifyBaseLogger = options.logger.child({ component: 'api' });
  const keys = new Keys(config.redisPrefix);
  const metrics = options.metrics ?? new Metrics();
  const ctx: ApiContext = {
    config,
    redis,
    keys,
    store: new Store(redis, keys),
    ingest: new Ingest(redis, keys, config, metrics),
    metrics,
    pull: new PullQueue(redis, keys, config.retentionSeconds, Date.now, config.retryMaxAgeSeconds),
  };

  const sendError = (err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const answer = toErrorReply(err, config);
    if (answer.unexpected) request.log.error({ err }, 'request failed');
    else if (answer.statusCode === 503) request.log.warn({ err }, 'redis unavailable');
    else request.log.debug({ err, fields: answer.fields }, 'request refused');
    if (answer.retryAfter !== undefined) void reply.header('retry-after', String(answer.retryAfter));
    return reply.code(answer.statusCode).send(errorBody(answer.fields));
  };

  const app = Fastify({
    loggerInstance: logger,
    logController: new AccessLog(),
    bodyLimit: config.bodyLimitBytes,
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

  app.addHook('onResponse', async (request, reply) => {
    metrics.httpDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });
  const onRedisError = (): void => metrics.redisError();
  redis.on('error', onRedisError);
  app.addHook('onClose', async () => {
    redis.off('error', onRedisError);
    if (!options.metrics) metrics.registry.clear();
  });

  const auth = new Auth(config.apiTokens);
  registerAuth(app, auth);
  registerSessionRoutes(app, auth);
  registerTopicRoutes(app, ctx);
  registerPublisherRoutes(app, ctx);
  registerFailingRoutes(app, ctx);
  registerMessageRoutes(app, ctx);
  registerLeaseRoutes(app, ctx);
  registerHealthRoutes(app, ctx);
  registerMetricsRoutes(app, ctx);
  registerClusterRoutes(app, ctx);
  registerStatsRoutes(app, ctx);
  registerUiRoutes(app);
  registerOpenApiRoute(app);
  return app;
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
