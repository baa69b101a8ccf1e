/**
 * Failover recovery: a Redis Cluster of 3 masters with replicas and a short
 * node timeout; a producer and a consumer on it (`REDIS_MIN_REPLICAS=1`,
 * 1 s heartbeats as in the fault suite), an http publisher to the receiver
 * and a steady stream of single POST /api/messages, each carrying its send
 * time. Once messages flow, the master holding the topic's slot gets
 * SIGKILL; the figures are the seconds from the kill to the first 201 of a
 * request sent after it, and to the first delivery of a message sent after
 * it. The goal, and so the baseline, is the node timeout + 2 s (issue 23).
 * Redis alone takes more than the node timeout: a master is failed once a
 * majority of masters have missed it that long, then a replica waits 0.5 to
 * 1 s (more if it is behind another) before it asks to be elected. So how
 * long Redis took to name a new master is measured too (the nodes polled
 * every 100 ms), and the first 201 beside it is Postoffice's own share. A
 * fresh cluster for each run; the median of each figure is kept. A producer
 * that never answers 201 again fails the case after `RECOVERY_TIMEOUT_MS`
 * with what it answered instead.
 *
 * Two replicas a master, not one: with one, the promoted replica has no
 * replica of its own, so every `WAIT 1` fails (503) until the killed node
 * comes back, which measures the restart, not the recovery.
 */
import { Keys } from '@postoffice/shared';
import { startReplicatedCluster } from '@postoffice/test-support/ha';
import { HA_ENV } from '@postoffice/test-support/ha-world';
import type { Pool } from 'undici';
import { startChild, wallNow, type Child } from '../lib/child.js';
import { ATTRIBUTES } from '../lib/payload.js';
import { median, round } from '../lib/stats.js';
import { bySize, type BenchCase, type CaseContext } from '../lib/types.js';
import { World, waitFor } from '../lib/world.js';

const TOPIC = 'failover';
const MASTERS = 3;
const REPLICAS_PER_MASTER = 2;
const NODE_TIMEOUT_MS = 2000;
const GOAL_SECONDS = NODE_TIMEOUT_MS / 1000 + 2;
/** Single POSTs a second, before and after the kill. */
const RATE = 200;
/** Connections to the producer: enough that requests held up by the failover do not queue the next ones. */
const CONNECTIONS = 64;
/** A request that takes longer than this counts as an error (the producer's Redis client fails fast). */
const REQUEST_TIMEOUT_MS = 10_000;
/** After the kill, how long to wait for a 201 and a delivery before the run fails. */
const RECOVERY_TIMEOUT_MS = 30_000;
/** The fault suite's: 1 s heartbeats, entries of a dead node claimed after 3 s, `REDIS_MIN_REPLICAS=1`. */
const ENV = HA_ENV;

interface Answer {
  /** Wall-clock ms the request was sent and answered. */
  readonly sent: number;
  readonly answered: number;
  /** HTTP status, or 0 for an error or timeout. */
  readonly status: number;
}

interface Recovery {
  /** Seconds from the kill to the first 201 of a request sent after it. */
  readonly first201: number;
  /** Seconds from the kill to the first delivery of a message sent after it. */
  readonly firstDelivery: number;
  /** Seconds from the kill until the cluster named another master for the topic's slot. */
  readonly newMaster: number;
  /** Answers to requests sent after the kill and answered before the first 201, by status (0: error). */
  readonly answersBefore201: Record<string, number>;
  readonly killedPort: number;
}

export const failoverRecovery: BenchCase = {
  name: 'failover recovery',
  measure: "seconds from SIGKILL of the topic's master to the first 201",
  async run(ctx) {
    const runs = bySize(ctx.mode, { full: 3, quick: 1, shape: 1 });
    // Publishing before the kill, once the first message got through.
    const steadyMs = bySize(ctx.mode, { full: 3000, quick: 2000, shape: 1000 });
    const receiver = await startChild<{ url: string }>('receiver', { BENCH_LATENCY: '1' });
    const recoveries: Recovery[] = [];
    try {
      for (let r = 0; r < runs; r++) {
        const one = await failover(ctx, receiver, steadyMs);
        recoveries.push(one);
        ctx.log(
          `run ${r + 1}/${runs}: new master after ${one.newMaster} s, first 201 after ${one.first201} s, ` +
            `first delivery after ${one.firstDelivery} s`,
        );
      }
    } finally {
      await receiver.close();
    }
    const pick = (key: 'first201' | 'firstDelivery' | 'newMaster') => median(recoveries.map((x) => x[key]));
    const first201 = pick('first201');
    const firstDelivery = pick('firstDelivery');
    const newMaster = pick('newMaster');
    const goal = { label: 'goal: node timeout + 2 s', value: GOAL_SECONDS, unit: 's' };
    return {
      figure: {
        label: 'postoffice, first 201',
        value: first201,
        unit: 's',
        extra: { new_master_s: newMaster },
      },
      baseline: goal,
      ratio: round(first201 / GOAL_SECONDS, 3),
      goal: `<= ${GOAL_SECONDS} s`,
      met: first201 <= GOAL_SECONDS,
      more: [
        {
          figure: { label: 'postoffice, first delivery', value: firstDelivery, unit: 's' },
          baseline: goal,
          ratio: round(firstDelivery / GOAL_SECONDS, 3),
          goal: `<= ${GOAL_SECONDS} s`,
          met: firstDelivery <= GOAL_SECONDS,
        },
        {
          figure: { label: 'postoffice, first 201', value: first201, unit: 's' },
          baseline: { label: 'Redis alone: a new master named', value: newMaster, unit: 's' },
          ratio: round(first201 / newMaster, 3),
          goal: '(none: how much of the recovery is Redis failing over)',
          met: true,
        },
      ],
      config: {
        topology: `Redis Cluster, ${MASTERS} masters, ${REPLICAS_PER_MASTER} replicas each, all on 127.0.0.1`,
        cluster_node_timeout_ms: NODE_TIMEOUT_MS,
        service_env: ENV,
        publisher: 'http, defaults, to the no-op receiver',
        publish: `single POST /api/messages at ${RATE}/s, ${CONNECTIONS} connections, ${REQUEST_TIMEOUT_MS} ms timeout`,
        steady_ms_before_kill: steadyMs,
        kill: "SIGKILL of the master holding the slot of the topic's stream",
        counted_from_the_kill:
          'the first 201 of a request sent after it; the first delivery of a message sent after it',
        recovery_timeout_ms: RECOVERY_TIMEOUT_MS,
        runs,
        kept: 'median of the runs, each figure on its own',
      },
      details: { runs: recoveries },
    };
  },
};

/** One cluster, one kill: how long until Postoffice takes and delivers messages again. */
async function failover(ctx: CaseContext, receiver: Child<{ url: string }>, steadyMs: number): Promise<Recovery> {
  const cluster = await startReplicatedCluster({
    masters: MASTERS,
    replicasPerMaster: REPLICAS_PER_MASTER,
    nodeTimeoutMs: NODE_TIMEOUT_MS,
  });
  const world = await World.start(cluster);
  let stream: SteadyStream | undefined;
  try {
    await world.startProducer(ENV);
    await world.startConsumer(ENV);
    await world.createTopic(TOPIC);
    await world.createPublisher(TOPIC, `${receiver.ready.url}/${TOPIC}`);
    await receiver.call('reset');
    stream = steadyStream(world.api(CONNECTIONS), RATE);
    const flowing = stream;
    await waitFor(
      async () =>
        flowing.answers.some((a) => a.status === 201) && (await receiver.call<{ count: number }>('stats')).count > 0,
      'the first 201 and the first delivery before the kill',
      30_000,
      50,
    );
    await new Promise((r) => setTimeout(r, steadyMs));

    const key = new Keys().topic(TOPIC).stream;
    const master = await cluster.masterOf(key);
    const killedAt = wallNow();
    await master.kill();
    ctx.log(`SIGKILL to the master of ${key}; waiting for recovery`);
    let newMasterAt: number | undefined;
    const promoted = cluster.waitForNewMaster(key, master).then(() => {
      newMasterAt = wallNow();
    });
    // Awaited once the figures are in; a run that fails before must not leave it unhandled.
    promoted.catch(() => {});
    const since = (t: number) => round((t - killedAt) / 1000, 2);
    const afterKill = () => flowing.answers.filter((a) => a.sent >= killedAt);

    const ok = await waitFor(
      () => afterKill().find((a) => a.status === 201) ?? null,
      'a 201',
      RECOVERY_TIMEOUT_MS,
      20,
    ).catch(() => {
      throw new Error(
        `no 201 within ${RECOVERY_TIMEOUT_MS / 1000} s of the SIGKILL (new master after ` +
          `${newMasterAt === undefined ? 'never' : `${since(newMasterAt)} s`}); answers to requests sent since: ` +
          `${JSON.stringify(tally(afterKill()))} (status 0: error or timeout)`,
      );
    });
    const deliveredAt = await waitFor(
      () => receiver.call<number | null>('firstSentFrom', { from: killedAt }),
      'a delivery',
      Math.max(1000, killedAt + RECOVERY_TIMEOUT_MS - wallNow()),
      20,
    ).catch(() => {
      throw new Error(
        `no delivery of a message sent after the SIGKILL within ${RECOVERY_TIMEOUT_MS / 1000} s ` +
          `(the producer answered 201 again after ${since(ok.answered)} s)`,
      );
    });
    await promoted;
    return {
      first201: since(ok.answered),
      firstDelivery: since(deliveredAt),
      newMaster: since(newMasterAt!),
      answersBefore201: tally(afterKill().filter((a) => a.answered < ok.answered)),
      killedPort: master.port,
    };
  } finally {
    await stream?.stop();
    await world.close();
  }
}

function tally(answers: readonly Answer[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const a of answers) counts[a.status] = (counts[a.status] ?? 0) + 1;
  return counts;
}

interface SteadyStream {
  /** Every answer so far, in the order they came. */
  readonly answers: readonly Answer[];
  /** Stops sending and aborts the requests still in flight. */
  stop(): Promise<void>;
}

/** Posts one message every 1/`ratePerSec` s until stopped, without waiting for answers; each payload carries its send time `t`. */
function steadyStream(pool: Pool, ratePerSec: number): SteadyStream {
  const answers: Answer[] = [];
  const inFlight = new Set<Promise<void>>();
  // Stopping aborts what is still in flight or queued in the pool: a producer that hangs must not hold the run.
  const abort = new AbortController();
  const started = performance.now();
  let sent = 0;
  const send = async (n: number): Promise<void> => {
    const t = wallNow();
    let status = 0;
    try {
      const res = await pool.request({
        method: 'POST',
        path: '/api/messages',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ topic: TOPIC, payload: { t, n }, attributes: ATTRIBUTES }),
        headersTimeout: REQUEST_TIMEOUT_MS,
        bodyTimeout: REQUEST_TIMEOUT_MS,
        signal: abort.signal,
      });
      await res.body.dump();
      status = res.statusCode;
    } catch {
      // counted as status 0
    }
    answers.push({ sent: t, answered: wallNow(), status });
  };
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - started) / 1000) * ratePerSec);
    while (sent < due) {
      const p = send(sent++).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
  }, 5);
  return {
    answers,
    async stop() {
      clearInterval(timer);
      abort.abort();
      await Promise.all(inFlight);
    },
  };
}
