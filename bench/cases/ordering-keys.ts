/**
 * Ordering keys: an ordered publisher with `ordering_attribute` draining a
 * backlog whose messages are spread over 100 keys, against an unordered
 * publisher on the same backlog in the same run (goal: at least 0.7 of
 * it); then a backlog of one key, against today's ordered publisher (no
 * attribute: one delivery in flight) on the same backlog (goal: as fast).
 * Every publisher has concurrency 50 and delivers to the same no-op
 * receiver; each rate is measured there, as in the delivery case.
 */
import type { Child } from '../lib/child.js';
import { startChild } from '../lib/child.js';
import { receiptRate } from '../lib/load.js';
import { PAYLOAD_BYTES, payload } from '../lib/payload.js';
import { round } from '../lib/stats.js';
import { measureUsage, type UsageReport } from '../lib/usage.js';
import { bySize, type BenchCase, type CaseContext } from '../lib/types.js';
import { World } from '../lib/world.js';

const CONCURRENCY = 50;
const KEYS = 100;
/** Messages of one bulk request: a key's run in the stream (keys alternate between requests). */
const RUN = 5;

interface Run {
  readonly perSec: number;
  readonly seconds: number;
  readonly usage: UsageReport;
}

/**
 * Fills a topic with `messages` spread over `keys` keys (attribute
 * `account`), `RUN` consecutive messages a key, then activates one
 * publisher with `fields` and measures its rate at the receiver.
 */
async function drain(
  ctx: CaseContext,
  world: World,
  receiver: Child<{ url: string }>,
  topic: string,
  messages: number,
  keys: number,
  fields: Record<string, unknown>,
): Promise<Run> {
  await world.createTopic(topic);
  const id = await world.createPublisher(topic, `${receiver.ready.url}/${topic}`, {
    active: false,
    concurrency: CONCURRENCY,
    ...fields,
  });
  ctx.log(`filling ${messages} messages over ${keys} key(s) into ${topic}`);
  const pool = world.api(4);
  let next = 0;
  const worker = async () => {
    while (next < messages) {
      const start = next;
      const n = Math.min(RUN, messages - start);
      next += n;
      const account = `k-${Math.floor(start / RUN) % keys}`;
      const payloads = Array.from({ length: n }, (_, k) => payload(start + k, PAYLOAD_BYTES));
      await world.post('/api/bulk_messages', { topic, attributes: { account }, payload: payloads }, pool);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  if (!world.consumer) await world.startConsumer();
  await receiver.call('reset');
  const usage = await measureUsage(
    { consumer: world.consumer!.child.pid!, producer: world.producer!.child.pid!, receiver: receiver.pid },
    world.client(),
  );
  ctx.log(`activating ${topic}: ${JSON.stringify(fields)}`);
  await world.patch(`/api/publishers/${id}`, { active: true });
  const rate = await receiptRate(receiver, messages, Math.floor(messages * 0.05), 600_000);
  // The consumer stays for the next run (as in the fan-out case): the publishers before are done, so idle.
  return { ...rate, usage: await usage(messages) };
}

export const orderingKeys: BenchCase = {
  name: 'ordering keys',
  measure: `msgs/s from a backlog, ordered over ${KEYS} keys`,
  async run(ctx) {
    const many = bySize(ctx.mode, { full: 50_000, quick: 10_000, shape: 1_000 });
    const one = bySize(ctx.mode, { full: 5_000, quick: 2_000, shape: 200 });
    const world = await World.start();
    const receiver = await startChild<{ url: string }>('receiver');
    try {
      await world.startProducer();
      const keyed = { ordered: true, ordering_attribute: 'account' };
      const unordered = await drain(ctx, world, receiver, 'unordered', many, KEYS, {});
      const hundred = await drain(ctx, world, receiver, 'keys100', many, KEYS, keyed);
      const oneKey = await drain(ctx, world, receiver, 'keys1', one, 1, keyed);
      const ordered = await drain(ctx, world, receiver, 'ordered', one, 1, { ordered: true });
      const ratio = round(hundred.perSec / unordered.perSec, 3);
      const oneRatio = round(oneKey.perSec / ordered.perSec, 3);
      return {
        figure: {
          label: `postoffice, ${KEYS} ordering keys`,
          value: hundred.perSec,
          unit: 'msg/s',
          extra: { seconds: hundred.seconds },
        },
        baseline: {
          label: 'postoffice, unordered',
          value: unordered.perSec,
          unit: 'msg/s',
          extra: { seconds: unordered.seconds },
        },
        ratio,
        goal: '>= 0.7x',
        met: ratio >= 0.7,
        more: [
          {
            figure: { label: 'postoffice, 1 ordering key', value: oneKey.perSec, unit: 'msg/s' },
            baseline: {
              label: 'postoffice, ordered without a key (one in flight)',
              value: ordered.perSec,
              unit: 'msg/s',
            },
            ratio: oneRatio,
            goal: '>= 0.9x (as fast as ordered)',
            met: oneRatio >= 0.9,
          },
        ],
        config: {
          messages_many_keys: many,
          messages_one_key: one,
          keys: KEYS,
          concurrency: CONCURRENCY,
          stream_layout: `${RUN} consecutive messages a key, keys in turn`,
          receiver: 'node:http, answers 200 at once, own process',
        },
        details: {
          cost: {
            unordered: unordered.usage,
            keys_100: hundred.usage,
            keys_1: oneKey.usage,
            ordered: ordered.usage,
          },
        },
      };
    } finally {
      await receiver.close();
      await world.close();
    }
  },
};
