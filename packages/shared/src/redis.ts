import { Redis, type RedisOptions } from 'ioredis';
import { defineScripts, type ScriptClient } from './scripts.js';
import { within } from './within.js';

export type { Redis };

export type RedisRole = 'producer' | 'consumer' | 'subscriber';

/**
 * Clients made by `createRedis` that have not ended yet, for the tests' leak
 * check. Kept under a global symbol so that the built and the source copy of
 * this module (tests load both) share one set.
 */
const OPEN = Symbol.for('postoffice.openRedisClients');
const registry = globalThis as typeof globalThis & { [OPEN]?: Set<Redis> };
const open = (registry[OPEN] ??= new Set<Redis>());

export function openRedisClients(): readonly Redis[] {
  return [...open];
}

/**
 * A Redis client configured for its role. The producer fails fast (no
 * offline queue: Redis down is a 503 at once); the consumer waits and
 * retries for ever (`maxRetriesPerRequest: null`); a subscriber connection
 * only listens. Every client has the Lua scripts defined.
 */
export function createRedis(url: string, role: RedisRole, extra: RedisOptions = {}): ScriptClient {
  const options: RedisOptions =
    role === 'producer'
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000, commandTimeout: 5000 }
      : { maxRetriesPerRequest: null, enableOfflineQueue: true };
  const client = new Redis(url, {
    lazyConnect: false,
    retryStrategy: (times) => Math.min(times * 100, 2000),
    ...options,
    ...extra,
  });
  // Errors are reported by the commands that fail; an unhandled 'error' event would crash the process.
  client.on('error', () => {});
  open.add(client);
  client.once('end', () => open.delete(client));
  return defineScripts(client);
}

/** The URL without its password, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '[unparseable url]';
  }
}

/** Throws unless Redis answers and is at least 6.2 (XAUTOCLAIM, XTRIM MINID, ZADD LT). */
export async function checkRedisVersion(client: Redis): Promise<string> {
  const info = await client.info('server');
  const version = /redis_version:([\d.]+)/.exec(info)?.[1] ?? '0';
  const [major = 0, minor = 0] = version.split('.').map(Number);
  if (major < 6 || (major === 6 && minor < 2)) {
    throw new Error(`Redis ${version} is too old: Postoffice needs 6.2 or newer`);
  }
  return version;
}

/** Closes a client, quickly when it is not connected. Safe to call twice. */
export async function closeRedis(client: Redis): Promise<void> {
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

/** Whether Redis answers a PING within `ms` (false at once when the client is not connected). */
export async function redisAnswers(client: Redis, ms: number): Promise<boolean> {
  if (client.status !== 'ready') return false;
  try {
    return await within(ms, client.ping());
  } catch {
    return false;
  }
}
