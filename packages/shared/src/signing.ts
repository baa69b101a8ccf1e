/**
 * Signing secrets of http publishers, in the Standard Webhooks format:
 * `whsec_` then the key in base64. A publisher has at most two (a
 * rotation: the new one and the old one).
 */

export const SECRET_PREFIX = 'whsec_';
export const MAX_SECRETS = 2;
/** Bounds of a decoded key, in bytes. */
export const MIN_KEY_BYTES = 24;
export const MAX_KEY_BYTES = 64;

/** The key of a `whsec_<base64>` secret, or undefined when the secret is malformed or its key too short or long. */
export function secretKey(secret: string): Buffer | undefined {
  if (!secret.startsWith(SECRET_PREFIX)) return undefined;
  const text = secret.slice(SECRET_PREFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return undefined;
  const key = Buffer.from(text, 'base64');
  // A round trip refuses bad padding and stray bits.
  if (key.toString('base64') !== text) return undefined;
  if (key.length < MIN_KEY_BYTES || key.length > MAX_KEY_BYTES) return undefined;
  return key;
}
