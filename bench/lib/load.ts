/** Load generation and receipt measurement shared by the cases. */
import autocannon from 'autocannon';
import type { Child } from './child.js';
import { round } from './stats.js';

export interface HttpLoad {
  /** Requests answered 2xx, per second. */
  readonly reqPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly requests: number;
}

/** One autocannon run (in this process; the server under load is another process). */
export async function cannon(options: {
  url: string;
  body: string;
  connections: number;
  seconds: number;
  pipelining?: number;
}): Promise<HttpLoad> {
  const result = await autocannon({
    url: options.url,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: options.body,
    connections: options.connections,
    pipelining: options.pipelining ?? 1,
    duration: options.seconds,
  });
  const ok = result['2xx'];
  return {
    reqPerSec: round(ok / options.seconds, 1),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    requests: result.requests.total,
  };
}

export interface ReceiverStats {
  count: number;
  at: Record<string, number | null>;
  last: number | null;
}

/**
 * Waits until the receiver has `total` requests, then returns the rate
 * between receipt number `warm` and receipt number `total` (the first
 * receipts, while processes warm up, are left out).
 */
export async function receiptRate(
  receiver: Child,
  total: number,
  warm: number,
  timeoutMs: number,
): Promise<{ perSec: number; seconds: number }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await receiver.call<ReceiverStats>('stats', { at: [warm, total] });
    if (s.count >= total) {
      const from = s.at[warm]!;
      const to = s.at[total]!;
      const seconds = (to - from) / 1000;
      return { perSec: round((total - warm) / seconds, 1), seconds: round(seconds, 3) };
    }
    if (Date.now() > deadline) throw new Error(`the receiver got ${s.count} of ${total} within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Calls `send(i)` at `ratePerSec` for `seconds`, without waiting for answers; resolves when all have answered. */
export async function paced(
  ratePerSec: number,
  seconds: number,
  send: (i: number) => Promise<void>,
): Promise<{ sent: number; achievedPerSec: number; failed: number }> {
  const total = Math.round(ratePerSec * seconds);
  const started = performance.now();
  const inFlight = new Set<Promise<void>>();
  let sent = 0;
  let failed = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * ratePerSec));
    while (sent < due) {
      const p: Promise<void> = send(sent++).then(
        () => {
          inFlight.delete(p);
        },
        () => {
          failed++;
          inFlight.delete(p);
        },
      );
      inFlight.add(p);
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  const sendSeconds = (performance.now() - started) / 1000;
  await Promise.all(inFlight);
  return { sent, achievedPerSec: round(sent / sendSeconds, 1), failed };
}
