/**
 * The consumer process: the only module that reads the environment,
 * installs signal handlers and exits.
 */
import { ConfigError, createLogger, loadConfig, redactUrl, type Config } from '@postoffice/shared';
import { ConsumerNode } from './node.js';
import { buildConsumerServer } from './server.js';

let config: Config;
try {
  config = loadConfig(process.env, 'consumer');
} catch (err) {
  if (err instanceof ConfigError) {
    for (const problem of err.problems) process.stderr.write(`postoffice-consumer: ${problem}\n`);
    process.exit(1);
  }
  throw err;
}

const logger = createLogger(config);
const node = new ConsumerNode({ config, logger });
const server = buildConsumerServer(node, logger);
let stopping = false;

async function stop(signal: string): Promise<void> {
  if (stopping) {
    logger.warn({ signal }, 'second signal; exiting now');
    process.exit(1);
  }
  stopping = true;
  logger.info({ signal }, 'stopping: finishing in-flight deliveries');
  const hardStop = setTimeout(
    () => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
    },
    (config.shutdownTimeoutSeconds + 5) * 1000,
  );
  hardStop.unref();
  await node.close();
  await server.close();
  process.exit(0);
}

process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));

try {
  await server.listen({ host: config.host, port: config.port });
  logger.info({ redis: redactUrl(config.redisUrl), nodeId: config.nodeId }, 'connecting to Redis');
  await node.start();
} catch (err) {
  logger.fatal({ err }, 'consumer failed to start');
  await node.close(0).catch(() => undefined);
  await server.close().catch(() => undefined);
  process.exit(1);
}
