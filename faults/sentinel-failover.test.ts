/**
 * Fault: the Redis primary watched by three Sentinels (two replicas, so
 * that the new primary has a replica to WAIT for without the old one) is
 * killed, or frozen past down-after-milliseconds, while clients publish
 * about 200 messages a second to two publishers (plain and ordered)
 * delivered by two consumers. The processes find the primary through
 * REDIS_SENTINELS and wait for a replica on each 201 (REDIS_MIN_REPLICAS=1).
 * Each case judges its history with checkHistory
 * (test-support/history.ts): 0 lost, no 5xx but 503, the ordered
 * publisher in order, duplicates within the bound.
 */
import { startSentinelSet, type SentinelSet } from '@postoffice/test-support/ha';
import { haWorld } from '@postoffice/test-support/ha-world';

describe('fault: the Redis primary of a Sentinel set fails while messages are published', function () {
  this.timeout(300_000);
  const world = haWorld<SentinelSet>({
    start: () => startSentinelSet({ replicas: 2, sentinels: 3, downAfterMs: 1000 }),
    // REDIS_URL's host and port are ignored with REDIS_SENTINELS; port 1 makes sure that a build which does not know
    // REDIS_SENTINELS fails to start instead of using whatever Redis listens on the default port.
    env: (set) => ({ REDIS_SENTINELS: set.sentinels, REDIS_SENTINEL_NAME: set.name, REDIS_URL: 'redis://127.0.0.1:1' }),
  });

  it('loses no acknowledged message when the primary is killed (SIGKILL) and stays dead', async () => {
    const run = await world.begin();
    const set = world.backend;
    const primary = await set.primary();
    run.faultStarts();
    await primary.kill();
    const next = await set.waitForNewPrimary(primary);
    // The other replica follows the new primary: WAIT 1 has a replica without the old primary.
    run.faultEnds();
    await run.finish('sentinel-primary-sigkill', { killed: primary.port, promoted: next.port });
  });

  it('loses none when the primary is frozen (SIGSTOP) past down-after-milliseconds, then thawed', async () => {
    const run = await world.begin();
    const set = world.backend;
    const primary = await set.primary();
    run.faultStarts();
    primary.pause();
    const next = await set.waitForNewPrimary(primary);
    primary.resume();
    run.faultEnds();
    await run.finish('sentinel-primary-sigstop', { frozen: primary.port, promoted: next.port });
  });
});
