/** GET /metrics: the server's Prometheus registry as text. */
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../types.js';

const metricsSchema = {
  tags: ['operations'],
  summary: 'Prometheus metrics',
  response: {
    200: {
      description: 'The producer’s metrics, in the Prometheus text format.',
      content: { 'text/plain': { schema: { type: 'string' } } },
    },
  },
};

export function registerMetricsRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/metrics', { schema: metricsSchema }, async (_request, reply) => {
    const text = await ctx.metrics.text();
    return reply.header('content-type', ctx.metrics.contentType).send(text);
  });
}
