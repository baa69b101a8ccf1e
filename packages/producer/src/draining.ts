/**
 * Draining before a stop, so that a rolling update loses no request: the
 * producer first fails its readiness check (`GET /api/health` answers 503
 * `{"status":"draining"}`), so that load balancers and Service endpoints
 * drop it, while it goes on serving what still reaches it, each answer
 * with `Connection: close`, so that keep-alive clients open their next
 * connection to another replica. SIGTERM then stops it as usual (in-flight
 * requests finish). States: serving -> draining (startDraining, once).
 *
 * The chart's preStop hook starts it (`main.js pre-stop`, which signals the
 * process with SIGUSR2) and waits for the endpoints to drop the pod before
 * Kubernetes sends SIGTERM.
 */
import type { FastifyInstance } from 'fastify';

const draining = new WeakSet<FastifyInstance>();

/** Fails readiness from now on and closes each connection after its answer. Safe to call twice. */
export function startDraining(app: FastifyInstance): void {
  if (draining.has(app)) return;
  draining.add(app);
  // Before fastify's own listener: the header is set before any answer is written.
  app.server.prependListener('request', (_request, response) => {
    if (!response.headersSent) response.setHeader('connection', 'close');
  });
}

export function isDraining(app: FastifyInstance): boolean {
  return draining.has(app);
}
