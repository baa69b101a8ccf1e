import { expect } from 'chai';
import type { ConsumerNode } from '../src/index.js';
import { commandsProcessed, infoCalls, useWorld, waitFor } from './helpers.js';

type Labels = Record<string, string | number>;

async function sample(node: ConsumerNode, name: string, labels: Labels = {}): Promise<number | undefined> {
  const all = await node.metrics.registry.getMetricsAsJSON();
  const base = name.replace(/_(count|sum)$/, '');
  const metric = all.find((m) => m.name === name) ?? all.find((m) => m.name === base);
  const match = metric?.values.find(
    (v) =>
      (metric.name === name || (v as { metricName?: string }).metricName === name) &&
      Object.entries(labels).every(([k, want]) => (v.labels as Labels)[k] === want),
  );
  return match?.value;
}

describe('consumer metrics', function () {
  const f = useWorld();

  it('counts a delivery by publisher and outcome, its latency and end-to-end time, and the leases held', async () => {
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, f.receiver.url);
    const node = await f.world.node();
    await f.world.publish(topic, [{ n: 1 }]);
    // Scrape only once the delivery is recorded in Redis: the backlog count is reused for 10 s.
    await waitFor(
      async () =>
        (await f.world.redis.xpending(f.world.keys.topic(topic).stream, p.id))[0] === 0 &&
        f.receiver.received.length === 1,
      'the delivery acknowledged',
    );
    expect(await sample(node, 'postoffice_deliveries_total', { publisher: p.id, outcome: 'delivered' })).to.equal(1);
    expect(
      await sample(node, 'postoffice_delivery_duration_seconds_count', { publisher: p.id }),
      'latency observed',
    ).to.equal(1);
    expect(await sample(node, 'postoffice_end_to_end_seconds_count', { publisher: p.id })).to.equal(1);
    expect(await sample(node, 'postoffice_leases_held')).to.equal(1);
    expect(await sample(node, 'postoffice_deliveries_in_flight', { publisher: p.id })).to.equal(0);
    await waitFor(
      async () => (await sample(node, 'postoffice_publisher_backlog_messages', { publisher: p.id, topic })) === 0,
      'an empty backlog',
    );
    const text = await node.metrics.registry.metrics();
    expect(text).to.match(/^# TYPE postoffice_delivery_duration_seconds histogram$/m);
    expect(text).to.match(/^# TYPE postoffice_redis_errors_total counter$/m);
    expect(text).to.match(/^process_cpu_user_seconds_total /m);
  });

  it('reports backlog, oldest undelivered age, retrying and dead per publisher from Redis', async () => {
    f.receiver.respond(() => 503);
    const topic = await f.world.topic();
    const failing = await f.world.publisher(topic, f.receiver.url, { seconds_retry: 3600 });
    const idle = await f.world.publisher(topic, `${f.receiver.url}/idle`, { active: false });
    const node = await f.world.node();
    await f.world.publish(topic, [1, 2]);
    await waitFor(
      async () => (await f.world.redis.zcard(f.world.keys.publisher(topic, failing.id).retries)) === 2,
      'two retries scheduled',
    );
    await waitFor(
      async () =>
        (await sample(node, 'postoffice_publisher_retrying_messages', { publisher: failing.id, topic })) === 2,
      'the retries counted (the count is cached for 10 s)',
      30_000,
    );
    expect(await sample(node, 'postoffice_publisher_backlog_messages', { publisher: failing.id })).to.equal(2);
    expect(await sample(node, 'postoffice_publisher_dead_messages', { publisher: failing.id })).to.equal(0);
    expect(
      await sample(node, 'postoffice_publisher_oldest_undelivered_age_seconds', { publisher: failing.id }),
    ).to.be.above(0);
    // The inactive publisher has read nothing: both messages are unread.
    expect(await sample(node, 'postoffice_publisher_backlog_messages', { publisher: idle.id })).to.equal(2);
    expect(await sample(node, 'postoffice_publisher_retrying_messages', { publisher: idle.id })).to.equal(0);
    expect(
      await sample(node, 'postoffice_publisher_oldest_undelivered_age_seconds', { publisher: idle.id }),
    ).to.be.above(0);
    expect(await sample(node, 'postoffice_deliveries_total', { publisher: failing.id, outcome: 'retry' })).to.equal(2);
  });

  it('reports the per-publisher gauges only on the node that holds the janitor lease', async () => {
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, f.receiver.url);
    const first = await f.world.node();
    const second = await f.world.node();
    expect(first.janitor.holdsLease).to.equal(true);
    expect(second.janitor.holdsLease).to.equal(false);
    // The first scrape already has all four gauges (they are filled by one shared refresh).
    expect(await sample(first, 'postoffice_publisher_dead_messages', { publisher: p.id })).to.equal(0);
    expect(await sample(first, 'postoffice_publisher_backlog_messages', { publisher: p.id })).to.equal(0);
    expect(await sample(second, 'postoffice_publisher_backlog_messages', { publisher: p.id })).to.equal(undefined);
    // The publisher's one slot is held by exactly one of the two nodes.
    await waitFor(
      async () =>
        ((await sample(first, 'postoffice_leases_held')) ?? 0) +
          ((await sample(second, 'postoffice_leases_held')) ?? 0) ===
        1,
      'the one slot held by one node',
    );
  });

  it('counts the backlog of idle publishers with two commands each, and reuses a count for 10 s', async () => {
    const topics = 30;
    const publishers = 300;
    for (let t = 0; t < topics; t++) await f.world.topic(`t-${t}`);
    for (let i = 0; i < publishers; i++) await f.world.publisher(`t-${i % topics}`, `${f.receiver.url}/p${i}`);
    // Slow timers, so that the commands counted are the scrape's.
    const node = await f.world.node({ RETRY_POLL_MS: '1000', HEARTBEAT_SECONDS: '5' });
    await waitFor(() => node.pipelineCount === publishers, 'every pipeline');
    // Summed over every master: on a Redis Cluster one INFO reaches one master only.
    const commands = (): Promise<number> => commandsProcessed(f.world.redis);
    const before = await commands();
    const text = await node.metrics.registry.metrics();
    const during = (await commands()) - before - infoCalls(f.world.redis);
    expect(text.match(/^postoffice_publisher_backlog_messages\{/gm)).to.have.length(publishers);
    // ZCARD retries and dead per publisher, XINFO GROUPS and HVALS per topic, SMEMBERS; plus a few node timers.
    expect(during).to.be.at.most(2 * publishers + 2 * topics + 1 + 20);
    const again = await commands();
    await node.metrics.registry.metrics();
    expect((await commands()) - again - infoCalls(f.world.redis), 'a second scrape within 10 s').to.be.at.most(20);
  });
});
