import { expect } from 'chai';
import { closeRedis, createRedis, Keys, TOPIC_NAME, type ScriptClient } from '../src/index.js';
import { startRedis, type RedisServer } from '@postoffice/test-support';

/** CRC16-CCITT (XMODEM), as Redis Cluster uses it. */
function crc16(data: Buffer): number {
  let crc = 0;
  for (const byte of data) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc;
}

/** The cluster slot of a key: the hash tag (`{...}`, first one, non-empty) if any, else the whole key. */
function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  return crc16(Buffer.from(key, 'utf8')) % 16384;
}

const TOPICS = ['orders', 'a', 'Orders.v2', 'user-events_2024', 'x'.repeat(200), '0'];
const PREFIXES = ['po:', 'staging:po:', ''];

function topicScopedKeys(keys: Keys, topic: string): string[] {
  const tk = keys.topic(topic);
  // Every key of TopicKeys and PublisherKeys, so that a key added there is checked here too.
  const out: string[] = Object.values(tk);
  for (const id of ['1', '42']) {
    out.push(...Object.values(keys.publisher(topic, id)), keys.slotLease(topic, id, 0));
  }
  out.push(keys.history(topic, '6f1c1a52-5a43-4b38-9d4f-0c7b3e0b1a11'), keys.idempotency(topic, 'key-{1}'));
  out.push(keys.once(topic, 'digest'), keys.sourceStats(topic, '3'), keys.sourceLease(topic, '3'));
  out.push(keys.series(topic, 0), keys.series(topic, 493_000));
  return out;
}

function globalKeys(keys: Keys): string[] {
  return [
    keys.topics,
    keys.publisherIndex,
    keys.sequence('topic'),
    keys.sequence('publisher'),
    keys.sequence('source'),
    keys.sourceIndex,
    keys.sourceOrigins,
    keys.lock('recovery'),
    keys.retryDue,
    keys.scheduleDue,
    keys.auditStream,
    keys.nodes,
    keys.node('node-a'),
    keys.lock('janitor'),
    keys.wakeChannel,
    keys.eventsChannel,
  ];
}

describe('the key layout', () => {
  it('computes cluster slots as Redis does', () => {
    expect(crc16(Buffer.from('123456789'))).to.equal(0x31c3);
    expect(keySlot('foo')).to.equal(12182);
    expect(keySlot('{user1000}.following')).to.equal(keySlot('user1000'));
    expect(keySlot('foo{}{bar}')).to.equal(crc16(Buffer.from('foo{}{bar}')) % 16384);
    expect(keySlot('foo{{bar}}zap')).to.equal(keySlot('{bar'));
  });

  describe('checked against Redis Cluster itself', () => {
    let server: RedisServer;
    let redis: ScriptClient;

    before(async () => {
      // One cluster-enabled server answers CLUSTER KEYSLOT for any key, whatever the test mode.
      server = await startRedis({
        cluster: false,
        args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'],
      });
      redis = createRedis(server.url, 'consumer');
    });

    after(async () => {
      if (redis) await closeRedis(redis);
      if (server) await server.stop();
    });

    it('agrees with CLUSTER KEYSLOT on every key', async () => {
      const all = PREFIXES.flatMap((p) => {
        const keys = new Keys(p);
        return [...TOPICS.flatMap((t) => topicScopedKeys(keys, t)), ...globalKeys(keys), 'foo{}{bar}', 'foo{{bar}}zap'];
      });
      const pipeline = redis.pipeline();
      for (const key of all) pipeline.cluster('KEYSLOT', key);
      const slots = ((await pipeline.exec()) ?? []).map(([err, slot]) => {
        if (err) throw err;
        return slot as number;
      });
      expect(slots).to.deep.equal(all.map(keySlot));
    });
  });

  for (const prefix of PREFIXES) {
    describe(`with the prefix '${prefix}'`, () => {
      const keys = new Keys(prefix);

      it("puts every key of one topic in that topic's hash slot", () => {
        for (const topic of TOPICS) {
          const expected = keySlot(topic);
          for (const key of topicScopedKeys(keys, topic)) {
            expect(keySlot(key), key).to.equal(expected);
          }
        }
      });

      it('starts every key with the prefix', () => {
        for (const key of [...TOPICS.flatMap((t) => topicScopedKeys(keys, t)), ...globalKeys(keys)]) {
          expect(key.startsWith(prefix), key).to.equal(true);
        }
      });

      it('never builds the same key for two different things', () => {
        const all = [...TOPICS.flatMap((t) => topicScopedKeys(keys, t)), ...globalKeys(keys)];
        const seen = new Map<string, number>();
        for (const key of all) seen.set(key, (seen.get(key) ?? 0) + 1);
        const dupes = [...seen].filter(([, n]) => n > 1).map(([k]) => k);
        expect(dupes).to.deep.equal([]);
      });
    });
  }

  it('keeps the keys of two installations with different prefixes apart', () => {
    const a = new Keys('a:');
    const b = new Keys('b:');
    const aKeys = new Set([...topicScopedKeys(a, 'orders'), ...globalKeys(a)]);
    for (const key of [...topicScopedKeys(b, 'orders'), ...globalKeys(b)]) expect(aKeys.has(key), key).to.equal(false);
  });

  it('accepts only topic names that fit in a hash tag and a URL path', () => {
    for (const name of TOPICS) expect(TOPIC_NAME.test(name), name).to.equal(true);
    for (const name of ['', '{orders}', 'a}b', 'a{b', 'with space', 'slash/name', '.hidden', 'x'.repeat(201)]) {
      expect(TOPIC_NAME.test(name), name).to.equal(false);
    }
  });
});
