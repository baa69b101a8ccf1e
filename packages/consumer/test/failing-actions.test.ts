/**
 * The failing-list actions of the API, end to end: the producer's routes
 * change the retry and dead sets, and a consumer node delivers.
 */
import { expect } from 'chai';
import type { FastifyInstance } from 'fastify';
import { closeRedis, createLogger, createRedis, loadConfig } from '@postoffice/shared';
import { buildServer } from '../../producer/src/index.js';
import { deliveryOf, useWorld, waitFor, type World } from './helpers.js';

describe('failing-list actions with a consumer node running', function () {
  const f = useWorld();
  let app: FastifyInstance | undefined;
  let close: (() => Promise<void>) | undefined;

  async function api(world: World): Promise<FastifyInstance> {
    const config = loadConfig({ REDIS_URL: world.server.url, LOG_LEVEL: 'silent' }, 'producer');
    const redis = createRedis(config.redisUrl, 'producer');
    await waitFor(() => redis.status === 'ready', 'the producer client');
    const built = buildServer({ config, redis, logger: createLogger(config) });
    close = async () => {
      await built.close();
      await closeRedis(redis);
    };
    return built;
  }

  afterEach(async () => {
    await close?.();
    close = undefined;
    app = undefined;
  });

  async function post(url: string, body: unknown): Promise<unknown> {
    const res = await app!.inject({ method: 'POST', url, payload: body as object });
    expect(res.statusCode, res.body).to.equal(200);
    return JSON.parse(res.body) as unknown;
  }

  async function state(_topic: string, id: string, pid: string): Promise<string | undefined> {
    return (await deliveryOf(f.world, id, pid))?.state;
  }

  it('retry now delivers a message whose next attempt was an hour away', async () => {
    let ok = false;
    f.receiver.respond(() => (ok ? 200 : 503));
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, f.receiver.url, { seconds_retry: 3600 });
    await f.world.node();
    app = await api(f.world);
    const [id] = await f.world.publish(topic, ['stuck']);
    await waitFor(async () => (await state(topic, id!, p.id)) === 'retrying', 'the first failure');
    ok = true;
    await post(`/api/publishers/${p.id}/failing/retry`, { ids: [id] });
    await waitFor(() => f.receiver.received.length === 1, 'the delivery after retry now');
    await waitFor(async () => (await state(topic, id!, p.id)) === 'delivered', 'the delivered record');
  });

  it('recover failed since T re-delivers exactly the dead letters that died after T', async () => {
    let ok = false;
    f.receiver.respond(() => (ok ? 200 : 500));
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, f.receiver.url, { seconds_retry: 0.05 });
    await f.world.node({ RETRY_MAX_AGE_SECONDS: '1', RETENTION_SECONDS: '60' });
    app = await api(f.world);
    const [before] = await f.world.publish(topic, ['before']);
    await waitFor(async () => (await state(topic, before!, p.id)) === 'dead', 'the first dead letter', 15000);
    const t = new Date(Date.now() + 1).toISOString();
    await waitFor(() => Date.now() > Date.parse(t), 'T to pass');
    const after = await f.world.publish(topic, ['after-1', 'after-2']);
    for (const id of after) {
      await waitFor(async () => (await state(topic, id, p.id)) === 'dead', 'the later dead letters', 15000);
    }
    ok = true;
    const res = (await post(`/api/publishers/${p.id}/failing/recover`, { since: t })) as { data: { ids: string[] } };
    expect(res.data.ids).to.have.members(after);
    await waitFor(() => f.receiver.received.length === 2, 'the recovered deliveries');
    for (const id of after) {
      await waitFor(async () => (await state(topic, id, p.id)) === 'delivered', 'delivered records');
    }
    expect(f.receiver.received.map((r) => r.headers['message-id'])).to.have.members(after);
    expect(await state(topic, before!, p.id)).to.equal('dead');
    expect(await f.world.redis.zcard(f.world.keys.publisher(topic, p.id).dead)).to.equal(1);
  });
});
