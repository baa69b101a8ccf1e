import { Cluster, Redis, type ChainableCommander, type ClusterOptions, type RedisOptions } from 'ioredis';
import { parseRedisUrl } from './redis-url.js';
import { defineScripts, type ScriptClient } from './scripts.js';
import { suggestsStaleMap } from './topology.js';
import { within } from './within.js';

export type { Cluster, Redis };
export { clusterUrl, parseRedisUrl, redactUrl, sentinelUrl, type RedisTarget } from './redis-url.js';

export type RedisRole = 'producer' | 'consumer' | 'subscriber';

/**
 * Clients made by `createRedis` that have not ended yet, for the tests' leak
 * check. Kept under a global symbol so that the built and the source copy of
 * this module (tests load both) share one set.
 */
const OPEN = Symbol.for('postoffice.openRedisClients');
const registry = globalThis as typeof globalThis & { [OPEN]?: Set<ScriptClient> };
const open = (registry[OPEN] ??= new Set<ScriptClient>());

export function openRedisClients(): readonly ScriptClient[] {
  return [...open];
}

const retryStrategy = (times: number): number => Math.min(times * 100, 2000);

/**
 * A primary demoted to a replica (a failover, or a frozen primary that came
 * back) answers writes with `READONLY`: drop the connection and connect
 * again, through the sentinels to the new primary (or by name, to whatever
 * the address now points at). The command itself fails (1, not 2: it is not
 * sent again here) and its caller retries it or answers 503.
 */
const reconnectOnError = (err: Error): 1 | false => (/^READONLY\b/.test(err.message) ? 1 : false);

/**
 * A Redis client configured for its role. The producer fails fast (no
 * offline queue: Redis down is a 503 at once); the consumer waits and
 * retries for ever (`maxRetriesPerRequest: null`), though no single command
 * waits more than `commandTimeout` (a frozen primary must not stall a loop
 * for good); a subscriber connection only listens. Every client has the
 * Lua scripts defined. `extra` options go to every connection.
 *
 * A cluster URL (`redis+cluster://host:port,...`) gives an ioredis
 * `Cluster`, with the role's options on each node's connection: it routes
 * each command and script by its keys' hash slot, follows MOVED and ASK,
 * and reads its slot map again whenever a reply or an error says the
 * cluster changed (see `followTopology`). Every script, MULTI and pipeline
 * touches the keys of one slot only (see keys.ts), so the same code runs on
 * both.
 *
 * A sentinel URL (`redis+sentinel://host:port,.../name`) gives a client that
 * asks the sentinels for the primary, connects again to the new one after a
 * failover (told by the sentinels' `+switch-master`, or by `READONLY`), and
 * checks the role of every server it connects to.
 */
export function createRedis(url: string, role: RedisRole, extra: RedisOptions = {}): ScriptClient {
  const roleOptions: RedisOptions = {
    ...(role === 'producer'
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000, commandTimeout: 5000 }
      : role === 'consumer'
        ? { maxRetriesPerRequest: null, enableOfflineQueue: true, commandTimeout: CONSUMER_COMMAND_TIMEOUT_MS }
        : { maxRetriesPerRequest: null, enableOfflineQueue: true }),
    reconnectOnError,
    ...extra,
  };
  const target = parseRedisUrl(url);
  let client: ScriptClient;
  if (target.kind === 'single') {
    client = new Redis(url, { lazyConnect: false, retryStrategy, ...roleOptions });
  } else if (target.kind === 'sentinel') {
    client = new Redis({
      lazyConnect: false,
      retryStrategy,
      sentinelRetryStrategy: retryStrategy,
      sentinels: target.sentinels.map((n) => ({ host: n.host, port: n.port })),
      name: target.name,
      db: target.db,
      // Listen to the sentinels for +switch-master: a failover is followed at once, not at the next error.
      failoverDetector: true,
      ...(target.username === undefined ? {} : { username: target.username }),
      ...(target.password === undefined ? {} : { password: target.password }),
      ...(target.sentinelPassword === undefined ? {} : { sentinelPassword: target.sentinelPassword }),
      ...(target.tls ? { tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true } : {}),
      ...roleOptions,
    });
  } else {
    const { enableOfflineQueue, ...nodeOptions } = roleOptions;
    const options: ClusterOptions = {
      lazyConnect: false,
      clusterRetryStrategy: retryStrategy,
      enableOfflineQueue: enableOfflineQueue ?? true,
      // A slot map refresh may wait for a busy node; the default second is short on a loaded host.
      slotsRefreshTimeout: 3000,
      redisOptions: {
        ...nodeOptions,
        ...(target.username === undefined ? {} : { username: target.username }),
        ...(target.password === undefined ? {} : { password: target.password }),
        ...(target.tls ? { tls: {} } : {}),
      },
    };
    const cluster = new Cluster(
      target.nodes.map((n) => ({ host: n.host, port: n.port })),
      options,
    );
    followTopology(cluster);
    client = cluster;
  }
  // Errors are reported by the commands that fail; an unhandled 'error' event would crash the process.
  client.on('error', () => {});
  open.add(client);
  client.once('end', () => open.delete(client));
  return defineScripts(client);
}

/**
 * The longest a consumer's command may wait for its answer. Its loops retry
 * a failed command; one that hangs (a primary frozen, or cut off without a
 * reset) would stop them until the primary came back.
 */
export const CONSUMER_COMMAND_TIMEOUT_MS = 10_000;

/** The least time between two slot map refreshes that errors ask for. */
const REFRESH_GAP_MS = 200;

/**
 * ioredis reads a cluster's slot map again on a `MOVED` to a single
 * command, not on one inside a pipeline that also holds a command that
 * succeeded (a script with the `WAIT` behind it), nor on a timeout: a
 * client would then go on sending a slot's commands to a node that no
 * longer serves it. Here every failed command and pipeline reply that
 * suggests a change (`suggestsStaleMap`) asks for a refresh, at most one
 * each `REFRESH_GAP_MS`.
 */
function followTopology(cluster: Cluster): void {
  let last = 0;
  const noteError = (err: unknown): void => {
    if (!suggestsStaleMap(err)) return;
    const now = Date.now();
    if (now - last < REFRESH_GAP_MS || cluster.status === 'end') return;
    last = now;
    cluster.refreshSlotsCache();
  };
  const sendCommand = cluster.sendCommand.bind(cluster);
  cluster.sendCommand = (command, stream, node) => {
    command.promise.catch(noteError);
    return sendCommand(command, stream, node);
  };
  const watchExec = <P extends ChainableCommander>(pipeline: P): P => {
    const exec = pipeline.exec.bind(pipeline);
    pipeline.exec = async (callback) => {
      try {
        const results = await exec(callback);
        const failed = results?.find(([err]) => err !== null && suggestsStaleMap(err));
        if (failed) noteError(failed[0]);
        return results;
      } catch (err) {
        noteError(err);
        throw err;
      }
    };
    return pipeline;
  };
  const pipeline = cluster.pipeline.bind(cluster);
  cluster.pipeline = (commands) => watchExec(pipeline(commands));
}

/** Whether the client talks to a Redis Cluster. */
export function isCluster(client: ScriptClient): client is Cluster {
  return client instanceof Cluster;
}

/**
 * The connection to every master: the client itself for one Redis, one per
 * master for a cluster. For what one node cannot answer for the whole
 * cluster (INFO, PING, SCAN).
 */
export function masterNodes(client: ScriptClient): Redis[] {
  return isCluster(client) ? client.nodes('master') : [client];
}

/**
 * Throws unless Redis answers and is at least 6.2 (XAUTOCLAIM, XTRIM
 * MINID, ZADD LT); on a cluster, every master must be. Returns the version
 * (the lowest one on a cluster).
 */
export async function checkRedisVersion(client: ScriptClient): Promise<string> {
  if (isCluster(client) && client.status !== 'ready') {
    // A cluster client knows its masters once it has read the slot map.
    await new Promise<void>((resolve, reject) => {
      const ready = (): void => {
        client.off('end', ended);
        resolve();
      };
      const ended = (): void => {
        client.off('ready', ready);
        reject(new Error('Connection is closed.'));
      };
      client.once('ready', ready);
      client.once('end', ended);
    });
  }
  const nodes = masterNodes(client);
  const versions = await Promise.all(
    nodes.map(async (node) => /redis_version:([\d.]+)/.exec(await node.info('server'))?.[1] ?? '0'),
  );
  const numeric = (v: string): number => {
    const [major = 0, minor = 0] = v.split('.').map(Number);
    return major * 1000 + minor;
  };
  const version = versions.sort((a, b) => numeric(a) - numeric(b))[0] ?? '0';
  if (numeric(version) < 6002) {
    throw new Error(`Redis ${version} is too old: Postoffice needs 6.2 or newer`);
  }
  return version;
}

/** Closes a client, quickly when it is not connected. Safe to call twice. */
export async function closeRedis(client: ScriptClient): Promise<void> {
  // A client closed while reconnecting never reaches 'end' (ioredis clears its timer and stays 'reconnecting').
  open.delete(client);
  if (client.status === 'end') return;
  try {
    if (client.status === 'ready') await client.quit();
    else client.disconnect();
  } catch {
    client.disconnect();
  }
}

/**
 * Whether Redis answers a PING within `ms` (false at once when the client
 * is not connected); on a cluster, whether every master does.
 */
export async function redisAnswers(client: ScriptClient, ms: number): Promise<boolean> {
  if (client.status !== 'ready') return false;
  try {
    const nodes = masterNodes(client);
    if (nodes.length === 0) return false;
    return await within(ms, Promise.all(nodes.map((n) => n.ping())));
  } catch {
    return false;
  }
}

/**
 * Runs batches of commands at once, one pipeline per batch, and returns every
 * reply in order, as one `pipeline.exec()` would. Each batch must touch one
 * hash slot (one topic's keys, or one global key): on a cluster ioredis sends
 * a pipeline to a single node, so one pipeline across topics fails there.
 * Still one round trip: the pipelines go out together.
 */
export async function execBySlot(
  client: ScriptClient,
  batches: readonly ((pipeline: ChainableCommander) => void)[],
): Promise<[Error | null, unknown][]> {
  const replies = await Promise.all(
    batches.map(async (fill) => {
      const pipeline = client.pipeline();
      fill(pipeline);
      return (await pipeline.exec()) ?? [];
    }),
  );
  return replies.flat();
}

/**
 * Runs the batches in one round trip: one pipeline on a single Redis, one
 * pipeline per batch on a cluster (each batch must touch one hash slot,
 * e.g. one topic's keys).
 */
export async function inOneRoundTrip(
  client: ScriptClient,
  batches: readonly ((pipeline: ChainableCommander) => void)[],
): Promise<[Error | null, unknown][]> {
  if (isCluster(client)) return execBySlot(client, batches);
  if (batches.length === 0) return [];
  const pipeline = client.pipeline();
  for (const fill of batches) fill(pipeline);
  return (await pipeline.exec()) ?? [];
}
