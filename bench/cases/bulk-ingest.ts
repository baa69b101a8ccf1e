/**
 * Bulk ingest: messages/s through POST /api/bulk_messages (100 a request)
 * under autocannon, against ioredis pipelining XADDs of the same messages
 * (100 a pipeline, the same number of pipelines in flight as connections)
 * on the same redis-server: the cost of Redis alone.
 */
import { Keys } from '@postoffice/shared';
import { cannon, type HttpLoad } from '../lib/load.js';
import { ATTRIBUTES, TOPIC, payload } from '../lib/payload.js';
import { median, round } from '../lib/stats.js';
import { bySize, type BenchCase } from '../lib/types.js';
import { measureUsage, type UsageReport } from '../lib/usage.js';
import { World } from '../lib/world.js';

const PER_REQUEST = 100;

export const bulkIngest: BenchCase = {
  name: 'bulk ingest',
  measure: 'msgs/s via /api/bulk_messages (100/request)',
  async run(ctx) {
    const seconds = bySize(ctx.mode, { full: 5, quick: 3, shape: 1 });
    const repeats = bySize(ctx.mode, { full: 3, quick: 1, shape: 1 });
    const connections = 8;
    const payloads = Array.from({ length: PER_REQUEST }, (_, i) => payload(i));
    const body = JSON.stringify({ topic: TOPIC, attributes: ATTRIBUTES, payload: payloads });
    const world = await World.start();
    try {
      const producer = await world.startProducer();
      await world.createTopic(TOPIC);
      const redis = world.client();
      const keys = new Keys('po:');
      const baselineKeys = new Keys('baseline:');
      const clean = async () => {
        const tk = keys.topic(TOPIC);
        await redis.del(tk.stream, tk.ids, baselineKeys.topic(TOPIC).stream);
      };
      const url = `${producer.url}/api/bulk_messages`;
      const payloadTexts = payloads.map((p) => JSON.stringify(p));
      const attrs = JSON.stringify(ATTRIBUTES);
      const xadd = async (s: number): Promise<number> => {
        const stream = baselineKeys.topic(TOPIC).stream;
        const end = performance.now() + s * 1000;
        let written = 0;
        const loop = async () => {
          while (performance.now() < end) {
            const p = redis.pipeline();
            // The fields Postoffice stores (payload, attributes): the same entries, without any service around them.
            for (const text of payloadTexts) p.xadd(stream, '*', 'p', text, 'a', attrs);
            await p.exec();
            written += PER_REQUEST;
          }
        };
        const started = performance.now();
        await Promise.all(Array.from({ length: connections }, loop));
        return round(written / ((performance.now() - started) / 1000), 1);
      };
      ctx.log('warm-up');
      await cannon({ url, body, connections, seconds: 1 });
      await xadd(1);
      await clean();
      const costs: UsageReport[] = [];
      const po: HttpLoad[] = [];
      const base: number[] = [];
      for (let r = 0; r < repeats; r++) {
        base.push(await xadd(seconds));
        await clean();
        const usage = await measureUsage({ producer: producer.child.pid! }, redis);
        const load = await cannon({ url, body, connections, seconds });
        po.push(load);
        costs.push(await usage(load.requests * PER_REQUEST));
        await clean();
        ctx.log(`run ${r + 1}/${repeats}: postoffice ${po[r]!.reqPerSec * PER_REQUEST} msg/s, XADD ${base[r]} msg/s`);
      }
      const mReq = median(po.map((l) => l.reqPerSec));
      const f = po.find((l) => l.reqPerSec === mReq)!;
      if (f.non2xx + f.errors > 0) throw new Error(`postoffice answered ${f.non2xx} non-2xx, ${f.errors} errors`);
      const value = round(f.reqPerSec * PER_REQUEST, 0);
      const b = median(base);
      return {
        figure: { label: 'postoffice', value, unit: 'msg/s', extra: { p99_ms: f.p99Ms, req_per_s: f.reqPerSec } },
        baseline: { label: 'ioredis pipelined XADD', value: b, unit: 'msg/s' },
        ratio: round(value / b, 3),
        goal: '>= 0.9x',
        met: value / b >= 0.9,
        config: {
          tool: 'autocannon (in the bench process); baseline in the bench process on one ioredis connection',
          connections,
          messages_per_request: PER_REQUEST,
          seconds_per_run: seconds,
          repeats,
          body_bytes: body.length,
          kept: 'median run of each side',
        },
        details: { postoffice_runs: po, baseline_runs: base, cost_per_message: costs },
      };
    } finally {
      await world.close();
    }
  },
};
