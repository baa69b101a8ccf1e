/**
 * Message recovery from a topic's origin_host (Postoffice's rescuer), with
 * consumer nodes in this process and a real origin server on 127.0.0.1.
 */
import { expect } from 'chai';
import type { LookupAddress } from 'node:dns';
import type { Lookup } from '@postoffice/shared';
import { createWorld, messagesOf, waitFor, type World } from './helpers.js';
import { startOrigin, type OriginServer } from '@postoffice/test-support/origin-server';

const FAST = { RECOVERY_INTERVAL_SECONDS: '1', RECOVERY_TIMEOUT_SECONDS: '1' };

async function recoveringTopic(world: World, name: string, origin: OriginServer, enabled = true): Promise<string> {
  await world.store.createTopic({ name, origin_host: origin.url, recovery_enabled: enabled });
  return name;
}

describe('message recovery from origin_host', function () {
  let world: World;
  let origin: OriginServer;

  beforeEach(async () => {
    world = await createWorld();
    origin = await startOrigin();
  });
  afterEach(async () => {
    await world.close();
    await origin.close();
  });

  it('writes a pending message to its topic, then deletes it at the origin', async () => {
    const topic = await recoveringTopic(world, 'orders', origin);
    origin.add({ id: 1, topic, payload: { reference: 1234 }, attributes: { kind: 'order' } });
    await world.node(FAST);
    await waitFor(() => origin.deleted.includes('1'), 'the item deleted at the origin');
    expect(await messagesOf(world, topic)).to.deep.equal([
      { payload: { reference: 1234 }, attributes: { kind: 'order' } },
    ]);
    expect(origin.requests.find((r) => r.method === 'DELETE')?.path).to.equal('/pending/1/');
    const t = await waitFor(async () => {
      const got = await world.store.getTopic(topic);
      return got && got.recovered === 1 ? got : undefined;
    }, 'the recovered count');
    expect(t.last_recovery_error).to.equal(null);
    expect(Date.parse(t.last_recovery_at ?? '')).to.be.above(0);
    expect(t.received).to.equal(1);
  });

  it('writes every message of a bulk item, and deletes the item once', async () => {
    const topic = await recoveringTopic(world, 'orders', origin);
    origin.add({
      id: 7,
      topic,
      bulk: true,
      payload: [
        { topic, payload: { product: 1 }, attributes: {} },
        { topic, payload: { product: 2 }, attributes: { a: 'b' } },
      ],
    });
    await world.node(FAST);
    await waitFor(() => origin.deleted.includes('7'), 'the bulk item deleted');
    expect(await messagesOf(world, topic)).to.deep.equal([
      { payload: { product: 1 }, attributes: {} },
      { payload: { product: 2 }, attributes: { a: 'b' } },
    ]);
    expect(origin.deleted).to.deep.equal(['7']);
  });

  it('deletes again at the next round when the deletion failed, without storing the message twice', async () => {
    const topic = await recoveringTopic(world, 'orders', origin);
    origin.add({ id: 'a-1', topic, payload: { n: 1 }, attributes: {} });
    origin.failDeletes(2, 503);
    await world.node(FAST);
    const failing = await waitFor(async () => {
      const t = await world.store.getTopic(topic);
      return t?.last_recovery_error ? t : undefined;
    }, 'the failed deletion shown on the topic');
    expect(failing.last_recovery_error).to.match(/item a-1 is written but could not be deleted.*503/);
    await waitFor(() => origin.deleted.includes('a-1'), 'the deletion to succeed');
    expect(origin.requests.filter((r) => r.method === 'DELETE')).to.have.length(3);
    expect(await messagesOf(world, topic)).to.have.length(1);
    const t = await waitFor(async () => {
      const got = await world.store.getTopic(topic);
      return got?.last_recovery_error === null ? got : undefined;
    }, 'a round without errors');
    expect(t.recovered).to.equal(1);
    const metrics = await world.nodes[0]!.metrics.registry.getSingleMetricAsString(
      'postoffice_recovery_failures_total',
    );
    expect(metrics).to.match(/postoffice_recovery_failures_total\{topic="orders",reason="delete"\} 2/);
  });

  it('polls from one node of two, and from the other once the first has stopped', async () => {
    const topic = await recoveringTopic(world, 'orders', origin);
    const a = await world.node({ ...FAST, NODE_ID: 'node-a' });
    const b = await world.node({ ...FAST, NODE_ID: 'node-b' });
    origin.add({ id: 1, topic, payload: { n: 1 } });
    await waitFor(() => origin.deleted.includes('1'), 'the first item');
    const lists = origin.lists();
    await waitFor(() => origin.lists() >= lists + 3, 'three more rounds');
    expect([a.recovery.holdsLease, b.recovery.holdsLease].filter(Boolean)).to.have.length(1);
    const holder = a.recovery.holdsLease ? a : b;
    const other = holder === a ? b : a;
    await holder.close();
    origin.add({ id: 2, topic, payload: { n: 2 } });
    await waitFor(() => origin.deleted.includes('2'), 'the second item, by the other node');
    expect(other.recovery.holdsLease).to.equal(true);
    expect((await messagesOf(world, topic)).map((m) => m.payload)).to.deep.equal([{ n: 1 }, { n: 2 }]);
  });

  it('recovers for a topic with recovery on that is missing from the set of such topics (made by an older version)', async () => {
    const topic = await recoveringTopic(world, 'older', origin);
    await world.redis.srem(world.keys.recoveryTopics, topic);
    origin.add({ id: 5, topic, payload: { n: 5 } });
    await world.node(FAST);
    await waitFor(() => origin.deleted.includes('5'), 'the item of the older topic');
    expect(await world.redis.sismember(world.keys.recoveryTopics, topic)).to.equal(1);
  });

  it('never asks the origin of a topic whose recovery is switched off', async () => {
    const other = await startOrigin();
    try {
      const off = await recoveringTopic(world, 'quiet', origin, false);
      origin.add({ id: 1, topic: off, payload: { n: 1 } });
      await recoveringTopic(world, 'busy', other);
      await world.node(FAST);
      await waitFor(() => other.lists() >= 3, 'three rounds of the other topic');
      expect(origin.requests).to.deep.equal([]);
      expect(await messagesOf(world, off)).to.deep.equal([]);
      await world.store.updateTopic(off, { recovery_enabled: true });
      await waitFor(() => origin.deleted.includes('1'), 'the item, once recovery is on');
      await world.store.updateTopic(off, { recovery_enabled: false });
      const after = origin.lists();
      const seen = other.lists();
      await waitFor(() => other.lists() >= seen + 3, 'three more rounds');
      expect(origin.lists()).to.be.at.most(after + 1);
    } finally {
      await other.close();
    }
  });

  describe('when something goes wrong, the node logs, counts, shows it on the topic and goes on', () => {
    async function errorOf(topic: string, match: RegExp): Promise<string> {
      return waitFor(
        async () => {
          const e = (await world.store.getTopic(topic))?.last_recovery_error;
          return e && match.test(e) ? e : undefined;
        },
        `an error matching ${String(match)}`,
      );
    }

    it('a list answered with a non-2xx status', async () => {
      const topic = await recoveringTopic(world, 'orders', origin);
      origin.listAnswer({ status: 500, body: 'oops' });
      const node = await world.node(FAST);
      expect(await errorOf(topic, /answered 500/)).to.equal('the list: the origin answered 500');
      const text = await node.metrics.registry.getSingleMetricAsString('postoffice_recovery_failures_total');
      expect(text).to.match(/reason="http_status"\} [1-9]/);
      origin.listAnswer(undefined);
      origin.add({ id: 3, topic, payload: { ok: true } });
      await waitFor(() => origin.deleted.includes('3'), 'recovery once the origin is back');
    });

    it('bad JSON, or JSON that is not a list', async () => {
      const topic = await recoveringTopic(world, 'orders', origin);
      origin.listAnswer({ status: 200, body: '[{"id": 1,' });
      await world.node(FAST);
      await errorOf(topic, /^the list is not JSON$/);
      origin.listAnswer({ status: 200, body: '{"id": 1}' });
      await errorOf(topic, /not a JSON array/);
    });

    it('an origin that does not answer in time', async () => {
      const topic = await recoveringTopic(world, 'orders', origin);
      origin.listAnswer('hang');
      await world.node(FAST);
      expect(await errorOf(topic, /no answer/)).to.equal('the list: no answer within 1 s');
    });

    it('an item for a topic that does not exist, or does not recover from this origin, stays at the origin', async () => {
      const topic = await recoveringTopic(world, 'orders', origin);
      await world.store.createTopic({
        name: 'elsewhere',
        origin_host: 'http://other.example/',
        recovery_enabled: true,
      });
      origin.add(
        { id: 1, topic: 'nope', payload: { n: 1 } },
        { id: 2, topic: 'elsewhere', payload: { n: 2 } },
        { id: 3, topic, payload: { n: 3 } },
        { id: 4, payload: null },
      );
      await world.node(FAST);
      await waitFor(() => origin.deleted.includes('3'), 'the good item');
      const error = await errorOf(topic, /nope/);
      expect(error).to.match(/^item 1: topic nope does not recover from this origin .*\(and 2 more\)$/);
      expect([...origin.items.keys()]).to.deep.equal(['1', '2', '4']);
      expect(await messagesOf(world, 'elsewhere')).to.deep.equal([]);
      expect((await messagesOf(world, topic)).map((m) => m.payload)).to.deep.equal([{ n: 3 }]);
    });

    it('an origin_host that is not an http URL', async () => {
      await world.store.createTopic({ name: 'shop', origin_host: 'shop.example', recovery_enabled: true });
      await world.node(FAST);
      await errorOf('shop', /not an http or https URL/);
    });
  });

  describe('with REFUSE_PRIVATE_TARGETS on', () => {
    it('refuses an origin at a private address, without dialling it', async () => {
      const topic = await recoveringTopic(world, 'orders', origin);
      origin.add({ id: 1, topic, payload: { n: 1 } });
      const node = await world.node({ ...FAST, REFUSE_PRIVATE_TARGETS: 'true' });
      const t = await waitFor(async () => {
        const got = await world.store.getTopic(topic);
        return got?.last_recovery_error ? got : undefined;
      }, 'the refusal on the topic');
      expect(t.last_recovery_error).to.match(/^the list: target is a private address \(127\.0\.0\.1\)/);
      expect(origin.requests).to.deep.equal([]);
      const text = await node.metrics.registry.getSingleMetricAsString('postoffice_recovery_failures_total');
      expect(text).to.match(/reason="private_address"\} [1-9]/);
    });

    it('refuses a name that resolves to a private address, checked by the resolver hook, without dialling it', async () => {
      const asked: string[] = [];
      // The hook knows one name only; its loopback address would stay on this machine if dialled.
      const lookup: Lookup = (hostname, _options, callback) => {
        asked.push(hostname);
        const found: LookupAddress[] = hostname === 'origin.test' ? [{ address: '127.0.0.1', family: 4 }] : [];
        callback(null, found);
      };
      const url = origin.url.replace('127.0.0.1', 'origin.test');
      await world.store.createTopic({ name: 'orders', origin_host: url, recovery_enabled: true });
      const c = world.config({ ...FAST, REFUSE_PRIVATE_TARGETS: 'true' });
      const { ConsumerNode } = await import('../src/index.js');
      const { createLogger } = await import('@postoffice/shared');
      const node = new ConsumerNode({ config: c, logger: createLogger(c), originLookup: lookup });
      world.nodes.push(node);
      await node.start();
      const t = await waitFor(async () => {
        const got = await world.store.getTopic('orders');
        return got?.last_recovery_error ? got : undefined;
      }, 'the refusal on the topic');
      expect(t.last_recovery_error).to.match(/resolves to a private address \(origin\.test -> 127\.0\.0\.1\)/);
      expect(asked).to.include('origin.test');
      expect(origin.requests).to.deep.equal([]);
    });
  });
});
