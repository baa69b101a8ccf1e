/**
 * Mocha root hooks: after the whole run, fail if a test left a Redis client
 * made by `createRedis` open (a node, pipeline or store it forgot to close)
 * or a redis-server it started running; then close them, so that the
 * process can exit and no server outlives the run. Also fail if a producer
 * or consumer process the tests started wrote a log line that a strict log
 * pipeline would refuse (see log-lines.ts).
 */
import { openRedisClients } from '@postoffice/shared';
import { logLineProblems } from './log-lines.js';
import { startedOutputs } from './processes.js';
import { runningServers } from './redis-server.js';

export const mochaHooks = {
  async afterAll(): Promise<void> {
    const clients = openRedisClients().filter((c) => c.status !== 'end');
    for (const client of clients) client.disconnect();
    const servers = [...runningServers];
    await Promise.all(servers.map((s) => s.stop({ hard: true })));
    const badLines = startedOutputs.flatMap((p) => logLineProblems(p.stdout()).map((why) => `${p.name}: ${why}`));
    if (badLines.length > 0) {
      throw new Error(
        `processes started by the tests wrote ${badLines.length} bad log line(s):\n${badLines.slice(0, 20).join('\n')}`,
      );
    }
    if (clients.length > 0 || servers.length > 0) {
      throw new Error(
        `the tests left ${clients.length} Redis client(s) open and ${servers.length} redis-server(s) running`,
      );
    }
  },
};
