/**
 * Fault: SIGKILL one of three consumer processes, three times, while 50,000
 * messages are published and delivered.
 */
import { expect } from 'chai';
import { closeRedis, createRedis } from '../packages/shared/src/index.js';
import { waitFor, type AppProcess } from '@postoffice/test-support';
import {
  FAST_FAILOVER_ENV,
  faultWorld,
  createPublisher,
  createTopic,
  duplicates,
  lost,
  publishBulk,
  report,
} from '@postoffice/test-support/faults';

const MESSAGES = 50_000;
const CONCURRENCY = 25;
const KILLS = 3;

describe('fault: SIGKILL of consumers under load', function () {
  this.timeout(300_000);
  const world = faultWorld({ env: FAST_FAILOVER_ENV });

  it(`loses none of ${MESSAGES} messages when one of three consumers is killed ${KILLS} times; duplicates stay within what the killed nodes had in flight`, async () => {
    const producer = await world.start('producer');
    const topic = await createTopic(producer, 'kills');
    const publisher = await createPublisher(producer, {
      topic,
      target: world.sink.url('/hook'),
      concurrency: CONCURRENCY,
      parallelism: 3,
      seconds_timeout: 2,
      seconds_retry: 1,
    });
    let serial = 0;
    const names = new Map<AppProcess, string>();
    const consumer = async (): Promise<AppProcess> => {
      const name = `node-${++serial}`;
      const app = await world.start('consumer', { NODE_ID: name });
      names.set(app, name);
      return app;
    };
    const nodes = [await consumer(), await consumer(), await consumer()];
    // Some jitter at the receiver, so that deliveries are in flight when a node dies.
    world.sink.delayMs = 2;

    const started = Date.now();
    const publishing = publishBulk(producer, topic, MESSAGES, { batch: 1000 });
    const redisClient = createRedis(world.redis.url, 'consumer');
    type Takeover = { node: string; atReceived: number; takeoverMs: number };
    const takeovers: Promise<Takeover>[] = [];
    let recoveries: Takeover[] = [];
    try {
      for (let k = 0; k < KILLS; k++) {
        // Kills at 20%, 40% and 60% of the messages received, whether or not the previous takeover is over.
        const threshold = ((k + 1) * MESSAGES) / (KILLS + 2);
        await waitFor(() => world.sink.counts.size >= threshold, `${threshold} messages received`, 120_000, 10);
        const victim = nodes[k % 3]!;
        const victimId = names.get(victim)!;
        const atReceived = world.sink.counts.size;
        const killedAt = Date.now();
        victim.kill('SIGKILL');
        expect(await victim.exited).to.equal('SIGKILL');
        nodes[k % 3] = await consumer();
        // Taken over: the janitor rescheduled the dead node's pending entries and removed it from the group.
        takeovers.push(
          waitFor(
            async () => {
              const rows = (await redisClient.xinfo('CONSUMERS', `po:{${topic}}:stream`, publisher)) as string[][];
              return !rows.some((row) => row[1] === victimId);
            },
            `${victimId} to leave the group`,
            60_000,
            50,
          ).then(() => ({ node: victimId, atReceived, takeoverMs: Date.now() - killedAt })),
        );
      }
      recoveries = await Promise.all(takeovers);
    } finally {
      await closeRedis(redisClient);
    }
    const ids = await publishing;
    expect(ids).to.have.length(MESSAGES);
    await waitFor(() => world.sink.counts.size >= MESSAGES, 'every message received', 180_000, 100);
    const seconds = (Date.now() - started) / 1000;
    const figures = {
      messages: MESSAGES,
      kills: KILLS,
      lost: lost(ids, world.sink.counts),
      duplicates: duplicates(world.sink.counts),
      duplicateBound: KILLS * CONCURRENCY,
      received: world.sink.counts.size,
      recoveries,
      seconds: Math.round(seconds * 10) / 10,
    };
    report('consumer-sigkill', figures);
    expect(figures.lost).to.equal(0);
    expect(world.sink.counts.size).to.equal(MESSAGES);
    // Each killed node had at most `concurrency` deliveries of this publisher in flight (one pipeline per publisher).
    expect(figures.duplicates).to.be.at.most(KILLS * CONCURRENCY);
  });
});
