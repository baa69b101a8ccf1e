/**
 * Retention: what a delivered message costs while it is kept, and that the
 * janitor (and key expiry) remove it afterwards. With PO_TEST_REPORT=1 the
 * memory test prints its figure (the README quotes it).
 */
import { expect } from 'chai';
import { masterNodes } from '@postoffice/shared';
import { useWorld, waitFor } from './helpers.js';

function usedMemory(info: string): number {
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1]);
}

describe('retention', function () {
  const f = useWorld();

  it('removes delivered messages, their attempt records, notes and range records after the retention period', async () => {
    f.receiver.respond((req) => (req.body === '"dead"' ? 400 : 200));
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, f.receiver.url, { seconds_retry: 0.05 });
    await f.world.node({ RETENTION_SECONDS: '2', RETRY_MAX_AGE_SECONDS: '1', TRIM_INTERVAL_SECONDS: '1' });
    await f.world.publish(topic, ['a', 'b', 'c', 'dead']);
    await waitFor(() => f.receiver.received.length === 3, 'the deliveries');
    const tk = f.world.keys.topic(topic);
    const pk = f.world.keys.publisher(topic, p.id);
    await waitFor(async () => (await f.world.redis.zcard(pk.log)) > 0, 'the attempt records');
    await waitFor(async () => (await f.world.redis.hlen(pk.notes)) === 1, 'the dead letter note');
    // A purge's record of these messages (scored by the receipt time of the newest it covers).
    const newest = (await f.world.redis.xrevrange(tk.stream, '+', '-', 'COUNT', 1))[0]![0];
    const record = JSON.stringify({ kind: 'purge', at: '1', time: '1', from: '0-0', through: newest });
    await f.world.redis.zadd(pk.ranges, newest.split('-')[0]!, record);
    await waitFor(
      async () =>
        (await f.world.redis.xlen(tk.stream)) === 0 &&
        (await f.world.redis.zcard(pk.log)) === 0 &&
        (await f.world.redis.hlen(pk.notes)) === 0 &&
        (await f.world.redis.zcard(pk.ranges)) === 0 &&
        (await f.world.redis.zcard(pk.dead)) === 0,
      'the janitor to remove everything',
      20000,
    );
  });

  it('measures the memory each retained, delivered message takes', async () => {
    // Every master's used memory (one Redis: itself): on a cluster INFO answers for one node only.
    const clusterMemory = async (): Promise<number> =>
      (await Promise.all(masterNodes(f.world.redis).map(async (n) => usedMemory(await n.info('memory'))))).reduce(
        (a, b) => a + b,
        0,
      );
    const n = 2000;
    const topic = await f.world.topic();
    await f.world.publisher(topic, f.receiver.url);
    await f.world.node();
    const payload = { order: 123456, customer: 'c-000042', lines: [{ sku: 'ABC-1', qty: 2 }], note: 'x'.repeat(40) };
    const attributes = { source: 'shop', kind: 'order' };
    // warm up: the stream, the group and the topic's hashes exist before measuring
    await f.world.publish(topic, [payload], attributes);
    await waitFor(() => f.receiver.received.length === 1, 'the first delivery');
    const before = await clusterMemory();
    for (let i = 0; i < n; i += 500) {
      await f.world.publish(
        topic,
        Array.from({ length: 500 }, () => payload),
        attributes,
      );
    }
    await waitFor(() => f.receiver.received.length === n + 1, 'every delivery', 60000);
    const stream = f.world.keys.topic(topic).stream;
    await waitFor(async () => {
      const groups = (await f.world.redis.xinfo('GROUPS', stream)) as (string | number)[][];
      return groups[0]![groups[0]!.indexOf('pending') + 1] === 0;
    }, 'every outcome recorded');
    const after = await clusterMemory();
    const perMessage = Math.round((after - before) / n);
    const payloadBytes = JSON.stringify(payload).length;
    if (process.env.PO_TEST_REPORT) {
      process.stdout.write(
        `      retained message (payload ${payloadBytes} B, 2 attributes, 1 publisher): ${perMessage} B each ` +
          `(${n} messages, used_memory ${before} -> ${after})\n`,
      );
    }
    expect(perMessage).to.be.above(payloadBytes);
    // The stream entry and its share of one attempt record: nothing else is written per delivered message.
    expect(perMessage).to.be.below(payloadBytes * 2);
  });
});
