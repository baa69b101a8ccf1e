/**
 * Fault: the receiver is down (connection refused) for 60 s while messages
 * keep coming, then comes back on the same port.
 */
import { expect } from 'chai';
import { waitFor } from '@postoffice/test-support';
import {
  faultWorld,
  createPublisher,
  createTopic,
  duplicates,
  lost,
  publishBulk,
  report,
} from '@postoffice/test-support/faults';

/** Retries every second at first, the backoff capped at 4 s, so that recovery is quick once the receiver is back. */
const ENV = {
  HEARTBEAT_SECONDS: '1',
  CLAIM_TIMEOUT_SECONDS: '3',
  RETRY_POLL_MS: '100',
  RETRY_MAX_BACKOFF_SECONDS: '4',
};
const OUTAGE_MS = 60_000;
const BEFORE = 1000;
const DURING = 2000;

describe('fault: the receiver is down for 60 s', function () {
  this.timeout(300_000);
  const world = faultWorld({ env: ENV });

  it('delivers everything once it is back, and an ordered publisher keeps its order', async () => {
    const producer = await world.start('producer');
    const topic = await createTopic(producer, 'outage');
    const common = { topic, seconds_timeout: 2, seconds_retry: 1 };
    await createPublisher(producer, { ...common, target: world.sink.url('/any') });
    await createPublisher(producer, { ...common, target: world.sink.url('/ordered'), ordered: true });
    await world.start('consumer');
    await world.start('consumer');
    const any = world.sink.countsOf('/any');
    const ordered = world.sink.countsOf('/ordered');

    const ids = await publishBulk(producer, topic, BEFORE, { batch: 500 });
    await waitFor(() => ordered.size >= BEFORE / 2, 'deliveries under way', 60_000);
    await world.sink.down();
    const downAt = Date.now();
    // Messages keep coming during the outage: ten batches spread over it.
    for (let i = 0; i < 10; i++) {
      ids.push(
        ...(await publishBulk(producer, topic, DURING / 10, { batch: DURING / 10, payload: (n) => ({ i, n }) })),
      );
      await new Promise((r) => setTimeout(r, OUTAGE_MS / 10 - 100));
    }
    await waitFor(() => Date.now() - downAt >= OUTAGE_MS, 'the outage to last 60 s', OUTAGE_MS, 100);
    const deliveredBeforeUp = { any: any.size, ordered: ordered.size };
    await world.sink.up();
    const upAt = Date.now();
    await waitFor(() => ids.every((id) => any.has(id)), 'every message delivered to /any', 120_000, 50);
    const anyRecoveryMs = Date.now() - upAt;
    await waitFor(() => ids.every((id) => ordered.has(id)), 'every message delivered to /ordered', 120_000, 50);
    const orderedRecoveryMs = Date.now() - upAt;

    // The order the ordered publisher delivered in, a message sent again just after itself counted once.
    const seen = world.sink.order.get('/ordered') ?? [];
    const collapsed = seen.filter((id, i) => i === 0 || seen[i - 1] !== id);
    const firstOutOfOrder = collapsed.findIndex((id, i) => id !== ids[i]);
    const figures = {
      messages: ids.length,
      outageMs: upAt - downAt,
      deliveredBeforeUp,
      lost: { any: lost(ids, any), ordered: lost(ids, ordered) },
      duplicates: { any: duplicates(any), ordered: duplicates(ordered) },
      orderedInOrder: firstOutOfOrder === -1 && collapsed.length === ids.length,
      recoveryMs: { any: anyRecoveryMs, ordered: orderedRecoveryMs },
    };
    report('receiver-outage', figures);
    expect(figures.lost).to.deep.equal({ any: 0, ordered: 0 });
    expect(firstOutOfOrder, `first out of order at ${firstOutOfOrder}`).to.equal(-1);
    expect(collapsed).to.have.length(ids.length);
  });
});
