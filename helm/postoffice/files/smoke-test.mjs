// Postoffice's `helm test`: publishes one message and sees it delivered, then removes what it made.
// Runs in the Postoffice image (node, global fetch). Environment: POSTOFFICE_URL (the producer
// Service), API_TOKENS (comma-separated; the first is used), POD_IP (this pod's address).
// Delivery goes to an http receiver this script runs; when REFUSE_PRIVATE_TARGETS refuses the
// pod's address, through a pull publisher that this script leases from instead.
import { createServer } from 'node:http';

const base = process.env.POSTOFFICE_URL;
const token = (process.env.API_TOKENS ?? '').split(',')[0];
const deadline = Date.now() + Number(process.env.TEST_TIMEOUT_SECONDS || 120) * 1000;
const headers = { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) };
const say = (line) => process.stdout.write(`[helm test] ${line}\n`);

async function call(method, path, body) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

function expectStatus(answer, status, what) {
  if (answer.status !== status) throw new Error(`${what}: HTTP ${answer.status} ${JSON.stringify(answer.json)}`);
  return answer.json;
}

async function until(check, what) {
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const received = new Set();
const receiver = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    received.add(String(req.headers['message-id']));
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
await new Promise((resolve) => receiver.listen(0, '0.0.0.0', resolve));
const target = `http://${process.env.POD_IP}:${receiver.address().port}/hook`;

const topic = `helm-test-${Date.now()}`;
let publisherId;
let failed = false;
try {
  expectStatus(await call('GET', '/api/health'), 200, 'GET /api/health');
  expectStatus(await call('POST', '/api/topics', { name: topic, origin_host: 'helm-test' }), 201, 'create the topic');
  let mode = 'http';
  let created = await call('POST', '/api/publishers', { topic, target, type: 'http', active: true });
  if (created.status === 400 && created.json?.data?.errors?.target) {
    say(`${target} is refused (${created.json.data.errors.target[0]}): testing through a pull publisher`);
    mode = 'pull';
    created = await call('POST', '/api/publishers', { topic, target: 'helm-test', type: 'pull', active: true });
  }
  publisherId = expectStatus(created, 201, `create the ${mode} publisher`).data.id;
  const { id } = expectStatus(
    await call('POST', '/api/messages', { topic, payload: { helm: 'test' }, attributes: { source: 'helm-test' } }),
    201,
    'publish a message',
  ).data;
  say(`published message ${id} to topic ${topic}`);
  if (mode === 'http') {
    await until(() => received.has(String(id)), `a consumer to deliver message ${id} to ${target}`);
  } else {
    await until(async () => {
      const leased = expectStatus(await call('POST', `/api/publishers/${publisherId}/lease`, { max: 1 }), 200, 'lease');
      const lease = leased.data.find((l) => l.message.id === id);
      if (!lease) return false;
      expectStatus(await call('POST', `/api/leases/${lease.token}/complete`), 200, 'complete the lease');
      return true;
    }, `message ${id} to be leased`);
  }
  say(`message ${id} delivered (${mode})`);
} catch (err) {
  failed = true;
  process.stderr.write(`[helm test] FAILED: ${err instanceof Error ? err.message : String(err)}\n`);
} finally {
  if (publisherId !== undefined) await call('DELETE', `/api/publishers/${publisherId}`).catch(() => undefined);
  await call('DELETE', `/api/topics/${encodeURIComponent(topic)}`).catch(() => undefined);
  receiver.close();
}
process.exit(failed ? 1 : 0);
