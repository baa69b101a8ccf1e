import { expect } from 'chai';
import { Redis } from 'ioredis';
import { createLogger, messageId, scripts } from '@postoffice/shared';
import { ConsumerNode } from '../src/index.js';
import { useWorld, waitFor } from './helpers.js';

describe('consumer nodes in a cluster (in one process)', function () {
  this.timeout(60_000);
  const f = useWorld();

  it('runs the janitor on exactly one node at a time, and hands it over when that node stops', async () => {
    const nodes = [await f.world.node(), await f.world.node(), await f.world.node()];
    const leaders = () => nodes.filter((n) => n.janitor.holdsLease);
    const first = await waitFor(() => (leaders().length === 1 ? leaders()[0] : undefined), 'one janitor');
    const holder = await f.world.redis.get(f.world.keys.lock('janitor'));
    expect(holder?.split(' ')[0]).to.equal(first.nodeId);
    // Over a few rounds, never two.
    for (let i = 0; i < 20; i++) {
      expect(leaders().length).to.be.at.most(1);
      // Real time, on purpose: the nodes renew and contend for the lock on their own timers, watched as they go.
      await new Promise((r) => setTimeout(r, 100));
    }
    await first.close();
    const rest = nodes.filter((n) => n !== first);
    const next = await waitFor(
      () =>
        rest.filter((n) => n.janitor.holdsLease).length === 1 ? rest.find((n) => n.janitor.holdsLease) : undefined,
      'another janitor',
    );
    expect(next).to.not.equal(first);
  });

  it('spreads a publisher’s slots over the nodes, and one node takes them all when the others stop', async () => {
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, f.receiver.url, { parallelism: 4 });
    const a = await f.world.node();
    const b = await f.world.node();
    await waitFor(() => a.heldSlots().length === 2 && b.heldSlots().length === 2, 'two slots each');
    expect([...a.heldSlots(), ...b.heldSlots()].sort()).to.deep.equal([0, 1, 2, 3].map((s) => `${p.id}/${s}`));
    // Each holds one pipeline, with the publisher's concurrency (per node, whatever the slots held).
    expect(a.pipeline(p.id)?.current.concurrency).to.equal(p.concurrency);
    await f.world.publish(
      topic,
      Array.from({ length: 200 }, (_, i) => i),
    );
    await waitFor(() => f.receiver.received.length === 200, 'the messages');
    await b.close();
    await waitFor(() => a.heldSlots().length === 4, 'a to hold the four slots');
    await f.world.store.updatePublisher(p.id, (x) => ({ ...x, parallelism: 1 }));
    await waitFor(() => a.heldSlots().length === 1, 'one slot once parallelism is 1');
    expect(await f.world.redis.exists(f.world.keys.slotLease(topic, p.id, 3))).to.equal(0);
  });

  it('drops every slot and takes them again under a new token when its own heartbeat came too late', async () => {
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, f.receiver.url);
    let skew = 0;
    const config = f.world.config();
    const node = new ConsumerNode({ config, logger: createLogger(config), now: () => Date.now() + skew });
    f.world.nodes.push(node);
    await node.start();
    const lease = f.world.keys.slotLease(topic, p.id, 0);
    await waitFor(() => node.heldSlots().length === 1, 'the slot');
    const before = await f.world.redis.get(lease);
    // As if the process had been frozen for ten seconds (three heartbeats are three seconds here).
    skew = 10_000;
    await waitFor(async () => {
      const now = await f.world.redis.get(lease);
      return now !== null && now !== before && node.heldSlots().length === 1;
    }, 'the slot under a new token');
    await f.world.publish(topic, ['after']);
    await waitFor(() => f.receiver.received.length === 1, 'delivery after rejoining');
  });

  it('delivers what a read lost with its reply left pending under it, once its Redis connection comes back', async () => {
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, f.receiver.url);
    const node = await f.world.node();
    await waitFor(() => node.heldSlots().length === 1, 'the slot');
    // A message read under the node's name whose reply never reached it (Redis restarted after the read):
    // written without a wake-up and read here, so the node's pipeline never sees it.
    const tk = f.world.keys.topic(topic);
    const written = await scripts.ingest(
      f.world.redis,
      { topic: tk.meta, stream: tk.stream },
      { wake: '', topic: '', messages: [JSON.stringify('lost'), ''] },
    );
    expect(written.replayed).to.equal(false);
    const id = messageId(topic, (written.replayed ? [] : written.streamIds)[0]!);
    const read = await f.world.redis.xreadgroup('GROUP', p.id, node.nodeId, 'COUNT', 10, 'STREAMS', tk.stream, '>');
    expect(read).to.have.length(1);
    // The node's command connection breaks and comes back.
    for (const port of f.world.server.ports) {
      const admin = new Redis(port, '127.0.0.1');
      try {
        await admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
      } finally {
        admin.disconnect();
      }
    }
    await waitFor(() => f.receiver.received.length === 1, 'the message delivered', 20_000);
    expect(f.receiver.received[0]!.headers['message-id']).to.equal(id);
  });

  it('delivers what its pipeline read while handing its slot back, instead of leaving it pending under a live node', async () => {
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, f.receiver.url);
    const node = await f.world.node();
    await waitFor(() => node.heldSlots().length === 1, 'the slot');
    // The next read waits at a gate, so that the slot is handed back while it is in progress.
    const source = (node as unknown as { source: { readNew: (...args: unknown[]) => Promise<unknown> } }).source;
    const readNew = source.readNew.bind(source);
    let arrived!: () => void;
    const reading = new Promise<void>((resolve) => (arrived = resolve));
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    source.readNew = async (...args: unknown[]) => {
      arrived();
      await gate;
      return readNew(...args);
    };
    await f.world.publish(topic, ['read while closing']);
    await reading;
    // Deactivated: the node hands the slot back and its pipeline closes with the read in flight.
    await f.world.store.updatePublisher(p.id, (current) => ({ ...current, active: false }));
    await waitFor(() => node.heldSlots().length === 0, 'the slot handed back');
    open();
    source.readNew = readNew;
    // The read took the message under this node's name; it must still reach the receiver.
    await waitFor(() => f.receiver.received.length === 1, 'the message read while closing delivered', 20_000);
    expect(JSON.parse(f.receiver.received[0]!.body)).to.equal('read while closing');
    const pending = (await f.world.redis.xpending(f.world.keys.topic(topic).stream, p.id)) as [number];
    await waitFor(
      async () => ((await f.world.redis.xpending(f.world.keys.topic(topic).stream, p.id)) as [number])[0] === 0,
      `nothing left pending (was ${pending[0]})`,
    );
  });

  it('retries an ordered publisher’s failed head and sends nothing behind it meanwhile', async () => {
    let failures = 3;
    f.receiver.respond((req) => {
      if (JSON.parse(req.body) === 0 && failures > 0) {
        failures--;
        return 503;
      }
      return 200;
    });
    const topic = await f.world.topic();
    await f.world.publisher(topic, f.receiver.url, { ordered: true, seconds_retry: 0.1, concurrency: 10 });
    await f.world.node({ RETRY_MAX_BACKOFF_SECONDS: '1' });
    await f.world.publish(
      topic,
      Array.from({ length: 20 }, (_, i) => i),
    );
    await waitFor(() => f.receiver.received.length === 20, 'the 20 messages');
    expect(f.receiver.requests.map((r) => JSON.parse(r.body) as number)).to.deep.equal([
      0,
      0,
      0,
      0,
      ...Array.from({ length: 19 }, (_, i) => i + 1),
    ]);
    expect(f.receiver.inFlight.max).to.equal(1);
  });
});
