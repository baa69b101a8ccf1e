import { expect } from 'chai';
import { parseMessageId } from '@postoffice/shared';
import { settle, type TestOutcome } from '@postoffice/test-support/settle';
import { call, createPublisher, createTopic, startApi, type Api } from './helpers.js';

describe('skipped messages and failed answers, as the API shows them', () => {
  let api: Api;
  let topic: string;
  let pid: string;
  let ids: string[];
  let topics = 0;

  beforeEach(async () => {
    api = await startApi();
    topic = `t${++topics}`;
    await createTopic(api.app, topic);
    pid = String((await createPublisher(api.app, { topic, target: 'http://127.0.0.1:9/x' })).id);
    const res = await call(api.app, 'POST', '/api/bulk_messages', {
      topic,
      payload: Array.from({ length: 5 }, (_, i) => ({ n: i })),
    });
    ids = (res.body as { data: { ids: string[] } }).data.ids;
    await api.redis.xreadgroup('GROUP', pid, 'node', 'COUNT', 100, 'STREAMS', api.keys.topic(topic).stream, '>');
  });
  afterEach(async () => {
    await api.close();
  });

  const sid = (id: string): string => parseMessageId(id)!.streamId!;

  async function record(outcomes: TestOutcome[]): Promise<void> {
    await settle(api.redis, api.keys, topic, pid, outcomes);
  }

  it('counts skipped and deleted messages apart from the delivered in the stats, and shows them in search', async () => {
    const [a, b, c, d, e] = ids as [string, string, string, string, string];
    await record([
      { streamId: sid(a), outcome: 'd' },
      { streamId: sid(b), outcome: 's' },
      { streamId: sid(c), outcome: 's' },
      { streamId: sid(d), outcome: 'r', score: Date.now() + 600_000 },
      { streamId: sid(e), outcome: 'd' },
    ]);
    const del = await call(api.app, 'POST', `/api/publishers/${pid}/failing/delete`, { ids: [d] });
    expect(del.status).to.equal(200);

    const stats = await call(api.app, 'GET', '/api/stats');
    const data = (stats.body as { data: Record<string, unknown> & { per_publisher: Record<string, unknown>[] } }).data;
    expect(data).to.include({ delivered: 2, skipped: 2, deleted: 1 });
    expect(data.per_publisher[0]).to.include({ delivered: 2, skipped: 2, deleted: 1, pending: 0, backlog: 0 });

    const search = await call(api.app, 'GET', `/api/messages?publisher=${pid}`);
    expect(search.status, search.raw).to.equal(200);
    const states = Object.fromEntries(
      (search.body as { data: { id: string; deliveries: { state: string }[] }[] }).data.map((m) => [
        m.id,
        m.deliveries[0]!.state,
      ]),
    );
    expect(states).to.deep.equal({
      [a]: 'delivered',
      [b]: 'skipped',
      [c]: 'skipped',
      [d]: 'deleted',
      [e]: 'delivered',
    });
    const onlySkipped = await call(api.app, 'GET', `/api/messages?publisher=${pid}&state=skipped`);
    expect((onlySkipped.body as { data: { id: string }[] }).data.map((m) => m.id)).to.deep.equal([c, b]);

    const one = await call(api.app, 'GET', `/api/messages/${b}`);
    expect((one.body as { data: { deliveries: { state: string }[] } }).data.deliveries[0]!.state).to.equal('skipped');
  });

  it("shows the start of a failed attempt's answer in the failing list and the message's history", async () => {
    const [a, b] = ids as [string, string];
    await record([
      { streamId: sid(a), outcome: 'r', status: 422, response: '{"error":"bad customer"}', score: Date.now() + 60_000 },
      {
        streamId: sid(b),
        outcome: 'x',
        status: 410,
        response: 'gone for good',
        reason: 'the target answered 410 Gone',
      },
    ]);
    const failing = await call(api.app, 'GET', `/api/publishers/${pid}/failing`);
    expect(failing.status, failing.raw).to.equal(200);
    const items = (failing.body as { data: { id: string; last_attempt: { response?: string } }[] }).data;
    expect(items.find((i) => i.id === a)!.last_attempt.response).to.equal('{"error":"bad customer"}');
    expect(items.find((i) => i.id === b)!.last_attempt.response).to.equal('gone for good');
    const one = await call(api.app, 'GET', `/api/messages/${a}`);
    const attempts = (one.body as { data: { deliveries: { attempts: { response?: string }[] }[] } }).data.deliveries[0]!
      .attempts;
    expect(attempts.map((x) => x.response)).to.deep.equal(['{"error":"bad customer"}']);
  });
});
