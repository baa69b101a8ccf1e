/**
 * REDIS_MIN_REPLICAS on a primary with one replica (real redis-servers): a
 * 201 waits for the replica, and so does a change to a topic; without the
 * replica every write is a 503 with Retry-After that names redis, never a
 * 500; with the replica back the same producer answers 201 again.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { startRedis, waitFor, type RedisServer } from '@postoffice/test-support';
import { call, createTopic, errors, startApi, type Api } from './helpers.js';

/** Starts a replica of `primary` on `port` (a free one when not given) and waits until it is in sync. */
async function startReplica(primary: RedisServer, port?: number): Promise<RedisServer> {
  const replica = await startRedis({
    cluster: false,
    ...(port === undefined ? {} : { ports: [port] }),
    args: ['--replicaof', '127.0.0.1', String(primary.port)],
  });
  const probe = new Redis(replica.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
  try {
    await waitFor(
      async () => /master_link_status:up/.test(await probe.info('replication')),
      'the replica to be in sync',
      20_000,
    );
  } finally {
    probe.disconnect();
  }
  return replica;
}

describe('with REDIS_MIN_REPLICAS=1 on a primary with one replica', function () {
  this.timeout(60_000);
  let primary: RedisServer;
  let replica: RedisServer | undefined;
  let api: Api;

  before(async () => {
    primary = await startRedis({ cluster: false });
    replica = await startReplica(primary);
    api = await startApi({ REDIS_MIN_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '200' }, primary);
  });

  after(async () => {
    await api.close();
    await replica?.stop();
    await primary.stop();
  });

  it('answers 201 once the replica has the message, and a topic is made only once the replica has it too', async () => {
    await createTopic(api.app, 'orders');
    const res = await call(api.app, 'POST', '/api/messages', { topic: 'orders', payload: { a: 1 } });
    expect(res.status).to.equal(201);
    const onReplica = new Redis(replica!.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
    try {
      expect(await onReplica.xlen(api.keys.topic('orders').stream)).to.equal(1);
      expect(await onReplica.sismember(api.keys.topics, 'orders')).to.equal(1);
    } finally {
      onReplica.disconnect();
    }
  });

  it('answers 503 with Retry-After naming redis while the replica is gone, for messages, bulks and topic changes', async () => {
    const port = replica!.port;
    await replica!.stop();
    replica = undefined;
    const single = await call(api.app, 'POST', '/api/messages', { topic: 'orders', payload: { a: 2 } });
    expect(single.status).to.equal(503);
    expect(single.headers['retry-after']).to.equal('1');
    expect(single.body).to.deep.equal(errors({ redis: ['only 0 of 1 replicas acknowledged the write'] }));
    const bulk = await call(api.app, 'POST', '/api/bulk_messages', { topic: 'orders', payload: [1, 2] });
    expect(bulk.status).to.equal(503);
    expect(bulk.body).to.deep.equal(errors({ redis: ['only 0 of 1 replicas acknowledged the write'] }));
    const topic = await call(api.app, 'POST', '/api/topics', { name: 'refunds', origin_host: 'shop' });
    expect(topic.status).to.equal(503);
    expect(topic.body).to.deep.equal(errors({ redis: ['only 0 of 1 replicas acknowledged the change'] }));
    // Bad input is still a 400: the check comes before the write.
    const unknown = await call(api.app, 'POST', '/api/messages', { topic: 'nothing', payload: 1 });
    expect(unknown.status).to.equal(400);
    expect(unknown.body).to.deep.equal(errors({ topic: ['is invalid'] }));

    // The replica comes back: the same producer answers 201 again.
    const back = await startReplica(primary, port);
    try {
      const again = await call(api.app, 'POST', '/api/messages', { topic: 'orders', payload: { a: 3 } });
      expect(again.status).to.equal(201);
    } finally {
      await back.stop();
    }
  });
});
