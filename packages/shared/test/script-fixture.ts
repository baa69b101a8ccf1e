/**
 * What the tests of the Lua scripts share: a private redis-server (a
 * three-master cluster with POSTOFFICE_TEST_REDIS=cluster) and one client
 * for the file, a key prefix of each test's own, the keys of a topic and a
 * publisher by the names the scripts give them, and the code a script call
 * is refused with.
 */
import { AppError, closeRedis, createRedis, Keys, scripts, type ScriptClient } from '../src/index.js';
import { startRedis, type RedisServer } from '@postoffice/test-support';

export interface ScriptFixture {
  readonly server: RedisServer;
  readonly redis: ScriptClient;
  /** Under a prefix of the running test's own (`<prefix><n>:`). */
  readonly keys: Keys;
}

/** Starts the server before the file's tests and stops it after them; a new prefix before each test. */
export function useScriptFixture(prefix: string, options: { readonly cluster?: boolean } = {}): ScriptFixture {
  const f = {} as { server: RedisServer; redis: ScriptClient; keys: Keys };
  let prefixes = 0;
  before(async () => {
    f.server = await startRedis(options.cluster === undefined ? {} : { cluster: options.cluster });
    f.redis = createRedis(f.server.url, 'consumer');
  });
  after(async () => {
    if (f.redis) await closeRedis(f.redis);
    if (f.server) await f.server.stop();
  });
  beforeEach(() => {
    f.keys = new Keys(`${prefix}${++prefixes}:`);
  });
  return f;
}

/**
 * Every key of the topic and of its publisher, by the names the scripts'
 * KEYS give them (the topic's record is `topic`): pass it as a script's keys.
 */
export function scriptKeys(keys: Keys, topic: string, publisherId = '1') {
  return scripts.publisherKeys(keys, topic, publisherId);
}

/** Writes a topic's record, as the API does (`Store.createTopic` also lists the topic). */
export function createTopicRecord(
  redis: ScriptClient,
  keys: Keys,
  name: string,
  fields: Record<string, unknown> = { id: 1, name, origin_host: 'o' },
): Promise<void> {
  return scripts.createTopic(redis, { topic: keys.topic(name).meta }, { topicJson: JSON.stringify(fields) });
}

/** The code of the typed error a script call is refused with, or 'none' when it is not. */
export async function codeOf(call: Promise<unknown>): Promise<string> {
  try {
    await call;
  } catch (err) {
    if (err instanceof AppError) return err.code;
    throw err;
  }
  return 'none';
}
