/**
 * Baseline for single ingest: a bare fastify server whose POST /api/messages
 * parses the JSON body (fastify's default) and answers 201 without doing
 * anything with it. The ceiling for any fastify route on this machine.
 */
import Fastify from 'fastify';
import { serve } from '../lib/child.js';

const app = Fastify({ logger: false });
app.post('/api/messages', async (_request, reply) => reply.code(201).send({ data: { id: 'x' } }));
app.post('/api/bulk_messages', async (_request, reply) => reply.code(201).send({ data: { ids: [] } }));

const address = await app.listen({ port: 0, host: '127.0.0.1' });
serve({ url: address }, {});
