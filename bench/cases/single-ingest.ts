/**
 * Single ingest: POST /api/messages under autocannon, against a bare fastify
 * route that does nothing, same load, same machine. Warm-up runs of both,
 * then the two alternate; the median run of each is kept.
 */
import { startChild } from '../lib/child.js';
import { cannon, type HttpLoad } from '../lib/load.js';
import { ATTRIBUTES, TOPIC, payload } from '../lib/payload.js';
import { median, round } from '../lib/stats.js';
import { bySize, type BenchCase } from '../lib/types.js';
import { measureUsage, type UsageReport } from '../lib/usage.js';
import { World } from '../lib/world.js';

export const singleIngest: BenchCase = {
  name: 'single ingest',
  measure: 'POST /api/messages, req/s',
  async run(ctx) {
    const seconds = bySize(ctx.mode, { full: 10, quick: 3, shape: 1 });
    const repeats = bySize(ctx.mode, { full: 3, quick: 2, shape: 1 });
    const warmSeconds = bySize(ctx.mode, { full: 3, quick: 1, shape: 1 });
    const connections = 32;
    const body = JSON.stringify({ topic: TOPIC, payload: payload(1), attributes: ATTRIBUTES });
    const world = await World.start();
    const bare = await startChild<{ url: string }>('bare-fastify');
    try {
      const producer = await world.startProducer();
      await world.createTopic(TOPIC);
      const po = `${producer.url}/api/messages`;
      const base = `${bare.ready.url}/api/messages`;
      ctx.log(`warm-up ${warmSeconds} s each`);
      await cannon({ url: base, body, connections, seconds: warmSeconds });
      await cannon({ url: po, body, connections, seconds: warmSeconds });
      const redis = world.client();
      const costs: UsageReport[] = [];
      const bareCosts: UsageReport[] = [];
      const runs: { po: HttpLoad[]; base: HttpLoad[] } = { po: [], base: [] };
      for (let r = 0; r < repeats; r++) {
        const bareUsage = await measureUsage({ 'bare fastify': bare.pid }, redis);
        const bareLoad = await cannon({ url: base, body, connections, seconds });
        runs.base.push(bareLoad);
        bareCosts.push(await bareUsage(bareLoad.requests));
        const usage = await measureUsage({ producer: producer.child.pid! }, redis);
        const load = await cannon({ url: po, body, connections, seconds });
        runs.po.push(load);
        costs.push(await usage(load.requests));
        ctx.log(`run ${r + 1}/${repeats}: postoffice ${runs.po[r]!.reqPerSec} req/s, bare ${runs.base[r]!.reqPerSec}`);
      }
      const pick = (list: HttpLoad[]) => {
        const m = median(list.map((l) => l.reqPerSec));
        return list.find((l) => l.reqPerSec === m)!;
      };
      const f = pick(runs.po);
      const b = pick(runs.base);
      if (f.non2xx + f.errors > 0) throw new Error(`postoffice answered ${f.non2xx} non-2xx, ${f.errors} errors`);
      const ratio = round(f.reqPerSec / b.reqPerSec, 3);
      return {
        figure: { label: 'postoffice', value: f.reqPerSec, unit: 'req/s', extra: { p50_ms: f.p50Ms, p99_ms: f.p99Ms } },
        baseline: {
          label: 'bare fastify',
          value: b.reqPerSec,
          unit: 'req/s',
          extra: { p50_ms: b.p50Ms, p99_ms: b.p99Ms },
        },
        ratio,
        goal: '>= 0.85x',
        met: ratio >= 0.85,
        config: {
          tool: 'autocannon (in the bench process)',
          connections,
          seconds_per_run: seconds,
          repeats,
          warm_up_seconds: warmSeconds,
          body_bytes: body.length,
          kept: 'median run of each side',
        },
        details: { runs, cost_per_request: costs, baseline_cost_per_request: bareCosts },
      };
    } finally {
      await bare.close();
      await world.close();
    }
  },
};
