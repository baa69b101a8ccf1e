/**
 * The system under test, each piece in its own process: a private
 * `redis-server`, the producer and the consumer from packages/*\/dist (the
 * same entry points and helpers the tests use), and an API client.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { Pool } from 'undici';
import { startRedis, waitFor, type RedisServer, startApp, type AppProcess } from '@postoffice/test-support';

export { waitFor };

/** Environment of both services in every case (recorded in the results). */
export const SERVICE_ENV = { LOG_LEVEL: 'warn' } as const;

/**
 * With `pnpm bench --cpu-prof <dir>`, producer and consumer run with
 * `--cpu-prof` and are stopped with SIGTERM so that they write their
 * profiles (`tsx bench/profile.ts <file>` summarizes one).
 */
function profileEnv(which: string): Record<string, string> {
  const dir = process.env.BENCH_CPU_PROF;
  if (!dir) return {};
  return {
    NODE_OPTIONS: `--import=${fileURLToPath(new URL('./cpu-prof.mjs', import.meta.url))}`,
    BENCH_CPU_PROF: dir,
    BENCH_CPU_PROF_NAME: `${which}-${Date.now()}`,
  };
}

/** What a world needs of its Redis: the URL its processes get, and a way to stop it. */
export type WorldRedis = Pick<RedisServer, 'url'> & { stop(): Promise<void> };

export class World {
  private readonly apps: AppProcess[] = [];
  private readonly clients: Redis[] = [];
  private readonly pools: Pool[] = [];
  producer: AppProcess | undefined;
  consumer: AppProcess | undefined;

  private constructor(readonly redis: WorldRedis) {}

  /**
   * A world on a new redis-server, or on `redis` (a replicated primary, a
   * cluster) that a case started itself; either is stopped with the world.
   */
  static async start(redis?: WorldRedis): Promise<World> {
    // One redis-server, whatever POSTOFFICE_TEST_REDIS says: the baselines (pipelined XADD, BullMQ) are measured on one.
    return new World(redis ?? (await startRedis({ cluster: false })));
  }

  async startProducer(env: Record<string, string> = {}): Promise<AppProcess> {
    this.producer = await startApp('producer', {
      ...SERVICE_ENV,
      ...profileEnv('producer'),
      REDIS_URL: this.redis.url,
      ...env,
    });
    this.apps.push(this.producer);
    return this.producer;
  }

  async startConsumer(env: Record<string, string> = {}): Promise<AppProcess> {
    this.consumer = await startApp('consumer', {
      ...SERVICE_ENV,
      ...profileEnv('consumer'),
      REDIS_URL: this.redis.url,
      NODE_ID: 'bench-consumer',
      ...env,
    });
    this.apps.push(this.consumer);
    return this.consumer;
  }

  /** A Redis client for the bench itself (closed with the world); one server's URL only, not a cluster's. */
  client(): Redis {
    const c = new Redis(this.redis.url, { maxRetriesPerRequest: null });
    this.clients.push(c);
    return c;
  }

  /** A keep-alive HTTP pool to the producer. */
  api(connections = 16): Pool {
    if (!this.producer) throw new Error('start the producer first');
    const pool = new Pool(this.producer.url, { connections, keepAliveTimeout: 60_000 });
    this.pools.push(pool);
    return pool;
  }

  async post(path: string, body: unknown, pool = this.api(1)): Promise<any> {
    const res = await pool.request({
      method: 'POST',
      path,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await res.body.text();
    if (res.statusCode >= 300) throw new Error(`POST ${path}: ${res.statusCode} ${text}`);
    return text ? JSON.parse(text) : undefined;
  }

  async get(path: string, pool = this.api(1)): Promise<any> {
    const res = await pool.request({ method: 'GET', path });
    const text = await res.body.text();
    if (res.statusCode >= 300) throw new Error(`GET ${path}: ${res.statusCode} ${text}`);
    return text ? JSON.parse(text) : undefined;
  }

  async patch(path: string, body: unknown): Promise<void> {
    const res = await this.api(1).request({
      method: 'PATCH',
      path,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await res.body.text();
    if (res.statusCode >= 300) throw new Error(`PATCH ${path}: ${res.statusCode} ${text}`);
  }

  /** Stops the consumer (SIGKILL: the bench has what it needs) so it does not compete for CPU. */
  async stopConsumer(): Promise<void> {
    if (!this.consumer) return;
    this.consumer.kill(process.env.BENCH_CPU_PROF ? 'SIGTERM' : 'SIGKILL');
    await this.consumer.exited;
    this.consumer = undefined;
  }

  async createTopic(name: string): Promise<void> {
    await this.post('/api/topics', { name, origin_host: 'bench.example' });
  }

  async createPublisher(topic: string, target: string, options: Record<string, unknown> = {}): Promise<string> {
    const res = await this.post('/api/publishers', { active: true, topic, target, type: 'http', ...options });
    return res.data.id as string;
  }

  /** Posts `count` messages through /api/bulk_messages, `batch` a request, a few requests in flight. */
  async fill(
    topic: string,
    count: number,
    payload: (i: number) => unknown,
    attributes: Record<string, string>,
    batch = 1000,
  ): Promise<void> {
    const pool = this.api(4);
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const start = next;
        const n = Math.min(batch, count - start);
        next += n;
        const payloads = Array.from({ length: n }, (_, k) => payload(start + k));
        await this.post('/api/bulk_messages', { topic, attributes, payload: payloads }, pool);
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
  }

  async close(): Promise<void> {
    for (const app of this.apps) app.kill(process.env.BENCH_CPU_PROF ? 'SIGTERM' : 'SIGKILL');
    await Promise.all(this.apps.map((a) => a.exited));
    await Promise.all(this.pools.map((p) => p.destroy()));
    for (const c of this.clients) c.disconnect();
    await this.redis.stop();
  }
}

/** Resident set size of a process, in MB (Linux /proc). */
export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Total Redis commands executed so far, from INFO commandstats, not counting INFO itself. */
export async function commandCount(redis: Redis): Promise<{ total: number; byCommand: Record<string, number> }> {
  const info = await redis.info('commandstats');
  const byCommand: Record<string, number> = {};
  let total = 0;
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    const name = m[1]!;
    const calls = Number(m[2]);
    if (name === 'info') continue;
    byCommand[name] = calls;
    total += calls;
  }
  return { total, byCommand };
}

export async function redisVersion(redis: Redis): Promise<string> {
  const info = await redis.info('server');
  return /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
