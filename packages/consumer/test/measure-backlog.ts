/**
 * Not a test: measures one scrape-time backlog count (BacklogCounter.count)
 * with many publishers on a private redis-server, and prints commands and
 * milliseconds per count. Usage: N=10000 npx tsx packages/consumer/test/measure-backlog.ts
 */
import { BacklogCounter } from '../src/backlog.js';
import { commandsProcessed, createWorld, infoCalls } from './helpers.js';

const n = Number(process.env.N ?? 10000);
const topics = Math.max(1, Math.floor(n / 10));
const world = await createWorld();
try {
  for (let t = 0; t < topics; t++) await world.topic(`t-${t}`);
  const created: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) created.push(world.publisher(`t-${i % topics}`, `http://127.0.0.1:9/p${i}`));
  await Promise.all(created);
  // A tenth of the topics get unread messages, so their publishers cost the extra XRANGE.
  for (let t = 0; t < topics / 10; t++) await world.publish(`t-${t}`, [1, 2, 3]);
  const counter = new BacklogCounter({
    redis: world.redis,
    keys: world.keys,
    store: world.store,
    reporting: () => true,
    now: Date.now,
  });
  const processed = (): Promise<number> => commandsProcessed(world.redis);
  for (let round = 0; round < 3; round++) {
    const before = await processed();
    const started = process.hrtime.bigint();
    const rows = await counter.count();
    const ms = Math.round(Number(process.hrtime.bigint() - started) / 1e6);
    console.log({
      publishers: n,
      topics,
      rows: rows.length,
      ms,
      commands: (await processed()) - before - infoCalls(world.redis),
    });
  }
} finally {
  await world.close();
}
