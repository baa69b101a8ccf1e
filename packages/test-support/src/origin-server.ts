/**
 * Test support: a sender's origin as Postoffice's rescuer knows it, a real
 * HTTP server on port 0. `GET <url>` answers the items still pending (a JSON
 * list), `DELETE <url><id>/` removes one (204). The test may change how the
 * list is answered, make deletions fail, or hold requests unanswered.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';

export interface OriginRequest {
  readonly method: string;
  readonly path: string;
}

export interface OriginServer {
  /** The `origin_host` to give a topic: `http://127.0.0.1:<port>/pending/`. */
  readonly url: string;
  /** Pending items by id, in the order added. */
  readonly items: Map<string, Record<string, unknown>>;
  /** Every request, in order. */
  readonly requests: OriginRequest[];
  /** Ids deleted (answered 2xx), in order. */
  readonly deleted: string[];
  add(...items: Record<string, unknown>[]): void;
  /** Answers the list with this status and body instead (`hang`: never answers). */
  listAnswer(answer: { status: number; body: string } | 'hang' | undefined): void;
  /** Fails the next `times` deletions with `status`. */
  failDeletes(times: number, status?: number): void;
  /** GET requests so far. */
  lists(): number;
  close(): Promise<void>;
}

export async function startOrigin(): Promise<OriginServer> {
  const items = new Map<string, Record<string, unknown>>();
  const requests: OriginRequest[] = [];
  const deleted: string[] = [];
  let answer: { status: number; body: string } | 'hang' | undefined;
  let failing = { times: 0, status: 500 };
  const hanging = new Set<ServerResponse>();
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const path = req.url ?? '';
      requests.push({ method: req.method ?? '', path });
      if (req.method === 'GET' && path === '/pending/') {
        if (answer === 'hang') {
          hanging.add(res);
          return;
        }
        const a = answer ?? { status: 200, body: JSON.stringify([...items.values()]) };
        res.writeHead(a.status, { 'content-type': 'application/json' });
        res.end(a.body);
        return;
      }
      const m = /^\/pending\/([^/]+)\/$/.exec(path);
      if (req.method === 'DELETE' && m) {
        if (failing.times > 0) {
          failing.times--;
          res.writeHead(failing.status).end();
          return;
        }
        const id = decodeURIComponent(m[1] as string);
        items.delete(id);
        deleted.push(id);
        res.writeHead(204).end();
        return;
      }
      res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}/pending/`,
    items,
    requests,
    deleted,
    add(...added) {
      for (const item of added) items.set(String(item.id), item);
    },
    listAnswer(a) {
      answer = a;
    },
    failDeletes(times, status = 500) {
      failing = { times, status };
    },
    lists: () => requests.filter((r) => r.method === 'GET').length,
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
