/**
 * Not a test: measures `GET /api/stats` with many topics and publishers on a
 * private redis-server, and prints milliseconds and Redis commands per
 * answer: the first call computes, later calls within STATS_CACHE_MS share
 * it. Usage: N=2000 npx tsx packages/producer/test/measure-stats.ts
 */
import { PUBLISHER_DEFAULTS, Store } from '@postoffice/shared';
import { call, startApi } from './helpers.js';

const n = Number(process.env.N ?? 2000);
const api = await startApi();
const commands = async (): Promise<number> => {
  const info = await api.redis.info('stats');
  return Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? NaN) - 1;
};
try {
  const store = new Store(api.redis, api.keys);
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    pending.push(
      store.createTopic({ name: `t-${i}`, origin_host: 'measure' }).then(() =>
        store.createPublisher({
          topic: `t-${i}`,
          type: 'http',
          target: `http://127.0.0.1:9/p${i}`,
          ...PUBLISHER_DEFAULTS,
        }),
      ),
    );
    if (pending.length >= 200) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  // A tenth of the topics hold unread messages, so their publishers have a backlog to find.
  for (let i = 0; i < n; i += 10)
    await call(api.app, 'POST', '/api/bulk_messages', { topic: `t-${i}`, payload: [1, 2] });
  for (let round = 0; round < 5; round++) {
    const before = await commands();
    const started = process.hrtime.bigint();
    const res = await call(api.app, 'GET', '/api/stats');
    const ms = Math.round(Number(process.hrtime.bigint() - started) / 1e6);
    const data = (res.body as { data: { publishers: number; backlog: number } }).data;
    console.log({
      round,
      status: res.status,
      topics: n,
      publishers: data.publishers,
      backlog: data.backlog,
      ms,
      commands: (await commands()) - before,
    });
    // Past any cache, so that each round computes.
    await new Promise((resolve) => setTimeout(resolve, Number(process.env.PAUSE_MS ?? 1100)));
  }
} finally {
  await api.close();
}
