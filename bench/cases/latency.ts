/**
 * Latency: publish -> received at a steady 1k and 5k msg/s. The bench
 * posts single messages to POST /api/messages at the rate, each carrying
 * its send time (`t`, wall-clock ms); the receiver, another process on the
 * same machine, subtracts it from its arrival time. A warm-up phase at the
 * same rate comes first and is not counted.
 */
import { startChild } from '../lib/child.js';
import { wallNow } from '../lib/child.js';
import { paced } from '../lib/load.js';
import { ATTRIBUTES, TOPIC } from '../lib/payload.js';
import { round, summarize, type Summary } from '../lib/stats.js';
import { bySize, type BenchCase } from '../lib/types.js';
import { measureUsage, type UsageReport } from '../lib/usage.js';
import { World, waitFor } from '../lib/world.js';
import { CONCURRENCY } from './delivery.js';

const RATES = [1000, 5000];
const GOAL_P99_MS = 25;

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
      await world.startConsumer();
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
        const ingest = summarize(acks);
        await waitFor(
          async () => (await receiver.call<{ count: number }>('stats')).count >= run.sent - run.failed,
          'every message of the run',
          120_000,
        );
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
        };
        ctx.log(
          `${rate}/s (achieved ${run.achievedPerSec}): p50 ${lat.p50} ms, p99 ${lat.p99} ms, max ${lat.max} ms; ` +
            `POST -> 201 p50 ${ingest.p50} ms, p99 ${ingest.p99} ms, max ${ingest.max} ms`,
        );
      }
      const at1k = byRate[1000]!;
      const at5k = byRate[5000]!;
      const measure = (r: typeof at1k, rate: number) => ({
        label: `postoffice at ${rate / 1000}k/s`,
        value: r.p99,
        unit: 'ms p99',
        extra: {
          p50_ms: r.p50,
          max_ms: r.max,
          ingest_p99_ms: r.ingest_p99,
          achieved_per_s: r.achieved_per_s,
          messages: r.count,
        },
      });
      const goal = { label: 'goal', value: GOAL_P99_MS, unit: 'ms p99' };
      return {
        figure: measure(at1k, 1000),
        baseline: goal,
        ratio: round(at1k.p99 / GOAL_P99_MS, 3),
        goal: `p99 <= ${GOAL_P99_MS} ms`,
        met: at1k.p99 <= GOAL_P99_MS && at1k.failed === 0,
        more: [
          {
            figure: measure(at5k, 5000),
            baseline: { label: 'no goal; vs 1k/s p99', value: at1k.p99, unit: 'ms p99' },
            ratio: round(at5k.p99 / at1k.p99, 3),
            goal: '(none)',
            met: true,
          },
        ],
        config: {
          rates_per_s: RATES,
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
