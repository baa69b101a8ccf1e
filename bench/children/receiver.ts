/**
 * A no-op HTTP receiver in its own process: answers every POST with 200
 * (after BENCH_DELAY_MS, when set) and records when each request arrived.
 * With BENCH_LATENCY=1 it also reads the payload's `t` (the publish time,
 * wall-clock ms) and records publish -> received latency. With
 * BENCH_FAIL_FIRST=1 it answers 503 to the first request of each
 * `message-id` (and records only the 200s): every message needs one retry.
 * With BENCH_COUNT_IDS=1, a request with a `message-ids` header (a batch)
 * counts as one receipt per id it names.
 *
 * Commands: `reset`; `stats` -> { count, at: { [k]: time of the k-th receipt } }
 * for the asked ks; `latency` -> percentiles of the recorded latencies;
 * `firstSentFrom` (with BENCH_LATENCY=1) -> arrival time of the first
 * receipt of a message published at or after `from` (wall-clock ms), or null.
 */
import { createServer } from 'node:http';
import { serve, wallNow } from '../lib/child.js';
import { summarize } from '../lib/stats.js';

const delayMs = Number(process.env.BENCH_DELAY_MS ?? 0);
const withLatency = process.env.BENCH_LATENCY === '1';
const failFirst = process.env.BENCH_FAIL_FIRST === '1';
const countIds = process.env.BENCH_COUNT_IDS === '1';
const seen = new Set<string>();
const T_FIELD = /"t":(\d+(?:\.\d+)?)/;

let times: number[] = [];
let latencies: number[] = [];
/** With BENCH_LATENCY=1: each receipt's send time (the payload's `t`) and arrival time, in arrival order. */
let sentAndArrived: [sent: number, arrived: number][] = [];

const server = createServer((req, res) => {
  let body = withLatency ? '' : undefined;
  if (withLatency) req.setEncoding('utf8');
  req.on('data', (chunk: string) => {
    if (body !== undefined) body += chunk;
  });
  req.on('end', () => {
    if (failFirst) {
      const id = String(req.headers['message-id']);
      if (!seen.has(id)) {
        seen.add(id);
        res.statusCode = 503;
        res.end();
        return;
      }
    }
    const now = wallNow();
    times.push(now);
    const ids = countIds ? req.headers['message-ids'] : undefined;
    if (typeof ids === 'string') for (let i = ids.split(',').length; i > 1; i--) times.push(now);
    if (body !== undefined) {
      const m = T_FIELD.exec(body);
      if (m) {
        latencies.push(now - Number(m[1]));
        sentAndArrived.push([Number(m[1]), now]);
      }
    }
    if (delayMs > 0) setTimeout(() => res.end(), delayMs);
    else res.end();
  });
});
server.keepAliveTimeout = 60_000;

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  serve(
    { url: `http://127.0.0.1:${port}` },
    {
      reset: () => {
        seen.clear();
        times = [];
        latencies = [];
        sentAndArrived = [];
      },
      stats: (args) => {
        const at: Record<string, number | null> = {};
        for (const k of (args.at as number[] | undefined) ?? []) at[k] = times[k - 1] ?? null;
        return { count: times.length, at, last: times[times.length - 1] ?? null };
      },
      latency: () => ({ count: latencies.length, ...summarize(latencies) }),
      firstSentFrom: (args) => sentAndArrived.find(([sent]) => sent >= (args.from as number))?.[1] ?? null,
      /** The slowest receipts, with their arrival time relative to the first: where the tail comes from. */
      slowest: (args) => {
        const n = (args.n as number | undefined) ?? 10;
        const first = times[0] ?? 0;
        return latencies
          .map((ms, i) => ({ ms: Math.round(ms * 10) / 10, at_ms: Math.round((times[i] ?? first) - first) }))
          .sort((a, b) => b.ms - a.ms)
          .slice(0, n);
      },
    },
  );
});
