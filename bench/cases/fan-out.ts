/**
 * Fan-out: one topic with 50 publishers, all delivering to one no-op
 * receiver; total deliveries/s, against the delivery case (one publisher,
 * the same number of deliveries, same receiver) measured again here.
 */
import { drainBacklog } from '../lib/backlog.js';
import { startChild } from '../lib/child.js';
import { round } from '../lib/stats.js';
import { bySize, type BenchCase } from '../lib/types.js';
import { World } from '../lib/world.js';
import { CONCURRENCY } from './delivery.js';

const PUBLISHERS = 50;
/** Per publisher: 50 x 10 = 500 deliveries in flight at most, 10x the single publisher. */
const FAN_CONCURRENCY = 10;

export const fanOut: BenchCase = {
  name: 'fan-out',
  measure: `deliveries/s, 1 topic x ${PUBLISHERS} publishers`,
  async run(ctx) {
    const deliveries = bySize(ctx.mode, { full: 100_000, quick: 20_000, shape: 2_000 });
    const messages = Math.ceil(deliveries / PUBLISHERS);
    const world = await World.start();
    const receiver = await startChild<{ url: string }>('receiver');
    try {
      await world.startProducer();
      const one = await drainBacklog(ctx, world, receiver, {
        topic: 'single',
        messages: messages * PUBLISHERS,
        publishers: 1,
        concurrency: CONCURRENCY,
      });
      const fan = await drainBacklog(ctx, world, receiver, {
        topic: 'fanout',
        messages,
        publishers: PUBLISHERS,
        concurrency: FAN_CONCURRENCY,
      });
      // How cost grows with fan-out: the same deliveries through 1, 10 and 50 publishers.
      const ten =
        ctx.mode === 'full'
          ? await drainBacklog(ctx, world, receiver, {
              topic: 'fanout10',
              messages: Math.ceil(deliveries / 10),
              publishers: 10,
              concurrency: FAN_CONCURRENCY,
            })
          : undefined;
      const ratio = round(fan.perSec / one.perSec, 3);
      return {
        figure: { label: `postoffice, ${PUBLISHERS} publishers`, value: fan.perSec, unit: 'deliveries/s' },
        baseline: { label: 'postoffice, 1 publisher', value: one.perSec, unit: 'deliveries/s' },
        ratio,
        goal: '>= 0.5x',
        met: ratio >= 0.5,
        config: {
          publishers: PUBLISHERS,
          messages,
          deliveries: messages * PUBLISHERS,
          concurrency_per_publisher: FAN_CONCURRENCY,
          baseline: `1 publisher, ${messages * PUBLISHERS} messages, concurrency ${CONCURRENCY}`,
        },
        details: {
          by_publishers: {
            1: { per_s: one.perSec, cost: one.usage },
            ...(ten ? { 10: { per_s: ten.perSec, cost: ten.usage } } : {}),
            [PUBLISHERS]: { per_s: fan.perSec, cost: fan.usage },
          },
        },
      };
    } finally {
      await receiver.close();
      await world.close();
    }
  },
};
