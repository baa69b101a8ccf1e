/**
 * Replicated ingest: what `REDIS_MIN_REPLICAS=1` costs. A primary
 * redis-server with one replica (`--replicaof`, measured once the replica
 * says `master_link_status:up`); two producers on the primary, the same
 * configuration but for `REDIS_MIN_REPLICAS` (1: each write is pipelined
 * with a `WAIT 1`; 0: no `WAIT`). POST /api/messages under autocannon, as in
 * single ingest: warm-up runs of both, then the two alternate; the median
 * run of each is kept. A `WAIT` is shared by every request written in the
 * same round trip, so under load it should cost little: `wait` per request
 * in the cost details says how many requests shared one.
 */
import { startRedis, waitFor, type RedisServer } from '@postoffice/test-support';
import { Redis } from 'ioredis';
import { cannon, type HttpLoad } from '../lib/load.js';
import { ATTRIBUTES, TOPIC, payload } from '../lib/payload.js';
import { median, round } from '../lib/stats.js';
import { bySize, type BenchCase } from '../lib/types.js';
import { measureUsage, type UsageReport } from '../lib/usage.js';
import { World } from '../lib/world.js';

const GOAL_RATIO = 0.8;
const WITH_WAIT = { REDIS_MIN_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '1000' } as const;
const WITHOUT_WAIT = { REDIS_MIN_REPLICAS: '0', REDIS_WAIT_TIMEOUT_MS: '1000' } as const;

export const replicatedIngest: BenchCase = {
  name: 'replicated ingest',
  measure: 'POST /api/messages, req/s, REDIS_MIN_REPLICAS=1 vs 0',
  async run(ctx) {
    const seconds = bySize(ctx.mode, { full: 10, quick: 3, shape: 1 });
    const repeats = bySize(ctx.mode, { full: 3, quick: 2, shape: 1 });
    const warmSeconds = bySize(ctx.mode, { full: 3, quick: 1, shape: 1 });
    const connections = 32;
    const body = JSON.stringify({ topic: TOPIC, payload: payload(1), attributes: ATTRIBUTES });
    const primary = await startRedis({ cluster: false });
    const world = await World.start(primary);
    let replica: RedisServer | undefined;
    try {
      replica = await startRedis({ cluster: false, args: ['--replicaof', '127.0.0.1', String(primary.port)] });
      await inSync(replica);
      const redis = world.client();
      const connected = /connected_slaves:(\d+)/.exec(await redis.info('replication'))?.[1];
      if (connected !== '1') throw new Error(`the primary has ${connected} replicas, expected 1`);
      const waiting = await world.startProducer({ ...WITH_WAIT });
      const plain = await world.startProducer({ ...WITHOUT_WAIT });
      await world.createTopic(TOPIC);
      const sides = [
        { name: 'wait', url: `${waiting.url}/api/messages`, pid: waiting.child.pid! },
        { name: 'plain', url: `${plain.url}/api/messages`, pid: plain.child.pid! },
      ] as const;
      ctx.log(`warm-up ${warmSeconds} s each`);
      for (const side of sides) await cannon({ url: side.url, body, connections, seconds: warmSeconds });
      const runs: Record<'wait' | 'plain', HttpLoad[]> = { wait: [], plain: [] };
      const costs: Record<'wait' | 'plain', UsageReport[]> = { wait: [], plain: [] };
      for (let r = 0; r < repeats; r++) {
        // Alternate which side goes first, so that neither always follows the other's backlog.
        for (const side of r % 2 === 0 ? sides : [...sides].reverse()) {
          const usage = await measureUsage({ producer: side.pid }, redis);
          const load = await cannon({ url: side.url, body, connections, seconds });
          runs[side.name].push(load);
          costs[side.name].push(await usage(load.requests));
        }
        ctx.log(
          `run ${r + 1}/${repeats}: with WAIT ${runs.wait[r]!.reqPerSec} req/s, without ${runs.plain[r]!.reqPerSec}`,
        );
      }
      const pick = (list: HttpLoad[]) => {
        const m = median(list.map((l) => l.reqPerSec));
        return list.find((l) => l.reqPerSec === m)!;
      };
      const f = pick(runs.wait);
      const b = pick(runs.plain);
      for (const [label, l] of [
        ['with WAIT', f],
        ['without WAIT', b],
      ] as const)
        if (l.non2xx + l.errors > 0)
          throw new Error(`postoffice ${label} answered ${l.non2xx} non-2xx, ${l.errors} errors`);
      const ratio = round(f.reqPerSec / b.reqPerSec, 3);
      return {
        figure: {
          label: 'postoffice, REDIS_MIN_REPLICAS=1',
          value: f.reqPerSec,
          unit: 'req/s',
          extra: { p50_ms: f.p50Ms, p99_ms: f.p99Ms },
        },
        baseline: {
          label: 'postoffice, REDIS_MIN_REPLICAS=0',
          value: b.reqPerSec,
          unit: 'req/s',
          extra: { p50_ms: b.p50Ms, p99_ms: b.p99Ms },
        },
        ratio,
        goal: `>= ${GOAL_RATIO}x`,
        met: ratio >= GOAL_RATIO,
        config: {
          tool: 'autocannon (in the bench process)',
          topology: 'one redis-server primary, one replica (--replicaof), both on 127.0.0.1',
          producer_env: { with_wait: WITH_WAIT, without_wait: WITHOUT_WAIT },
          connections,
          seconds_per_run: seconds,
          repeats,
          warm_up_seconds: warmSeconds,
          body_bytes: body.length,
          order: 'alternating, the side that goes first alternating too',
          kept: 'median run of each side',
        },
        details: { runs, cost_per_request: costs },
      };
    } finally {
      await world.close();
      await replica?.stop();
    }
  },
};

/** Waits until the replica says its link to the primary is up (the initial sync is done). */
async function inSync(replica: RedisServer): Promise<void> {
  const client = new Redis(replica.url, { maxRetriesPerRequest: null });
  try {
    await waitFor(
      async () => /master_link_status:up/.test(await client.info('replication')),
      'the replica to be in sync with the primary',
      30_000,
      50,
    );
  } finally {
    client.disconnect();
  }
}
