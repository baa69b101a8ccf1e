/**
 * Batch delivery: one publisher with `batch_size: 100` draining a backlog
 * to a no-op receiver, against the no-queue limit: an undici Pool posting
 * the same batches (JSON arrays of 100 `{"id", "payload", "attributes"}`
 * with a `message-ids` header) at the same concurrency. The receiver counts
 * each batch as the messages it names; each rate is measured there, as in
 * the delivery case.
 */
import { drainBacklog } from '../lib/backlog.js';
import { startChild } from '../lib/child.js';
import { receiptRate } from '../lib/load.js';
import { round } from '../lib/stats.js';
import { measureUsage } from '../lib/usage.js';
import { bySize, type BenchCase } from '../lib/types.js';
import { World } from '../lib/world.js';

const CONCURRENCY = 50;
const BATCH = 100;

export const batchDelivery: BenchCase = {
  name: 'batch delivery',
  measure: `msgs/s from a backlog, batch_size ${BATCH}`,
  async run(ctx) {
    const backlog = bySize(ctx.mode, { full: 100_000, quick: 20_000, shape: 2_000 });
    const warm = Math.floor(backlog * 0.05);
    const world = await World.start();
    const receiver = await startChild<{ url: string }>('receiver', { BENCH_COUNT_IDS: 1 });
    const poster = await startChild('undici-poster');
    try {
      await world.startProducer();
      const redis = world.client();
      // The limit runs before and after Postoffice; the mean of the two is the baseline (as in the delivery case).
      const runPool = async (round_: number) => {
        ctx.log(
          `undici Pool, ${backlog} messages in batches of ${BATCH} at concurrency ${CONCURRENCY} (${round_} of 2)`,
        );
        await receiver.call('reset');
        const usage = await measureUsage({ poster: poster.pid, receiver: receiver.pid }, redis);
        await poster.call('batches', {
          target: `${receiver.ready.url}/pool`,
          count: backlog,
          batch: BATCH,
          concurrency: CONCURRENCY,
        });
        const rate = await receiptRate(receiver, backlog, warm, 60_000);
        return { ...rate, cost: await usage(backlog) };
      };
      const before = await runPool(1);

      ctx.log('postoffice');
      const po = await drainBacklog(ctx, world, receiver, {
        topic: 'bench',
        messages: backlog,
        publishers: 1,
        concurrency: CONCURRENCY,
        publisher: { batch_size: BATCH },
      });
      await world.stopConsumer();
      const after = await runPool(2);
      const pool = {
        perSec: round((before.perSec + after.perSec) / 2, 1),
        seconds: round((before.seconds + after.seconds) / 2, 3),
      };
      const ratio = round(po.perSec / pool.perSec, 3);
      return {
        figure: { label: 'postoffice', value: po.perSec, unit: 'msg/s', extra: { seconds: po.seconds } },
        baseline: {
          label: `undici Pool, batches of ${BATCH}, no queue`,
          value: pool.perSec,
          unit: 'msg/s',
          extra: { seconds: pool.seconds, before_per_s: before.perSec, after_per_s: after.perSec },
        },
        ratio,
        goal: '(none: reported; the figure of merit is the fraction of the limit)',
        met: true,
        more: [
          {
            figure: { label: 'postoffice, batch_size 1 (delivery case)', value: deliveryRate(ctx), unit: 'msg/s' },
            baseline: { label: `postoffice, batch_size ${BATCH}`, value: po.perSec, unit: 'msg/s' },
            ratio: round(deliveryRate(ctx) / po.perSec, 3),
            goal: '(none: how much batching gains; 0 when the delivery case did not run)',
            met: true,
          },
        ],
        config: {
          backlog,
          batch_size: BATCH,
          concurrency: CONCURRENCY,
          warm_up: `first ${warm} receipts left out of each rate`,
          receiver: 'node:http, answers 200 at once, own process; a batch counts as the messages it names',
        },
        details: { cost: { postoffice: po.usage, undici_pool: before.cost } },
      };
    } finally {
      await Promise.all([receiver.close(), poster.close()]);
      await world.close();
    }
  },
};

/** The delivery case's figure of this run, if it ran before. */
function deliveryRate(ctx: { previous: ReadonlyMap<string, { figure: { value: number } }> }): number {
  return ctx.previous.get('delivery')?.figure.value ?? 0;
}
