/** Small helpers for reading what Redis answered, shared by the read paths (lookup, search, failing list). */
import type { ChainableCommander } from 'ioredis';

/** Runs a pipeline; throws the first command's error, returns the replies in order. */
export async function execOrThrow(pipeline: ChainableCommander): Promise<unknown[]> {
  const results = (await pipeline.exec()) ?? [];
  return results.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}

/** A stored payload as JSON; the raw text when it is not JSON (it always is when Postoffice wrote it). */
export function parsePayload(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
