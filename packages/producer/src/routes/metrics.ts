/** GET /metrics: the server's Prometheus registry as text. */
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../types.js';

export function registerMetricsRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/metrics', async (_request, reply) => {
    const text = await ctx.metrics.text();
    return reply.header('content-type', ctx.metrics.contentType).send(text);
  });
}
