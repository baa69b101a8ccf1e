/**
 * Delivery: one publisher draining a backlog to a no-op receiver, against
 * (a) an undici Pool posting the same bodies at the same concurrency with
 * no queue at all (the limit), and (b) a BullMQ Queue + Worker posting to
 * the same receiver at the same concurrency. The three run one after the
 * other against one receiver process; each rate is measured at the receiver.
 */
import { drainBacklog } from '../lib/backlog.js';
import { startChild } from '../lib/child.js';
import { receiptRate } from '../lib/load.js';
import { round } from '../lib/stats.js';
import { measureUsage } from '../lib/usage.js';
import { bySize, type BenchCase } from '../lib/types.js';
import { World } from '../lib/world.js';

export const CONCURRENCY = 50;

export const delivery: BenchCase = {
  name: 'delivery',
  measure: 'msgs/s from a backlog, 1 publisher',
  async run(ctx) {
    const backlog = bySize(ctx.mode, { full: 100_000, quick: 20_000, shape: 2_000 });
    const warm = Math.floor(backlog * 0.05);
    const world = await World.start();
    const receiver = await startChild<{ url: string }>('receiver');
    const poster = await startChild('undici-poster');
    const bull = await startChild('bullmq-worker', { BENCH_REDIS_URL: world.redis.url });
    try {
      await world.startProducer();

      const redis = world.client();
      // The no-queue limit runs before Postoffice and again after BullMQ; the mean of the two is the
      // baseline, so that a change in the machine's load during the case does not favour either side.
      const runPool = async (round_: number) => {
        ctx.log(`(a) undici Pool, ${backlog} posts at concurrency ${CONCURRENCY} (${round_} of 2)`);
        await receiver.call('reset');
        const usage = await measureUsage({ poster: poster.pid, receiver: receiver.pid }, redis);
        await poster.call('run', { target: `${receiver.ready.url}/pool`, count: backlog, concurrency: CONCURRENCY });
        const rate = await receiptRate(receiver, backlog, warm, 60_000);
        return { ...rate, cost: await usage(backlog) };
      };
      const poolBefore = await runPool(1);

      ctx.log('postoffice');
      const po = await drainBacklog(ctx, world, receiver, {
        topic: 'bench',
        messages: backlog,
        publishers: 1,
        concurrency: CONCURRENCY,
      });
      await world.stopConsumer();

      ctx.log(`(b) BullMQ: queueing ${backlog} jobs`);
      await bull.call('fill', { count: backlog });
      await receiver.call('reset');
      const bullUsage = await measureUsage({ worker: bull.pid, receiver: receiver.pid }, redis);
      await bull.call('work', { target: `${receiver.ready.url}/bullmq`, concurrency: CONCURRENCY });
      const bullmq = await receiptRate(receiver, backlog, warm, 600_000);
      const bullCost = await bullUsage(backlog);
      await bull.call('close');
      const poolAfter = await runPool(2);
      const pool = {
        perSec: round((poolBefore.perSec + poolAfter.perSec) / 2, 1),
        seconds: round((poolBefore.seconds + poolAfter.seconds) / 2, 3),
      };
      const poolCost = poolBefore.cost;
      const total = (u: { cpu_ms_per_msg: Record<string, number> }) =>
        Object.values(u.cpu_ms_per_msg).reduce((sum, v) => sum + v, 0);

      const ratioA = round(po.perSec / pool.perSec, 3);
      const ratioB = round(po.perSec / bullmq.perSec, 3);
      // Commands Redis ran per delivery (scripts' inner commands included, INFO commandstats).
      const commands = round(
        Object.values(po.usage.redis_cmds_per_msg).reduce((sum, v) => sum + v, 0),
        3,
      );
      return {
        figure: { label: 'postoffice', value: po.perSec, unit: 'msg/s', extra: { seconds: po.seconds } },
        baseline: {
          label: 'undici Pool, no queue',
          value: pool.perSec,
          unit: 'msg/s',
          extra: { seconds: pool.seconds, before_per_s: poolBefore.perSec, after_per_s: poolAfter.perSec },
        },
        ratio: ratioA,
        goal: '>= 0.8x',
        met: ratioA >= 0.8,
        more: [
          {
            baseline: {
              label: 'BullMQ Queue + Worker',
              value: bullmq.perSec,
              unit: 'msg/s',
              extra: { seconds: bullmq.seconds },
            },
            ratio: ratioB,
            goal: '(none: the figure of merit is the fraction of the limit, below)',
            met: true,
          },
          {
            // The no-queue limit bounds any queue: how much of it each reaches is what compares them.
            figure: { label: 'BullMQ, fraction of the limit', value: round(bullmq.perSec / pool.perSec, 3), unit: 'x' },
            baseline: { label: 'postoffice, fraction of the limit', value: ratioA, unit: 'x' },
            ratio: round(bullmq.perSec / pool.perSec / ratioA, 3),
            goal: '(none: reported)',
            met: true,
          },
          {
            figure: { label: 'Redis commands per delivery', value: commands, unit: 'cmd/msg' },
            baseline: { label: 'goal', value: 1.5, unit: 'cmd/msg' },
            ratio: round(commands / 1.5, 3),
            goal: '<= 1.5 cmd/msg',
            met: commands <= 1.5,
          },
        ],
        config: {
          backlog,
          concurrency: CONCURRENCY,
          warm_up: `first ${warm} receipts left out of each rate`,
          receiver: 'node:http, answers 200 at once, own process',
          bullmq: 'removeOnComplete, attempts 10, undici Agent like the http target',
        },
        details: {
          // What any queue could reach against BullMQ here: Postoffice cannot beat the no-queue limit.
          limit_over_bullmq: round(pool.perSec / bullmq.perSec, 3),
          // When every process shares the CPUs, the ratio cannot beat CPU per message of the limit over Postoffice's.
          cpu_bound_ratio_cap: round(total(poolCost) / total(po.usage), 3),
          cost: { postoffice: po.usage, undici_pool: poolCost, bullmq: bullCost },
        },
      };
    } finally {
      await Promise.all([receiver.close(), poster.close(), bull.close()]);
      await world.close();
    }
  },
};
