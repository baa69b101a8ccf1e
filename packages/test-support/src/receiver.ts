/**
 * Test support: a real HTTP receiver on port 0 that records what it gets and
 * answers as the test says.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';

export interface Received {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly at: number;
}

/** An answer: a status, or a status with a body and headers of its own (a JSON `{}` otherwise). */
export type Answer =
  number | { readonly status: number; readonly body?: string; readonly headers?: Record<string, string> };

export type Responder = (req: Received) => Answer | Promise<Answer>;

export interface Receiver {
  readonly url: string;
  /** Requests answered with 2xx (delivered). */
  readonly received: Received[];
  /** Every request, whatever the answer. */
  readonly requests: (Received & { status: number })[];
  /** Replaces how the receiver answers (status code, possibly after a delay). */
  respond(responder: Responder): void;
  /** How many requests are being answered right now, and the most ever at once. */
  readonly inFlight: { now: number; max: number };
  close(): Promise<void>;
}

export async function startReceiver(responder: Responder = () => 200): Promise<Receiver> {
  let answer = responder;
  const received: Received[] = [];
  const requests: (Received & { status: number })[] = [];
  const inFlight = { now: 0, max: 0 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      inFlight.now++;
      inFlight.max = Math.max(inFlight.max, inFlight.now);
      const r: Received = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      };
      Promise.resolve(answer(r))
        .then((given) => {
          const a = typeof given === 'number' ? { status: given } : given;
          const status = a.status;
          requests.push({ ...r, status });
          if (status >= 200 && status < 300) received.push(r);
          res.writeHead(status, { 'content-type': 'application/json', ...a.headers });
          res.end(a.body ?? '{}');
        })
        .catch(() => {
          res.destroy();
        })
        .finally(() => {
          inFlight.now--;
        });
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    requests,
    inFlight,
    respond(next) {
      answer = next;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
