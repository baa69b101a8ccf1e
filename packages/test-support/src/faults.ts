/**
 * Fault suite support: the world every case runs in (a private Redis, a
 * counting receiver, the processes it started, see `faultWorld`), a
 * receiver that can go down and come back on the same port, RSS sampling
 * of a process, HTTP load helpers, and the figures every case prints and
 * writes to test-output/faults/<case>.json.
 */
import { createServer, request as httpRequest, type Server, type IncomingMessage } from 'node:http';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { connect as connectTcp, type Socket } from 'node:net';
import { api, killAll, startApp, type AppProcess } from './processes.js';
import { startRedis, type RedisServer } from './redis-server.js';
import type { Delivery } from './history.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Fast failure detection: 1 s heartbeats, a dead node's entries taken over 3 s after its last one. */
export const FAST_FAILOVER_ENV: Readonly<Record<string, string>> = {
  HEARTBEAT_SECONDS: '1',
  CLAIM_TIMEOUT_SECONDS: '3',
  RETRY_POLL_MS: '100',
};

/** What a fault case runs in; set up by the hooks `faultWorld` registers. */
export interface FaultWorld {
  /** The private Redis; a case that restarts it puts the new one here. */
  redis: RedisServer;
  /** The counting receiver. */
  readonly sink: Sink;
  /** Every process started through `start` (or pushed here), killed after the case. */
  readonly apps: AppProcess[];
  /** Starts a producer or consumer on `redis`, with the world's env and then `env`, killed after the case. */
  start(which: 'producer' | 'consumer', env?: Record<string, string>): Promise<AppProcess>;
}

/**
 * Registers, in the calling `describe`, the hooks of a fault case's world:
 * before, a private Redis (`redisArgs` given to it) and a sink; after, every
 * process killed, the sink closed and Redis stopped. `each` makes a fresh
 * world for each test (beforeEach/afterEach); `env` goes to every process
 * started; `stopping` runs first at the end (loops that publish are told to
 * stop).
 */
export function faultWorld(
  options: { env?: Record<string, string>; redisArgs?: string[]; each?: boolean; stopping?: () => void } = {},
): FaultWorld {
  let redis: RedisServer | undefined;
  let sink: Sink | undefined;
  const apps: AppProcess[] = [];
  const world: FaultWorld = {
    get redis(): RedisServer {
      if (!redis) throw new Error('the fault world is used before its hooks ran');
      return redis;
    },
    set redis(server: RedisServer) {
      redis = server;
    },
    get sink(): Sink {
      if (!sink) throw new Error('the fault world is used before its hooks ran');
      return sink;
    },
    apps,
    async start(which, env = {}) {
      const app = await startApp(which, { REDIS_URL: world.redis.url, ...options.env, ...env });
      apps.push(app);
      return app;
    },
  };
  const setUp = async (): Promise<void> => {
    redis = await startRedis(options.redisArgs ? { args: options.redisArgs } : {});
    sink = await startSink();
  };
  const tearDown = async (): Promise<void> => {
    options.stopping?.();
    await killAll(apps.splice(0));
    await sink?.close();
    await redis?.stop();
  };
  if (options.each) {
    beforeEach(setUp);
    afterEach(tearDown);
  } else {
    before(setUp);
    after(tearDown);
  }
  return world;
}

/** A receiver that counts deliveries by `message-id` header, per path. */
export interface Sink {
  readonly port: number;
  /** `http://127.0.0.1:<port><path>`. */
  url(path: string): string;
  /** Every 2xx answer on `/hook`, by message id: how many times it was received. */
  readonly counts: Map<string, number>;
  /** The same, for any path. */
  countsOf(path: string): Map<string, number>;
  /** Message ids in the order they were answered 2xx, per path. */
  readonly order: Map<string, string[]>;
  /** Every 2xx answer on `path`, in order, with its time (ms since the epoch). */
  deliveries(path: string): readonly Delivery[];
  /** Requests being answered right now. */
  readonly inFlight: { now: number; max: number };
  /** Answer after this many ms (a slow receiver); 0 by default. */
  delayMs: number;
  /** Stops listening and drops every connection: the target is down (connection refused). */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startSink(): Promise<Sink> {
  const byPath = new Map<string, Map<string, number>>();
  const countsOf = (path: string): Map<string, number> => {
    let m = byPath.get(path);
    if (!m) byPath.set(path, (m = new Map()));
    return m;
  };
  const order = new Map<string, string[]>();
  const timed = new Map<string, Delivery[]>();
  const deliveries = (path: string): Delivery[] => {
    let list = timed.get(path);
    if (!list) timed.set(path, (list = []));
    return list;
  };
  const inFlight = { now: 0, max: 0 };
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const handler = (req: IncomingMessage, res: import('node:http').ServerResponse): void => {
    req.resume();
    req.on('end', () => {
      inFlight.now++;
      inFlight.max = Math.max(inFlight.max, inFlight.now);
      const finish = (): void => {
        inFlight.now--;
        const id = String(req.headers['message-id']);
        const path = req.url ?? '';
        const counts = countsOf(path);
        counts.set(id, (counts.get(id) ?? 0) + 1);
        let list = order.get(path);
        if (!list) order.set(path, (list = []));
        list.push(id);
        deliveries(path).push({ id, at: Date.now() });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      };
      if (sink.delayMs > 0) setTimeout(finish, sink.delayMs);
      else finish();
    });
  };
  const listen = async (): Promise<void> => {
    const s = createServer(handler);
    s.keepAliveTimeout = 60_000;
    s.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve());
    });
    const address = s.address();
    port = typeof address === 'object' && address ? address.port : 0;
    server = s;
  };
  const down = async (): Promise<void> => {
    const s = server;
    server = undefined;
    if (!s) return;
    const closed = new Promise<void>((resolve) => s.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closed;
  };
  await listen();
  const sink: Sink = {
    get port() {
      return port;
    },
    url: (path) => `http://127.0.0.1:${port}${path}`,
    counts: countsOf('/hook'),
    countsOf,
    order,
    deliveries,
    inFlight,
    delayMs: 0,
    down,
    up: listen,
    close: down,
  };
  return sink;
}

/** Resident set size of a process in MB (Linux, /proc/<pid>/status VmRSS). */
export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
  return Math.round((kb / 1024) * 10) / 10;
}

/** Samples a process' RSS every `intervalMs` until stopped. */
export function sampleRss(app: AppProcess, intervalMs = 250): { samples: number[]; stop(): number[] } {
  const samples: number[] = [];
  const take = (): void => {
    try {
      samples.push(rssMb(app.child.pid!));
    } catch {
      // the process has ended
    }
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    samples,
    stop() {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}

/** Messages received more than once, counted once per extra delivery. */
export function duplicates(counts: Map<string, number>): number {
  let n = 0;
  for (const c of counts.values()) n += c - 1;
  return n;
}

/** Acknowledged ids never received. */
export function lost(acknowledged: Iterable<string>, counts: Map<string, number>): number {
  let n = 0;
  for (const id of acknowledged) if (!counts.has(id)) n++;
  return n;
}

/**
 * Prints a case's figures on one line (`[faults] <case> {json}`) and writes
 * them to test-output/faults/<case>.json.
 */
export function report(name: string, figures: Record<string, unknown>): void {
  const dir = join(ROOT, 'test-output', 'faults');
  mkdirSync(dir, { recursive: true });
  const record = { case: name, at: new Date().toISOString(), ...figures };
  writeFileSync(join(dir, `${name}.json`), `${JSON.stringify(record, null, 2)}\n`);
  console.log(`      [faults] ${name} ${JSON.stringify(figures)}`);
}

/** Creates a topic and answers its name. */
export async function createTopic(producer: AppProcess, name: string): Promise<string> {
  const res = await api(producer, 'POST', '/api/topics', { name, origin_host: 'faults' });
  if (res.status !== 201) throw new Error(`topic ${name}: ${res.status} ${JSON.stringify(res.json)}`);
  return name;
}

/** Creates an http publisher and answers its id. */
export async function createPublisher(
  producer: AppProcess,
  fields: Record<string, unknown> & { topic: string; target: string },
): Promise<string> {
  const res = await api(producer, 'POST', '/api/publishers', { type: 'http', active: true, ...fields });
  if (res.status !== 201) throw new Error(`publisher: ${res.status} ${JSON.stringify(res.json)}`);
  return String(res.json.data.id);
}

/** Publishes `count` messages with /api/bulk_messages in batches; answers the acknowledged ids in order. */
export async function publishBulk(
  producer: AppProcess,
  topic: string,
  count: number,
  options: { batch?: number; payload?: (n: number) => unknown; onBatch?: (done: number) => Promise<void> } = {},
): Promise<string[]> {
  const batch = options.batch ?? 1000;
  const payload = options.payload ?? ((n: number) => ({ n }));
  const ids: string[] = [];
  for (let from = 0; from < count; from += batch) {
    const size = Math.min(batch, count - from);
    const res = await api(producer, 'POST', '/api/bulk_messages', {
      topic,
      payload: Array.from({ length: size }, (_, i) => payload(from + i)),
    });
    if (res.status !== 201) throw new Error(`bulk: ${res.status} ${JSON.stringify(res.json)}`);
    ids.push(...(res.json.data.ids as string[]));
    await options.onBatch?.(ids.length);
  }
  return ids;
}

export interface RawAnswer {
  status: number;
  body: string;
}

/**
 * One HTTP request on a fresh connection (no keep-alive), with a raw body:
 * the answer, or the error code (ECONNREFUSED, ECONNRESET, ...) as thrown.
 */
export function rawRequest(
  url: string,
  method: string,
  path: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
  timeoutMs = 30_000,
): Promise<RawAnswer> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method,
        path,
        agent: false,
        headers: {
          connection: 'close',
          ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }),
          ...headers,
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** Runs `task` over `count` indexes with at most `parallel` at once. */
export async function pool(count: number, parallel: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

/** Growth in MB and percent between the median of early samples (after warm-up) and the median of the last ones. */
export function growth(
  samples: number[],
  warmup = 0.2,
): { warmMb: number; endMb: number; maxMb: number; growthMb: number; growthPct: number } {
  const median = (xs: number[]): number => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)] ?? NaN;
  };
  const start = Math.max(1, Math.floor(samples.length * warmup));
  const window = Math.max(1, Math.floor(samples.length * 0.1));
  const warmMb = median(samples.slice(start, start + window));
  const endMb = median(samples.slice(-window));
  const growthMb = Math.round((endMb - warmMb) * 10) / 10;
  return {
    warmMb,
    endMb,
    maxMb: Math.max(...samples),
    growthMb,
    growthPct: Math.round((growthMb / warmMb) * 1000) / 10,
  };
}

/** CPU time a process has used so far, user and system, in ms (Linux, /proc/<pid>/stat). */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** USER_HZ: 100 on every Linux the suite runs on. */
const CLOCK_TICKS_PER_SECOND = 100;

export interface SlowAnswer {
  /** The status line's code, 0 when the server answered nothing. */
  readonly status: number;
  /** The body of the answer, when there was one. */
  readonly body: string;
  /** How long the connection stayed open, ms. */
  readonly heldMs: number;
  /** Bytes written before the connection ended. */
  readonly sent: number;
  /** Whether the server ended the connection (false: the client gave up after `giveUpMs`). */
  readonly closedByServer: boolean;
}

/**
 * A slow client: writes the first `fast` bytes of `request` at once, then
 * one byte every `everyMs` ms, until the server closes the connection or
 * `giveUpMs` has passed. The answer, if any, and how long it was held.
 */
export function slowRequest(
  url: string,
  request: Buffer,
  options: { fast: number; everyMs: number; giveUpMs: number },
): Promise<SlowAnswer> {
  const target = new URL(url);
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connectTcp(Number(target.port), target.hostname);
    const chunks: Buffer[] = [];
    let sent = 0;
    let byServer = true;
    let trickle: NodeJS.Timeout | undefined;
    const write = (bytes: Buffer): void => {
      if (socket.destroyed || !socket.writable) return;
      socket.write(bytes);
      sent += bytes.length;
    };
    const giveUp = setTimeout(() => {
      byServer = false;
      socket.destroy();
    }, options.giveUpMs);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => undefined);
    socket.once('connect', () => {
      write(request.subarray(0, options.fast));
      let at = options.fast;
      trickle = setInterval(() => {
        if (at >= request.length) return clearInterval(trickle);
        write(request.subarray(at, at + 1));
        at++;
      }, options.everyMs);
    });
    socket.once('close', () => {
      clearInterval(trickle);
      clearTimeout(giveUp);
      const text = Buffer.concat(chunks).toString('utf8');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      const body = text.includes('\r\n\r\n') ? text.slice(text.indexOf('\r\n\r\n') + 4) : '';
      resolve({ status, body, heldMs: Date.now() - started, sent, closedByServer: byServer });
    });
  });
}
