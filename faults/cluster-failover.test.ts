/**
 * Fault: a Redis Cluster with a replica for each master (3 + 3) loses the
 * master of the topic's slot, or that master's replica, or the slot itself
 * moves, while clients publish about 200 messages a second to two
 * publishers (plain and ordered) delivered by two consumers. The producer
 * runs with REDIS_MIN_REPLICAS=1: each 201 waited for a replica, so no
 * acknowledged message may be lost by the failover. Each case judges its
 * history with checkHistory (test-support/history.ts): 0 lost, no 5xx but
 * 503, the ordered publisher in order, duplicates within the bound.
 */
import { expect } from 'chai';
import { startReplicatedCluster, type ReplicatedCluster } from '@postoffice/test-support/ha';
import { haWorld } from '@postoffice/test-support/ha-world';
import { waitFor } from '@postoffice/test-support';

const NODE_TIMEOUT_MS = 2000;

describe('fault: a Redis Cluster master or replica fails while messages are published', function () {
  this.timeout(300_000);
  const world = haWorld<ReplicatedCluster>({
    start: () => startReplicatedCluster({ masters: 3, replicasPerMaster: 1, nodeTimeoutMs: NODE_TIMEOUT_MS }),
    env: (cluster) => ({ REDIS_URL: cluster.url }),
  });

  it('loses no acknowledged message when the master of the topic’s slot is killed (SIGKILL)', async () => {
    const run = await world.begin();
    const cluster = world.backend;
    const master = await cluster.masterOf(run.key);
    run.faultStarts();
    await master.kill();
    const next = await cluster.waitForNewMaster(run.key, master);
    run.faultEnds();
    await run.finish('cluster-master-sigkill', { killed: master.port, promoted: next.port });
  });

  it('loses none when the master is frozen (SIGSTOP) past the node timeout, then thawed', async () => {
    const run = await world.begin();
    const cluster = world.backend;
    const master = await cluster.masterOf(run.key);
    run.faultStarts();
    master.pause();
    const next = await cluster.waitForNewMaster(run.key, master);
    master.resume();
    run.faultEnds();
    await run.finish('cluster-master-sigstop', { frozen: master.port, promoted: next.port });
  });

  it('loses none through two failovers in a row (the first new master is killed too)', async () => {
    const run = await world.begin();
    const cluster = world.backend;
    const first = await cluster.masterOf(run.key);
    run.faultStarts();
    await first.kill();
    const second = await cluster.waitForNewMaster(run.key, first);
    // The first one back, as the new master's replica, so that the next failover has a node to promote.
    await first.restart();
    await waitFor(async () => (await cluster.replicasOf(second)).includes(first), 'the first master back as a replica');
    await cluster.waitHealthy();
    await second.kill();
    const third = await cluster.waitForNewMaster(run.key, second);
    await second.restart();
    run.faultEnds();
    await run.finish('cluster-two-failovers', {
      killed: [first.port, second.port],
      promoted: [second.port, third.port],
    });
  });

  it('answers 503 while the master’s only replica is down (REDIS_MIN_REPLICAS=1), then 201 again once it is back', async () => {
    const run = await world.begin();
    const cluster = world.backend;
    const master = await cluster.masterOf(run.key);
    const [replica] = await cluster.replicasOf(master);
    if (!replica) throw new Error('the master has no replica');
    run.faultStarts();
    const killedAt = Date.now();
    await replica.kill();
    const unavailableAfterKill = (): number =>
      run.publishes.filter((p) => p.sentAt >= killedAt && p.status === 503).length;
    await waitFor(() => unavailableAfterKill() >= 20, '503s while the replica is down', 60_000, 50);
    await replica.restart();
    run.faultEnds();
    const verdict = await run.finish('cluster-replica-sigkill', { killedReplica: replica.port, master: master.port });
    expect(verdict.unavailable).to.be.above(0);
  });

  it('loses none when the topic’s slot moves to a new master while clients write (live reshard)', async () => {
    const run = await world.begin();
    const cluster = world.backend;
    const slot = await cluster.slotOf(run.key);
    const from = await cluster.masterOf(run.key);
    const added = await cluster.addMaster();
    run.faultStarts();
    await cluster.moveSlot(slot, added);
    run.faultEnds();
    expect(await cluster.masterOf(run.key)).to.equal(added);
    await run.finish('cluster-reshard', { slot, from: from.port, to: added.port });
  });
});
