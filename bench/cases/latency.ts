/**
 * Latency: publish -> received at a steady 1k msg/s, and at half the
 * delivery rate this machine reached in the same run (the delivery case's
 * figure; when that case did not run, a short backlog drain measures it
 * here): a rate relative to the machine, not a fixed one. The bench posts
 * single messages to POST /api/messages at the rate, each carrying its send
 * time (`t`, wall-clock ms); the receiver, another process on the same
 * machine, subtracts it from its arrival time. A warm-up phase at the same
 * rate comes first and is not counted. At the higher rate the consumer must
 * keep up: every message received within 2 s of the last send.
 */
import { startChild } from '../lib/child.js';
import { wallNow } from '../lib/child.js';
import { paced } from '../lib/load.js';
import { ATTRIBUTES, TOPIC } from '../lib/payload.js';
import { round, summarize, type Summary } from '../lib/stats.js';
import { bySize, type BenchCase } from '../lib/types.js';
import { measureUsage, type UsageReport } from '../lib/usage.js';
import { World, waitFor } from '../lib/world.js';
import { drainBacklog } from '../lib/backlog.js';
import { CONCURRENCY } from './delivery.js';

const LOW_RATE = 1000;
const GOAL_P99_MS = 25;
const GOAL_HALF_P99_MS = 50;
/** How long after the last send the last message may arrive, for the consumer to count as keeping up. */
const KEEP_UP_MS = 2000;

export const latency: BenchCase = {
  name: 'latency',
  measure: 'publish -> received p99 at 1k msg/s',
  async run(ctx) {
    const seconds = bySize(ctx.mode, { full: 20, quick: 5, shape: 1 });
    const warmSeconds = bySize(ctx.mode, { full: 3, quick: 1, shape: 0.5 });
    const world = await World.start();
    const receiver = await startChild<{ url: string }>('receiver', { BENCH_LATENCY: '1' });
    try {
      await world.startProducer();
      let deliveryRate = ctx.previous.get('delivery')?.figure.value;
      let measuredHere = false;
      if (deliveryRate === undefined) {
        ctx.log('no delivery figure in this run: measuring the delivery rate with a backlog drain');
        const drained = await drainBacklog(ctx, world, receiver, {
          topic: 'rate',
          messages: bySize(ctx.mode, { full: 50_000, quick: 20_000, shape: 1_000 }),
          publishers: 1,
          concurrency: CONCURRENCY,
        });
        deliveryRate = drained.perSec;
        measuredHere = true;
      } else await world.startConsumer();
      const halfRate = Math.max(LOW_RATE, Math.round(deliveryRate / 2 / 100) * 100);
      const RATES = [LOW_RATE, halfRate];
      await world.createTopic(TOPIC);
      await world.createPublisher(TOPIC, `${receiver.ready.url}/latency`, { concurrency: CONCURRENCY });
      const api = world.api(64);
      /** Publish -> 201 of each POST of the measured phase: the ingest part of the latency. */
      let acks: number[] = [];
      const send = async (i: number) => {
        const sentAt = performance.now();
        const body = JSON.stringify({ topic: TOPIC, payload: { t: wallNow(), n: i }, attributes: ATTRIBUTES });
        const res = await api.request({
          method: 'POST',
          path: '/api/messages',
          headers: { 'content-type': 'application/json' },
          body,
        });
        await res.body.dump();
        if (res.statusCode !== 201) throw new Error(`POST /api/messages: ${res.statusCode}`);
        acks.push(performance.now() - sentAt);
      };
      // The consumer picks the new publisher up through an event: wait until a message gets through.
      await send(-1);
      await waitFor(async () => (await receiver.call<{ count: number }>('stats')).count >= 1, 'the first delivery');
      const byRate: Record<
        string,
        Summary & {
          count: number;
          achieved_per_s: number;
          failed: number;
          ingest_p50: number;
          ingest_p99: number;
          ingest_max: number;
          slowest: { ms: number; at_ms: number }[];
          cost: UsageReport;
          last_after_ms: number;
        }
      > = {};
      const redis = world.client();
      for (const rate of RATES) {
        await receiver.call('reset');
        const w = await paced(rate, warmSeconds, send);
        await waitFor(
          async () => (await receiver.call<{ count: number }>('stats')).count >= w.sent - w.failed,
          'the warm-up messages',
          60_000,
        );
        await receiver.call('reset');
        acks = [];
        const usage = await measureUsage(
          {
            bench: process.pid,
            producer: world.producer!.child.pid!,
            consumer: world.consumer!.child.pid!,
            receiver: receiver.pid,
          },
          redis,
        );
        const run = await paced(rate, seconds, send);
        const sentAll = wallNow();
        const ingest = summarize(acks);
        const received = await waitFor(
          async () => {
            const s = await receiver.call<{ count: number; last: number | null }>('stats');
            return s.count >= run.sent - run.failed ? s : undefined;
          },
          'every message of the run',
          120_000,
        );
        const lastAfterMs = round((received.last ?? sentAll) - sentAll, 1);
        const cost = await usage(run.sent);
        const lat = await receiver.call<Summary & { count: number }>('latency');
        const slowest = await receiver.call<{ ms: number; at_ms: number }[]>('slowest', { n: 15 });
        byRate[rate] = {
          ...lat,
          achieved_per_s: run.achievedPerSec,
          failed: run.failed,
          ingest_p50: ingest.p50,
          ingest_p99: ingest.p99,
          ingest_max: ingest.max,
          slowest,
          cost,
          last_after_ms: lastAfterMs,
        };
        ctx.log(
          `${rate}/s (achieved ${run.achievedPerSec}): p50 ${lat.p50} ms, p99 ${lat.p99} ms, max ${lat.max} ms; ` +
            `POST -> 201 p50 ${ingest.p50} ms, p99 ${ingest.p99} ms, max ${ingest.max} ms`,
        );
      }
      const low = byRate[LOW_RATE]!;
      const half = byRate[halfRate]!;
      const measure = (r: typeof low, rate: number) => ({
        label: `postoffice at ${rate.toLocaleString('en-US')}/s`,
        value: r.p99,
        unit: 'ms p99',
        extra: {
          p50_ms: r.p50,
          max_ms: r.max,
          ingest_p99_ms: r.ingest_p99,
          achieved_per_s: r.achieved_per_s,
          messages: r.count,
          last_after_ms: r.last_after_ms,
        },
      });
      const keptUp = half.last_after_ms <= KEEP_UP_MS && half.achieved_per_s >= halfRate * 0.95 && half.failed === 0;
      return {
        figure: measure(low, LOW_RATE),
        baseline: { label: 'goal', value: GOAL_P99_MS, unit: 'ms p99' },
        ratio: round(low.p99 / GOAL_P99_MS, 3),
        goal: `p99 <= ${GOAL_P99_MS} ms`,
        met: low.p99 <= GOAL_P99_MS && low.failed === 0,
        more: [
          {
            figure: measure(half, halfRate),
            baseline: {
              label: `goal at half the delivery rate (${round(deliveryRate, 0).toLocaleString('en-US')}/s${measuredHere ? ', measured here' : ''})`,
              value: GOAL_HALF_P99_MS,
              unit: 'ms p99',
            },
            ratio: round(half.p99 / GOAL_HALF_P99_MS, 3),
            goal: `p99 <= ${GOAL_HALF_P99_MS} ms, all received within ${KEEP_UP_MS / 1000} s of the last send`,
            met: half.p99 <= GOAL_HALF_P99_MS && keptUp,
          },
        ],
        config: {
          rates_per_s: RATES,
          delivery_rate_per_s: deliveryRate,
          delivery_rate_from: measuredHere ? 'a backlog drain in this case' : 'the delivery case of this run',
          seconds_per_rate: seconds,
          warm_up_seconds: warmSeconds,
          publisher_concurrency: CONCURRENCY,
          sender: 'undici Pool, 64 connections, single POST /api/messages per message, in the bench process',
          clock: 'performance.timeOrigin + performance.now() in sender and receiver (same machine)',
        },
        details: { by_rate: byRate },
      };
    } finally {
      await receiver.close();
      await world.close();
    }
  },
};
