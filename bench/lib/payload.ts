/**
 * The messages every case sends, and the exact body Postoffice delivers for
 * each (the payload with the attributes merged in, as the http target sends
 * it), so that baselines post byte-for-byte the same bodies.
 */
export const TOPIC = 'bench';
export const ATTRIBUTES: Readonly<Record<string, string>> = { source: 'bench', kind: 'order.created' };
/** Default payload size, bytes of JSON (about what a webhook carries). */
export const PAYLOAD_BYTES = 256;

export function payload(i: number, bytes = PAYLOAD_BYTES): Record<string, unknown> {
  const base = { n: i, customer: `c-${i % 1000}`, amount: (i % 997) * 3 };
  const pad = Math.max(0, bytes - JSON.stringify(base).length - 10);
  return { ...base, pad: 'x'.repeat(pad) };
}

/** What the http target POSTs for `payload(i)`. */
export function deliveredBody(i: number, bytes = PAYLOAD_BYTES): string {
  return JSON.stringify({ ...payload(i, bytes), attributes: ATTRIBUTES });
}

/** Headers the http target sends, minus the per-message id. */
export const DELIVERY_HEADERS = { 'content-type': 'application/json', topic: TOPIC, 'user-agent': 'postoffice' };
