import { expect } from 'chai';
import { commandsProcessed, createWorld, infoCalls, infoSum, waitFor, type World } from './helpers.js';

const connectedClients = (world: World): Promise<number> => infoSum(world.redis, 'clients', 'connected_clients');

/** Redis commands per second over `ms`, not counting the INFO calls that measure it (one per master). */
async function idleRate(world: World, ms: number): Promise<number> {
  const before = await commandsProcessed(world.redis);
  await new Promise((r) => setTimeout(r, ms));
  const after = await commandsProcessed(world.redis);
  return ((after - before - infoCalls(world.redis)) * 1000) / ms;
}

describe('wake-up cost with many publishers', function () {
  this.timeout(180_000);
  let world: World;

  before(async () => {
    world = await createWorld();
  });
  after(async () => {
    await world.close();
  });
  afterEach(async () => {
    await world.closeNodes();
  });

  it('keeps connections and idle Redis commands per second flat from 1 to 3,000 publishers', async () => {
    const first = await world.topic('t-0');
    await world.publisher(first, 'http://127.0.0.1:9/never');
    const node = await world.node({ HEARTBEAT_SECONDS: '1', RETRY_POLL_MS: '200' });
    await waitFor(() => node.pipelineCount === 1, 'one pipeline');
    const connectionsOne = await connectedClients(world);
    const rateOne = await idleRate(world, 3000);

    for (let t = 1; t < 300; t++) await world.topic(`t-${t}`);
    for (let i = 1; i < 3000; i++) await world.publisher(`t-${i % 300}`, `http://127.0.0.1:9/p${i}`);
    await waitFor(() => node.pipelineCount === 3000, '3,000 pipelines', 60_000);
    // Let the start-up reads of the new pipelines finish.
    await waitFor(async () => (await idleRate(world, 500)) < 50, 'the node to settle', 60_000);
    const connectionsMany = await connectedClients(world);
    const rateMany = await idleRate(world, 3000);

    if (process.env.PO_TEST_REPORT) console.log({ connectionsOne, connectionsMany, rateOne, rateMany });
    expect(connectionsMany).to.equal(connectionsOne);
    expect(rateMany).to.be.below(30);
    expect(rateMany - rateOne).to.be.below(5);
  });
});
