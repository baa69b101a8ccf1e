/**
 * Per-minute counters of a topic, for the dashboard's charts
 * (`GET /api/stats/series`). One Redis hash per topic per hour
 * (`Keys.series(topic, hour)`, in the topic's hash slot), fields:
 *
 *   <minute>:r              messages received (inside ingest.lua; one HINCRBY per script call)
 *   <minute>:d:<publisher>  messages delivered (one HINCRBY per settle batch, inside settle.lua)
 *   <minute>:f:<publisher>  failed attempts (retry or dead; same)
 *   <minute>:s              the topic was sampled this minute (by the janitor's node, when the
 *                           topic had news or a backlog: see backlog-sampler.ts)
 *   <minute>:b:<publisher>  backlog in that sample, when not zero
 *   <minute>:a:<publisher>  age in seconds of the oldest undelivered message, same sample
 *
 * `<minute>` is the minute of the hour (0-59). A field exists only for a
 * minute that had something to count, so an idle topic costs nothing; each
 * write sets the key's expiry to `SERIES_TTL_SECONDS`, so the last day is
 * always there and nothing older stays.
 */

/** How long an hour's counters are kept after their last write: a day and two hours (the last day is complete). */
export const SERIES_TTL_SECONDS = 26 * 3600;

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;

/** Counted kinds: received, delivered, failed; sampled: backlog, oldest age (s), and the sample's mark. */
export type SeriesKind = 'r' | 'd' | 'f' | 'b' | 'a' | 's';

export interface SeriesSlot {
  /** Hours since the epoch: the hash's key. */
  readonly hour: number;
  /** Minute of the hour, 0-59: the field's prefix. */
  readonly minute: number;
}

export function seriesSlot(ms: number): SeriesSlot {
  const minutes = Math.floor(ms / MINUTE_MS);
  return { hour: Math.floor(minutes / 60), minute: minutes % 60 };
}

export function seriesField(minute: number, kind: SeriesKind, publisher?: string): string {
  return publisher === undefined ? `${minute}:${kind}` : `${minute}:${kind}:${publisher}`;
}
