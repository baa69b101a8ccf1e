/**
 * Pure text helpers of the web UI, with no DOM: relative times, targets
 * shortened in the middle, quantiles. Tested in Node (`test/ui/helpers.test.ts`).
 */

/** "3 min ago", "in 2 h", "just now": a time relative to `now`. */
export function relativeTime(iso: string, now = Date.now()): string {
  const ms = new Date(iso).getTime() - now;
  if (Number.isNaN(ms)) return iso;
  const s = Math.abs(ms) / 1000;
  if (s < 10) return 'just now';
  let text: string;
  if (s < 60) text = `${Math.round(s)} s`;
  else if (s < 3600) text = `${Math.round(s / 60)} min`;
  else if (s < 86400) text = `${Math.round(s / 3600)} h`;
  else text = `${Math.round(s / 86400)} d`;
  return ms < 0 ? `${text} ago` : `in ${text}`;
}

/**
 * A target shortened in the middle, so its host and the end of its path
 * stay visible: `http://127.0.0.1:27500/…/ok-endpoint`. Short ones as they are.
 */
export function shortTarget(target: string, max = 56): string {
  if (target.length <= max) return target;
  let url: URL | undefined;
  try {
    url = /^https?:\/\//i.test(target) ? new URL(target) : undefined;
  } catch {
    url = undefined;
  }
  if (url) {
    const parts = url.pathname.split('/').filter(Boolean);
    const last = parts[parts.length - 1] ?? '';
    const tail = last + url.search;
    const short = parts.length > 1 ? `${url.origin}/…/${tail}` : `${url.origin}/${tail}`;
    if (short.length <= max) return short;
    if (url.origin.length + 6 < max)
      return `${url.origin}/…${short.slice(short.length - (max - url.origin.length - 2))}`;
  }
  const keep = max - 1;
  const head = Math.ceil(keep / 2);
  return `${target.slice(0, head)}…${target.slice(target.length - (keep - head))}`;
}

/** The `q` quantile (nearest rank) of sorted numbers. */
export function quantile(sorted: readonly number[], q: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1];
}
