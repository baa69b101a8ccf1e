#!/usr/bin/env node
/**
 * Runs the whole system on one machine, for trying it out: a producer (API
 * and UI) and one consumer, against REDIS_URL or, when none is given, a
 * private redis-server this script starts with append-only persistence in
 * ./.data/redis (so messages survive a restart).
 *
 * `pnpm start` builds first, then runs this. Plain Node, nothing to build.
 *
 *   PORT=4000          producer (API) port; fails if taken
 *   CONSUMER_PORT      consumer port; default 4001, or the next free one
 *   REDIS_URL          use this Redis (or redis+cluster:// Redis Cluster) instead of starting one
 *   REDIS_CLUSTER_NODES  or use this Redis Cluster
 *   other variables    passed on to both processes (see docs/configuration.md)
 *
 * States: starting -> running -> stopping -> stopped.
 *  - starting: checks ports, starts redis-server (unless REDIS_URL), spawns
 *    producer and consumer, waits for GET /api/health to answer 200.
 *  - running: prints how to use it; waits.
 *  - stopping: on SIGINT/SIGTERM (exit 0) or when any process exits on its
 *    own or does not come up (exit 1): SIGTERM to producer and consumer,
 *    wait for both, then SIGTERM to redis-server (it writes its AOF) and
 *    wait. A second signal, or a process that outlives its deadline, gets
 *    SIGKILL.
 *
 * Children run in their own process groups, so a Ctrl-C in the terminal
 * reaches only this script, which stops them in order: Redis goes last.
 *
 * Logs: when this script's stdout is a terminal, the producer's and the
 * consumer's JSON lines go through pino-pretty (coloured, one line each,
 * prefixed with the process and component); otherwise (a pipe, a file, a
 * log collector) they are written as they come, one JSON object a line.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { dirname, join, relative } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import pinoPretty from 'pino-pretty';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DATA_DIR = join(ROOT, '.data', 'redis');
const REDIS_LOG = join(DATA_DIR, 'redis.log');
/** Holds the pid of the script whose redis-server owns DATA_DIR: two servers must never share it. */
const OWNER_FILE = join(DATA_DIR, 'owner.pid');
const PRODUCER_MAIN = join(ROOT, 'packages', 'producer', 'dist', 'main.js');
const CONSUMER_MAIN = join(ROOT, 'packages', 'consumer', 'dist', 'main.js');
const HEALTH_TIMEOUT_MS = 60_000;
const REDIS_START_TIMEOUT_MS = 30_000;
/** Longer than the services' own deadline (SHUTDOWN_TIMEOUT_SECONDS, 25 s by default, plus their margin). */
const SERVICE_STOP_TIMEOUT_MS = ((Number(process.env.SHUTDOWN_TIMEOUT_SECONDS) || 25) + 10) * 1000;
const REDIS_STOP_TIMEOUT_MS = 30_000;

/** @typedef {{ name: string, child: import('node:child_process').ChildProcess, exited: Promise<void>, done: boolean }} Proc */

/** @type {Proc[]} */
const services = [];
/** @type {Proc | undefined} */
let redisProc;
/** @type {'starting' | 'running' | 'stopping'} */
let state = 'starting';
let signals = 0;

function say(message) {
  console.log(`[start] ${message}`);
}

function fail(message) {
  console.error(`[start] ${message}`);
}

/** Resolves true when nothing listens on `port` (on every interface, as the services bind). */
function portIsFree(port, host) {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A port the OS says is free on 127.0.0.1. */
function anyFreePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function parsePort(name, raw) {
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port < 1 || port > 65535) {
    fail(`${name}=${JSON.stringify(raw)}: expected a port number (1-65535)`);
    process.exit(1);
  }
  return port;
}

function redactUrl(url) {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    // redis+cluster://user:password@host:port,host:port is no WHATWG URL.
    return url.replace(/^([a-z+]+:\/\/[^:@/]*:)[^@/]*@/i, '$1***@');
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sends PING over a raw connection; resolves true on +PONG (false while Redis loads its AOF, or is not up). */
function redisPing(port) {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let reply = '';
    const finish = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) finish(reply.startsWith('+PONG'));
    });
  });
}

/** Writes to this script's stdout, and is never ended with a child's output. */
const terminal = new Writable({
  write(chunk, _encoding, done) {
    process.stdout.write(chunk, done);
  },
});

/** A stream that prints one service's pino JSON lines as coloured, human-readable lines. */
function prettyLines(name) {
  return pinoPretty({
    destination: terminal,
    colorize: true,
    singleLine: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,service,component',
    messageFormat: `${name}{if component}/{component}{end}: {msg}`,
  });
}

/**
 * Starts a child in its own process group, watching for an unexpected exit. Its stdout is
 * inherited, or, with `pretty` (a service's JSON logs on a terminal), printed through pino-pretty.
 */
function launch(name, command, args, env, pretty = false) {
  const stdout = pretty ? 'pipe' : 'inherit';
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', stdout, 'inherit'], detached: true });
  if (pretty) child.stdout?.pipe(prettyLines(name));
  /** @type {Proc} */
  const proc = { name, child, done: false, exited: Promise.resolve() };
  proc.exited = new Promise((resolve) => {
    child.once('error', (err) => {
      const hint =
        /** @type {NodeJS.ErrnoException} */ (err).code === 'ENOENT' && name === 'redis-server'
          ? ' (install Redis 6.2 or newer, or set REDIS_URL)'
          : '';
      proc.done = true;
      resolve();
      unexpected(name, `could not be started: ${err.message}${hint}`);
    });
    child.once('exit', (code, signal) => {
      proc.done = true;
      resolve();
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      if (state !== 'stopping') unexpected(name, name === 'redis-server' ? `${how} (see ${REDIS_LOG})` : how);
    });
  });
  return proc;
}

function unexpected(name, how) {
  if (state === 'stopping') return;
  fail(`${name} ${how}; stopping the rest`);
  void shutdown(1);
}

function kill(proc, signal) {
  if (proc.done || proc.child.pid === undefined) return;
  try {
    proc.child.kill(signal);
  } catch {
    // already gone
  }
}

/** SIGTERM, then SIGKILL if it has not exited by the deadline. */
async function stop(procs, timeoutMs) {
  const running = procs.filter((p) => !p.done);
  if (running.length === 0) return;
  for (const p of running) kill(p, 'SIGTERM');
  let timer;
  const deadline = new Promise((resolve) => {
    timer = setTimeout(() => resolve('late'), timeoutMs);
  });
  const outcome = await Promise.race([Promise.all(running.map((p) => p.exited)).then(() => 'done'), deadline]);
  clearTimeout(timer);
  if (outcome === 'late') {
    for (const p of running.filter((q) => !q.done)) {
      fail(`${p.name} did not stop within ${timeoutMs / 1000} s; killing it`);
      kill(p, 'SIGKILL');
    }
    await Promise.all(running.map((p) => p.exited));
  }
}

/** @type {Promise<void> | undefined} */
let stopping;

function shutdown(code) {
  if (stopping) return stopping;
  state = 'stopping';
  stopping = (async () => {
    await stop(services, SERVICE_STOP_TIMEOUT_MS);
    if (redisProc && !redisProc.done) {
      say('stopping redis-server (it writes its append-only file)');
      await stop([redisProc], REDIS_STOP_TIMEOUT_MS);
    }
    say(code === 0 ? 'stopped' : 'stopped after a failure');
    process.exit(code);
  })();
  return stopping;
}

function onSignal(signal) {
  signals++;
  if (signals === 1) {
    console.log('');
    say(
      `${signal}: stopping producer and consumer, then Redis (${signal === 'SIGINT' ? 'Ctrl-C' : 'signal'} again to force)`,
    );
    void shutdown(0);
    return;
  }
  fail('forced stop: killing every process');
  for (const p of [...services, ...(redisProc ? [redisProc] : [])]) kill(p, 'SIGKILL');
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return /** @type {NodeJS.ErrnoException} */ (err).code === 'EPERM';
  }
}

/** Claims DATA_DIR for this script; false when another live one holds it. */
function claimDataDir() {
  mkdirSync(DATA_DIR, { recursive: true });
  try {
    const owner = Number(readFileSync(OWNER_FILE, 'utf8').trim());
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) return false;
  } catch {
    // no owner yet
  }
  writeFileSync(OWNER_FILE, `${process.pid}\n`);
  process.on('exit', () => rmSync(OWNER_FILE, { force: true }));
  return true;
}

async function startRedis() {
  if (!claimDataDir()) {
    fail(
      `another pnpm start (pid ${readFileSync(OWNER_FILE, 'utf8').trim()}) is using ${DATA_DIR}: stop it first, or set REDIS_URL`,
    );
    process.exit(1);
  }
  const port = await anyFreePort();
  // prettier-ignore
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', DATA_DIR,
    '--appendonly', 'yes',
    '--appendfsync', 'everysec',
    '--save', '',
    '--daemonize', 'no',
    '--loglevel', 'notice',
    '--logfile', REDIS_LOG,
  ];
  redisProc = launch('redis-server', 'redis-server', args, process.env);
  const deadline = Date.now() + REDIS_START_TIMEOUT_MS;
  while (!(await redisPing(port))) {
    if (state === 'stopping') return undefined;
    if (Date.now() > deadline) {
      fail(`redis-server did not answer on port ${port} within ${REDIS_START_TIMEOUT_MS / 1000} s (see ${REDIS_LOG})`);
      await shutdown(1);
    }
    await sleep(50);
  }
  return `redis://127.0.0.1:${port}`;
}

/** Resolves once GET /api/health answers 200; stops everything if it never does. */
async function waitForHealth(port) {
  const url = `http://127.0.0.1:${port}/api/health`;
  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  for (;;) {
    if (state === 'stopping') return false;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.body?.cancel();
      if (res.status === 200) return true;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      fail(`the producer did not answer 200 on ${url} within ${HEALTH_TIMEOUT_MS / 1000} s`);
      await shutdown(1);
      return false;
    }
    await sleep(200);
  }
}

function printUsage(producerPort, consumerPort, redisUrl, ownRedis) {
  const api = `http://127.0.0.1:${producerPort}`;
  // Whether API_TOKENS is set (the producer refuses a bad value before this is printed); never the tokens.
  const auth = (process.env.API_TOKENS ?? '').trim() !== '';
  const json = `-H 'content-type: application/json'${auth ? ' -H "authorization: Bearer $TOKEN"' : ''}`;
  // As the services read REFUSE_PRIVATE_TARGETS (they refuse a bad value before this is printed).
  const refusePrivate = ['true', '1', 'yes'].includes((process.env.REFUSE_PRIVATE_TARGETS ?? '').trim().toLowerCase());
  console.log(`
Postoffice is running.

  web UI     ${api}/
  API        ${api}/api
  consumer   http://127.0.0.1:${consumerPort}/healthz
  Redis      ${process.env.REDIS_CLUSTER_NODES ? `cluster ${process.env.REDIS_CLUSTER_NODES}` : redactUrl(redisUrl)}${ownRedis ? `  (private, data in ${relative(process.cwd(), DATA_DIR) || DATA_DIR})` : ''}
  auth       ${auth ? 'on: API_TOKENS is set; TOKEN=<one of them> for the commands below' : 'off: the API is open (set API_TOKENS to require a token)'}
  targets    ${refusePrivate ? 'public only: REFUSE_PRIVATE_TARGETS is on; loopback and private addresses are refused (the example below is)' : 'any address: REFUSE_PRIVATE_TARGETS is off, so publishers may reach loopback and private addresses (the Helm chart turns it on)'}

Try it (point the publisher's target at an HTTP endpoint of yours):

  curl -sS -X POST ${api}/api/topics ${json} \\
    -d '{"name":"orders","origin_host":"example.com"}'
  curl -sS -X POST ${api}/api/publishers ${json} \\
    -d '{"active":true,"topic":"orders","target":"http://127.0.0.1:8080/hook","type":"http"}'
  curl -sS -X POST ${api}/api/messages ${json} \\
    -d '{"topic":"orders","payload":{"order":42},"attributes":{"source":"curl"}}'

Ctrl-C stops everything.
`);
}

async function main() {
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A last resort if this script dies on an uncaught error: leave no process behind.
  process.on('exit', () => {
    for (const p of [...services, ...(redisProc ? [redisProc] : [])]) kill(p, 'SIGKILL');
  });

  for (const main of [PRODUCER_MAIN, CONSUMER_MAIN]) {
    if (!existsSync(main)) {
      fail(`${relative(ROOT, main)} is missing: build first (pnpm build), or run pnpm start`);
      process.exit(1);
    }
  }

  const producerPort = parsePort('PORT', process.env.PORT || '4000');
  if (!(await portIsFree(producerPort))) {
    fail(`port ${producerPort} is already in use: stop what listens there, or set PORT to another port`);
    process.exit(1);
  }
  let consumerPort;
  if (process.env.CONSUMER_PORT) {
    consumerPort = parsePort('CONSUMER_PORT', process.env.CONSUMER_PORT);
    if (consumerPort === producerPort || !(await portIsFree(consumerPort))) {
      fail(`CONSUMER_PORT ${consumerPort} is already in use`);
      process.exit(1);
    }
  } else {
    for (let p = 4001; p < 4100 && consumerPort === undefined; p++) {
      if (p !== producerPort && (await portIsFree(p))) consumerPort = p;
    }
    consumerPort ??= await anyFreePort();
  }

  let redisUrl = process.env.REDIS_URL;
  const clusterNodes = process.env.REDIS_CLUSTER_NODES;
  const ownRedis = !redisUrl && !clusterNodes;
  if (ownRedis) {
    say(`starting a private redis-server (data in ${relative(process.cwd(), DATA_DIR) || DATA_DIR})`);
    redisUrl = await startRedis();
    if (!redisUrl) return;
  } else if (clusterNodes) {
    say(`using the Redis Cluster REDIS_CLUSTER_NODES=${clusterNodes}`);
  } else {
    say(`using REDIS_URL ${redactUrl(redisUrl)}`);
  }

  const env = (port) => ({ ...process.env, PORT: String(port), ...(redisUrl ? { REDIS_URL: redisUrl } : {}) });
  const pretty = process.stdout.isTTY === true;
  services.push(launch('producer', process.execPath, [PRODUCER_MAIN], env(producerPort), pretty));
  services.push(launch('consumer', process.execPath, [CONSUMER_MAIN], env(consumerPort), pretty));

  if (!(await waitForHealth(producerPort))) return;
  state = 'running';
  printUsage(producerPort, consumerPort, redisUrl, ownRedis);
}

main().catch((err) => {
  fail(`failed: ${err instanceof Error ? err.stack : String(err)}`);
  void shutdown(1);
});
