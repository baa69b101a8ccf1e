/**
 * Mocha root hooks (`.mocharc.json` requires this file), two leak checks:
 *
 * - After each test: a Redis client made by `createRedis` or a
 *   redis-server started inside the test itself (once its beforeEach hooks
 *   had run) that is still open once its afterEach hooks have run fails that
 *   test, by name, and is closed. What a test opens it closes, in the test or
 *   in an afterEach hook.
 * - After the whole run: what before/after hooks opened and left open (a
 *   node, pipeline or store a file forgot to close, a redis-server it
 *   started) fails the run; everything is then closed, so that the process
 *   can exit and no server outlives the run. Also fails the run if a
 *   producer or consumer process the tests started wrote a log line that a
 *   strict log pipeline would refuse (see log-lines.ts).
 */
import { openRedisClients, type ScriptClient } from '@postoffice/shared';
import { logLineProblems } from './log-lines.js';
import { startedOutputs } from './processes.js';
import { runningServers, type RunningServer } from './redis-server.js';

interface Opened {
  readonly clients: readonly ScriptClient[];
  readonly servers: readonly RunningServer[];
}

function opened(): Opened {
  return { clients: openRedisClients().filter((c) => c.status !== 'end'), servers: [...runningServers] };
}

/** What is open now and was not in `before`. */
function openedSince(before: Opened): Opened {
  const now = opened();
  return {
    clients: now.clients.filter((c) => !before.clients.includes(c)),
    servers: now.servers.filter((s) => !before.servers.includes(s)),
  };
}

/** What was open when the running test's own function started (undefined outside a test). */
let atTestStart: Opened | undefined;
/** The running test's function, as it was before beforeEach wrapped it. */
let original: Mocha.Func | Mocha.AsyncFunc | undefined;

export const mochaHooks = {
  /**
   * Root hooks run before the suites' own beforeEach hooks: the test's
   * function is wrapped so that what is open is noted when it starts, after
   * those hooks. The wrapper keeps the function's arity (mocha tells a
   * `done` callback test by it).
   */
  beforeEach(this: Mocha.Context): void {
    const test = this.currentTest;
    atTestStart = undefined;
    original = test?.fn;
    if (!test || !original) return;
    const fn = original as (this: Mocha.Context, ...args: unknown[]) => unknown;
    test.fn =
      fn.length > 0
        ? function (this: Mocha.Context, done: Mocha.Done) {
            atTestStart = opened();
            return fn.call(this, done);
          }
        : function (this: Mocha.Context) {
            atTestStart = opened();
            return fn.call(this);
          };
  },

  /** Root hooks run after the suites' own afterEach hooks. */
  async afterEach(this: Mocha.Context): Promise<void> {
    const test = this.currentTest;
    if (test && original) test.fn = original;
    original = undefined;
    const before = atTestStart;
    atTestStart = undefined;
    if (!test || !before) return;
    let left = openedSince(before);
    // A client disconnected without waiting reaches 'end' a moment later.
    for (let i = 0; i < 20 && left.clients.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
      left = openedSince(before);
    }
    if (left.clients.length === 0 && left.servers.length === 0) return;
    for (const client of left.clients) client.disconnect();
    await Promise.all(left.servers.map((s) => s.stop({ hard: true })));
    // A test that failed already says what went wrong; what it left open is closed above.
    if (test.state === 'failed') return;
    // Reported as the test's failure (mocha's Hook#error), and the run goes on.
    (this.runnable() as Mocha.Hook).error(
      new Error(
        `"${test.fullTitle()}" left ${left.clients.length} Redis client(s) open and ` +
          `${left.servers.length} redis-server(s) running (close them in the test or in an afterEach hook)`,
      ),
    );
  },

  async afterAll(): Promise<void> {
    const { clients, servers } = opened();
    for (const client of clients) client.disconnect();
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
