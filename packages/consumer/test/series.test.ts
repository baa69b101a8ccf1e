import { expect } from 'chai';
import { SERIES_TTL_SECONDS, seriesSlot, type Keys, type ScriptClient } from '@postoffice/shared';
import { BacklogCounter } from '../src/backlog.js';
import { BacklogSampler } from '../src/backlog-sampler.js';
import { useWorld, waitFor } from './helpers.js';

/** Every field of the topic's counters of this hour and the one before, summed by `<kind>:<publisher>`. */
async function counters(redis: ScriptClient, keys: Keys, topic: string): Promise<Map<string, number>> {
  const { hour } = seriesSlot(Date.now());
  const out = new Map<string, number>();
  for (const h of [hour - 1, hour]) {
    for (const [field, value] of Object.entries(await redis.hgetall(keys.series(topic, h)))) {
      const kind = field.slice(field.indexOf(':') + 1);
      out.set(kind, (out.get(kind) ?? 0) + Number(value));
    }
  }
  return out;
}

describe('per-minute counters and the circuit record', function () {
  const f = useWorld();

  it('counts delivered messages and failed attempts once per settle batch, in keys that expire', async () => {
    f.receiver.respond((req) => (req.body.includes('bad') ? 500 : 200));
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, f.receiver.url, { seconds_retry: 0.05 });
    await f.world.node({ BREAKER_THRESHOLD: '1000' });
    await f.world.publish(topic, ['ok-1', 'ok-2', 'ok-3', 'bad']);
    const pk = f.world.keys.publisher(topic, p.id);
    const seen = await waitFor(async () => {
      const c = await counters(f.world.redis, f.world.keys, topic);
      return (c.get(`d:${p.id}`) ?? 0) === 3 && (c.get(`f:${p.id}`) ?? 0) >= 2 ? c : undefined;
    }, 'three deliveries and two failed attempts counted');
    expect(seen.get(`d:${p.id}`)).to.equal(3);
    expect(await f.world.redis.hget(pk.counts, 'delivered')).to.equal('3');
    // Failed attempts match the attempts the target refused (at least; one more may be under way).
    const refused = f.receiver.requests.filter((r) => r.status === 500).length;
    expect(seen.get(`f:${p.id}`)).to.be.at.most(refused);
    const ttl = await f.world.redis.ttl(f.world.keys.series(topic, seriesSlot(Date.now()).hour));
    expect(ttl)
      .to.be.greaterThan(SERIES_TTL_SECONDS - 60)
      .and.at.most(SERIES_TTL_SECONDS);
    // The key carries the topic's hash tag (one slot with the topic's other keys, for Redis Cluster).
    expect(f.world.keys.series(topic, 1)).to.equal(`po:{${topic}}:series:1`);
  });

  it('records an open circuit with its next probe, and removes it when the target answers again', async () => {
    let healthy = false;
    f.receiver.respond(() => (healthy ? 200 : 503));
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, f.receiver.url, { seconds_retry: 1, concurrency: 1 });
    const node = await f.world.node({ BREAKER_THRESHOLD: '2', RETRY_MAX_BACKOFF_SECONDS: '2' });
    await f.world.publish(topic, [1, 2, 3, 4, 5]);
    const key = f.world.keys.publisher(topic, p.id).circuit;
    const raw = await waitFor(() => f.world.redis.get(key).then((v) => v ?? undefined), 'the circuit record');
    const record = JSON.parse(raw) as { state: string; next_probe_at: number | null; node: string; failures: number };
    expect(record.state).to.be.oneOf(['open', 'probing']);
    if (record.state === 'open')
      expect(record.next_probe_at)
        .to.be.a('number')
        .greaterThan(Date.now() - 5000);
    expect(record.node).to.equal(node.nodeId);
    expect(record.failures).to.be.at.least(2);
    expect(await f.world.redis.pttl(key)).to.be.greaterThan(0);
    healthy = true;
    await waitFor(() => node.pipeline(p.id)?.state === 'running', 'the circuit to close', 30_000);
    await waitFor(async () => (await f.world.redis.exists(key)) === 0, 'the record removed');
  });

  it('samples each publisher backlog and oldest age once a minute, on the node holding the janitor lease', async () => {
    const topic = await f.world.topic();
    const idle = await f.world.publisher(topic, f.receiver.url, { active: false });
    const quiet = await f.world.topic();
    await f.world.publisher(quiet, f.receiver.url, { active: false });
    await f.world.node();
    // The node samples topics with news (here: messages received while it runs).
    await f.world.publish(topic, ['a', 'b', 'c']);
    const seen = await waitFor(async () => {
      const c = await counters(f.world.redis, f.world.keys, topic);
      return c.has(`b:${idle.id}`) ? c : undefined;
    }, 'a backlog sample');
    expect(seen.get('s')).to.be.at.least(1);
    // A topic with no news and no backlog is not sampled: idle publishers cost no command.
    expect((await counters(f.world.redis, f.world.keys, quiet)).size).to.equal(0);
    // One sample a minute (two when the minute turned meanwhile).
    expect(seen.get(`b:${idle.id}`)! % 3).to.equal(0);
    expect(seen.get(`a:${idle.id}`))
      .to.be.a('number')
      .at.least(0);
  });

  it('writes a sample per publisher at most once a minute', async () => {
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, f.receiver.url, { active: false });
    await f.world.publish(topic, ['x', 'y']);
    const counter = new BacklogCounter({
      redis: f.world.redis,
      keys: f.world.keys,
      store: f.world.store,
      reporting: () => true,
      now: Date.now,
    });
    let now = Date.UTC(2026, 0, 1, 12, 30, 10);
    const sampler = new BacklogSampler({
      redis: f.world.redis,
      keys: f.world.keys,
      counter,
      sampling: () => true,
      logger: { warn: () => undefined } as never,
      now: () => now,
    });
    await sampler.tick();
    const key = f.world.keys.series(topic, seriesSlot(now).hour);
    // Nothing happened to the topic yet (as far as this sampler heard): no sample.
    expect(await f.world.redis.hlen(key)).to.equal(0);
    sampler.touch(topic);
    now += 60_000;
    await sampler.tick();
    expect(await f.world.redis.hget(key, `31:b:${p.id}`)).to.equal('2');
    await f.world.redis.hdel(key, `31:b:${p.id}`);
    now += 30_000;
    await sampler.tick();
    expect(await f.world.redis.hexists(key, `31:b:${p.id}`)).to.equal(0);
    now += 30_000;
    await sampler.tick();
    // No news, but a backlog at the last sample: sampled again.
    expect(await f.world.redis.hget(key, `32:b:${p.id}`)).to.equal('2');
    expect(await f.world.redis.ttl(key)).to.be.greaterThan(0);
  });
});
