/**
 * Fault: a slow receiver (50 ms an answer) behind a large backlog. The
 * consumer reads only as many entries as it has free delivery slots, so the
 * backlog stays in Redis and the consumer's memory stays flat.
 */
import { expect } from 'chai';
import { waitFor, api } from '@postoffice/test-support';
import {
  FAST_FAILOVER_ENV,
  faultWorld,
  createPublisher,
  createTopic,
  growth,
  publishBulk,
  report,
  sampleRss,
} from '@postoffice/test-support/faults';

const BACKLOG = 50_000;
/** About 2 KB a message: the whole backlog is some 100 MB of payload, far more than the bound below. */
const FILLER = 'x'.repeat(2000);
const RUN_MS = 30_000;

describe('fault: a slow receiver behind a large backlog', function () {
  this.timeout(300_000);
  const world = faultWorld({ env: FAST_FAILOVER_ENV });

  it(`keeps the consumer's memory flat while ${BACKLOG} messages of 2 KB wait`, async () => {
    const producer = await world.start('producer');
    const topic = await createTopic(producer, 'backlog');
    const id = await createPublisher(producer, {
      topic,
      target: world.sink.url('/hook'),
      concurrency: 25,
      active: false,
    });
    const consumer = await world.start('consumer');
    await publishBulk(producer, topic, BACKLOG, { batch: 1000, payload: (n) => ({ n, filler: FILLER }) });
    // The idle node's RSS, before it has anything to deliver.
    const idle = sampleRss(consumer, 100);
    // Real time, on purpose: the idle process's memory is sampled for a second.
    await new Promise((r) => setTimeout(r, 1000));
    const idleMb = Math.min(...idle.stop());

    world.sink.delayMs = 50;
    const sampler = sampleRss(consumer, 250);
    const startedAt = Date.now();
    expect((await api(producer, 'PATCH', `/api/publishers/${id}`, { active: true })).status).to.equal(200);
    await waitFor(() => world.sink.counts.size > 0, 'deliveries to start', 30_000);
    await waitFor(() => Date.now() - startedAt >= RUN_MS, `${RUN_MS} ms of deliveries`, RUN_MS + 5000, 200);
    const samples = sampler.stop();
    const cluster = await api(producer, 'GET', '/api/cluster');
    const lag = cluster.json.data.publishers[0].lag as number | null;
    const pending = cluster.json.data.publishers[0].pending as number;
    const g = growth(samples);
    const figures = {
      backlog: BACKLOG,
      delivered: world.sink.counts.size,
      receiverMaxInFlight: world.sink.inFlight.max,
      leftInRedis: { lag, pending },
      rssMb: { idle: idleMb, afterWarmup: g.warmMb, end: g.endMb, max: g.maxMb },
      growthAfterWarmupMb: g.growthMb,
      growthAfterWarmupPct: g.growthPct,
      maxAboveIdleMb: Math.round((g.maxMb - idleMb) * 10) / 10,
    };
    report('slow-receiver', figures);
    // The backlog stayed in Redis: the node holds at most its delivery slots.
    expect(pending).to.be.at.most(25);
    if (lag !== null) expect(lag).to.be.above(BACKLOG / 2);
    expect(world.sink.inFlight.max).to.be.at.most(25);
    // Flat: after warm-up the RSS grows by less than half and less than 50 MB, and never holds the backlog (~100 MB of payload).
    expect(g.growthPct).to.be.below(50);
    expect(g.growthMb).to.be.below(50);
    expect(g.maxMb - idleMb).to.be.below(100);
  });
});
