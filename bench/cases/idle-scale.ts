/**
 * Idle scale: a consumer holding 10,000 idle publishers. Figures: Redis
 * commands/s (INFO commandstats delta, all clients, over a quiet window
 * after the publishers are loaded) and the consumer's RSS. The same window
 * with no publishers at all, measured first, is the floor.
 */
import { round } from '../lib/stats.js';
import { bySize, type BenchCase } from '../lib/types.js';
import { World, commandCount, rssMb, sleep, waitFor } from '../lib/world.js';

const PER_TOPIC = 10;
const GOAL_CMD_PER_S = 50;
const GOAL_RSS_MB = 300;

export const idleScale: BenchCase = {
  name: 'idle scale',
  measure: 'Redis cmd/s and RSS, idle publishers',
  async run(ctx) {
    const publishers = bySize(ctx.mode, { full: 10_000, quick: 2_000, shape: 100 });
    const windowSeconds = bySize(ctx.mode, { full: 30, quick: 8, shape: 3 });
    const world = await World.start();
    try {
      await world.startProducer();
      const consumer = await world.startConsumer();
      const redis = world.client();
      const window = async (seconds: number) => {
        const before = await commandCount(redis);
        await sleep(seconds * 1000);
        const after = await commandCount(redis);
        const byCommand: Record<string, number> = {};
        for (const [name, calls] of Object.entries(after.byCommand)) {
          const d = calls - (before.byCommand[name] ?? 0);
          if (d > 0) byCommand[name] = round(d / seconds, 2);
        }
        return { perSec: round((after.total - before.total) / seconds, 2), byCommand };
      };
      const empty = await window(Math.max(2, windowSeconds / 2));
      const emptyRss = round(rssMb(consumer.child.pid!), 1);

      const topics = Math.ceil(publishers / PER_TOPIC);
      ctx.log(`creating ${topics} topics and ${publishers} publishers`);
      const pool = world.api(16);
      let next = 0;
      const create = async () => {
        while (next < publishers) {
          const i = next++;
          const topic = `idle-${Math.floor(i / PER_TOPIC)}`;
          if (i % PER_TOPIC === 0) await world.post('/api/topics', { name: topic, origin_host: 'bench.example' }, pool);
          else await waitFor(() => topicReady.has(topic), `topic ${topic}`);
          await world.post(
            '/api/publishers',
            { active: true, topic, target: `http://127.0.0.1:9/idle/${i}`, type: 'http' },
            pool,
          );
          if (i % PER_TOPIC === 0) topicReady.add(topic);
        }
      };
      const topicReady = new Set<string>();
      await Promise.all(Array.from({ length: 16 }, create));
      ctx.log('waiting for the consumer to hold every publisher');
      await waitFor(
        async () => {
          const res = await fetch(`${consumer.url}/healthz`);
          const body = (await res.json()) as { pipelines?: number };
          return body.pipelines === publishers;
        },
        `${publishers} pipelines`,
        300_000,
        500,
      );
      await sleep(2000);
      const loaded = await window(windowSeconds);
      const rss = round(rssMb(consumer.child.pid!), 1);
      ctx.log(`${loaded.perSec} cmd/s, RSS ${rss} MB`);
      return {
        figure: { label: `postoffice, ${publishers} idle publishers`, value: loaded.perSec, unit: 'cmd/s' },
        baseline: { label: 'goal', value: GOAL_CMD_PER_S, unit: 'cmd/s' },
        ratio: round(loaded.perSec / GOAL_CMD_PER_S, 3),
        goal: `<= ${GOAL_CMD_PER_S} cmd/s`,
        met: loaded.perSec <= GOAL_CMD_PER_S,
        more: [
          {
            figure: { label: 'consumer RSS', value: rss, unit: 'MB' },
            baseline: { label: 'goal', value: GOAL_RSS_MB, unit: 'MB' },
            ratio: round(rss / GOAL_RSS_MB, 3),
            goal: `<= ${GOAL_RSS_MB} MB`,
            met: rss <= GOAL_RSS_MB,
          },
        ],
        config: {
          publishers,
          topics,
          publishers_per_topic: PER_TOPIC,
          window_seconds: windowSeconds,
          targets: 'never called (no messages)',
          counted: 'every Redis command of every client (producer, consumer), INFO excluded',
        },
        details: {
          no_publishers: { cmd_per_s: empty.perSec, rss_mb: emptyRss, by_command: empty.byCommand },
          loaded_by_command: loaded.byCommand,
        },
      };
    } finally {
      await world.close();
    }
  },
};
