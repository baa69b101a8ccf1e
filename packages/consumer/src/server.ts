import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { redisAnswers, type Logger } from '@postoffice/shared';
import type { ConsumerNode } from './node.js';

/**
 * The consumer's own small HTTP server: `/healthz` (readiness: Redis
 * reachable), `/livez` (liveness: the process answers, whatever Redis does,
 * so a Redis outage gets no pod restarted) and `/metrics`.
 */
export function buildConsumerServer(node: ConsumerNode, logger: Logger): FastifyInstance {
  const httpLogger: FastifyBaseLogger = logger.child({ component: 'http' });
  const app = Fastify({
    loggerInstance: httpLogger,
    logController: new LogController({ disableRequestLogging: true }),
  });
  app.get('/healthz', async (_req, reply) => {
    if (await redisAnswers(node.redis, 1000)) return { status: 'ok', node: node.nodeId, pipelines: node.pipelineCount };
    return reply.code(503).header('retry-after', '1').send({ status: 'unavailable', node: node.nodeId });
  });
  app.get('/livez', async () => ({ status: 'ok', node: node.nodeId }));
  app.get('/metrics', async (_req, reply) => {
    return reply.header('content-type', node.metrics.registry.contentType).send(await node.metrics.registry.metrics());
  });
  return app;
}
