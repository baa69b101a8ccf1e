/**
 * Following Redis through failovers, reshards and restarts.
 *
 * A topology change shows itself as a reply or an error: a redirection
 * (`MOVED`, `ASK`), a slot in motion or a cluster without a quorum
 * (`TRYAGAIN`, `CLUSTERDOWN`), a demoted primary (`READONLY`), a replica
 * still loading or cut from its primary (`LOADING`, `MASTERDOWN`), too few
 * replicas for `min-replicas-to-write` (`NOREPLICAS`). Each of these says
 * that Redis did not run the command, so a write refused this way can be
 * sent again without being stored twice, and is, for a short while. A
 * command whose connection dropped after it was sent, or that timed out,
 * may have run: it is never sent again here (the caller answers 503 and
 * the client, with an `Idempotency-Key`, retries safely); nor is one that
 * could not be sent at all (Redis out of reach: a 503 at once). Both make
 * a cluster client read its slot map again (see `followTopology`).
 *
 * `replicatedWrite` runs one hash slot's writes in one pipeline with `WAIT`
 * behind them on the same connection, and sends the pipeline again (after
 * reading the slot map anew) while Redis refuses all of it, within a time
 * budget.
 */
import { Cluster, type ChainableCommander } from 'ioredis';
import { UnavailableError } from './errors.js';
import type { ScriptClient } from './scripts.js';

/** Replies by which Redis refuses a command without running it, because of where or when it was sent. */
const REFUSED_REPLY = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN|READONLY|LOADING|MASTERDOWN|NOREPLICAS)\b/;

/** ioredis' errors for a command it never sent (no connection, no slot map yet, every redirection refused). */
const NOT_SENT =
  /Stream isn't writeable|Cluster isn't ready|None of startup nodes is available|Too many Cluster redirections|Failed to refresh slots cache/;

/** What may also mean the node serving a slot changed: the slot map should be read again. */
const STALE_MAP = /^Connection is closed|^Command timed out|ECONNRESET|ECONNREFUSED/;

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : '';
}

/**
 * Whether Redis refused `err`'s command without running it, because of a
 * topology change under way: sending it again stores nothing twice, and it
 * may well be served in a moment. (A command the client could not send at
 * all, Redis being unreachable, is not retried: the producer answers 503 at
 * once, as it fails fast.)
 */
export function isRefusedUnrun(err: unknown): boolean {
  return REFUSED_REPLY.test(messageOf(err));
}

/** Whether `err` is a redirection or refusal of a topology change (also a cause of a 503, never of a 500). */
export function isTopologyError(err: unknown): boolean {
  return REFUSED_REPLY.test(messageOf(err));
}

/** Whether `err` suggests the client's slot map is out of date. */
export function suggestsStaleMap(err: unknown): boolean {
  const message = messageOf(err);
  return REFUSED_REPLY.test(message) || NOT_SENT.test(message) || STALE_MAP.test(message);
}

/** What `replicatedWrite` needs of the configuration. */
export interface Durability {
  /** `WAIT` for this many replicas after the writes (0: no `WAIT`). */
  readonly redisMinReplicas: number;
  /** `WAIT`'s own timeout. */
  readonly redisWaitTimeoutMs: number;
}

/** How long a write refused by a topology change is tried again before its caller answers 503. */
export const TOPOLOGY_RETRY_MS = 2000;

/** A write's replies, one per queued command (the `WAIT` left out), and the error to answer if the replicas fell short. */
export interface ReplicatedReplies {
  readonly replies: readonly [Error | null, unknown][];
  /** Set when `WAIT` did not see `redisMinReplicas` replicas take the writes (they are stored on the primary only). */
  readonly replicas?: Error;
}

/**
 * Runs the commands `fill` queues (all of one hash slot) in one pipeline,
 * followed by `WAIT redisMinReplicas` when that is above 0: the pipeline
 * goes to one node over one connection, so the `WAIT` covers exactly these
 * writes, after any redirection too. While Redis refuses every command
 * without running it (`isRefusedUnrun`), the slot map is read again and the
 * pipeline sent anew, for up to `retryMs`; a pipeline part of which ran is
 * never sent again. Throws only when the pipeline could not be sent at all.
 */
export async function replicatedWrite(
  client: ScriptClient,
  durability: Durability,
  fill: (pipeline: ChainableCommander) => void,
  retryMs = TOPOLOGY_RETRY_MS,
): Promise<ReplicatedReplies> {
  const waiting = durability.redisMinReplicas > 0;
  const deadline = Date.now() + retryMs;
  for (let attempt = 0; ; attempt++) {
    const pipeline = client.pipeline();
    fill(pipeline);
    const queued = pipeline.length;
    if (waiting) pipeline.wait(durability.redisMinReplicas, durability.redisWaitTimeoutMs);
    let results: [Error | null, unknown][];
    try {
      results = (await pipeline.exec()) ?? [];
    } catch (err) {
      if (!isRefusedUnrun(err) || Date.now() >= deadline) throw err;
      await settle(client, attempt);
      continue;
    }
    const replies = results.slice(0, queued);
    const refused = replies.length > 0 && replies.every(([err]) => err !== null && isRefusedUnrun(err));
    if (refused && Date.now() < deadline) {
      await settle(client, attempt);
      continue;
    }
    if (!waiting) return { replies };
    const wait = results[queued];
    let replicas: Error | undefined;
    if (!wait) replicas = new UnavailableError('the write was not executed');
    else if (wait[0]) replicas = wait[0];
    else if (typeof wait[1] !== 'number' || wait[1] < durability.redisMinReplicas) {
      replicas = new UnavailableError(
        `only ${String(wait[1])} of ${durability.redisMinReplicas} replicas acknowledged the write`,
      );
    }
    return replicas ? { replies, replicas } : { replies };
  }
}

/**
 * Runs `command` again while it throws a refusal (`isRefusedUnrun`), for up
 * to `retryMs`, reading the slot map anew in between: for a single write
 * that must not fail because a failover is under way.
 */
export async function untilServed<T>(
  client: ScriptClient,
  command: () => Promise<T>,
  retryMs = TOPOLOGY_RETRY_MS,
): Promise<T> {
  const deadline = Date.now() + retryMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await command();
    } catch (err) {
      if (!isRefusedUnrun(err) || Date.now() >= deadline) throw err;
      await settle(client, attempt);
    }
  }
}

/** Reads the slot map again (a cluster) and waits a little longer each time: 25, 50, 100 … 400 ms. */
async function settle(client: ScriptClient, attempt: number): Promise<void> {
  await refreshTopology(client);
  await new Promise((resolve) => setTimeout(resolve, Math.min(25 * 2 ** attempt, 400)));
}

/**
 * Reads a cluster's slot map again and resolves when done (failed or not);
 * resolves at once for one Redis (a Sentinel client finds the new primary
 * when it reconnects).
 */
export function refreshTopology(client: ScriptClient): Promise<void> {
  if (!(client instanceof Cluster)) return Promise.resolve();
  return new Promise((resolve) => client.refreshSlotsCache(() => resolve()));
}
