import { expect } from 'chai';
import { useWorld, waitFor } from './helpers.js';

describe('closing a consumer node', function () {
  const f = useWorld();

  it('finishes within its deadline even when Redis has gone away', async () => {
    const topic = await f.world.topic();
    await f.world.publisher(topic, f.receiver.url);
    const node = await f.world.node();
    await waitFor(() => node.pipelineCount === 1, 'the pipeline');
    await f.world.server.stop();
    const started = Date.now();
    await node.close(1000);
    // deadline (1 s) plus a few seconds per Redis step at most, never "for ever"
    expect(Date.now() - started).to.be.below(20_000);
  });

  it('is safe to call twice', async () => {
    const node = await f.world.node();
    await Promise.all([node.close(), node.close()]);
    await node.close();
  });
});
