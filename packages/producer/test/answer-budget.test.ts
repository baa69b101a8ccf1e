/**
 * ANSWER_BYTE_BUDGET: a page of search, of the failing list or a lease
 * stops at the budget in payload bytes, whatever `limit` or `max` asks,
 * with at least one message, and the cursor (or the next lease) goes on.
 */
import { expect } from 'chai';
import { parseMessageId } from '@postoffice/shared';
import { settle } from '@postoffice/test-support/settle';
import { call, createPublisher, createTopic, startApi, type Api } from './helpers.js';

const BUDGET = 2048;
/** About 1,000 bytes of JSON each: three of them pass the budget. */
const big = (i: number) => ({ i, pad: 'x'.repeat(990) });

describe('the byte budget of an answer', () => {
  let api: Api;

  before(async () => {
    api = await startApi({ ANSWER_BYTE_BUDGET: String(BUDGET) });
  });
  after(async () => {
    await api.close();
  });

  async function send(topic: string, n: number): Promise<string[]> {
    const res = await call(api.app, 'POST', '/api/bulk_messages', {
      topic,
      payload: Array.from({ length: n }, (_, i) => big(i)),
    });
    expect(res.status, res.raw).to.equal(201);
    return (res.body as { data: { ids: string[] } }).data.ids;
  }

  interface Page {
    readonly data: { id: string }[];
    readonly cursor: string | null;
    readonly truncated?: boolean;
  }

  /** The ids of every page of a list, following its cursor (at most 10 pages), each page within the budget. */
  async function everyPage(path: string, check: (page: Page) => void = () => {}): Promise<string[]> {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await call(api.app, 'GET', `${path}${cursor === null ? '' : `&cursor=${cursor}`}`);
      expect(res.status, res.raw).to.equal(200);
      const page = res.body as Page;
      expect(page.data.length).to.be.within(1, 3);
      check(page);
      seen.push(...page.data.map((m) => m.id));
      cursor = page.cursor;
    } while (cursor !== null && ++pages < 10);
    return seen;
  }

  it('stops a search page at the budget, says so with its cursor, and every message comes once', async () => {
    await createTopic(api.app, 'big');
    const ids = await send('big', 7);
    const seen = await everyPage('/api/messages?topic=big&limit=500', (page) => {
      if (page.cursor !== null) expect(page.truncated).to.equal(true);
    });
    expect(seen).to.deep.equal([...ids].reverse());
  });

  it('gives one message even when it alone is larger than the budget', async () => {
    await createTopic(api.app, 'huge');
    await call(api.app, 'POST', '/api/messages', { topic: 'huge', payload: 'y'.repeat(3 * BUDGET) });
    const res = await call(api.app, 'GET', '/api/messages?topic=huge&limit=10');
    expect((res.body as { data: unknown[] }).data).to.have.length(1);
  });

  it('stops a failing-list page at the budget and goes on with its cursor', async () => {
    await createTopic(api.app, 'failing');
    const p = await createPublisher(api.app, { topic: 'failing', target: 'http://127.0.0.1:9/x' });
    const pid = String(p.id);
    const ids = await send('failing', 7);
    await api.redis.xreadgroup('GROUP', pid, 'node', 'COUNT', 100, 'STREAMS', api.keys.topic('failing').stream, '>');
    const due = Date.now() + 3_600_000;
    await settle(
      api.redis,
      api.keys,
      'failing',
      pid,
      ids.map((id, i) => ({ streamId: parseMessageId(id)!.streamId!, outcome: 'r' as const, score: due + i })),
    );
    expect(await everyPage(`/api/publishers/${pid}/failing?limit=500`)).to.deep.equal(ids);
  });

  it('leases no more than the budget, whatever max asks; the rest stays available', async () => {
    await createTopic(api.app, 'jobs');
    const p = await createPublisher(api.app, { topic: 'jobs', target: 'workers', type: 'pull' });
    const ids = await send('jobs', 7);
    const leased: string[] = [];
    for (let round = 0; round < 10 && leased.length < ids.length; round++) {
      const res = await call(api.app, 'POST', `/api/publishers/${String(p.id)}/lease`, { max: 1000 });
      expect(res.status, res.raw).to.equal(200);
      const got = (res.body as { data: { message: { id: string } }[] }).data;
      expect(got.length).to.be.within(1, 3);
      leased.push(...got.map((l) => l.message.id));
    }
    expect(leased).to.deep.equal(ids);
  });
});
