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

const healthSchema = {
  tags: ['operations'],
  summary: 'Health: whether Redis answers',
  response: {
    200: {
      type: 'object',
      required: ['status'],
      additionalProperties: false,
      properties: { status: { type: 'string', enum: ['ok'] } },
      description: 'Redis answers a PING.',
    },
    503: {
      type: 'object',
      required: ['status'],
      additionalProperties: false,
      properties: { status: { type: 'string', enum: ['unavailable', 'draining'] } },
      description: `Redis does not answer within ${HEALTH_PING_TIMEOUT_MS} ms, or the producer is draining before it stops (\`Retry-After\`).`,
    },
  },
};

const liveSchema = {
  tags: ['operations'],
  summary: 'Liveness: whether the process answers (Redis is not asked)',
  response: {
    200: {
      type: 'object',
      required: ['status'],
      additionalProperties: false,
      properties: { status: { type: 'string', enum: ['ok'] } },
      description: 'The process answers.',
    },
  },
};

export function registerHealthRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/api/health', { schema: healthSchema }, async (request, reply) => {
    if (isDraining(app)) return reply.code(503).header('retry-after', '1').send({ status: 'draining' });
    if (await redisAnswers(ctx.redis, HEALTH_PING_TIMEOUT_MS)) return { status: 'ok' };
    request.log.warn({ redisStatus: ctx.redis.status }, 'health check: redis does not answer');
    return reply.code(503).header('retry-after', '1').send({ status: 'unavailable' });
  });
  app.get('/api/health/live', { schema: liveSchema }, async () => ({ status: 'ok' }));
}
