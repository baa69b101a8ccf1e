/**
 * Test support: a private `redis-server` on a free port, one per test file,
 * with nothing kept on disk unless asked. Never touches a server it did not
 * start.
 *
 * With `POSTOFFICE_TEST_REDIS=cluster` in the environment (`pnpm
 * test:cluster`), `startRedis()` starts a Redis Cluster of three masters
 * instead (three `redis-server --cluster-enabled yes` and `redis-cli
 * --cluster create`), and its `url` is the cluster's
 * (`redis+cluster://127.0.0.1:p1,...`): every test that goes through
 * `url` runs against the cluster unchanged.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { waitFor } from './wait.js';

export interface RedisServer {
  /** The first (or only) server's port. */
  readonly port: number;
  /** Every server's port: one, or the three masters of a cluster. */
  readonly ports: readonly number[];
  /** `redis://127.0.0.1:port`, or `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3`. */
  readonly url: string;
  readonly cluster: boolean;
  readonly dir: string;
  /** Stops the server(s) (SIGKILL with `hard`) and removes the directory unless `keepData`. */
  stop(options?: { hard?: boolean; keepData?: boolean }): Promise<void>;
}

/** What the leak check can stop: a server, or a set of them (a replicated cluster, a Sentinel set). */
export interface RunningServer {
  stop(options?: { hard?: boolean }): Promise<void>;
}

/** Servers started and not stopped yet (the leak check stops and reports them). */
export const runningServers = new Set<RunningServer>();

/** Whether this run's tests use a Redis Cluster (`POSTOFFICE_TEST_REDIS=cluster`). */
export const CLUSTER_MODE = process.env.POSTOFFICE_TEST_REDIS === 'cluster';

const CLUSTER_SIZE = 3;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The URL that reaches servers on `ports`: one Redis, or a cluster of them. */
export function redisUrl(ports: readonly number[]): string {
  return ports.length === 1
    ? `redis://127.0.0.1:${ports[0]}`
    : `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`;
}

/**
 * Free ports for a Redis (or, in cluster mode, a cluster) to be started
 * later with `startRedis({ ports })`, and the URL that will reach it.
 */
export async function reserveRedis(): Promise<{ ports: number[]; url: string }> {
  const ports = await freeRedisPorts(CLUSTER_MODE);
  return { ports, url: redisUrl(ports) };
}

/** One free port, or three for a cluster (see `freeClusterPort`). */
async function freeRedisPorts(cluster: boolean, given: readonly number[] = []): Promise<number[]> {
  const ports = [...given];
  while (ports.length < (cluster ? CLUSTER_SIZE : 1)) {
    ports.push(cluster ? await freeClusterPort(ports) : await freePort());
  }
  return cluster ? ports : ports.slice(0, 1);
}

/**
 * A free port for a cluster node, not in `taken`: a node also listens on
 * its port + 10000 (the cluster bus), so that one must be free and in
 * range too.
 */
export async function freeClusterPort(taken: readonly number[] = []): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (taken.includes(port)) continue;
    if (port + 10_000 > 65_535 || !(await isFree(port + 10_000))) continue;
    return port;
  }
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * Starts a private Redis: one server, or in cluster mode a three-master
 * cluster. `ports` starts it on given ports (a server that comes back
 * where a stopped one was); `cluster` asks for one server (false) or a
 * cluster (true) whatever the mode, for a test about one or the other.
 * `dir` starts it on the data directory of a stopped one (`stop({ keepData:
 * true })`, same `ports`): a restart that finds its append-only file, and
 * for a cluster its node configuration, so the cluster is not created anew.
 */
export async function startRedis(
  options: { ports?: readonly number[]; cluster?: boolean; args?: string[]; dir?: string } = {},
): Promise<RedisServer> {
  const cluster = options.cluster ?? (options.ports ? options.ports.length > 1 : CLUSTER_MODE);
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'po-redis-'));
  const ports = await freeRedisPorts(cluster, options.ports);
  const children: RedisProcess[] = [];
  let stopped = false;
  const stop = async ({ hard = false, keepData = false } = {}): Promise<void> => {
    if (!stopped) {
      stopped = true;
      await Promise.all(children.map((c) => c.stop(hard)));
    }
    runningServers.delete(server);
    if (!keepData) rmSync(dir, { recursive: true, force: true });
  };
  const server: RedisServer = { port: ports[0] as number, ports, url: redisUrl(ports), cluster, dir, stop };
  runningServers.add(server);
  try {
    const clusterArgs = (port: number): string[] =>
      cluster
        ? [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            join(dir, `nodes-${port}.conf`),
            // A node is failed after this long without an answer: long, so a busy host never splits the cluster.
            '--cluster-node-timeout',
            '30000',
          ]
        : [];
    for (const port of ports) {
      children.push(spawnServer(port, dir, [...clusterArgs(port), ...(options.args ?? [])]));
    }
    await Promise.all(children.map((c) => c.ready));
    if (cluster && options.dir) await waitClusterOk(ports);
    else if (cluster) await createCluster(ports);
  } catch (err) {
    await stop({ hard: true });
    throw err;
  }
  return server;
}

/** A `redis-server` process started by `spawnRedis`. */
export interface RedisProcess {
  readonly port: number;
  readonly child: ChildProcess;
  /** Resolves once the server answers PING (rejects if it exits or does not within 10 s). */
  readonly ready: Promise<void>;
  /** Resolves when the process has ended. */
  readonly exited: Promise<void>;
  /** Everything it printed so far. */
  output(): string;
  /** SIGTERM (SIGKILL with `hard`), then waits for the exit; nothing if it has ended. */
  stop(hard: boolean): Promise<void>;
}

/** The test suite's usual server arguments: 127.0.0.1 on `port`, data in `dir`, no persistence, then `extra` (later arguments win). */
export function serverArgs(port: number, dir: string, extra: string[]): string[] {
  return [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--daemonize',
    'no',
    '--loglevel',
    'warning',
    ...extra,
  ];
}

function spawnServer(port: number, dir: string, extra: string[]): RedisProcess {
  return spawnRedis(port, serverArgs(port, dir, extra));
}

/**
 * Runs `redis-server` with exactly `args` (which must make it listen on
 * 127.0.0.1:`port`: a config file, `--sentinel`, ...) and waits, through
 * `ready`, until it answers PING there.
 */
export function spawnRedis(port: number, args: string[]): RedisProcess {
  const child: ChildProcess = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  // Redis logs to stdout; both are kept to say why a server did not start.
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = (async () => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const probe = new Redis(port, '127.0.0.1', {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      probe.on('error', () => {});
      try {
        await probe.connect();
        if ((await probe.ping()) === 'PONG') return;
      } catch {
        // not yet
      } finally {
        probe.disconnect();
      }
      if (child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`redis-server on port ${port} did not start: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  return {
    port,
    child,
    ready,
    exited,
    output: () => stderr,
    async stop(hard) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(hard ? 'SIGKILL' : 'SIGTERM');
        await exited;
      }
    },
  };
}

/** Joins the servers on `ports` into a cluster of masters and waits until every node says it is ok. */
async function createCluster(ports: readonly number[]): Promise<void> {
  const nodes = ports.map((p) => `127.0.0.1:${p}`);
  await redisCli(['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes']);
  await waitClusterOk(ports);
}

/** Runs `redis-cli` with `args`; answers what it printed, throws with it unless it exits 0. */
export async function redisCli(args: string[]): Promise<string> {
  const cli = spawn('redis-cli', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  cli.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  cli.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => cli.once('exit', (c) => resolve(c)));
  if (code !== 0) throw new Error(`redis-cli ${args.slice(0, 2).join(' ')} failed (${code}): ${out}`);
  return out;
}

/** Waits until every node of the cluster on `ports` says it is ok and knows the others. */
export async function waitClusterOk(ports: readonly number[], timeoutMs = 30_000): Promise<void> {
  const clients = ports.map((p) => {
    const c = new Redis(p, '127.0.0.1', { maxRetriesPerRequest: 1 });
    c.on('error', () => {});
    return c;
  });
  try {
    await waitFor(
      async () => {
        const infos = await Promise.all(clients.map((c) => c.cluster('INFO')));
        const known = new RegExp(`cluster_known_nodes:${ports.length}\\b`);
        return infos.every((i) => /cluster_state:ok/.test(i) && known.test(i));
      },
      'the cluster to be ok on every node',
      timeoutMs,
      50,
    );
  } finally {
    for (const c of clients) c.disconnect();
  }
}
