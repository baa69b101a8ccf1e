/**
 * Cluster scale: one publisher with `parallelism: 3` to a receiver that
 * answers after 50 ms, drained by one consumer node and then, in the same
 * run, by three. Each node is its own process (packages/consumer/dist) with
 * 1 s heartbeats so that slots move quickly; the three-node rate is measured
 * only once `GET /api/cluster` shows the 3 slots held by 3 distinct nodes.
 * Rates are taken at the receiver, leaving out the first 5% of each phase.
 *
 * What bounds each phase: a node runs up to `concurrency` deliveries of a
 * publisher in flight, however many of its slots it holds. One node holding
 * all 3 slots has `concurrency` in flight; three nodes holding one each have
 * 3 × `concurrency`. With a 50 ms receiver the phases are bounded by
 * concurrency / 50 ms and 3 × concurrency / 50 ms (`bound_per_s` in the
 * config), far below what the nodes' CPU can do, so the ratio shows whether
 * the slots really spread the work: 3× at best.
 */
import { startChild } from '../lib/child.js';
import { receiptRate } from '../lib/load.js';
import { ATTRIBUTES, payload } from '../lib/payload.js';
import { round } from '../lib/stats.js';
import { bySize, type BenchCase } from '../lib/types.js';
import { measureUsage, type UsageReport } from '../lib/usage.js';
import { World, waitFor } from '../lib/world.js';

const TOPIC = 'cluster';
const DELAY_MS = 50;
const PARALLELISM = 3;
/** Per node: 10 in flight / 50 ms = 200 deliveries/s with one node, 600/s with three. */
const CONCURRENCY = 10;
const HEARTBEAT_SECONDS = 1;
const GOAL_RATIO = 2.7;
const NODE_ENV = { HEARTBEAT_SECONDS: String(HEARTBEAT_SECONDS), CLAIM_TIMEOUT_SECONDS: '5' };

interface ClusterView {
  nodes: { id: string; slots: string[] }[];
  publishers: { id: string; slots: { slot: number; node: string | null }[]; lag: number | null }[];
}

export const clusterScale: BenchCase = {
  name: 'cluster scale',
  measure: `delivered/s, 3 consumer nodes vs 1, parallelism ${PARALLELISM}, ${DELAY_MS} ms receiver`,
  async run(ctx) {
    // Deliveries measured in each phase (the first 5% of each left out).
    const perPhase = bySize(ctx.mode, { full: 12_000, quick: 1_500, shape: 300 });
    const boundOne = (CONCURRENCY * 1000) / DELAY_MS;
    const latencyBound = PARALLELISM * boundOne;
    const world = await World.start();
    const receiver = await startChild<{ url: string }>('receiver', { BENCH_DELAY_MS: DELAY_MS });
    try {
      await world.startProducer();
      const api = world.api(1);
      await world.createTopic(TOPIC);
      const id = await world.createPublisher(TOPIC, `${receiver.ready.url}/${TOPIC}`, {
        active: false,
        concurrency: CONCURRENCY,
        parallelism: PARALLELISM,
      });
      const holders = async (): Promise<string[]> => {
        const view = (await world.get('/api/cluster', api)).data as ClusterView;
        const p = view.publishers.find((x) => x.id === id);
        return (p?.slots ?? []).map((s) => s.node ?? '');
      };

      // Phase 1: one node. Enough backlog for the phase and the rebalance after it.
      const firstBacklog = perPhase + Math.ceil(latencyBound * 5);
      ctx.log(`filling ${firstBacklog} messages`);
      await world.fill(TOPIC, firstBacklog, (i) => payload(i), { ...ATTRIBUTES });
      const nodes = [await world.startConsumer({ ...NODE_ENV, NODE_ID: 'bench-node-1' })];
      await world.patch(`/api/publishers/${id}`, { active: true });
      await waitFor(
        async () => {
          const h = await holders();
          return h.length === PARALLELISM && h.every((n) => n === 'bench-node-1');
        },
        'one node to hold the 3 slots',
        60_000,
        50,
      );
      ctx.log(`one node holds the ${PARALLELISM} slots; measuring ${perPhase} deliveries`);
      const oneUsage = await phaseUsage(world, nodes, receiver.pid);
      const one = await receiptRate(receiver, perPhase, Math.floor(perPhase * 0.05), 600_000);
      const oneCpu = await oneUsage(perPhase);

      // Phase 2: two more nodes; measure once the slots sit on three distinct nodes.
      const t0 = performance.now();
      nodes.push(
        ...(await Promise.all([
          world.startConsumer({ ...NODE_ENV, NODE_ID: 'bench-node-2' }),
          world.startConsumer({ ...NODE_ENV, NODE_ID: 'bench-node-3' }),
        ])),
      );
      const spread = await waitFor(
        async () => {
          const h = await holders();
          return h.length === PARALLELISM && h.every((n) => n !== '') && new Set(h).size === PARALLELISM ? h : null;
        },
        'the 3 slots to be held by 3 distinct nodes',
        60_000,
        50,
      );
      const spreadSeconds = round((performance.now() - t0) / 1000, 1);
      ctx.log(`slots on ${spread.join(', ')} after ${spreadSeconds} s; measuring ${perPhase} deliveries`);
      // Top up so that the phase never runs dry, whatever the rebalance consumed.
      await world.fill(TOPIC, perPhase + Math.ceil(latencyBound), (i) => payload(firstBacklog + i), { ...ATTRIBUTES });
      await receiver.call('reset');
      const threeUsage = await phaseUsage(world, nodes, receiver.pid);
      const three = await receiptRate(receiver, perPhase, Math.floor(perPhase * 0.05), 600_000);
      const threeCpu = await threeUsage(perPhase);
      const stillSpread = new Set((await holders()).filter((n) => n !== '')).size;

      const ratio = round(three.perSec / one.perSec, 3);
      ctx.log(
        `1 node ${one.perSec}/s (bound ${boundOne}), 3 nodes ${three.perSec}/s (bound ${latencyBound}): ${ratio}x`,
      );
      return {
        figure: {
          label: 'postoffice, 3 consumer nodes',
          value: three.perSec,
          unit: 'deliveries/s',
          extra: { seconds: three.seconds },
        },
        baseline: {
          label: 'postoffice, 1 consumer node',
          value: one.perSec,
          unit: 'deliveries/s',
          extra: { seconds: one.seconds },
        },
        ratio,
        goal: `>= ${GOAL_RATIO}x`,
        met: ratio >= GOAL_RATIO,
        more: [
          {
            figure: { label: 'postoffice, 3 consumer nodes', value: three.perSec, unit: 'deliveries/s' },
            baseline: {
              label: `latency bound, ${PARALLELISM} nodes x ${CONCURRENCY} in flight / ${DELAY_MS} ms`,
              value: latencyBound,
              unit: 'deliveries/s',
            },
            ratio: round(three.perSec / latencyBound, 3),
            goal: '(none: how close to the bound)',
            met: true,
          },
        ],
        config: {
          receiver_delay_ms: DELAY_MS,
          parallelism: PARALLELISM,
          concurrency_per_node: CONCURRENCY,
          in_flight: { one_node: CONCURRENCY, three_nodes: PARALLELISM * CONCURRENCY },
          bound_per_s: { one_node: boundOne, three_nodes: latencyBound },
          deliveries_per_phase: perPhase,
          warm_up_deliveries_left_out: Math.floor(perPhase * 0.05),
          first_backlog: firstBacklog,
          node_env: NODE_ENV,
          nodes: [1, 3],
        },
        details: {
          slot_holders_three_nodes: spread,
          seconds_until_slots_spread: spreadSeconds,
          distinct_holders_after_phase: stillSpread,
          one_node: oneCpu,
          three_nodes: threeCpu,
        },
      };
    } finally {
      await receiver.close();
      await world.close();
    }
  },
};

/**
 * CPU per delivery of each consumer node, the receiver and Redis over a
 * phase, and the consumer nodes' CPU as a share of one CPU: the evidence
 * that the phase was bound by the receiver's latency, not by CPU.
 */
async function phaseUsage(
  world: World,
  nodes: { child: { pid?: number } }[],
  receiverPid: number,
): Promise<(deliveries: number) => Promise<UsageReport & { consumer_cpu_share_of_one_cpu: number }>> {
  const pids: Record<string, number> = { receiver: receiverPid };
  nodes.forEach((n, i) => (pids[`consumer-${i + 1}`] = n.child.pid!));
  const t0 = performance.now();
  const usage = await measureUsage(pids, world.client());
  return async (deliveries) => {
    const report = await usage(deliveries);
    const seconds = (performance.now() - t0) / 1000;
    const consumerMs = Object.entries(report.cpu_ms_per_msg)
      .filter(([name]) => name.startsWith('consumer-'))
      .reduce((sum, [, ms]) => sum + ms, 0);
    return { ...report, consumer_cpu_share_of_one_cpu: round((consumerMs * deliveries) / 1000 / seconds, 3) };
  };
}
