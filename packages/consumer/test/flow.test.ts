/**
 * Pausing a topic, purging a publisher's backlog and seeking it back,
 * through the built processes: a producer and a consumer node on a private
 * Redis, delivering to a real HTTP receiver.
 */
import { expect } from 'chai';
import { startRedis, type RedisServer } from '@postoffice/test-support/redis-server';
import { waitFor } from '@postoffice/test-support/wait';
import { startReceiver, type Receiver } from '@postoffice/test-support/receiver';
import { api, killAll, startApp, type AppProcess } from '@postoffice/test-support/processes';

const ENV = { HEARTBEAT_SECONDS: '1', RETRY_POLL_MS: '100' };

describe('pause, purge and seek with a consumer node running', function () {
  this.timeout(120_000);
  let redis: RedisServer;
  let receiver: Receiver;
  let producer: AppProcess;
  const apps: AppProcess[] = [];
  /** Per message id: every answer the receiver gave it, in order. */
  const answers = new Map<string, number[]>();
  /** Topics whose messages the receiver refuses (503) for now. */
  const failing = new Set<string>();

  before(async () => {
    redis = await startRedis();
    receiver = await startReceiver((req) => {
      const status = failing.has(String(req.headers.topic)) ? 503 : 200;
      const id = String(req.headers['message-id']);
      answers.set(id, [...(answers.get(id) ?? []), status]);
      return status;
    });
    producer = await startApp('producer', { REDIS_URL: redis.url, ...ENV });
    apps.push(producer, await startApp('consumer', { REDIS_URL: redis.url, NODE_ID: 'node-a', ...ENV }));
  });

  after(async () => {
    await killAll(apps);
    await receiver.close();
    await redis.stop();
  });

  async function topicWithPublisher(name: string, options: Record<string, unknown> = {}): Promise<string> {
    expect((await api(producer, 'POST', '/api/topics', { name, origin_host: 'test' })).status).to.equal(201);
    const created = await api(producer, 'POST', '/api/publishers', {
      topic: name,
      target: receiver.url,
      type: 'http',
      ...options,
    });
    expect(created.status).to.equal(201);
    return created.json.data.id as string;
  }

  async function send(topic: string, n: number): Promise<string[]> {
    const res = await api(producer, 'POST', '/api/bulk_messages', {
      topic,
      payload: Array.from({ length: n }, (_, i) => ({ i })),
    });
    expect(res.status).to.equal(201);
    return res.json.data.ids as string[];
  }

  const delivered = (id: string): number => (answers.get(id) ?? []).filter((s) => s === 200).length;

  async function stateOf(id: string, publisherId: string): Promise<string> {
    const res = await api(producer, 'GET', `/api/messages/${id}`);
    return (res.json.data.deliveries as { publisher_id: string; state: string }[]).find(
      (d) => d.publisher_id === publisherId,
    )!.state;
  }

  /** Whether the consumer node holds the publisher's slot (GET /api/cluster). */
  async function held(publisherId: string): Promise<boolean> {
    const res = await api(producer, 'GET', '/api/cluster');
    const p = (res.json.data.publishers as { id: string; slots: { node: string | null }[] }[]).find(
      (x) => x.id === publisherId,
    );
    return p?.slots.some((s) => s.node !== null) ?? false;
  }

  it('delivers nothing of a paused topic while other topics flow, then drains its backlog once resumed', async () => {
    const paused = await topicWithPublisher('paused-topic');
    await topicWithPublisher('other-topic');
    await waitFor(() => held(paused), 'the node to hold the publisher');

    const pause = await api(producer, 'PATCH', '/api/topics/paused-topic', { paused: true });
    expect(pause.status).to.equal(200);
    expect(pause.json.data.paused).to.equal(true);
    await waitFor(async () => !(await held(paused)), 'the node to hand the paused publisher back');
    const held_back = await send('paused-topic', 5);
    // The node is awake and delivering: a message of another topic, sent after them, arrives.
    const [other] = await send('other-topic', 1);
    await waitFor(() => delivered(other!) === 1, 'the other topic’s message');
    expect(held_back.map(delivered)).to.deep.equal([0, 0, 0, 0, 0]);
    for (const id of held_back) expect(await stateOf(id, paused)).to.equal('pending');

    expect((await api(producer, 'PATCH', '/api/topics/paused-topic', { paused: false })).status).to.equal(200);
    await waitFor(() => held_back.every((id) => delivered(id) === 1), 'the backlog to drain');
    // A delivery reaches the receiver just before its outcome is recorded.
    for (const id of held_back)
      await waitFor(async () => (await stateOf(id, paused)) === 'delivered', `${id} delivered`);
  });

  it('never sends purged messages, retrying or unread, and goes on with what comes after', async () => {
    const id = await topicWithPublisher('purged-topic', { seconds_retry: 0.05 });
    failing.add('purged-topic');
    const [retrying] = await send('purged-topic', 1);
    await waitFor(async () => (await stateOf(retrying!, id)) === 'retrying', 'a retry to be scheduled');
    // Switched off, the publisher keeps the rest unread.
    expect((await api(producer, 'PATCH', `/api/publishers/${id}`, { active: false })).status).to.equal(200);
    await waitFor(async () => !(await held(id)), 'the node to hand the publisher back');
    const unread = await send('purged-topic', 3);
    const tried = answers.get(retrying!)?.length ?? 0;

    const dry = await api(producer, 'POST', `/api/publishers/${id}/purge`, { dry_run: true });
    expect(dry.json.data).to.include({ count: 4, unread: 3, pending: 1, dead: 0, dry_run: true });
    const purged = await api(producer, 'POST', `/api/publishers/${id}/purge`, { before: dry.json.data.before });
    expect(purged.status).to.equal(200);
    expect(purged.json.data).to.include({ count: 4, unread: 3, pending: 1, dead: 0, dry_run: false });

    failing.delete('purged-topic');
    expect((await api(producer, 'PATCH', `/api/publishers/${id}`, { active: true })).status).to.equal(200);
    const [after] = await send('purged-topic', 1);
    // Due retries are taken before new messages: had the purged one been left, it would have gone first.
    await waitFor(() => delivered(after!) === 1, 'the message sent after the purge');
    expect(answers.get(retrying!)?.length ?? 0).to.equal(tried);
    expect(delivered(retrying!)).to.equal(0);
    for (const m of unread) expect(answers.has(m), m).to.equal(false);
    for (const m of [retrying!, ...unread]) expect(await stateOf(m, id), m).to.equal('purged');
    const search = await api(producer, 'GET', `/api/messages?publisher=${id}&state=purged`);
    expect(search.json.data.map((m: { id: string }) => m.id).sort()).to.deep.equal([retrying!, ...unread].sort());
    const page = await api(producer, 'GET', `/api/messages/${unread[0]!}`);
    expect(page.json.data.deliveries[0].last_action.action).to.equal('purged');
  });

  it('sends again every message received since the time of a seek, delivered or not', async () => {
    const id = await topicWithPublisher('sought-topic');
    const first = await send('sought-topic', 3);
    await waitFor(() => first.every((m) => delivered(m) === 1), 'the first deliveries');
    const since = await api(producer, 'GET', `/api/messages/${first[0]!}`);

    const dry = await api(producer, 'POST', `/api/publishers/${id}/seek`, {
      to: since.json.data.received_at,
      dry_run: true,
    });
    expect(dry.json.data).to.include({ count: 3, dry_run: true });
    expect(first.map(delivered)).to.deep.equal([1, 1, 1]);
    const sought = await api(producer, 'POST', `/api/publishers/${id}/seek`, { to: since.json.data.received_at });
    expect(sought.status).to.equal(200);
    expect(sought.json.data).to.include({ count: 3, dry_run: false });
    await waitFor(() => first.every((m) => delivered(m) === 2), 'every message delivered again');
    for (const m of first) {
      const page = await api(producer, 'GET', `/api/messages/${m}`);
      expect(page.json.data.deliveries[0]).to.deep.include({ state: 'delivered', attempt_count: 2 });
      expect(page.json.data.deliveries[0].last_action.action).to.equal('sought');
    }
  });
});
