import { expect } from 'chai';
import { scripts } from '@postoffice/shared';
import { useWorld, waitFor } from './helpers.js';

describe('scheduled messages', function () {
  const f = useWorld();

  async function schedule(topic: string, payload: unknown, dueAt: number): Promise<string> {
    const tk = f.world.keys.topic(topic);
    const id = `00000000-0000-4000-8000-${String(dueAt).padStart(12, '0').slice(-12)}`;
    const data = JSON.stringify({
      p: JSON.stringify(payload),
      a: '',
      at: new Date(dueAt).toISOString(),
      created_at: '',
    });
    const keys = { topic: tk.meta, scheduled: tk.scheduled, scheduledData: tk.scheduledData };
    // Rejects with the code's error when the topic does not exist.
    await scripts.schedule(f.world.redis, keys, { id, dueAt, messageJson: data });
    await f.world.redis.zadd(f.world.keys.scheduleDue, 'LT', dueAt, topic);
    return id;
  }

  it('delivers a scheduled message no earlier than its time, with the id it was given', async () => {
    const topic = await f.world.topic();
    await f.world.publisher(topic, f.receiver.url);
    await f.world.node();
    const dueAt = Date.now() + 1500;
    const id = await schedule(topic, { late: true }, dueAt);
    await f.world.publish(topic, ['now']);
    await waitFor(() => f.receiver.received.length === 2, 'both deliveries', 15000);
    const late = f.receiver.received.find((r) => r.headers['message-id'] === id);
    expect(late, 'the scheduled delivery').to.exist;
    expect(late!.at).to.be.at.least(dueAt);
    expect(f.receiver.received[0]!.body).to.equal('"now"');
    const tk = f.world.keys.topic(topic);
    expect(await f.world.redis.zcard(tk.scheduled)).to.equal(0);
    expect(await f.world.redis.hlen(tk.scheduledData)).to.equal(0);
    expect(await f.world.redis.hget(tk.ids, id)).to.be.a('string');
    expect(await f.world.redis.zscore(f.world.keys.scheduleDue, topic)).to.equal(null);
  });

  it('keeps the index on the next scheduled message after releasing the due ones', async () => {
    const topic = await f.world.topic();
    await f.world.publisher(topic, f.receiver.url);
    await f.world.node();
    const far = Date.now() + 3600_000;
    await schedule(topic, 'far', far);
    await schedule(topic, 'soon', Date.now() + 100);
    await waitFor(() => f.receiver.received.length === 1, 'the due one');
    expect(f.receiver.received[0]!.body).to.equal('"soon"');
    await waitFor(
      async () => Number(await f.world.redis.zscore(f.world.keys.scheduleDue, topic)) === far,
      'the index on the far one',
    );
  });

  it('the janitor indexes a scheduled message that was never indexed', async () => {
    const topic = await f.world.topic();
    await f.world.publisher(topic, f.receiver.url);
    const tk = f.world.keys.topic(topic);
    const data = JSON.stringify({ p: '"orphan"', a: '', at: '', created_at: '' });
    await scripts.schedule(
      f.world.redis,
      { topic: tk.meta, scheduled: tk.scheduled, scheduledData: tk.scheduledData },
      { id: 'orphan-id', dueAt: Date.now(), messageJson: data },
    );
    await f.world.node({ TRIM_INTERVAL_SECONDS: '1' });
    await waitFor(() => f.receiver.received.length === 1, 'the orphan delivered', 15000);
  });
});
