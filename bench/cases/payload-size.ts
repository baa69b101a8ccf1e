/**
 * Payload size: how delivery cost grows with the payload. The delivery case
 * (one publisher, a backlog, no-op receiver) at 256 B, 4 KB and 64 KB
 * payloads; the figure is the rate at 64 KB beside the rate at 256 B, with
 * CPU per message of each process at each size in the details.
 */
import { drainBacklog, type BacklogRun } from '../lib/backlog.js';
import { startChild } from '../lib/child.js';
import { round } from '../lib/stats.js';
import { bySize, type BenchCase } from '../lib/types.js';
import { World } from '../lib/world.js';
import { CONCURRENCY } from './delivery.js';

const SIZES = [256, 4096, 65536];

export const payloadSize: BenchCase = {
  name: 'payload size',
  measure: 'msgs/s from a backlog at 64 KB vs 256 B',
  async run(ctx) {
    const count = (bytes: number) =>
      bytes >= 65536
        ? bySize(ctx.mode, { full: 5_000, quick: 1_000, shape: 200 })
        : bySize(ctx.mode, { full: 20_000, quick: 3_000, shape: 500 });
    const world = await World.start();
    const receiver = await startChild<{ url: string }>('receiver');
    try {
      await world.startProducer();
      const runs: Record<number, BacklogRun> = {};
      for (const bytes of SIZES) {
        runs[bytes] = await drainBacklog(ctx, world, receiver, {
          topic: `size-${bytes}`,
          messages: count(bytes),
          publishers: 1,
          concurrency: CONCURRENCY,
          bytes,
        });
        ctx.log(`${bytes} B: ${runs[bytes].perSec} msg/s`);
      }
      const small = runs[256]!;
      const big = runs[65536]!;
      return {
        figure: { label: 'postoffice, 64 KB payloads', value: big.perSec, unit: 'msg/s' },
        baseline: { label: 'postoffice, 256 B payloads', value: small.perSec, unit: 'msg/s' },
        ratio: round(big.perSec / small.perSec, 3),
        goal: '(none: how cost grows)',
        met: true,
        config: {
          sizes_bytes: SIZES,
          messages: Object.fromEntries(SIZES.map((b) => [b, count(b)])),
          concurrency: CONCURRENCY,
        },
        details: {
          by_size: Object.fromEntries(
            SIZES.map((b) => [
              b,
              { per_s: runs[b]!.perSec, mb_per_s: round((runs[b]!.perSec * b) / 1e6, 1), cost: runs[b]!.usage },
            ]),
          ),
        },
      };
    } finally {
      await receiver.close();
      await world.close();
    }
  },
};
