/**
 * Slow receiver: a receiver that takes 200 ms to answer, a large backlog,
 * and the consumer's RSS sampled every second. Demand-driven reading keeps
 * the backlog in Redis, so RSS must stay flat: the figure is the highest
 * RSS over the last third of the window, the baseline the highest over the
 * first third. Peaks, because RSS is a sawtooth set by the garbage
 * collector: a heap that grows with the backlog raises the late peaks,
 * while one collection that hands memory back early (a trough) must not
 * be read as growth afterwards, as medians did (a run went 111 MB, 79 MB
 * after a compaction, back to 110 MB: medians said 1.24×, peaks 0.99×).
 */
import { startChild } from '../lib/child.js';
import { ATTRIBUTES, TOPIC, payload } from '../lib/payload.js';
import { round } from '../lib/stats.js';
import { bySize, type BenchCase } from '../lib/types.js';
import { World, rssMb, sleep } from '../lib/world.js';
import { CONCURRENCY } from './delivery.js';

const DELAY_MS = 200;
const GOAL_GROWTH = 1.1;

export const slowReceiver: BenchCase = {
  name: 'slow receiver',
  measure: `consumer RSS, ${DELAY_MS} ms receiver, backlog`,
  async run(ctx) {
    const backlog = bySize(ctx.mode, { full: 100_000, quick: 20_000, shape: 2_000 });
    const seconds = bySize(ctx.mode, { full: 60, quick: 15, shape: 4 });
    const warmSeconds = bySize(ctx.mode, { full: 10, quick: 3, shape: 1 });
    const world = await World.start();
    const receiver = await startChild<{ url: string }>('receiver', { BENCH_DELAY_MS: DELAY_MS });
    try {
      await world.startProducer();
      await world.createTopic(TOPIC);
      await world.createPublisher(TOPIC, `${receiver.ready.url}/slow`, { concurrency: CONCURRENCY });
      ctx.log(`filling ${backlog} messages`);
      await world.fill(TOPIC, backlog, (i) => payload(i), { ...ATTRIBUTES });
      const consumer = await world.startConsumer();
      const pid = consumer.child.pid!;
      await sleep(warmSeconds * 1000);
      const samples: number[] = [];
      for (let s = 0; s <= seconds; s++) {
        samples.push(round(rssMb(pid), 1));
        if (s < seconds) await sleep(1000);
      }
      const delivered = (await receiver.call<{ count: number }>('stats')).count;
      const third = Math.max(1, Math.floor(samples.length / 3));
      const early = Math.max(...samples.slice(0, third));
      const late = Math.max(...samples.slice(-third));
      const max = Math.max(...samples);
      const ratio = round(late / early, 3);
      ctx.log(`RSS ${early} MB early, ${late} MB late, max ${max} MB; ${delivered} delivered of ${backlog}`);
      return {
        figure: { label: 'postoffice, highest RSS late in the run', value: late, unit: 'MB', extra: { max_mb: max } },
        baseline: { label: 'highest RSS early in the run', value: early, unit: 'MB' },
        ratio,
        goal: `flat (<= ${GOAL_GROWTH}x)`,
        met: ratio <= GOAL_GROWTH && delivered < backlog,
        config: {
          backlog,
          receiver_delay_ms: DELAY_MS,
          concurrency: CONCURRENCY,
          warm_up_seconds: warmSeconds,
          sampled_seconds: seconds,
          expected_rate_per_s: (CONCURRENCY * 1000) / DELAY_MS,
        },
        details: { rss_mb_each_second: samples, delivered_during_run: delivered, backlog_left: backlog - delivered },
      };
    } finally {
      await receiver.close();
      await world.close();
    }
  },
};
