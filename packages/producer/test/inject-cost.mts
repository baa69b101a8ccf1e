import Fastify from 'fastify';
import { createLogger, createRedis, loadConfig, closeRedis } from '@postoffice/shared';
import { buildServer } from '../src/index.js';
import { startRedis } from '../../shared/test/support/redis-server.js';
const server = await startRedis({ cluster: false });
const config = loadConfig({ REDIS_URL: server.url, LOG_LEVEL: 'warn' }, 'producer');
const redis = createRedis(config.redisUrl, 'producer');
await new Promise((r) => redis.once('ready', r));
const app = buildServer({ config, redis, logger: createLogger(config) });
await app.ready();
await app.inject({ method: 'POST', url: '/api/topics', payload: { name: 'bench', origin_host: 'x' } });
const bare = Fastify({ logger: false });
bare.post('/api/messages', async (_r, reply) => reply.code(201).send({ data: { id: 'x' } }));
await bare.ready();
const body = JSON.stringify({
  topic: 'bench',
  payload: { n: 1, customer: 'c-1', amount: 3, pad: 'x'.repeat(200) },
  attributes: { source: 'bench', kind: 'order.created' },
});
async function run(a: typeof app, n: number) {
  let next = 0;
  const worker = async () => {
    while (next++ < n) {
      const r = await a.inject({
        method: 'POST',
        url: '/api/messages',
        headers: { 'content-type': 'application/json' },
        payload: body,
      });
      if (r.statusCode !== 201) throw new Error(r.body);
    }
  };
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 32 }, worker));
  const c = process.cpuUsage(c0);
  const ms = performance.now() - t0;
  return { usPerReq: +((c.user + c.system) / n).toFixed(1), perSec: Math.round((n / ms) * 1000) };
}
const N = Number(process.env.N ?? 20000);
await run(bare as any, 3000);
await run(app, 3000);
const b: number[] = [];
const p: number[] = [];
for (let i = 0; i < 12; i++) {
  if (!process.env.ONLY_PO) b.push((await run(bare as any, N)).usPerReq);
  p.push((await run(app, N)).usPerReq);
}
b.sort((x, y) => x - y);
p.sort((x, y) => x - y);
console.log(
  'bare min/median',
  b[0],
  b[6],
  'postoffice min/median',
  p[0],
  p[6],
  'added (min)',
  (p[0]! - b[0]!).toFixed(1),
);
await app.close();
await bare.close();
await closeRedis(redis);
await server.stop();
