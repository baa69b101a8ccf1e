/**
 * Fault: SIGKILL the consumer that holds an ordering-key publisher, three
 * times, while messages of 100 keys are published and delivered; every
 * key's messages must reach the receiver in stream order (a duplicate only
 * right after the first delivery of the same message), and none may be lost.
 */
import { expect } from 'chai';
import { waitFor, api, type AppProcess } from '@postoffice/test-support';
import {
  FAST_FAILOVER_ENV,
  faultWorld,
  createPublisher,
  createTopic,
  duplicates,
  lost,
  pool,
  report,
} from '@postoffice/test-support/faults';

const KEYS = 100;
const PER_KEY = 100;
const RUN = 5;
const KILLS = 3;

describe('fault: SIGKILL of the consumer that holds an ordering-key publisher', function () {
  this.timeout(300_000);
  const world = faultWorld({ env: FAST_FAILOVER_ENV });

  it(`keeps each of ${KEYS} keys in order and loses nothing when the holder is killed ${KILLS} times`, async () => {
    const producer = await world.start('producer');
    const topic = await createTopic(producer, 'keyed');
    const publisher = await createPublisher(producer, {
      topic,
      target: world.sink.url('/hook'),
      ordered: true,
      ordering_attribute: 'customer',
      concurrency: 25,
      seconds_timeout: 2,
      seconds_retry: 1,
    });
    const byNode = new Map<string, AppProcess>();
    let serial = 0;
    const consumer = async (): Promise<void> => {
      const name = `node-${++serial}`;
      const app = await world.start('consumer', { NODE_ID: name });
      byNode.set(name, app);
    };
    for (let i = 0; i < 3; i++) await consumer();
    world.sink.delayMs = 2;

    // Each key's messages in runs of RUN, keys published side by side; a key's runs go one after the other.
    const keyOf = new Map<string, { key: string; n: number }>();
    const total = KEYS * PER_KEY;
    const publishing = pool(KEYS, 10, async (k) => {
      const key = `c-${k}`;
      for (let n = 0; n < PER_KEY; n += RUN) {
        const res = await api(producer, 'POST', '/api/bulk_messages', {
          topic,
          attributes: { customer: key },
          payload: Array.from({ length: RUN }, (_, i) => ({ key, n: n + i })),
        });
        if (res.status !== 201) throw new Error(`bulk: ${res.status} ${JSON.stringify(res.json)}`);
        (res.json.data.ids as string[]).forEach((id, i) => keyOf.set(id, { key, n: n + i }));
      }
    });

    const holder = async (): Promise<string> =>
      waitFor(async () => {
        const { json } = await api(producer, 'GET', '/api/cluster');
        const p = (json.data.publishers as { id: string; slots: { node: string | null }[] }[]).find(
          (x) => x.id === publisher,
        );
        const node = p?.slots[0]?.node;
        return node && byNode.has(node) ? node : undefined;
      }, 'the publisher’s holder');

    const kills: { node: string; atReceived: number }[] = [];
    for (let k = 0; k < KILLS; k++) {
      const threshold = ((k + 1) * total) / (KILLS + 2);
      await waitFor(() => world.sink.counts.size >= threshold, `${threshold} messages received`, 120_000, 10);
      const name = await holder();
      const victim = byNode.get(name)!;
      byNode.delete(name);
      kills.push({ node: name, atReceived: world.sink.counts.size });
      victim.kill('SIGKILL');
      expect(await victim.exited).to.equal('SIGKILL');
      await consumer();
    }
    await publishing;
    expect(keyOf.size).to.equal(total);
    await waitFor(() => world.sink.counts.size >= total, 'every message received', 180_000, 100);

    // Each key's sequence as received: non-decreasing (a duplicate only right after itself) and complete.
    const order = world.sink.order.get('/hook') ?? [];
    const sequences = new Map<string, number[]>();
    for (const id of order) {
      const m = keyOf.get(id);
      if (!m) continue;
      let list = sequences.get(m.key);
      if (!list) sequences.set(m.key, (list = []));
      list.push(m.n);
    }
    const outOfOrder: string[] = [];
    for (const [key, seq] of sequences) {
      for (let i = 1; i < seq.length; i++)
        if (seq[i]! < seq[i - 1]!) outOfOrder.push(`${key}: ${seq[i - 1]} then ${seq[i]}`);
      expect(new Set(seq).size, key).to.equal(PER_KEY);
    }
    const figures = {
      keys: KEYS,
      messages: total,
      kills,
      lost: lost(keyOf.keys(), world.sink.counts),
      duplicates: duplicates(world.sink.counts),
      out_of_order: outOfOrder.length,
    };
    report('ordering-keys-sigkill', figures);
    expect(sequences.size).to.equal(KEYS);
    expect(outOfOrder.slice(0, 10)).to.deep.equal([]);
    expect(figures.lost).to.equal(0);
  });
});
