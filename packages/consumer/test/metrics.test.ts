import { expect } from 'chai';
import { Metrics } from '../src/metrics.js';
import type { ConsumerNode } from '../src/index.js';
import { commandsProcessed, freePort, infoCalls, useWorld, waitFor } from './helpers.js';

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

  it('labels failures with their reason and every publisher series with its topic, and shows an open circuit', async () => {
    f.receiver.respond((req) =>
      req.path.endsWith('/gone')
        ? 404
        : req.path.endsWith('/broken')
          ? 503
          : req.path.endsWith('/slow')
            ? new Promise((resolve) => setTimeout(() => resolve(200), 1500))
            : 200,
    );
    const topic = await f.world.topic();
    const retryLater = { seconds_retry: 3600 };
    const gone = await f.world.publisher(topic, `${f.receiver.url}/gone`, retryLater);
    const broken = await f.world.publisher(topic, `${f.receiver.url}/broken`, retryLater);
    const slow = await f.world.publisher(topic, `${f.receiver.url}/slow`, { ...retryLater, seconds_timeout: 0.3 });
    const down = await f.world.publisher(topic, `http://127.0.0.1:${await freePort()}/hook`, retryLater);
    const node = await f.world.node({ BREAKER_THRESHOLD: '2' });
    await f.world.publish(topic, [1, 2]);
    const expected: [string, string][] = [
      [gone.id, 'http_4xx'],
      [broken.id, 'http_5xx'],
      [slow.id, 'timeout'],
      [down.id, 'connect'],
    ];
    for (const [publisher, reason] of expected) {
      await waitFor(
        async () =>
          (await sample(node, 'postoffice_deliveries_total', { publisher, topic, outcome: 'retry', reason })) === 2,
        `two ${reason} failures of publisher ${publisher}`,
      );
    }
    // Two failures in a row (BREAKER_THRESHOLD) opened each circuit. A failure is counted when the attempt ends,
    // and leaves the in-flight gauge once its outcome is written: wait for that.
    for (const [publisher] of expected) {
      await waitFor(
        async () => (await sample(node, 'postoffice_deliveries_in_flight', { publisher, topic })) === 0,
        `the outcomes of publisher ${publisher} written`,
      );
      expect(await sample(node, 'postoffice_publisher_circuit_state', { publisher, topic }), publisher).to.equal(1);
      expect(await sample(node, 'postoffice_circuit_opened_total', { publisher, topic })).to.equal(1);
      expect(await sample(node, 'postoffice_delivery_duration_seconds_count', { publisher, topic })).to.equal(2);
      expect(await sample(node, 'postoffice_deliveries_in_flight', { publisher, topic })).to.equal(0);
    }
    const text = await node.metrics.registry.metrics();
    // A delivered attempt has no reason; a failed one always has one.
    expect(text).to.not.match(/^postoffice_deliveries_total\{(?![^}]*reason=)[^}]*outcome="retry"/m);
    for (const line of text.split('\n').filter((l) => /^postoffice_[a-z_]+\{[^}]*publisher=/.test(l))) {
      expect(line).to.match(/topic="/);
    }
  });

  it('reports each publisher with its type, target host and slots, the build, and whether Redis is up', async () => {
    const topic = await f.world.topic();
    const http = await f.world.publisher(topic, f.receiver.url, { parallelism: 3 });
    const ordered = await f.world.publisher(topic, `${f.receiver.url}/o`, { parallelism: 3, ordered: true });
    const inactive = await f.world.publisher(topic, `${f.receiver.url}/i`, { active: false });
    const pull = await f.world.publisher(topic, 'workers', { type: 'pull' });
    const node = await f.world.node();
    const host = new URL(f.receiver.url).host;
    expect(
      await sample(node, 'postoffice_publisher_info', { publisher: http.id, topic, type: 'http', target_host: host }),
    ).to.equal(1);
    expect(
      await sample(node, 'postoffice_publisher_info', { publisher: pull.id, topic, type: 'pull', target_host: '' }),
    ).to.equal(1);
    const slots = async (p: { id: string }) => sample(node, 'postoffice_publisher_slots', { publisher: p.id, topic });
    expect(await slots(http)).to.equal(3);
    expect(await slots(ordered)).to.equal(1);
    expect(await slots(inactive)).to.equal(0);
    expect(await slots(pull)).to.equal(0);
    expect(
      await sample(node, 'postoffice_build_info', { version: '0.1.0', node_version: process.versions.node }),
    ).to.equal(1);
    expect(await sample(node, 'postoffice_redis_up')).to.equal(1);
    await waitFor(
      async () => (await sample(node, 'postoffice_publisher_circuit_state', { publisher: http.id, topic })) === 0,
      'a closed circuit',
    );
  });

  it('maps pipeline states to circuit states: open 1, probing (half-open) 2, anything else 0', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.reportCircuits(() =>
      ['running', 'open', 'probing', 'paused'].map((state) => ({ publisher: state, topic: 't', state })),
    );
    const text = await metrics.registry.metrics();
    const value = (p: string) =>
      new RegExp(`^postoffice_publisher_circuit_state\\{publisher="${p}",topic="t"\\} (\\d)$`, 'm').exec(text)?.[1];
    expect(['running', 'open', 'probing', 'paused'].map(value)).to.deep.equal(['0', '1', '2', '0']);
  });
});
