/**
 * The fault suite's history and its judge (`@postoffice/test-support/history`):
 * every publish a case made (when it was sent, when and how it was
 * answered) and every delivery each publisher's receiver answered 2xx, and
 * `checkHistory`, which says what the promises of docs/reliability.md make
 * of them:
 *
 * - every message answered 201 reached every publisher (none lost);
 * - an ordered publisher's deliveries follow stream order: a message may
 *   come again right after itself (its outcome was not recorded before a
 *   takeover), never after a later one;
 * - no answer was a 5xx other than 503 (unavailable, with Retry-After);
 * - each publisher's duplicates stay within the bound: the messages it
 *   first received within the fault window (the fault's start − 1 s to
 *   recovery, or at most 5 s after the fault's end, + 1 s: what was
 *   delivered while Redis failed over may have had its acknowledgement
 *   lost) plus what its nodes can have in flight at once
 *   (`maxInFlight`: concurrency × consumer nodes).
 *
 * Pure: no clock, no I/O; the unit test feeds it made-up histories.
 */

/** One message answered 2xx by a receiver. */
export interface Delivery {
  readonly id: string;
  /** When the answer was sent, ms since the epoch. */
  readonly at: number;
}

/** One `POST /api/messages` and how it ended. */
export interface Publish {
  /** When the request was sent, ms since the epoch. */
  readonly sentAt: number;
  /** When its answer (or error) came. */
  readonly at: number;
  /** The HTTP status; 0 when no answer came (the error says why). */
  readonly status: number;
  /** The message id of a 201. */
  readonly id?: string;
  readonly error?: string;
}

/** A publisher of the topic, as the checker judges it. */
export interface PublisherHistory {
  readonly name: string;
  readonly ordered: boolean;
  /** Most deliveries it can have in flight at once across the consumer nodes: concurrency × nodes. */
  readonly maxInFlight: number;
  /** What its receiver answered 2xx, in order. */
  readonly deliveries: readonly Delivery[];
}

/** When the fault began (the first failure caused) and when the last of its actions was done (a restart, a thaw). */
export interface FaultTimes {
  readonly start: number;
  readonly end: number;
}

export interface PublisherVerdict {
  readonly lost: number;
  /** Some of the ids lost, for the report. */
  readonly lostIds: readonly string[];
  /** Deliveries beyond the first of each message. */
  readonly duplicates: number;
  /** Messages first delivered within the fault window. */
  readonly firstInWindow: number;
  /** firstInWindow + maxInFlight. */
  readonly bound: number;
  /** Deliveries that came after a later message (ordered publishers only), as "previous then this". */
  readonly outOfOrder: readonly string[];
  /** Delivered messages that were not answered 201 (stored although the answer was 503 or lost). */
  readonly unacknowledgedDelivered: number;
}

export interface Verdict {
  readonly acknowledged: number;
  /** Answers by status ("0" for connection errors). */
  readonly statuses: Readonly<Record<string, number>>;
  readonly unavailable: number;
  /** 5xx other than 503. */
  readonly serverErrors: number;
  /** Statuses other than 201, 503 and 5xx. */
  readonly otherStatuses: number;
  readonly connectionErrors: number;
  /** When the system was back: a message sent after the fault's end was delivered to every publisher (ms since the epoch). */
  readonly recoveredAt: number;
  /** The window whose first deliveries count towards the duplicate bound. */
  readonly window: { readonly from: number; readonly to: number };
  /** From the fault's start to the first 201 of a request sent after it, ms (undefined: none). */
  readonly first201Ms: number | undefined;
  /** From the fault's start to the first delivery of a message sent after it and answered 201, ms, per publisher. */
  readonly firstDeliveryMs: Readonly<Record<string, number | undefined>>;
  readonly publishers: Readonly<Record<string, PublisherVerdict>>;
  /** Each broken promise, in words; empty when the history is sound. */
  readonly problems: readonly string[];
}

/** How long after the fault's end an acknowledgement may still go to a primary about to be demoted, ms. */
const SETTLE_GRACE_MS = 5000;

/** Margin on either side of the fault window, ms. */
export const WINDOW_MARGIN_MS = 1000;

const STREAM_POSITION = /(\d+)-(\d+)$/;

/** Where a message id (`<topic>.<ms>-<seq>`) sits in its stream, comparable as a bigint. */
export function streamPosition(id: string): bigint {
  const m = STREAM_POSITION.exec(id);
  if (!m) throw new Error(`not a stream message id: ${id}`);
  return (BigInt(m[1] as string) << 64n) + BigInt(m[2] as string);
}

export function checkHistory(input: {
  readonly publishes: readonly Publish[];
  readonly publishers: readonly PublisherHistory[];
  readonly fault: FaultTimes;
  /** A message's place in its stream (default `streamPosition`). */
  readonly position?: (id: string) => bigint;
}): Verdict {
  const { publishes, publishers, fault } = input;
  const position = input.position ?? streamPosition;
  const problems: string[] = [];

  const statuses: Record<string, number> = {};
  for (const p of publishes) statuses[p.status] = (statuses[p.status] ?? 0) + 1;
  const count = (test: (status: number) => boolean): number =>
    publishes.reduce((n, p) => n + (test(p.status) ? 1 : 0), 0);
  const serverErrors = count((s) => s >= 500 && s !== 503);
  if (serverErrors > 0) {
    const which = Object.entries(statuses).filter(([s]) => Number(s) >= 500 && Number(s) !== 503);
    problems.push(`${serverErrors} answer(s) 5xx other than 503: ${which.map(([s, n]) => `${s} ×${n}`).join(', ')}`);
  }

  const acknowledged = publishes.filter((p) => p.status === 201 && p.id !== undefined);
  const acknowledgedIds = new Set(acknowledged.map((p) => p.id as string));

  // Recovery: a message sent after the fault's end, answered 201, delivered to every publisher.
  const firstDeliveryAfter = (since: number): Record<string, number | undefined> => {
    const sentAfter = new Set(acknowledged.filter((p) => p.sentAt >= since).map((p) => p.id as string));
    return Object.fromEntries(
      publishers.map((pub) => [pub.name, pub.deliveries.find((d) => sentAfter.has(d.id))?.at] as const),
    );
  };
  const afterEnd = Object.values(firstDeliveryAfter(fault.end));
  const recoveredAt = afterEnd.every((t) => t !== undefined) ? Math.max(fault.end, ...afterEnd) : Infinity;
  if (recoveredAt === Infinity) problems.push('no message sent after the fault ended reached every publisher');
  // Acknowledgements a failover loses were written before the new primary served the slot; the fault ends once it
  // does (and the old one is back), so the window closes a little after that, whatever backlog is left to deliver.
  const window = {
    from: fault.start - WINDOW_MARGIN_MS,
    to: Math.min(recoveredAt, fault.end + SETTLE_GRACE_MS) + WINDOW_MARGIN_MS,
  };
  const first201 = acknowledged.filter((p) => p.sentAt >= fault.start).reduce((t, p) => Math.min(t, p.at), Infinity);
  const firstDeliveryMs = Object.fromEntries(
    Object.entries(firstDeliveryAfter(fault.start)).map(([name, at]) => [
      name,
      at === undefined ? undefined : at - fault.start,
    ]),
  );

  const verdicts: Record<string, PublisherVerdict> = {};
  for (const pub of publishers) {
    const counts = new Map<string, number>();
    let firstInWindow = 0;
    for (const d of pub.deliveries) {
      const seen = counts.get(d.id) ?? 0;
      counts.set(d.id, seen + 1);
      if (seen === 0 && d.at >= window.from && d.at <= window.to) firstInWindow++;
    }
    const lostIds = [...acknowledgedIds].filter((id) => !counts.has(id));
    const duplicates = pub.deliveries.length - counts.size;
    const bound = firstInWindow + pub.maxInFlight;
    const outOfOrder: string[] = [];
    if (pub.ordered) {
      for (let i = 1; i < pub.deliveries.length; i++) {
        const [prev, cur] = [pub.deliveries[i - 1] as Delivery, pub.deliveries[i] as Delivery];
        if (position(cur.id) < position(prev.id)) outOfOrder.push(`${prev.id} then ${cur.id}`);
      }
    }
    const unacknowledgedDelivered = [...counts.keys()].filter((id) => !acknowledgedIds.has(id)).length;
    verdicts[pub.name] = {
      lost: lostIds.length,
      lostIds: lostIds.slice(0, 10),
      duplicates,
      firstInWindow,
      bound,
      outOfOrder: outOfOrder.slice(0, 10),
      unacknowledgedDelivered,
    };
    if (lostIds.length > 0) {
      problems.push(
        `${pub.name}: ${lostIds.length} message(s) answered 201 never delivered (${lostIds.slice(0, 3).join(', ')})`,
      );
    }
    if (outOfOrder.length > 0) {
      problems.push(
        `${pub.name}: ${outOfOrder.length} delivery(ies) out of order (${outOfOrder.slice(0, 3).join('; ')})`,
      );
    }
    if (duplicates > bound) {
      problems.push(
        `${pub.name}: ${duplicates} duplicates, above the bound ${bound} (${firstInWindow} first delivered in the fault window + ${pub.maxInFlight} in flight)`,
      );
    }
  }

  return {
    acknowledged: acknowledged.length,
    statuses,
    unavailable: count((s) => s === 503),
    serverErrors,
    otherStatuses: count((s) => s !== 0 && s !== 201 && s < 500),
    connectionErrors: count((s) => s === 0),
    recoveredAt,
    window,
    first201Ms: first201 === Infinity ? undefined : first201 - fault.start,
    firstDeliveryMs,
    publishers: verdicts,
    problems,
  };
}
