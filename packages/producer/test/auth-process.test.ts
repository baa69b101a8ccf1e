/**
 * API_TOKENS on a real producer process (node dist/main.js): a bad token
 * stops it without showing the token, and at LOG_LEVEL=trace nothing secret
 * reaches its stdout or stderr while requests carry tokens and cookies.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startRedis, waitFor, type RedisServer } from '@postoffice/test-support';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const A = 'process-token-a-0123456789abcdef';
const B = 'process-token-b-0123456789abcdef';

interface Running {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  output(): string;
}

function run(env: Record<string, string>): Running {
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, output: () => out };
}

describe('node dist/main.js with API_TOKENS', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  const started: Running[] = [];

  before(async () => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`pnpm build\` first`);
    redis = await startRedis();
  });
  after(async () => {
    for (const p of started) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await Promise.all(started.map((p) => p.exited));
    await redis.stop();
  });

  function start(env: Record<string, string>): Running {
    const p = run(env);
    started.push(p);
    return p;
  }

  it('exits 1 on a token that is too short, naming API_TOKENS and not showing the token', async () => {
    const p = start({ REDIS_URL: redis.url, API_TOKENS: `${A},too-short-tok` });
    expect(await p.exited).to.equal(1);
    expect(p.output()).to.contain('API_TOKENS: token 2 of 2 is 13 characters long (expected at least 16)');
    expect(p.output()).to.not.contain('too-short-tok').and.not.contain(A);
  });

  it('says auth is on at start, enforces it, and logs no token, cookie or secret even at trace level', async () => {
    const p = start({ REDIS_URL: redis.url, API_TOKENS: `${A},${B}`, LOG_LEVEL: 'trace' });
    const line = await waitFor(() => /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(p.output()), 'listening');
    const url = `http://127.0.0.1:${line[1]}`;
    expect(p.output()).to.contain('"auth":"on (2 API token(s))"');

    const call = (path: string, init: RequestInit = {}): Promise<Response> => fetch(`${url}${path}`, init);
    const json = (method: string, body: unknown, headers: Record<string, string> = {}): RequestInit => ({
      method,
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    expect((await call('/api/topics')).status).to.equal(401);
    expect(
      (await call('/api/topics', { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status,
    ).to.equal(403);
    expect((await call('/api/health')).status).to.equal(200);
    const created = await call(
      '/api/topics',
      json('POST', { name: 'orders', origin_host: 'x' }, { authorization: `Bearer ${A}` }),
    );
    expect(created.status).to.equal(201);
    const secret = 'whsec_c2VjcmV0LW9mLXRoZS1wdWJsaXNoZXI=';
    const publisher = await call(
      '/api/publishers',
      json(
        'POST',
        { topic: 'orders', target: 'http://127.0.0.1:9/hook', type: 'http', secrets: [secret] },
        { authorization: `Bearer ${B}` },
      ),
    );
    expect(publisher.status).to.be.below(500);
    const login = await call('/api/session', json('POST', { token: B }));
    expect(login.status).to.equal(204);
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
    expect(cookie).to.match(/^po_session=v1\./);
    expect((await call('/api/topics/orders', { headers: { cookie } })).status).to.equal(200);
    expect((await call('/api/session', { method: 'DELETE', headers: { cookie } })).status).to.equal(204);

    p.child.kill('SIGTERM');
    expect(await p.exited).to.equal(0);
    const out = p.output();
    expect(out).to.contain('incoming request').and.contain('"msg":"stopped"');
    for (const value of [A, B, 'wrong-token-0123456789', secret, cookie.split('=')[1]!.split('.')[2]!])
      expect(out).to.not.contain(value);
  });
});
