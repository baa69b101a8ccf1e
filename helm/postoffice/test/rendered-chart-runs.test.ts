/**
 * The chart and the app agree on every name: the producer's and consumer's
 * command and environment are taken from the rendered manifests (secrets
 * and pod fields resolved), those exact processes are started here against
 * a local redis-server, and a message goes through them. So do the
 * `helm test` pod's script, the producer's preStop hook during a rolling
 * update under load, and the bundled Redis's own command.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Keys, closeRedis, createRedis } from '@postoffice/shared';
import { freePort, startRedis, type RedisServer } from '@postoffice/test-support/redis-server';
import { waitFor } from '@postoffice/test-support/wait';
import { startReceiver, type Receiver } from '@postoffice/test-support/receiver';
import { startedOutputs } from '@postoffice/test-support/processes';
import { REPO_ROOT, template, type Rendered } from './support/helm.js';
import { container, find, resolveEnv, type Container } from './support/manifests.js';

interface Started {
  readonly child: ChildProcess;
  readonly exited: Promise<number | string>;
  output(): string;
}

/** Runs a container's command from the repository root, which is the image's working directory. */
function run(c: Pick<Container, 'command'>, env: Record<string, string>, name = c.command.join(' ')): Started {
  const [command, ...args] = c.command;
  // Only the rendered environment, plus a PATH on which `node` is the Node running the tests.
  const path = `${dirname(process.execPath)}:${process.env.PATH ?? ''}`;
  const child = spawn(command!, args, {
    cwd: REPO_ROOT,
    env: { ...env, PATH: path },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  // The apps' log lines are read by the leak check at the end of the run (one JSON object, no key twice).
  if (/dist\/main\.js$/.test(c.command.join(' '))) startedOutputs.push({ name, stdout: () => stdout });
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  return { child, exited, output: () => out };
}

describe('the processes the rendered chart describes', function () {
  this.timeout(120_000);
  let redis: RedisServer;
  let receiver: Receiver;
  const started: Started[] = [];

  before(async () => {
    redis = await startRedis();
    receiver = await startReceiver();
  });
  after(async () => {
    for (const s of started) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    await Promise.all(started.map((s) => s.exited));
    await receiver.close();
    await redis.stop();
  });

  it('deliver a message end to end (with the generated API token), answer their probes and /metrics, pass the helm test, and drain on SIGTERM', async () => {
    const [producerPort, consumerPort] = [await freePort(), await freePort()];
    const docs = await template({
      redis: { url: redis.url },
      producer: { port: producerPort },
      consumer: { port: consumerPort },
      config: {
        LOG_LEVEL: 'warn',
        HEARTBEAT_SECONDS: 1,
        RETRY_POLL_MS: 100,
        SHUTDOWN_TIMEOUT_SECONDS: 10,
        // On by default in the chart; the helm test's receiver here is on loopback.
        REFUSE_PRIVATE_TARGETS: false,
      },
    });
    const apps = (['producer', 'consumer'] as const).map((role) => {
      const c = container(docs, role);
      const port = c.ports.find((p) => p.name === c.readinessProbe.httpGet.port)!.containerPort;
      const env = resolveEnv(docs, c, `po-postoffice-${role}-7d9f-abcde`);
      const app = run(c, env);
      started.push(app);
      return { role, c, port, app, env, url: `http://127.0.0.1:${port}` };
    });
    const [producer, consumer] = apps as [(typeof apps)[0], (typeof apps)[0]];
    expect(producer.port).to.equal(producerPort);

    for (const a of apps) {
      await waitFor(async () => {
        if (a.app.child.exitCode !== null) throw new Error(`${a.role} exited: ${a.app.output()}`);
        const res = await fetch(`${a.url}${a.c.readinessProbe.httpGet.path}`).catch(() => undefined);
        return res?.status === 200;
      }, `${a.role} readiness probe`);
      const live = await fetch(`${a.url}${a.c.livenessProbe.httpGet.path}`);
      expect(live.status, `${a.role} liveness probe`).to.equal(200);
      const startup = await fetch(`${a.url}${a.c.startupProbe.httpGet.path}`);
      expect(startup.status, `${a.role} startup probe`).to.equal(200);
    }
    const health = (await (await fetch(`${consumer.url}/healthz`)).json()) as { node: string };
    expect(health.node, 'NODE_ID from the pod name').to.equal('po-postoffice-consumer-7d9f-abcde');

    // Auth is on by default: the chart generated a token into its Secret, and the API wants it.
    const token = producer.env.API_TOKENS?.split(',')[0];
    expect(token, 'API_TOKENS from the Secret').to.match(/^[A-Za-z0-9]{32}$/);
    expect((await fetch(`${producer.url}/api/topics`)).status, 'without the token').to.equal(401);
    const post = async (path: string, body: unknown): Promise<{ data: { id: string | number } }> => {
      const res = await fetch(`${producer.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token!}` },
        body: JSON.stringify(body),
      });
      expect(res.status, `POST ${path}`).to.equal(201);
      return (await res.json()) as { data: { id: string | number } };
    };
    await post('/api/topics', { name: 'orders', origin_host: 'shop.example' });
    await post('/api/publishers', { topic: 'orders', target: receiver.url, type: 'http', active: true });
    // The consumer learns of the new publisher through Redis; a message sent after that is delivered.
    await waitFor(async () => {
      const res = await fetch(`${consumer.url}/healthz`);
      return ((await res.json()) as { pipelines: number }).pipelines === 1;
    }, 'the consumer to run the publisher');
    const { data } = await post('/api/messages', { topic: 'orders', payload: { order: 42 }, attributes: { a: 'b' } });
    await waitFor(() => receiver.received.length === 1, 'the delivery');
    expect(receiver.received[0]!.headers['message-id']).to.equal(data.id);

    const producerMetrics = await (await fetch(`${producer.url}/metrics`)).text();
    expect(producerMetrics).to.match(/^postoffice_messages_received_total\{topic="orders"\} 1$/m);
    await waitFor(async () => {
      const text = await (await fetch(`${consumer.url}/metrics`)).text();
      return /^postoffice_deliveries_total\{publisher="[^"]+",topic="orders",outcome="delivered"\} 1$/m.test(text);
    }, 'the delivery in the consumer metrics');

    // `helm test`: the hook pod's script, with the producer Service's address pointing here.
    const smoke = await helmTest(docs, producer.url);
    expect(smoke.code, smoke.output).to.equal(0);
    expect(smoke.output).to.match(/message \S+ delivered \(http\)/);

    for (const a of apps) a.app.child.kill('SIGTERM');
    for (const a of apps) expect(await a.app.exited, `${a.role} exit code: ${a.app.output()}`).to.equal(0);
  });

  /** Runs the `helm test` pod's command, as the rendered chart has it, against the producer at `url`. */
  async function helmTest(docs: Rendered[], url: string): Promise<{ code: number | string; output: string }> {
    const pod = find(docs, 'Pod', '-test') as unknown as { spec: { containers: Container[] } };
    const c = pod.spec.containers[0]!;
    const env = {
      ...resolveEnv(docs, c, 'po-postoffice-test', '127.0.0.1'),
      POSTOFFICE_URL: url,
      TEST_TIMEOUT_SECONDS: '60',
    };
    const test = run(c, env);
    started.push(test);
    return { code: await test.exited, output: test.output() };
  }

  it('roll the producer with requests in flight and lose none (preStop: fail readiness, wait for the endpoints, drain)', async () => {
    const token = 'a-rolling-update-token-of-length';
    // Two pods of one Deployment: on one machine, a port stands for each pod's address.
    const pods = await Promise.all(
      [await freePort(), await freePort()].map(async (port) => {
        const docs = await template({
          redis: { url: redis.url },
          auth: { enabled: true, tokens: [token] },
          producer: { port, readinessProbe: { periodSeconds: 1, failureThreshold: 1 } },
          config: { LOG_LEVEL: 'warn', SHUTDOWN_TIMEOUT_SECONDS: 10, REFUSE_PRIVATE_TARGETS: true },
        });
        const c = container(docs, 'producer');
        return { port, c, docs, env: resolveEnv(docs, c, `po-postoffice-producer-${port}`) };
      }),
    );
    const [old, next] = pods as [(typeof pods)[0], (typeof pods)[0]];
    const preStop = old.c.lifecycle?.preStop?.exec?.command;
    // readinessProbe.periodSeconds x failureThreshold + 5.
    expect(preStop).to.deep.equal(['node', 'packages/producer/dist/main.js', 'pre-stop', '6']);

    const service = await startService(old.c.readinessProbe);
    try {
      const a = run(old.c, old.env, 'producer (old)');
      started.push(a);
      service.add(old.port);
      await waitFor(() => service.ready.has(old.port), 'the old pod in the endpoints');
      const api = (path: string, body: unknown) =>
        fetch(`${service.url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify(body),
        });
      expect((await api('/api/topics', { name: 'rolling', origin_host: 'test' })).status).to.equal(201);

      // Clients keep posting through the Service over keep-alive connections for the whole update.
      let stopping = false;
      const statuses: number[] = [];
      const failures: string[] = [];
      const client = async (n: number): Promise<void> => {
        for (let i = 0; !stopping; i++) {
          try {
            const res = await api('/api/messages', { topic: 'rolling', payload: { client: n, i }, attributes: {} });
            await res.arrayBuffer();
            statuses.push(res.status);
          } catch (err) {
            failures.push(String((err as { cause?: unknown }).cause ?? err));
          }
        }
      };
      const clients = [0, 1, 2, 3].map(client);

      // The update: a new pod starts and becomes ready; then the old one is terminated as the kubelet does it.
      await waitFor(() => statuses.length > 20, 'requests through the old pod');
      const b = run(next.c, next.env, 'producer (new)');
      started.push(b);
      service.add(next.port);
      await waitFor(() => service.ready.has(next.port), 'the new pod in the endpoints');
      const hook = run({ command: preStop! }, old.env);
      started.push(hook);
      await waitFor(() => !service.ready.has(old.port), 'the endpoints to drop the draining pod', 10_000);
      const servedWhileDraining = statuses.length;
      expect(await hook.exited, hook.output()).to.equal(0);
      a.child.kill('SIGTERM');
      expect(await a.exited, a.output()).to.equal(0);
      await waitFor(() => statuses.length > servedWhileDraining + 20, 'requests through the new pod');
      stopping = true;
      await Promise.all(clients);

      expect(failures, 'requests that failed').to.deep.equal([]);
      expect(
        statuses.filter((s) => s !== 201),
        'answers other than 201',
      ).to.deep.equal([]);
      const admin = createRedis(redis.url, 'consumer');
      try {
        expect(await admin.xlen(new Keys().topic('rolling').stream), 'messages in the topic stream').to.equal(
          statuses.length,
        );
      } finally {
        await closeRedis(admin);
      }

      // The helm test against a producer that refuses private targets goes through a pull publisher.
      const smoke = await helmTest(next.docs, `http://127.0.0.1:${next.port}`);
      expect(smoke.code, smoke.output).to.equal(0);
      expect(smoke.output)
        .to.match(/testing through a pull publisher/)
        .and.match(/delivered \(pull\)/);
      b.child.kill('SIGTERM');
      expect(await b.exited, b.output()).to.equal(0);
    } finally {
      await service.close();
    }
  });

  it('runs the bundled Redis as rendered: with its password, refusing writes at maxmemory, which the producer answers with 503', async () => {
    const port = await freePort();
    const docs = await template({
      redis: { bundled: { enabled: true, maxmemory: '2mb' } },
      producer: { port: await freePort() },
      config: { LOG_LEVEL: 'warn', SHUTDOWN_TIMEOUT_SECONDS: 10 },
    });
    const sts = find(docs, 'StatefulSet', '-redis') as unknown as {
      spec: { template: { spec: { containers: { command: string[] }[] } } };
    };
    const secret = find(docs, 'Secret', 'po-postoffice-redis') as unknown as { data: Record<string, string> };
    // The Secret's files where the pod mounts them, and the data directory, in a temporary directory.
    const dir = mkdtempSync(join(tmpdir(), 'po-bundled-'));
    writeFileSync(join(dir, 'auth.conf'), Buffer.from(secret.data['auth.conf']!, 'base64'));
    const command = sts.spec.template.spec.containers[0]!.command.map((arg) =>
      arg === '/etc/redis/auth/auth.conf' ? join(dir, 'auth.conf') : arg === '/data' ? dir : arg,
    );
    const server = run({ command: [...command, '--port', String(port), '--bind', '127.0.0.1', '--save', ''] }, {});
    started.push(server);
    try {
      const password = Buffer.from(secret.data['redis-password']!, 'base64').toString();
      const admin = createRedis(`redis://:${password}@127.0.0.1:${port}`, 'consumer');
      try {
        await waitFor(async () => (await admin.ping()) === 'PONG', 'the bundled Redis to start');
        // A client without the password: refused.
        const refused = await new Promise<string>((resolve, reject) => {
          const socket = connect(port, '127.0.0.1', () => socket.write('SET k v\r\n'));
          socket.once('data', (d: Buffer) => {
            socket.destroy();
            resolve(d.toString());
          });
          socket.once('error', reject);
        });
        expect(refused).to.match(/NOAUTH|Authentication required/);
        expect(await admin.config('GET', 'maxmemory-policy')).to.deep.equal(['maxmemory-policy', 'noeviction']);
        expect(await admin.config('GET', 'maxmemory')).to.deep.equal(['maxmemory', String(2 * 1024 * 1024)]);
        expect(await admin.config('GET', 'appendonly')).to.deep.equal(['appendonly', 'yes']);

        // The producer, with the rendered REDIS_URL pointed at this server.
        const c = container(docs, 'producer');
        const env = resolveEnv(docs, c, 'po-postoffice-producer-x');
        expect(env.REDIS_URL).to.equal(`redis://:${password}@po-postoffice-redis:6379`);
        env.REDIS_URL = `redis://:${password}@127.0.0.1:${port}`;
        const producer = run(c, env, 'producer (bundled Redis)');
        started.push(producer);
        const url = `http://127.0.0.1:${c.ports[0]!.containerPort}`;
        await waitFor(
          async () => (await fetch(`${url}/api/health`).catch(() => undefined))?.status === 200,
          'the producer',
        );
        const token = env.API_TOKENS!.split(',')[0]!;
        const post = (path: string, body: unknown) =>
          fetch(`${url}${path}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
            body: JSON.stringify(body),
          });
        expect((await post('/api/topics', { name: 'full', origin_host: 'x' })).status).to.equal(201);
        // Fill Redis past maxmemory: it refuses writes (noeviction), and the producer says 503 with Retry-After.
        // A small command that grows a value by 2 MB: accepted while Redis is below maxmemory, and it is above it after.
        await admin.setrange('filler', 2 * 1024 * 1024, 'x');
        const full = await admin.set('probe', 'x').then(
          () => false,
          (e: Error) => /OOM/.test(e.message),
        );
        expect(full, 'Redis refusing writes at maxmemory').to.equal(true);
        const res = await post('/api/messages', { topic: 'full', payload: { a: 1 }, attributes: {} });
        expect(res.status).to.equal(503);
        expect(res.headers.get('retry-after')).to.equal('5');
        producer.child.kill('SIGTERM');
        expect(await producer.exited, producer.output()).to.equal(0);
      } finally {
        await closeRedis(admin);
        server.child.kill('SIGTERM');
      }
      await server.exited;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

interface Endpoints {
  readonly url: string;
  /** Backends (ports) that the endpoints controller counts ready. */
  readonly ready: ReadonlySet<number>;
  add(port: number): void;
  close(): Promise<void>;
}

/**
 * A Service as kube-proxy makes one: a TCP proxy (layer 4: a client's
 * keep-alive connection stays with the pod it was opened to) that sends
 * each new connection to one of the ready backends, and an endpoints
 * controller that probes each backend's readiness path every periodSeconds
 * and drops it after failureThreshold failures in a row.
 */
async function startService(probe: Container['readinessProbe']): Promise<Endpoints> {
  const backends = new Map<number, number>();
  const ready = new Set<number>();
  let next = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    const ports = [...ready];
    const port = ports[next++ % Math.max(1, ports.length)];
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    if (port === undefined) return void socket.destroy();
    const upstream = connect(port, '127.0.0.1');
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    socket.pipe(upstream).pipe(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
    socket.on('close', () => upstream.destroy());
    upstream.on('close', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  let closed = false;
  const tick = async (): Promise<void> => {
    for (const [backend, failures] of backends) {
      const res = await fetch(`http://127.0.0.1:${backend}${probe.httpGet.path}`, {
        signal: AbortSignal.timeout(1000),
      }).catch(() => undefined);
      await res?.arrayBuffer();
      if (res?.status === 200) {
        backends.set(backend, 0);
        ready.add(backend);
      } else {
        backends.set(backend, failures + 1);
        if (failures + 1 >= probe.failureThreshold) ready.delete(backend);
      }
    }
  };
  const loop = (async () => {
    while (!closed) {
      await tick();
      await new Promise((resolve) => setTimeout(resolve, probe.periodSeconds * 1000));
    }
  })();
  return {
    url: `http://127.0.0.1:${port}`,
    ready,
    add: (backend) => backends.set(backend, 0),
    async close() {
      closed = true;
      await loop;
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
