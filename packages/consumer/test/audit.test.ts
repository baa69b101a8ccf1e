import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useWorld, waitFor } from './helpers.js';

describe('the audit trail', function () {
  const f = useWorld();
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'po-audit-'));
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes one JSON line and one stream entry per successful delivery, none for failures', async () => {
    const file = join(dir, 'audit.jsonl');
    let calls = 0;
    // every third request fails once: those messages are delivered on a retry
    f.receiver.respond(() => (++calls % 3 === 0 ? 503 : 200));
    const topic = await f.world.topic();
    const p = await f.world.publisher(topic, f.receiver.url, { seconds_retry: 0.05 });
    const node = await f.world.node({ AUDIT_LOG: file, AUDIT_STREAM: 'true' });
    const ids = await f.world.publish(
      topic,
      Array.from({ length: 20 }, (_, i) => i),
    );
    await waitFor(() => f.receiver.received.length === 20, 'every delivery', 20000);
    const stream = f.world.keys.auditStream;
    await waitFor(async () => (await f.world.redis.xlen(stream)) === 20, 'the audit stream');
    await node.close();
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records).to.have.length(20);
    expect(records.map((r) => r.message_id)).to.have.members(f.receiver.received.map((r) => r.headers['message-id']));
    expect(records.map((r) => r.message_id)).to.have.members(ids);
    const first = records[0]!;
    expect(first).to.include({ publisher_id: p.id, topic, target: f.receiver.url, status: 200 });
    expect(first.duration_ms).to.be.a('number');
    expect(Date.parse(first.delivered_at as string)).to.be.a('number').and.not.NaN;
    expect(records.filter((r) => r.attempt === 2).length).to.be.greaterThan(0);
    const entries = await f.world.redis.xrange(stream, '-', '+');
    const fromStream = entries.map(([, fields]) => fields[fields.indexOf('message_id') + 1]);
    expect(fromStream).to.have.members(ids);
  });

  it('is off by default: no file, no stream', async () => {
    const topic = await f.world.topic();
    await f.world.publisher(topic, f.receiver.url);
    await f.world.node();
    await f.world.publish(topic, [1]);
    await waitFor(() => f.receiver.received.length === 1, 'the delivery');
    expect(await f.world.redis.exists(f.world.keys.auditStream)).to.equal(0);
  });
});
