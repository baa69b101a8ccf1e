/**
 * Retention memory: what Redis holds for each message it keeps after
 * delivery, against a bare stream holding the same payloads. Redis RAM is
 * Postoffice's capacity limit (bytes per message x rate x retention), so
 * this is a headline figure.
 *
 * For each variant a fresh redis-server, producer, consumer and receiver:
 * first the baseline (XADD of the payloads to a bare stream, field `p`,
 * `used_memory` before and after, then the stream deleted), then the same
 * payloads through POST /api/bulk_messages to a topic with one http
 * publisher, `used_memory` before the first message and after the last one
 * is delivered and acknowledged (nothing pending, nothing retrying).
 */
import type { Redis } from 'ioredis';
import { startChild } from '../lib/child.js';
import { payload } from '../lib/payload.js';
import { round } from '../lib/stats.js';
import { bySize, type BenchCase, type Comparison } from '../lib/types.js';
import { World, waitFor } from '../lib/world.js';

const GOAL = 1.3;
const VARIANTS = [
  { label: '237 B payload', bytes: 237, retry: false },
  { label: '4 KB payload', bytes: 4096, retry: false },
  { label: '237 B payload, one retry', bytes: 237, retry: true },
] as const;

async function usedMemory(redis: Redis): Promise<number> {
  return Number(/^used_memory:(\d+)/m.exec(await redis.info('memory'))?.[1]);
}

export const retentionMemory: BenchCase = {
  name: 'retention memory',
  measure: 'Redis bytes per retained, delivered message',
  async run(ctx) {
    const n = bySize(ctx.mode, { full: 50_000, quick: 10_000, shape: 300 });
    const rows: {
      label: string;
      payload_bytes: number;
      postoffice: number;
      bare: number;
      ratio: number;
      keys_after: number;
    }[] = [];
    for (const v of VARIANTS) {
      const world = await World.start();
      const receiver = await startChild<{ url: string }>('receiver', v.retry ? { BENCH_FAIL_FIRST: '1' } : {});
      try {
        await world.startProducer();
        // Every first attempt fails on purpose: the circuit breaker (which would pace a target that keeps
        // failing) stays out of it, so that the case measures what a retried message costs, not the breaker.
        await world.startConsumer(v.retry ? { BREAKER_THRESHOLD: '1000000' } : {});
        const redis = world.client();
        const texts = Array.from({ length: n }, (_, i) => JSON.stringify(payload(i, v.bytes)));
        const bytes = Math.round(texts.reduce((s, t) => s + t.length, 0) / n);

        ctx.log(`${v.label}: bare stream of ${n}`);
        const b0 = await usedMemory(redis);
        for (let i = 0; i < n; i += 1000) {
          const p = redis.pipeline();
          for (const text of texts.slice(i, i + 1000)) p.xadd('baseline:stream', '*', 'p', text);
          await p.exec();
        }
        const b1 = await usedMemory(redis);
        await redis.del('baseline:stream');
        const bare = (b1 - b0) / n;

        ctx.log(`${v.label}: postoffice, ${n} messages`);
        await world.createTopic('mem');
        const pid = await world.createPublisher('mem', `${receiver.ready.url}/mem`, {
          concurrency: 50,
          ...(v.retry ? { seconds_retry: 1 } : {}),
        });
        await waitFor(
          async () => ((await redis.xinfo('GROUPS', 'po:{mem}:stream')) as unknown[]).length === 1,
          'the group',
        );
        const p0 = await usedMemory(redis);
        await world.fill('mem', n, (i) => payload(i, v.bytes), {}, v.bytes > 1000 ? 200 : 1000);
        await waitFor(
          async () => (await receiver.call<{ count: number }>('stats')).count >= n,
          'every delivery',
          600_000,
        );
        await waitFor(
          async () =>
            (await redis.xpending('po:{mem}:stream', pid))[0] === 0 &&
            (await redis.zcard(`po:{mem}:p:${pid}:retries`)) === 0,
          'every outcome recorded',
          120_000,
        );
        const p1 = await usedMemory(redis);
        const po = (p1 - p0) / n;
        const keys = await redis.dbsize();
        rows.push({
          label: v.label,
          payload_bytes: bytes,
          postoffice: round(po, 1),
          bare: round(bare, 1),
          ratio: round(po / bare, 3),
          keys_after: keys,
        });
        ctx.log(`${v.label}: ${round(po, 1)} B/message against ${round(bare, 1)} B bare (${round(po / bare, 3)}x)`);
      } finally {
        await receiver.close();
        await world.close();
      }
    }
    const comparison = (r: (typeof rows)[number]): Comparison => ({
      figure: { label: `postoffice, ${r.label}`, value: r.postoffice, unit: 'B/msg' },
      baseline: { label: `bare stream, same payloads`, value: r.bare, unit: 'B/msg' },
      ratio: r.ratio,
      goal: `<= ${GOAL}x`,
      met: r.ratio <= GOAL,
    });
    const [first, ...rest] = rows.map(comparison);
    return {
      ...first!,
      figure: first!.figure!,
      more: rest,
      config: {
        messages: n,
        variants: VARIANTS,
        ingest: 'POST /api/bulk_messages, no attributes; baseline: XADD <stream> * p <payload>, pipelined',
        publisher:
          'one http publisher, concurrency 50 (one retry: seconds_retry 1, receiver answers 503 first, BREAKER_THRESHOLD 1000000)',
        measured: 'INFO memory used_memory, before the first message and after the last is acknowledged',
      },
      details: { rows },
    };
  },
};
