/**
 * The fault suite's own starters (`@postoffice/test-support/ha`), checked
 * here rather than in every leg of `pnpm test` since each case waits for
 * real failovers: a replicated Redis Cluster and a Sentinel set of real
 * redis-servers fail over when a master is killed or frozen, take the old
 * master back as a replica, and (the cluster) move a slot to a new master
 * while a client writes to it.
 */
import { expect } from 'chai';
import { Cluster, Redis } from 'ioredis';
import {
  startReplicatedCluster,
  startSentinelSet,
  type ReplicatedCluster,
  type SentinelSet,
} from '@postoffice/test-support/ha';
import { waitFor } from '@postoffice/test-support';

const KEY = '{ha-test}:stream';

describe('a replicated Redis Cluster (ha.ts)', function () {
  this.timeout(180_000);
  let cluster: ReplicatedCluster;

  beforeEach(async () => {
    cluster = await startReplicatedCluster({ nodeTimeoutMs: 2000 });
  });
  afterEach(async () => {
    await cluster.stop();
  });

  it('starts 3 masters with a replica each, in sync', async () => {
    expect(cluster.nodes).to.have.length(6);
    expect(cluster.url).to.match(/^redis\+cluster:\/\/(127\.0\.0\.1:\d+,){5}127\.0\.0\.1:\d+$/);
    const master = await cluster.masterOf(KEY);
    const replicas = await cluster.replicasOf(master);
    expect(replicas).to.have.length(1);
    expect(replicas[0]).to.not.equal(master);
  });

  it('elects a replica when the master is killed, and takes the old master back as its replica', async () => {
    const old = await cluster.masterOf(KEY);
    const [replica] = await cluster.replicasOf(old);
    await old.kill();
    expect(old.alive).to.equal(false);
    const next = await cluster.waitForNewMaster(KEY, old);
    expect(next).to.equal(replica);
    await old.restart();
    expect(old.alive).to.equal(true);
    await cluster.waitHealthy();
    expect(await cluster.replicasOf(next)).to.deep.equal([old]);
  });

  it('elects a replica when the master is frozen past the node timeout, and demotes it once thawed', async () => {
    const old = await cluster.masterOf(KEY);
    const pid = old.pid;
    old.pause();
    expect(old.paused).to.equal(true);
    const next = await cluster.waitForNewMaster(KEY, old);
    old.resume();
    expect(old.pid).to.equal(pid);
    await cluster.waitHealthy();
    expect(await cluster.replicasOf(next)).to.deep.equal([old]);
  });

  it('moves a slot to a new master while a client writes to it, losing no write', async () => {
    const client = new Cluster([{ host: '127.0.0.1', port: cluster.nodes[0]!.port }], {
      clusterRetryStrategy: () => 100,
    });
    client.on('error', () => {});
    try {
      const slot = await cluster.slotOf(KEY);
      const written: string[] = [];
      let writing = true;
      const writer = (async () => {
        for (let n = 0; writing; n++) {
          written.push(String(await client.xadd(KEY, '*', 'n', String(n))));
          await client.set(`{ha-test}:${n}`, String(n));
        }
      })();
      await waitFor(() => written.length >= 200, 'writes under way');
      const added = await cluster.addMaster();
      expect(cluster.nodes).to.have.length(8);
      expect(await cluster.replicasOf(added)).to.have.length(1);
      await cluster.moveSlot(slot, added);
      const after = written.length;
      await waitFor(() => written.length >= after + 200, 'writes after the move');
      writing = false;
      await writer;
      expect(await cluster.masterOf(KEY)).to.equal(added);
      const direct = new Redis(added.port, '127.0.0.1');
      try {
        expect(await direct.xlen(KEY)).to.equal(written.length);
        expect(await direct.call('CLUSTER', 'COUNTKEYSINSLOT', slot)).to.equal(written.length + 1);
      } finally {
        direct.disconnect();
      }
    } finally {
      client.disconnect();
    }
  });
});

describe('a Sentinel set (ha.ts)', function () {
  this.timeout(180_000);
  let set: SentinelSet;

  beforeEach(async () => {
    set = await startSentinelSet({ downAfterMs: 1000 });
  });
  afterEach(async () => {
    await set.stop();
  });

  it('starts a primary, a replica and 3 Sentinels that agree on it', async () => {
    expect(set.nodes).to.have.length(2);
    expect(set.sentinelNodes).to.have.length(3);
    expect(set.sentinels.split(',')).to.have.length(3);
    expect(set.name).to.equal('mymaster');
    expect(await set.primary()).to.equal(set.nodes[0]);
  });

  it('promotes the replica when the primary is killed, and takes the old primary back as a replica', async () => {
    const old = await set.primary();
    await old.kill();
    const next = await set.waitForNewPrimary(old);
    expect(next).to.equal(set.nodes[1]);
    await old.restart();
    await set.waitHealthy();
    expect(await set.primary()).to.equal(next);
  });

  it('promotes the replica when the primary is frozen past down-after-milliseconds, and demotes it once thawed', async () => {
    const old = await set.primary();
    old.pause();
    const next = await set.waitForNewPrimary(old);
    old.resume();
    await set.waitHealthy();
    expect(await set.primary()).to.equal(next);
    const role = new Redis(old.port, '127.0.0.1');
    try {
      expect(((await role.call('ROLE')) as unknown[])[0]).to.equal('slave');
    } finally {
      role.disconnect();
    }
  });
});
