/**
 * Following a topology change: which errors say that Redis did not run a
 * command, and, on a real three-master cluster whose client has a stale
 * slot map, a write pipelined with `WAIT` that follows the `MOVED` (the
 * slot map read again, the write stored once on the node that serves it).
 */
import { expect } from 'chai';
import { Cluster } from 'ioredis';
import {
  closeRedis,
  createRedis,
  isRefusedUnrun,
  isTopologyError,
  replicatedWrite,
  suggestsStaleMap,
  untilServed,
  type ScriptClient,
} from '../src/index.js';
import { startRedis, waitFor, type RedisServer } from '@postoffice/test-support';

const replyError = (message: string): Error => Object.assign(new Error(message), { name: 'ReplyError' });

describe('topology errors', () => {
  it('tells the refusals that ran nothing from the failures that may have run', () => {
    for (const message of [
      'MOVED 3999 127.0.0.1:7002',
      'ASK 3999 127.0.0.1:7002',
      'TRYAGAIN Multiple keys request during rehashing of slot',
      'CLUSTERDOWN The cluster is down',
      "READONLY You can't write against a read only replica.",
      'LOADING Redis is loading the dataset in memory',
      'MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no',
      'NOREPLICAS Not enough good replicas to write.',
    ]) {
      expect(isRefusedUnrun(replyError(message)), message).to.equal(true);
      expect(isTopologyError(replyError(message)), message).to.equal(true);
    }
    // Redis out of reach is a 503 at once (the producer fails fast), not a refusal to wait out.
    for (const message of [
      "Stream isn't writeable and enableOfflineQueue options is false",
      'Connection is closed.',
      'Command timed out',
      'ERR unknown command',
      'WRONGTYPE x',
    ]) {
      expect(isRefusedUnrun(new Error(message)), message).to.equal(false);
    }
    expect(suggestsStaleMap(new Error('Command timed out'))).to.equal(true);
    expect(suggestsStaleMap(new Error("Stream isn't writeable and enableOfflineQueue options is false"))).to.equal(
      true,
    );
    expect(suggestsStaleMap(replyError('WRONGTYPE Operation against a key holding the wrong kind of value'))).to.equal(
      false,
    );
  });

  it('sends a refused command again until it is served, and gives up on others at once', async () => {
    const client = createRedis('redis://127.0.0.1:1', 'producer', { lazyConnect: true });
    try {
      let calls = 0;
      const served = await untilServed(client, async () => {
        calls++;
        if (calls < 3) throw replyError('LOADING Redis is loading the dataset in memory');
        return 'ok';
      });
      expect(served).to.equal('ok');
      expect(calls).to.equal(3);
      let tried = 0;
      const failing = await untilServed(client, () => {
        tried++;
        return Promise.reject(replyError('WRONGTYPE Operation against a key holding the wrong kind of value'));
      }).catch((err: unknown) => err);
      expect(String(failing)).to.match(/WRONGTYPE/);
      expect(tried).to.equal(1);
      // A refusal that lasts past the budget is thrown (the caller answers 503).
      const late = await untilServed(
        client,
        () => Promise.reject(replyError('CLUSTERDOWN The cluster is down')),
        100,
      ).catch((err: unknown) => err);
      expect(String(late)).to.match(/CLUSTERDOWN/);
    } finally {
      await closeRedis(client);
    }
  });
});

describe('a write pipelined with WAIT on a cluster whose slot map is stale', function () {
  let server: RedisServer;
  let client: ScriptClient;

  before(async () => {
    server = await startRedis({ cluster: true });
  });

  after(async () => {
    await server.stop();
  });

  beforeEach(async () => {
    client = createRedis(server.url, 'producer');
    await waitFor(() => client.status === 'ready', 'the cluster client to be ready', 10_000);
  });

  afterEach(async () => {
    await closeRedis(client);
  });

  /** Points the client's map for `key`'s slot at a master that does not serve it; answers the slot. */
  async function staleMap(key: string): Promise<number> {
    const cluster = client as Cluster;
    const slot = Number(await cluster.cluster('KEYSLOT', key));
    const serving = cluster.slots[slot]?.[0];
    const other = cluster.nodes('master').find((n) => `${n.options.host}:${n.options.port}` !== serving);
    if (!other) throw new Error('no other master');
    cluster.slots[slot] = [`${other.options.host}:${other.options.port}`];
    return slot;
  }

  it('follows the MOVED, stores the write once on the node that serves the slot, and runs WAIT there', async () => {
    const key = '{stale}:list';
    await staleMap(key);
    const { replies, replicas } = await replicatedWrite(
      client,
      { redisMinReplicas: 1, redisWaitTimeoutMs: 50 },
      (pipeline) => pipeline.rpush(key, 'once'),
    );
    expect(replies).to.deep.equal([[null, 1]]);
    // The cluster has no replicas: WAIT, run on the node that took the write, saw none.
    expect(replicas?.message).to.match(/only 0 of 1 replicas/);
    expect(await client.lrange(key, 0, -1)).to.deep.equal(['once']);
  });

  it('reads the slot map again after a MOVED inside any pipeline, so the next one goes to the right node', async () => {
    const key = '{stale-pipeline}:n';
    const slot = await staleMap(key);
    const wrong = (client as Cluster).slots[slot]?.[0];
    // A write and a WAIT: ioredis does not follow a MOVED in a pipeline part of which succeeded.
    const first = await client.pipeline().incr(key).wait(0, 0).exec();
    expect(String(first?.[0]?.[0])).to.match(/^ReplyError: MOVED|^MOVED/);
    await waitFor(() => (client as Cluster).slots[slot]?.[0] !== wrong, 'the slot map to be read again', 10_000);
    const second = await client.pipeline().incr(key).wait(0, 0).exec();
    expect(second?.[0]).to.deep.equal([null, 1]);
  });
});
