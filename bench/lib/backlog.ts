/**
 * Postoffice draining a backlog: a topic with `publishers` publishers (all
 * to one receiver, each on its own path), filled with `messages` messages
 * while the publishers are inactive, then activated at once; the rate is
 * what the receiver sees, leaving out the first 5% of receipts (warm-up).
 */
import type { Child } from './child.js';
import { receiptRate } from './load.js';
import { ATTRIBUTES, PAYLOAD_BYTES, payload } from './payload.js';
import type { CaseContext } from './types.js';
import { measureUsage, type UsageReport } from './usage.js';
import type { World } from './world.js';

export interface BacklogRun {
  readonly perSec: number;
  readonly seconds: number;
  readonly deliveries: number;
  readonly usage: UsageReport;
}

export async function drainBacklog(
  ctx: CaseContext,
  world: World,
  receiver: Child<{ url: string }>,
  options: {
    topic: string;
    messages: number;
    publishers: number;
    concurrency: number;
    /** Payload size in bytes of JSON (default PAYLOAD_BYTES). */
    bytes?: number;
    timeoutMs?: number;
    /** More publisher fields (`batch_size`, …). */
    publisher?: Record<string, unknown>;
  },
): Promise<BacklogRun> {
  const { topic, messages, publishers, concurrency } = options;
  await world.createTopic(topic);
  const ids: string[] = [];
  for (let p = 0; p < publishers; p++) {
    ids.push(
      await world.createPublisher(topic, `${receiver.ready.url}/${topic}/${p}`, {
        active: false,
        concurrency,
        ...options.publisher,
      }),
    );
  }
  ctx.log(`filling ${messages} messages into ${topic}`);
  const bytes = options.bytes ?? PAYLOAD_BYTES;
  await world.fill(
    topic,
    messages,
    (i) => payload(i, bytes),
    { ...ATTRIBUTES },
    Math.max(10, Math.min(1000, Math.floor(2_000_000 / bytes))),
  );
  if (!world.consumer) await world.startConsumer();
  await receiver.call('reset');
  const usage = await measureUsage(
    { consumer: world.consumer!.child.pid!, producer: world.producer!.child.pid!, receiver: receiver.pid },
    world.client(),
  );
  const deliveries = messages * publishers;
  ctx.log(`activating ${publishers} publisher(s): ${deliveries} deliveries`);
  await Promise.all(ids.map((id) => world.patch(`/api/publishers/${id}`, { active: true })));
  const rate = await receiptRate(receiver, deliveries, Math.floor(deliveries * 0.05), options.timeoutMs ?? 600_000);
  return { ...rate, deliveries, usage: await usage(deliveries) };
}
