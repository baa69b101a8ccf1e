/**
 * On a real Redis Cluster of three masters, whatever POSTOFFICE_TEST_REDIS
 * says: every Lua script runs on the keys of one topic (or one global key)
 * without CROSSSLOT, a topic's keys stay on one node while the topics spread
 * over all of them, and what spans the cluster (reads over every topic,
 * Pub/Sub, the version check, the health probe) works through the
 * `Cluster` client that `createRedis` gives for a `redis+cluster://` URL.
 */
import { expect } from 'chai';
import {
  checkRedisVersion,
  closeRedis,
  createRedis,
  decodeItem,
  decodeRetryState,
  encodeRecords,
  encodeRetryState,
  findMessage,
  isCluster,
  Keys,
  masterNodes,
  messageId,
  RECORD_SPAN_MS,
  recordTag,
  PUBLISHER_DEFAULTS,
  PullQueue,
  redisAnswers,
  OnceWriter,
  SCRIPTS,
  SourceStore,
  Store,
  scripts,
  type LoggedAttempt,
  type ScriptClient,
} from '../src/index.js';
import { startRedis, waitFor, type RedisServer } from '@postoffice/test-support';
import { codeOf, scriptKeys } from './script-fixture.js';

describe('on a Redis Cluster of three masters', function () {
  let server: RedisServer;
  let redis: ScriptClient;
  let keys: Keys;
  let store: Store;
  /** Three topic names whose slots are served by three different masters. */
  let topics: string[];
  /** Calls of each script (by its file) on the client. */
  const called = new Map<string, number>();

  before(async () => {
    server = await startRedis({ cluster: true });
    redis = createRedis(server.url, 'consumer');
    keys = new Keys();
    store = new Store(redis, keys);
    await checkRedisVersion(redis);
    // Count each script call (a CROSSSLOT error would fail the test that made it).
    const commands = redis as unknown as Record<string, (...args: (string | number)[]) => Promise<unknown>>;
    for (const { command, file } of SCRIPTS) {
      const original = commands[command]!.bind(redis);
      commands[command] = (...args: (string | number)[]) => {
        called.set(file, (called.get(file) ?? 0) + 1);
        return original(...args);
      };
    }
    topics = [];
    const owners = new Set<string>();
    for (let i = 0; topics.length < 3 && i < 200; i++) {
      const name = `topic-${i}`;
      const owner = await ownerOf(keys.topic(name).stream);
      if (!owners.has(owner)) {
        owners.add(owner);
        topics.push(name);
      }
    }
    expect(topics).to.have.length(3);
  });

  after(async () => {
    if (redis) await closeRedis(redis);
    if (server) await server.stop();
  });

  /** Writes messages (flat pairs: payload JSON, attributes JSON) to the topic; their stream ids. */
  async function ingest(topic: string, ...messages: string[]): Promise<string[]> {
    const tk = keys.topic(topic);
    const reply = await scripts.ingest(redis, { topic: tk.meta, stream: tk.stream }, { wake: '', topic: '', messages });
    return reply.replayed ? [] : reply.streamIds;
  }

  /** The address of the master that serves `key`'s slot. */
  async function ownerOf(key: string): Promise<string> {
    if (!isCluster(redis)) throw new Error('expected a cluster client');
    const slot = await redis.cluster('KEYSLOT', key);
    const shards = await redis.cluster('SLOTS');
    const shard = shards.find(([from, to]) => slot >= from && slot <= to);
    const master = shard?.[2];
    if (!master) throw new Error(`no master serves slot ${slot}`);
    return `${master[0]}:${master[1]}`;
  }

  it('is a cluster client that knows every master, passes the version check and answers the health probe', async () => {
    expect(isCluster(redis)).to.equal(true);
    expect(masterNodes(redis)).to.have.length(3);
    expect(await checkRedisVersion(redis)).to.match(/^\d+\.\d+/);
    expect(await redisAnswers(redis, 2000)).to.equal(true);
  });

  it('creates topics and publishers, spread over the masters, each topic on one node, and reads them all back', async () => {
    for (const name of topics) {
      await store.createTopic({ name, origin_host: 'test' });
      await store.createPublisher({
        ...PUBLISHER_DEFAULTS,
        topic: name,
        target: `http://a.test/${name}`,
        type: 'http',
      });
    }
    expect((await store.listTopics()).map((t) => t.name)).to.deep.equal(topics);
    expect((await store.listPublishers()).map((p) => p.topic)).to.deep.equal(topics);
    // Every key a topic has so far lives on the master of its slot, and each master holds one topic.
    const tagsByNode = await Promise.all(
      masterNodes(redis).map(async (node) => {
        const found = new Set<string>();
        let cursor = '0';
        do {
          const [next, batch] = await node.scan(cursor, 'MATCH', 'po:{*', 'COUNT', 1000);
          cursor = next;
          for (const key of batch) found.add(/\{([^}]*)\}/.exec(key)?.[1] ?? '');
        } while (cursor !== '0');
        return [...found];
      }),
    );
    expect(tagsByNode.map((t) => t.length)).to.deep.equal([1, 1, 1]);
    expect(tagsByNode.flat().sort()).to.deep.equal([...topics].sort());
  });

  it('runs the delivery scripts of each topic on its own slot: ingest, read, settle, attempts, retries, reclaim, trim', async () => {
    for (const topic of topics) {
      const tk = keys.topic(topic);
      const [publisher] = await store.listPublishersOfTopic(topic);
      if (!publisher) throw new Error('no publisher');
      const pk = keys.publisher(topic, publisher.id);
      const sids = await ingest(topic, '1', '', '2', '', '3', '{"k":"v"}');
      expect(sids, topic).to.be.an('array').with.length(3);
      const read = (await redis.xreadgroup(
        'GROUP',
        publisher.id,
        'node-a',
        'COUNT',
        10,
        'STREAMS',
        tk.stream,
        '>',
      )) as [string, [string, string[]][]][];
      const [first, second] = read[0]?.[1].map(([sid]) => sid) ?? [];
      if (!first || !second) throw new Error('nothing read');
      const now = Date.now();
      const delivered: LoggedAttempt = {
        streamId: first,
        startedAt: now - 5,
        durationMs: 3,
        status: 200,
        outcome: 'delivered',
      };
      const retry: LoggedAttempt = { ...delivered, streamId: second, status: 503, outcome: 'retry', error: 'HTTP 503' };
      const records = encodeRecords([delivered, retry], now, recordTag);
      const acked = await scripts.settle(
        redis,
        { ...scriptKeys(keys, topic, publisher.id), counts: undefined },
        {
          group: publisher.id,
          replaces: '',
          records,
          acked: [first],
          cleared: [],
          retries: [second, 0, encodeRetryState(1, retry)],
          dead: [],
        },
      );
      expect(acked, topic).to.equal(1);
      const [ms, seq] = first.split('-') as [string, string];
      const [found] = await scripts.attempts(
        redis,
        { logs: [pk.log] },
        { receivedAt: ms, sequence: seq, span: RECORD_SPAN_MS },
      );
      expect(decodeItem(Number(found![0]), found![1]!, found![2]!), topic).to.deep.equal(delivered);
      const view = await findMessage(redis, keys, store, messageId(topic, second));
      expect(
        view?.deliveries.map((d) => [d.state, d.attempt_count]),
        topic,
      ).to.deep.equal([['retrying', 1]]);
      const { taken } = await scripts.takeRetries(redis, scriptKeys(keys, topic, publisher.id), {
        now: 1,
        leaseEnd: 1000,
        max: 10,
        force: false,
      });
      expect(
        taken.map(([sid, state]) => [sid, decodeRetryState(state)?.count]),
        topic,
      ).to.deep.equal([[second, 1]]);
      // As an ordering-key publisher takes it: the key's earliest entry, once due (leased again by take-retries above).
      const { taken: ordered } = await scripts.takeOrdered(redis, scriptKeys(keys, topic, publisher.id), {
        now: 2000,
        leaseEnd: 3000,
        attribute: '',
        max: 10,
        scan: 100,
        force: false,
        busy: [],
      });
      expect(
        ordered.map(([sid]) => sid),
        topic,
      ).to.deep.equal([second]);
      // The third entry is still pending with node-a, which "died": take it over.
      const reclaimed = await scripts.reclaim(redis, scriptKeys(keys, topic, publisher.id), {
        group: publisher.id,
        from: 'node-a',
        to: 'reclaimed',
        now: 1,
        max: 100,
      });
      expect(reclaimed, topic).to.deep.equal({ scheduled: 1, done: true });
      const trimmed = await scripts.trim(redis, scriptKeys(keys, topic), { cutoff: Date.now() + 60_000, max: 100 });
      expect(trimmed, topic).to.deep.equal({ removed: 1, more: false });
    }
  });

  it('changes and deletes publishers and topics, and holds a lease on a global key', async () => {
    for (const publisher of await store.listPublishers()) {
      await store.updatePublisher(publisher.id, (p) => ({ ...p, active: false }));
      await store.deletePublisher(publisher.id);
    }
    expect(await store.listPublishers()).to.deep.equal([]);
    // Topics of their own (the others are used below), changed and deleted on their own slots.
    for (let i = 0; i < 6; i++) {
      const name = `gone-${i}`;
      await store.createTopic({ name, origin_host: 'test' });
      expect((await store.updateTopic(name, { origin_host: 'changed' })).origin_host).to.equal('changed');
      await store.deleteTopic(name);
      expect(await store.getTopic(name), name).to.equal(undefined);
    }
    const lock = keys.lock('janitor');
    await redis.set(lock, 'token', 'PX', 60_000);
    expect(await scripts.renewLock(redis, { lease: lock }, { token: 'token', ttlMs: 60_000 })).to.equal(true);
    expect(await scripts.releaseLock(redis, { lease: lock }, { token: 'token' })).to.equal(true);
  });

  it('schedules and releases messages, acts on failing ones and notes it, on each topic’s own slot', async () => {
    for (const topic of topics) {
      const tk = keys.topic(topic);
      const data = JSON.stringify({ p: '1', a: '', at: new Date(1000).toISOString(), created_at: '' });
      const scheduled = scripts.schedule(redis, scriptKeys(keys, topic), {
        id: `${topic}.s1`,
        dueAt: 1000,
        messageJson: data,
      });
      expect(await codeOf(scheduled)).to.equal('none');
      await redis.zadd(keys.scheduleDue, 'LT', 1000, topic);
      const released = await scripts.releaseScheduled(redis, scriptKeys(keys, topic), { now: 2000, max: 100 });
      expect(released, topic).to.deep.equal({ moved: 1, next: undefined });
      await redis.zrem(keys.scheduleDue, topic);

      // A dead letter of a publisher of this topic: recovered into the retry set, then deleted.
      const publisher = await store.createPublisher({
        ...PUBLISHER_DEFAULTS,
        topic,
        target: `http://b.test/${topic}`,
        type: 'http',
      });
      const pk = keys.publisher(topic, publisher.id);
      const [sid] = await ingest(topic, '1', '');
      await redis.xreadgroup('GROUP', publisher.id, 'node-a', 'COUNT', 10, 'STREAMS', tk.stream, '>');
      await redis.zadd(pk.dead, 5, sid as string);
      const at = '2024-01-01T00:00:00.000Z';
      // Without the optional counters.
      const failing = (args: scripts.FailingArgs) =>
        scripts.failing(redis, { ...scriptKeys(keys, topic, publisher.id), counts: undefined }, args);
      const { done: recovered } = await failing({
        action: 'recover',
        group: publisher.id,
        score: 0,
        ids: undefined,
        max: 100,
        now: 10,
        note: 'recovered',
        at,
      });
      expect(recovered, topic).to.deep.equal([[sid, 'dead', '']]);
      const { done: deleted } = await failing({
        action: 'delete',
        group: publisher.id,
        score: 0,
        ids: [sid!],
        max: 100,
        now: 10,
        note: 'deleted',
        at,
      });
      expect(deleted, topic).to.deep.equal([[sid, 'retrying', '']]);
      expect(JSON.parse((await redis.hget(pk.notes, sid as string))!), topic).to.deep.equal({
        last_action: { action: 'deleted', at },
        deleted: true,
      });
      await store.deletePublisher(publisher.id);
      expect(await redis.exists(pk.notes, pk.retries, pk.dead), topic).to.equal(0);
    }
  });

  it('purges, counts and seeks a publisher’s messages, and cancels a scheduled message, on each topic’s own slot', async () => {
    for (const topic of topics) {
      const tk = keys.topic(topic);
      const publisher = await store.createPublisher({
        ...PUBLISHER_DEFAULTS,
        topic,
        target: `http://c.test/${topic}`,
        type: 'http',
        from_now: true,
      });
      const pk = keys.publisher(topic, publisher.id);
      const sids = await ingest(topic, '1', '', '2', '', '3', '');
      const [first, , last] = sids as [string, string, string];
      await redis.xreadgroup('GROUP', publisher.id, 'node-a', 'COUNT', 1, 'STREAMS', tk.stream, '>');
      const before = Number(last.split('-')[0]) + 1;
      const purged = await scripts.purge(redis, scriptKeys(keys, topic, publisher.id), {
        group: publisher.id,
        before,
        at: before,
        atIso: new Date(before).toISOString(),
        dryRun: false,
      });
      expect([purged.before, purged.after], topic).to.deep.equal([first, last]);
      expect(purged.pending, topic).to.equal(1);
      const { counted } = await scripts.countRange(
        redis,
        { stream: tk.stream },
        { after: first, through: last, max: 100 },
      );
      expect(counted, topic).to.equal(2);
      const view = await findMessage(redis, keys, store, messageId(topic, last));
      expect(
        view?.deliveries.map((d) => d.state),
        topic,
      ).to.deep.equal(['purged']);
      const sought = await scripts.seek(redis, scriptKeys(keys, topic, publisher.id), {
        group: publisher.id,
        to: 0,
        at: before + 1,
        dryRun: false,
      });
      expect([sought.after, sought.before], topic).to.deep.equal(['0-0', last]);
      expect((await findMessage(redis, keys, store, messageId(topic, last)))?.deliveries[0]?.state, topic).to.equal(
        'pending',
      );
      await store.deletePublisher(publisher.id);
      expect(await redis.exists(pk.ranges, pk.notes), topic).to.equal(0);

      const data = JSON.stringify({ p: '1', a: '', at: new Date(1000).toISOString(), created_at: '' });
      await scripts.schedule(redis, scriptKeys(keys, topic), { id: `${topic}.sC`, dueAt: 10_000, messageJson: data });
      const cancelled = scripts.cancelScheduled(redis, scriptKeys(keys, topic), { id: `${topic}.sC` });
      expect(await codeOf(cancelled), topic).to.equal('none');
    }
  });

  it('takes slot leases and rate-limit tokens of publishers of every topic', async () => {
    for (const topic of topics) {
      const lease = keys.slotLease(topic, '99', 0);
      const take = (expected: string, value: string) => scripts.takeLease(redis, { lease }, { expected, value });
      expect(await take('', 'node-a t1'), topic).to.equal(true);
      expect(await take('', 'node-b t2'), topic).to.equal(false);
      expect(await take('node-a t1', 'node-b t2'), topic).to.equal(true);
      expect(await scripts.releaseLock(redis, { lease }, { token: 'node-b t2' }), topic).to.equal(true);
      const bucket = keys.publisher(topic, '99').bucket;
      const rate = (tokens: number) => scripts.rateLimit(redis, { bucket }, { perSecond: 1, burst: 2, tokens });
      expect(await rate(3), topic).to.deep.equal({ granted: 2, waitMs: 1000 });
      const { granted: given } = await rate(-2);
      expect(given, topic).to.equal(0);
    }
  });

  it('leases, settles and replaces pull messages, moving replacements into topics on other masters', async () => {
    const [home, ...others] = topics as [string, string, string];
    const pull = new PullQueue(redis, keys);
    const publisher = await store.createPublisher({
      ...PUBLISHER_DEFAULTS,
      topic: home,
      target: 'workers',
      type: 'pull',
      from_now: true,
    });
    const sids = await ingest(home, '1', '', '2', '');
    const leased = await pull.lease(publisher, { max: 2, leaseSeconds: 60, worker: { name: 'w' } });
    expect(leased.map((l) => l.message.id)).to.deep.equal(sids.map((sid) => messageId(home, sid)));
    await pull.complete(leased[0]!.token);
    const replaced = await pull.replace(
      leased[1]!.token,
      others.map((topic) => ({ topic, payload: { from: home } })),
    );
    expect(replaced.moved).to.equal(true);
    for (const [i, topic] of others.entries()) {
      expect(await redis.hget(keys.topic(topic).ids, replaced.ids[i]!), topic).to.be.a('string');
      expect((await findMessage(redis, keys, store, replaced.ids[i]!))?.payload, topic).to.deep.equal({ from: home });
    }
    const source = await findMessage(redis, keys, store, leased[1]!.message.id);
    expect(
      source?.deliveries.map((d) => [d.state, d.replaced_by]),
      home,
    ).to.deep.equal([['delivered', replaced.ids]]);
    expect(await pull.outboxSize(home)).to.equal(0);
    await store.deletePublisher(publisher.id);
  });

  it('keeps sources and recovery on each topic’s own slot, and writes outside messages once across topics', async () => {
    const sources = new SourceStore(redis, keys);
    // A client of its own: the counting wrappers above run a script at once, outside the writer's pipelines.
    const plain = createRedis(server.url, 'consumer');
    const writer = new OnceWriter(plain, keys, { redisMinReplicas: 0, redisWaitTimeoutMs: 100 });
    const made = [];
    for (const topic of topics) {
      if (!(await store.getTopic(topic))) await store.createTopic({ name: topic, origin_host: 'http://o/' });
      made.push(
        await sources.create({ topic, type: 'pubsub', active: true, subscription: `sub-${topic}`, batch_size: 10 }),
      );
      await store.recordRecovery(topic, new Date(), null, 1);
      expect((await store.getTopic(topic))?.recovered, topic).to.be.at.least(1);
    }
    expect((await sources.list()).map((s) => s.topic)).to.deep.equal(topics);
    const message = { payload: '{"n":1}', attributes: {} };
    const writes = topics.map((topic) => ({ topic, origin: `cluster ${topic}`, messages: [message] }));
    const first = await writer.write(writes);
    const again = await writer.write(writes);
    await writer.settled(writes);
    await closeRedis(plain);
    expect(first.map((o) => (o.ok ? String(o.replayed) : o.error.message))).to.deep.equal(['false', 'false', 'false']);
    expect(again.map((o) => (o.ok ? String(o.replayed) : o.error.message))).to.deep.equal(['true', 'true', 'true']);
    for (const s of made) {
      await sources.update(s.id, (c) => ({ ...c, active: false }));
      await sources.delete(s.id);
    }
    expect(await sources.list()).to.deep.equal([]);
  });

  it('has run every script', () => {
    expect([...called.keys()].sort()).to.deep.equal(SCRIPTS.map((script) => script.file).sort());
  });

  it('delivers Pub/Sub messages (wake-ups, events) to a subscriber, whichever node they were published on', async () => {
    const subscriber = createRedis(server.url, 'subscriber');
    const heard: string[] = [];
    try {
      subscriber.on('message', (_channel: string, message: string) => heard.push(message));
      await subscriber.subscribe(keys.wakeChannel);
      for (const node of masterNodes(redis)) await node.publish(keys.wakeChannel, node.options.port?.toString() ?? '');
      const expected = masterNodes(redis).map((n) => n.options.port?.toString() ?? '');
      await waitFor(() => expected.every((p) => heard.includes(p)), 'a wake-up from every node');
    } finally {
      await closeRedis(subscriber);
    }
  });
});
