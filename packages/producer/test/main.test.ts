import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { get } from 'node:http';
import { fileURLToPath } from 'node:url';
import { reserveRedis, startRedis, waitFor, type RedisServer } from '@postoffice/test-support';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

interface Running {
  readonly child: ChildProcess;
  readonly stdout: string[];
  readonly stderr: string[];
  readonly exited: Promise<number | null>;
}

function run(env: Record<string, string>): Running {
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const collect = (into: string[]) => {
    let rest = '';
    return (chunk: Buffer) => {
      const lines = (rest + chunk.toString()).split('\n');
      rest = lines.pop() ?? '';
      into.push(...lines);
    };
  };
  child.stdout.on('data', collect(stdout));
  child.stderr.on('data', collect(stderr));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, stdout, stderr, exited };
}

/** The port the process listens on, from fastify's "Server listening at" line. */
async function listeningPort(p: Running): Promise<number> {
  const line = await waitFor(() => p.stdout.find((l) => l.includes('Server listening at')), 'the producer to listen');
  const port = /127\.0\.0\.1:(\d+)/.exec(line)?.[1];
  if (!port) throw new Error(`no port in ${line}`);
  return Number(port);
}

function getJson(port: number, path: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }));
    });
    req.on('error', reject);
  });
}

describe('node dist/main.js', () => {
  const started: Running[] = [];
  let redis: RedisServer;

  before(async function () {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`pnpm build\` first`);
    redis = await startRedis();
  });
  after(async () => {
    for (const p of started) {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill('SIGKILL');
        await p.exited;
      }
    }
    await redis.stop();
  });

  function start(env: Record<string, string>): Running {
    const p = run(env);
    started.push(p);
    return p;
  }

  it('exits 1 with one line naming each bad variable', async () => {
    const p = start({ PORT: 'abc', REDIS_URL: 'http://nope' });
    expect(await p.exited).to.equal(1);
    const lines = p.stderr.filter((l) => l !== '');
    expect(lines).to.have.length(2);
    expect(lines.find((l) => l.includes('PORT'))).to.include('PORT="abc"');
    expect(lines.find((l) => l.includes('REDIS_URL'))).to.include('REDIS_URL="http://nope"');
    expect(p.stdout.join('')).to.equal('');
  });

  it('serves the API and exits 0 on SIGTERM', async () => {
    const p = start({ REDIS_URL: redis.url, HOST: '127.0.0.1', PORT: '0' });
    const port = await listeningPort(p);
    expect(await getJson(port, '/api/health')).to.deep.equal({ status: 200, body: { status: 'ok' } });
    expect(p.stdout.some((l) => l.includes('redis version checked'))).to.equal(true);
    p.child.kill('SIGTERM');
    expect(await p.exited).to.equal(0);
    expect(p.stdout.some((l) => l.includes('"msg":"stopped"'))).to.equal(true);
  });

  it('talks to a Redis Cluster named by REDIS_CLUSTER_NODES, whatever REDIS_URL names', async () => {
    const cluster = await startRedis({ cluster: true });
    try {
      const nodes = cluster.ports.map((port) => `127.0.0.1:${port}`).join(',');
      const p = start({ REDIS_URL: 'redis://127.0.0.1:1', REDIS_CLUSTER_NODES: nodes, HOST: '127.0.0.1', PORT: '0' });
      const port = await listeningPort(p);
      expect(await getJson(port, '/api/health')).to.deep.equal({ status: 200, body: { status: 'ok' } });
      const post = (path: string, body: unknown) =>
        fetch(`http://127.0.0.1:${port}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
      expect((await post('/api/topics', { name: 'orders', origin_host: 'test' })).status).to.equal(201);
      expect((await post('/api/messages', { topic: 'orders', payload: { a: 1 } })).status).to.equal(201);
      expect(await getJson(port, '/api/topics/orders')).to.nested.include({ status: 200, 'body.data.received': 1 });
      p.child.kill('SIGTERM');
      expect(await p.exited).to.equal(0);
    } finally {
      await cluster.stop();
    }
  });

  it('starts without Redis, answers 503 until it is there, and still exits 0 on SIGINT', async () => {
    const later = await reserveRedis();
    const p = start({ REDIS_URL: later.url, HOST: '127.0.0.1', PORT: '0' });
    const apiPort = await listeningPort(p);
    expect(p.stdout.some((l) => l.includes('redis is unreachable'))).to.equal(true);
    expect(await getJson(apiPort, '/api/health')).to.deep.equal({ status: 503, body: { status: 'unavailable' } });
    const late = await startRedis({ ports: later.ports });
    try {
      await waitFor(async () => (await getJson(apiPort, '/api/health')).status === 200, 'the producer to reconnect');
      await waitFor(() => p.stdout.some((l) => l.includes('redis version checked')), 'the version check');
    } finally {
      p.child.kill('SIGINT');
      expect(await p.exited).to.equal(0);
      await late.stop();
    }
  });
});
