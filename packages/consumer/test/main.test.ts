import { expect } from 'chai';
import { startRedis, type RedisServer, killAll, startApp, type AppProcess } from '@postoffice/test-support';

describe('the consumer process', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  const apps: AppProcess[] = [];

  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await killAll(apps);
    await redis.stop();
  });

  it('refuses a bad environment with one line per problem naming each variable, and exits 1', async () => {
    const app = await startApp(
      'consumer',
      { REDIS_URL: 'http://nope', HEARTBEAT_SECONDS: 'soon', PORT: '4001' },
      { waitReady: false },
    );
    apps.push(app);
    expect(await app.exited).to.equal(1);
    expect(app.output()).to.match(/REDIS_URL="http:\/\/nope": expected a redis:\/\/ or rediss:\/\/ URL/);
    expect(app.output()).to.match(/HEARTBEAT_SECONDS="soon": expected a whole number/);
  });

  it('serves /healthz and /metrics, and exits 0 on SIGTERM', async () => {
    const app = await startApp('consumer', { REDIS_URL: redis.url });
    apps.push(app);
    const health = await fetch(`${app.url}/healthz`);
    expect(health.status).to.equal(200);
    expect(await health.json()).to.include({ status: 'ok' });
    const metrics = await (await fetch(`${app.url}/metrics`)).text();
    expect(metrics).to.contain('postoffice_deliveries_total');
    app.kill('SIGTERM');
    expect(await app.exited).to.equal(0);
  });

  it('answers 503 on /healthz while Redis is unreachable, and still 200 on /livez', async () => {
    const own = await startRedis();
    const app = await startApp('consumer', { REDIS_URL: own.url });
    apps.push(app);
    await own.stop();
    const res = await fetch(`${app.url}/healthz`);
    expect(res.status).to.equal(503);
    const live = await fetch(`${app.url}/livez`);
    expect(live.status).to.equal(200);
    app.kill('SIGKILL');
  });
});
