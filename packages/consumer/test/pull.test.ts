import { expect } from 'chai';
import { PullQueue, type Publisher } from '@postoffice/shared';
import { useWorld, waitFor, type World } from './helpers.js';

const WORKER = { host: 'test', pid: 1 };

/** A PullQueue whose first move of an outbox fails, as if the process died right after the commit. */
class FailingMove extends PullQueue {
  failures = 1;
  override async moveOutbox(topic: string): Promise<number> {
    if (this.failures-- > 0) throw new Error('forced failure after the commit');
    return super.moveOutbox(topic);
  }
}

describe('pull publishers in the consumer', function () {
  const f = useWorld();

  async function pullPublisher(world: World, topic: string): Promise<Publisher> {
    return world.publisher(topic, 'workers', { type: 'pull' });
  }

  async function groupInfo(world: World, topic: string, id: string): Promise<Record<string, unknown>> {
    const groups = (await world.redis.xinfo('GROUPS', world.keys.topic(topic).stream)) as unknown[][];
    const g = groups.find((row) => row[1] === id)!;
    const out: Record<string, unknown> = {};
    for (let i = 0; i + 1 < g.length; i += 2) out[String(g[i])] = g[i + 1];
    return out;
  }

  it('get no delivery pipeline: their messages wait in the group for workers', async () => {
    const topic = await f.world.topic();
    const http = await f.world.publisher(topic, f.receiver.url);
    const pull = await pullPublisher(f.world, topic);
    const node = await f.world.node();
    await f.world.publish(topic, ['a', 'b']);
    await waitFor(() => f.receiver.received.length === 2, 'the http deliveries');
    expect(node.pipeline(http.id)).to.exist;
    expect(node.pipeline(pull.id)).to.equal(undefined);
    expect(await groupInfo(f.world, topic, pull.id)).to.include({ lag: 2, pending: 0 });
  });

  it('keep leased, retrying and expired messages from being trimmed, and stay out of the retry index', async () => {
    const topic = await f.world.topic();
    const p = await pullPublisher(f.world, topic);
    const node = await f.world.node({ RETENTION_SECONDS: '1', RETRY_MAX_AGE_SECONDS: '1' });
    const queue = new PullQueue(f.world.redis, f.world.keys);
    await f.world.publish(topic, ['done', 'retry', 'expired', 'leased']);
    const leased = await queue.lease(p, { max: 4, leaseSeconds: 60, worker: WORKER });
    expect(leased.map((l) => l.message.payload)).to.deep.equal(['"done"', '"retry"', '"expired"', '"leased"']);
    await queue.complete(leased[0]!.token);
    await queue.retry(leased[1]!.token, 3600, 'later');
    // An expired lease: its end has passed but no worker has asked again yet.
    await f.world.redis.zadd(f.world.keys.publisher(topic, p.id).retries, Date.now() - 1, leased[2]!.message.streamId);
    const stream = f.world.keys.topic(topic).stream;
    await waitFor(async () => Date.now() - leased[3]!.message.receivedAt > 1500, 'the retention to pass');
    expect(await node.janitor.trimTopic(topic)).to.equal(1);
    expect((await f.world.redis.xrange(stream, '-', '+')).map((e) => e[0])).to.deep.equal(
      leased.slice(1).map((l) => l.message.streamId),
    );
    expect(await f.world.redis.zscore(f.world.keys.retryDue, p.id)).to.equal(null);
    // The expired one is handed out again.
    const again = await queue.lease(p, { max: 4, leaseSeconds: 60, worker: WORKER });
    expect(again.map((l) => l.message.payload)).to.deep.equal(['"expired"']);
  });

  it('are left alone when the janitor takes over a dead node', async () => {
    const topic = await f.world.topic();
    const p = await pullPublisher(f.world, topic);
    const node = await f.world.node();
    await f.world.publish(topic, ['x']);
    const queue = new PullQueue(f.world.redis, f.world.keys);
    const [l] = await queue.lease(p, { max: 1, leaseSeconds: 60, worker: WORKER });
    expect(await node.janitor.reclaimNode('some-dead-node')).to.equal(0);
    expect((await groupInfo(f.world, topic, p.id)).pending).to.equal(1);
    expect(await queue.lease(p, { max: 1, leaseSeconds: 60, worker: WORKER })).to.have.length(0);
    await queue.complete(l!.token);
  });

  it('replace: when the move into the new topics fails after the commit, the janitor adds them, once', async () => {
    const source = await f.world.topic();
    const dest = await f.world.topic();
    const p = await pullPublisher(f.world, source);
    const node = await f.world.node();
    await f.world.publish(source, ['job']);
    const queue = new FailingMove(f.world.redis, f.world.keys);
    const [l] = await queue.lease(p, { max: 1, leaseSeconds: 60, worker: WORKER });
    const result = await queue.replace(l!.token, [
      { topic: dest, payload: { next: 1 } },
      { topic: dest, payload: { next: 2 }, attributes: { k: 'v' } },
    ]);
    expect(result.moved).to.equal(false);
    // Committed: the lease is completed and the replacements wait in the outbox, nowhere else yet.
    expect((await groupInfo(f.world, source, p.id)).pending).to.equal(0);
    expect(await f.world.redis.hlen(f.world.keys.topic(source).outbox)).to.equal(1);
    expect(await f.world.redis.xlen(f.world.keys.topic(dest).stream)).to.equal(0);
    // Movers racing, and moving twice, add each message once.
    await Promise.all([node.janitor.moveOutbox(source), queue.moveOutbox(source), queue.moveOutbox(source)]);
    await queue.moveOutbox(source);
    const entries = await f.world.redis.xrange(f.world.keys.topic(dest).stream, '-', '+');
    expect(entries).to.have.length(2);
    const ids = entries.map(([, fields]) => fields[fields.indexOf('id') + 1]);
    expect(ids).to.deep.equal(result.ids);
    expect(await f.world.redis.hlen(f.world.keys.topic(source).outbox)).to.equal(0);
  });

  it('replace: the janitor moves an outbox left behind on its trim round', async () => {
    const source = await f.world.topic();
    const dest = await f.world.topic();
    const p = await pullPublisher(f.world, source);
    await f.world.node({ TRIM_INTERVAL_SECONDS: '1' });
    await f.world.publish(source, ['job']);
    const queue = new FailingMove(f.world.redis, f.world.keys);
    const [l] = await queue.lease(p, { max: 1, leaseSeconds: 60, worker: WORKER });
    await queue.replace(l!.token, [{ topic: dest, payload: 'next' }]);
    await waitFor(async () => (await f.world.redis.xlen(f.world.keys.topic(dest).stream)) === 1, 'the janitor');
  });
});
