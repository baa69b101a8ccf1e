/**
 * The chart and the app agree on every name: the producer's and consumer's
 * command and environment are taken from the rendered manifests (secrets
 * and pod fields resolved), those exact processes are started here against
 * a local redis-server, and a message goes through them.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname } from 'node:path';
import { startReceiver, type Receiver } from '../../../packages/shared/test/support/receiver.js';
import { freePort, startRedis, waitFor, type RedisServer } from '../../../packages/shared/test/support/redis-server.js';
import { REPO_ROOT, template } from './support/helm.js';
import { container, resolveEnv, type Container } from './support/manifests.js';

interface Started {
  readonly child: ChildProcess;
  readonly exited: Promise<number | string>;
  output(): string;
}

/** Runs a container's command from the repository root, which is the image's working directory. */
function run(c: Container, env: Record<string, string>): Started {
  const [command, ...args] = c.command;
  // Only the rendered environment, plus a PATH on which `node` is the Node running the tests.
  const path = `${dirname(process.execPath)}:${process.env.PATH ?? ''}`;
  const child = spawn(command!, args, {
    cwd: REPO_ROOT,
    env: { ...env, PATH: path },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
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

  it('deliver a message end to end (with the generated API token), answer their probes and /metrics, and drain on SIGTERM', async () => {
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
        // On by default in the chart; the receiver here is on loopback.
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
      return /^postoffice_deliveries_total\{publisher="[^"]+",outcome="delivered"\} 1$/m.test(text);
    }, 'the delivery in the consumer metrics');

    for (const a of apps) a.app.child.kill('SIGTERM');
    for (const a of apps) expect(await a.app.exited, `${a.role} exit code: ${a.app.output()}`).to.equal(0);
  });
});
