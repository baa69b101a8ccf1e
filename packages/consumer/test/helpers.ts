/** Consumer test helpers: a Redis, a store, a way to publish without the producer, and nodes. */
import {
  Keys,
  Store,
  closeRedis,
  createLogger,
  createRedis,
  loadConfig,
  masterNodes,
  messageId,
  PUBLISHER_DEFAULTS,
  findMessage,
  scripts,
  type Config,
  type DeliveryView,
  type Publisher,
  type ScriptClient,
} from '@postoffice/shared';
import { ConsumerNode } from '../src/index.js';
import { startRedis, type RedisServer, startReceiver, type Receiver } from '@postoffice/test-support';

export { startRedis, waitFor, freePort } from '@postoffice/test-support';
export { startReceiver };

/** What the API shows of one message's delivery to one publisher (the read model over Redis). */
export async function deliveryOf(
  world: World,
  messageId: string,
  publisherId: string,
): Promise<DeliveryView | undefined> {
  const m = await findMessage(world.redis, world.keys, world.store, messageId);
  return m?.deliveries.find((d) => d.publisher_id === publisherId);
}

export interface World {
  readonly server: RedisServer;
  readonly redis: ScriptClient;
  readonly keys: Keys;
  readonly store: Store;
  readonly nodes: ConsumerNode[];
  config(env?: Record<string, string>): Config;
  node(env?: Record<string, string>): Promise<ConsumerNode>;
  topic(name?: string): Promise<string>;
  publisher(topic: string, target: string, extra?: Partial<Publisher>): Promise<Publisher>;
  publish(topic: string, payloads: unknown[], attributes?: Record<string, string>): Promise<string[]>;
  /** Closes the nodes started so far (a test's, in an afterEach hook of a world shared by a file's tests). */
  closeNodes(): Promise<void>;
  close(): Promise<void>;
}

/** Fast timings for tests; each may be overridden. */
export const TEST_ENV: Record<string, string> = {
  HEARTBEAT_SECONDS: '1',
  CLAIM_TIMEOUT_SECONDS: '3',
  RETRY_POLL_MS: '50',
  LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
  SHUTDOWN_TIMEOUT_SECONDS: '10',
};

/** A world on its own Redis: one server, or a cluster in cluster mode (`cluster` forces one or the other). */
export async function createWorld(options: { cluster?: boolean } = {}): Promise<World> {
  const server = await startRedis(options);
  const redis = createRedis(server.url, 'consumer');
  const keys = new Keys();
  const store = new Store(redis, keys);
  const nodes: ConsumerNode[] = [];
  let topics = 0;
  const config = (env: Record<string, string> = {}) =>
    loadConfig({ REDIS_URL: server.url, ...TEST_ENV, ...env }, 'consumer');
  return {
    server,
    redis,
    keys,
    store,
    nodes,
    config,
    async node(env = {}) {
      const c = config(env);
      const node = new ConsumerNode({ config: c, logger: createLogger(c) });
      nodes.push(node);
      await node.start();
      return node;
    },
    async topic(name = `topic-${++topics}`) {
      await store.createTopic({ name, origin_host: 'test' });
      return name;
    },
    async publisher(topic, target, extra = {}) {
      const { id: _id, created_at: _c, updated_at: _u, ...rest } = extra;
      return store.createPublisher({
        ...PUBLISHER_DEFAULTS,
        topic,
        target,
        type: 'http',
        ...rest,
      });
    },
    async publish(topic, payloads, attributes = {}) {
      const tk = keys.topic(topic);
      const attrs = Object.keys(attributes).length > 0 ? JSON.stringify(attributes) : '';
      const args: string[] = [];
      for (const p of payloads) args.push(JSON.stringify(p), attrs);
      const result = await scripts.ingest(
        redis,
        { topic: tk.meta, stream: tk.stream },
        { wake: '', topic: '', messages: args },
      );
      if (result.replayed) throw new Error('ingest replayed');
      await redis.publish(keys.wakeChannel, topic);
      return result.streamIds.map((sid) => messageId(topic, sid));
    },
    async closeNodes() {
      await Promise.all(nodes.splice(0).map((n) => n.close(2000)));
    },
    async close() {
      await Promise.all(nodes.map((n) => n.close(2000)));
      await closeRedis(redis);
      await server.stop();
    },
  };
}

export interface Fixture {
  world: World;
  receiver: Receiver;
}

/** A fresh world (own redis-server) and receiver for each test of the calling `describe`, closed after it. */
export function useWorld(): Fixture {
  const fixture = {} as Fixture;
  beforeEach(async () => {
    fixture.world = await createWorld();
    fixture.receiver = await startReceiver();
  });
  afterEach(async () => {
    await fixture.world.close();
    await fixture.receiver.close();
  });
  return fixture;
}

/** A figure of INFO summed over every master (the one server, or each master of a cluster). */
export async function infoSum(redis: ScriptClient, section: string, field: string): Promise<number> {
  let sum = 0;
  for (const node of masterNodes(redis)) {
    const info = await node.info(section);
    sum += Number(new RegExp(`${field}:(\\d+)`).exec(info)?.[1]);
  }
  return sum;
}

/**
 * Commands Redis has processed so far, over every master. Each call itself
 * adds one INFO per master to the next reading: subtract `infoCalls(redis)`.
 */
export const commandsProcessed = (redis: ScriptClient): Promise<number> =>
  infoSum(redis, 'stats', 'total_commands_processed');

/** How many INFO commands one `commandsProcessed` call sends. */
export const infoCalls = (redis: ScriptClient): number => masterNodes(redis).length;

/** A topic's stream as written: each entry's payload and attributes, oldest first. */
export async function messagesOf(
  world: World,
  topic: string,
): Promise<{ readonly payload: unknown; readonly attributes: Record<string, string> }[]> {
  const rows = await world.redis.xrange(world.keys.topic(topic).stream, '-', '+');
  return rows.map(([, fields]) => {
    const f: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i] as string] = fields[i + 1] as string;
    return {
      payload: JSON.parse(f.p ?? 'null') as unknown,
      attributes: f.a ? (JSON.parse(f.a) as Record<string, string>) : {},
    };
  });
}
