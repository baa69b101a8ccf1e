/**
 * The checks a JSON schema cannot express, run by the routes after their
 * schema (see `schemas.ts`): lengths in bytes rather than characters,
 * nesting depth, and what an http target must be.
 */

/**
 * Limits of a message's attributes: Google Cloud Pub/Sub's own, since
 * attributes are forwarded to Pub/Sub publishers as they are.
 */
export const MAX_ATTRIBUTES = 100;
export const MAX_ATTRIBUTE_KEY_BYTES = 256;
export const MAX_ATTRIBUTE_VALUE_BYTES = 1024;

/** Deepest nesting of arrays and objects accepted in a payload (JSON.stringify recurses, and would overflow the stack). */
export const MAX_PAYLOAD_DEPTH = 100;

/** What is wrong with `s` as an http target: not an absolute http(s) URL with a host, or credentials in it. */
export function httpUrlProblem(s: string): string | undefined {
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    return 'must be an http or https URL';
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '')
    return 'must be an http or https URL';
  if (url.username !== '' || url.password !== '') return 'must not contain a user or password';
  return undefined;
}

/** Whether `s` is an absolute http:// or https:// URL with a host and no credentials (`user:password@`). */
export function isHttpUrl(s: string): boolean {
  return httpUrlProblem(s) === undefined;
}

/**
 * What is wrong with the byte lengths of attributes sent under `field`
 * (their schema has checked the rest), as [field, reason] pairs: a key too
 * long is named `<field>`, a value too long `<field>.<key>`.
 */
export function attributeProblems(value: Readonly<Record<string, string>>, field = 'attributes'): [string, string][] {
  const out: [string, string][] = [];
  for (const [key, v] of Object.entries(value)) {
    // A UTF-16 unit is at most 3 bytes of UTF-8: most strings need no count.
    if (key.length * 3 > MAX_ATTRIBUTE_KEY_BYTES && Buffer.byteLength(key) > MAX_ATTRIBUTE_KEY_BYTES)
      out.push([field, `must not have a key longer than ${MAX_ATTRIBUTE_KEY_BYTES} bytes`]);
    else if (v.length * 3 > MAX_ATTRIBUTE_VALUE_BYTES && Buffer.byteLength(v) > MAX_ATTRIBUTE_VALUE_BYTES)
      out.push([`${field}.${key}`, `must be at most ${MAX_ATTRIBUTE_VALUE_BYTES} bytes`]);
  }
  return out;
}

/** Whether `value` nests arrays and objects more than `max` levels deep (the recursion stops below `max + 1`). */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  return value !== null && typeof value === 'object' && deeper(value, 1, max);
}

/** Whether `v`, an object or array at nesting level `level`, or anything in it, is deeper than `max` levels. */
function deeper(v: object, level: number, max: number): boolean {
  if (level > max) return true;
  if (Array.isArray(v)) {
    for (const child of v as unknown[]) {
      if (child !== null && typeof child === 'object' && deeper(child, level + 1, max)) return true;
    }
    return false;
  }
  const record = v as Record<string, unknown>;
  for (const key in record) {
    const child = record[key];
    if (child !== null && typeof child === 'object' && deeper(child, level + 1, max)) return true;
  }
  return false;
}
