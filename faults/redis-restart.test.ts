/**
 * Fault: the redis-server (appendonly yes, appendfsync always) is killed and
 * started again on the same port and data directory while messages are
 * being published.
 */
import { expect } from 'chai';
import { startRedis, waitFor, api } from '@postoffice/test-support';
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

/** Heartbeats every second: a lease lives 3 s, shorter than the outage, so every node finds its heartbeat late. */
const ENV = FAST_FAILOVER_ENV;
/** Heartbeats every 5 s (the default): a lease lives 15 s, longer than the outage; only the reconnection tells. */
const QUICK_ENV = { ...ENV, HEARTBEAT_SECONDS: '5' };
const AOF = ['--appendonly', 'yes', '--appendfsync', 'always'];
const CLIENTS = 8;

describe('fault: Redis restarts while messages are published', function () {
  this.timeout(300_000);
  let stopping = false;
  const world = faultWorld({ redisArgs: AOF, each: true, stopping: () => (stopping = true) });

  beforeEach(() => {
    stopping = false;
  });

  it('delivers every message that got a 201 when Redis is down longer than a lease lives; the producer answers 503 meanwhile and both sides recover by themselves', async () => {
    await scenario('redis-restart', ENV);
  });

  it('does the same when Redis is back before any lease has expired (a quick restart)', async () => {
    await scenario('redis-quick-restart', QUICK_ENV);
  });

  async function scenario(name: string, env: Record<string, string>): Promise<void> {
    const producer = await world.start('producer', env);
    const topic = await createTopic(producer, 'restart');
    await createPublisher(producer, { topic, target: world.sink.url('/hook'), seconds_timeout: 2, seconds_retry: 1 });
    const consumers = [await world.start('consumer', env), await world.start('consumer', env)];

    // Publishers: CLIENTS loops of POST /api/messages until told to stop.
    const acknowledged: string[] = [];
    const statuses = new Map<number | string, number>();
    // The first message acknowledged after Redis was started again, and when.
    const first201After = { at: 0, id: '', since: Number.POSITIVE_INFINITY };
    let first503At = 0;
    let n = 0;
    const publishing = pool(CLIENTS, CLIENTS, async () => {
      while (!stopping) {
        let status: number | string;
        try {
          const res = await api(producer, 'POST', '/api/messages', { topic, payload: { n: n++ } });
          status = res.status;
          if (res.status === 201) {
            acknowledged.push(res.json.data.id as string);
            if (first201After.at === 0 && Date.now() >= first201After.since) {
              first201After.at = Date.now();
              first201After.id = res.json.data.id as string;
            }
          } else if (res.status === 503 && first503At === 0) {
            first503At = Date.now();
          }
        } catch (err) {
          status = (err as Error).message;
        }
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status !== 201) await new Promise((r) => setTimeout(r, 20));
      }
    });

    await waitFor(() => acknowledged.length >= 2000 && world.sink.counts.size >= 1000, 'traffic under way', 60_000);
    const beforeCrash = acknowledged.length;
    // A crash, not a clean shutdown: only what appendfsync always wrote survives.
    const killedAt = Date.now();
    await world.redis.stop({ hard: true, keepData: true });
    await waitFor(() => first503At > 0, 'the producer to answer 503', 30_000);
    const producerHealth = await api(producer, 'GET', '/api/health');
    expect(producerHealth.status).to.equal(503);
    // Down for a while: a few heartbeats, so that every node notices.
    await new Promise((r) => setTimeout(r, 3000));
    const restartedAt = Date.now();
    first201After.since = restartedAt;
    world.redis = await startRedis({ ports: world.redis.ports, dir: world.redis.dir, args: AOF });
    await waitFor(() => first201After.at > 0, 'a 201 after the restart', 60_000, 5);
    const producerRecoveryMs = first201After.at - restartedAt;
    // Consumers recover without a restart: the first message acknowledged after it is delivered.
    try {
      await waitFor(
        () => world.sink.counts.has(first201After.id),
        'a message published after the restart delivered',
        60_000,
        5,
      );
    } catch (err) {
      const message = await api(producer, 'GET', `/api/messages/${first201After.id}`);
      const cluster = await api(producer, 'GET', '/api/cluster');
      console.log('received', world.sink.counts.size, 'acknowledged', acknowledged.length);
      console.log(JSON.stringify(message.json), JSON.stringify(cluster.json));
      for (const c of consumers) console.log(c.output().slice(-3000));
      throw err;
    }
    const consumerRecoveryMs = Date.now() - restartedAt;
    const afterRestart = acknowledged.length;
    await waitFor(() => acknowledged.length >= afterRestart + 2000, 'more messages after the restart', 60_000);
    stopping = true;
    await publishing;
    try {
      await waitFor(
        () => acknowledged.every((id) => world.sink.counts.has(id)),
        'every acknowledged message delivered',
        120_000,
        100,
      );
    } catch (err) {
      const missing = acknowledged.map((id, i) => [id, i] as const).filter(([id]) => !world.sink.counts.has(id));
      console.log(
        'missing',
        missing.length,
        'of',
        acknowledged.length,
        'positions',
        missing.slice(0, 5).map((m) => m[1]),
        missing.slice(-5).map((m) => m[1]),
        'before crash',
        beforeCrash,
      );
      for (const [id] of missing.slice(0, 3)) {
        console.log(JSON.stringify((await api(producer, 'GET', `/api/messages/${id}`)).json));
      }
      console.log(JSON.stringify((await api(producer, 'GET', '/api/cluster')).json));
      for (const c of consumers) console.log(c.output().slice(-3000));
      throw err;
    }
    for (const c of consumers) {
      expect(c.child.exitCode, c.output()).to.equal(null);
      expect((await api(c, 'GET', '/healthz')).status).to.equal(200);
    }
    const figures = {
      acknowledged: acknowledged.length,
      acknowledgedBeforeCrash: beforeCrash,
      lost: lost(acknowledged, world.sink.counts),
      duplicates: duplicates(world.sink.counts),
      statuses: Object.fromEntries(statuses),
      downMs: restartedAt - killedAt,
      producerRecoveryMs,
      consumerRecoveryMs,
      // Entries a consumer had read when the connection died (the reply was lost) and scheduled again on rejoining.
      rescheduledOnRejoin: consumers
        .flatMap((c) => [...c.output().matchAll(/"moved":(\d+)[^\n]*left pending under this node/g)])
        .reduce((n, m) => n + Number(m[1]), 0),
      rejoins: consumers.reduce((n, c) => n + c.output().split('dropping every slot and rejoining').length - 1, 0),
    };
    report(name, figures);
    expect(figures.lost).to.equal(0);
    // Only 201 and 503 (Redis unavailable) are acceptable answers; no other status, no dropped request.
    expect([...statuses.keys()].filter((s) => s !== 201 && s !== 503)).to.deep.equal([]);
    expect(statuses.get(503) ?? 0).to.be.above(0);
  }
});
