/**
 * GET /api/health: readiness. 200 once Redis answers a PING; 503 with
 * Retry-After when it does not, or while the producer drains before a stop.
 * GET /api/health/live: liveness. 200 whenever the process answers at all,
 * whatever Redis does: a Redis outage must not get every pod restarted.
 */
import { redisAnswers } from '@postoffice/shared';
import type { FastifyInstance } from 'fastify';
import { isDraining } from '../draining.js';
import type { ApiContext } from '../types.js';

/** How long the health check waits for PONG. */
export const HEALTH_PING_TIMEOUT_MS = 1000;

export function registerHealthRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/api/health', async (request, reply) => {
    if (isDraining(app)) return reply.code(503).header('retry-after', '1').send({ status: 'draining' });
    if (await redisAnswers(ctx.redis, HEALTH_PING_TIMEOUT_MS)) return { status: 'ok' };
    request.log.warn({ redisStatus: ctx.redis.status }, 'health check: redis does not answer');
    return reply.code(503).header('retry-after', '1').send({ status: 'unavailable' });
  });
  app.get('/api/health/live', async () => ({ status: 'ok' }));
}
