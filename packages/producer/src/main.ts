/**
 * The producer process: the only module that reads `process.env`, installs
 * signal handlers or calls `process.exit`.
 *
 * Start: validate the environment (every bad variable on its own line on
 * stderr, exit 1); wait briefly for Redis and check its version (too old:
 * exit 1; unreachable: log and carry on, the API answers 503 until Redis is
 * back, and the version is checked when it is); listen.
 * SIGTERM/SIGINT: stop accepting, let in-flight requests finish within
 * SHUTDOWN_TIMEOUT_SECONDS, close Redis, exit 0 (1 when the deadline forced
 * the stop, or at a second signal).
 * SIGUSR2: start draining (see draining.ts): readiness fails, requests are
 * still served, each connection closed after its answer; SIGTERM follows.
 *
 * `main.js pre-stop <seconds>` is the chart's preStop hook, run beside the
 * producer in its container: it sends SIGUSR2 to the producer listening on
 * PORT (its pid is in `<tmpdir>/postoffice-producer-<PORT>.pid`, written
 * at start), waits `<seconds>` for the endpoints to drop the pod, and exits
 * 0, after which Kubernetes sends SIGTERM.
 */
import {
  ConfigError,
  checkRedisVersion,
  closeRedis,
  createLogger,
  createRedis,
  loadConfig,
  redactUrl,
  type Config,
  type Logger,
  type ScriptClient,
} from '@postoffice/shared';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDraining } from './draining.js';
import { isRedisUnavailable } from './http-errors.js';
import { buildServer } from './server.js';

/** How long the start waits for a first Redis connection before going on without it. */
const STARTUP_REDIS_WAIT_MS = 3000;

function readConfig(): Config {
  try {
    return loadConfig(process.env, 'producer');
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const problem of err.problems)
        process.stderr.write(`postoffice-producer: invalid configuration: ${problem}\n`);
      process.exit(1);
    }
    throw err;
  }
}

function waitForReady(redis: ScriptClient, ms: number): Promise<boolean> {
  if (redis.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const onReady = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      resolve(false);
    }, ms);
    redis.once('ready', onReady);
  });
}

/** Resolves true when the version was checked, false when Redis could not be reached; throws when it is too old. */
async function checkVersion(redis: ScriptClient, log: Logger): Promise<boolean> {
  try {
    const version = await checkRedisVersion(redis);
    log.info({ version }, 'redis version checked');
    return true;
  } catch (err) {
    if (isRedisUnavailable(err)) return false;
    throw err;
  }
}

/** Where the producer listening on `port` writes its pid, for `pre-stop` to find it. */
function pidFile(port: number): string {
  return join(tmpdir(), `postoffice-producer-${port}.pid`);
}

/** The preStop hook: signal the producer to drain, then wait while the endpoints drop the pod. */
async function preStop(seconds: number): Promise<void> {
  const config = readConfig();
  if (!Number.isFinite(seconds) || seconds < 0) {
    process.stderr.write('postoffice-producer: pre-stop needs the seconds to wait, e.g. `pre-stop 15`\n');
    process.exit(1);
  }
  try {
    process.kill(Number(readFileSync(pidFile(config.port), 'utf8').trim()), 'SIGUSR2');
  } catch (err) {
    // No producer to drain (it never started, or already stopped): nothing to wait for.
    process.stderr.write(
      `postoffice-producer: pre-stop: no producer on port ${config.port} to drain (${String(err)})\n`,
    );
    process.exit(0);
  }
  await sleep(seconds * 1000);
  process.exit(0);
}

async function main(): Promise<void> {
  const config = readConfig();
  const logger = createLogger(config);
  const log = logger.child({ component: 'main' });
  const redis = createRedis(config.redisUrl, 'producer');
  const fatal = (err: unknown, msg: string): never => {
    log.fatal({ err }, msg);
    redis.disconnect();
    process.exit(1);
  };

  const ready = await waitForReady(redis, STARTUP_REDIS_WAIT_MS);
  const checked = ready && (await checkVersion(redis, log).catch((err: unknown) => fatal(err, 'redis cannot be used')));
  if (!checked) {
    log.warn({ redis: redactUrl(config.redisUrl) }, 'redis is unreachable; the API answers 503 until it is back');
    const recheck = (): void => {
      checkVersion(redis, log).then(
        (ok) => {
          if (!ok) redis.once('ready', recheck);
        },
        (err: unknown) => fatal(err, 'redis cannot be used'),
      );
    };
    redis.once('ready', recheck);
  }

  const app = buildServer({ config, redis, logger });
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    fatal(err, 'could not listen');
  }
  const pid = pidFile(config.port);
  try {
    writeFileSync(pid, `${process.pid}\n`);
    process.on('exit', () => rmSync(pid, { force: true }));
  } catch (err) {
    log.warn({ err, pidFile: pid }, 'could not write the pid file; pre-stop will not find this process');
  }
  process.on('SIGUSR2', () => {
    log.info('draining: readiness fails from now on, each connection closes after its answer');
    startDraining(app);
  });
  log.info(
    {
      host: config.host,
      port: config.port,
      redis: redactUrl(config.redisUrl),
      // How many tokens, never which.
      auth: config.apiTokens.length > 0 ? `on (${config.apiTokens.length} API token(s))` : 'off',
      refusePrivateTargets: config.refusePrivateTargets,
    },
    'producer started',
  );

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: stopping now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal, deadlineSeconds: config.shutdownTimeoutSeconds }, 'stopping: finishing in-flight requests');
    const deadline = setTimeout(() => {
      log.error({ deadlineSeconds: config.shutdownTimeoutSeconds }, 'shutdown deadline passed: stopping anyway');
      redis.disconnect();
      process.exit(1);
    }, config.shutdownTimeoutSeconds * 1000);
    deadline.unref();
    void (async () => {
      try {
        await app.close();
      } catch (err) {
        log.error({ err }, 'closing the server failed');
      }
      await closeRedis(redis);
      clearTimeout(deadline);
      log.info('stopped');
      process.exit(0);
    })();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

const run = process.argv[2] === 'pre-stop' ? preStop(Number(process.argv[3])) : main();
run.catch((err: unknown) => {
  process.stderr.write(
    `postoffice-producer: failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
