/**
 * The Redis key layout. This is the only module that spells a key.
 *
 * Every key that belongs to one topic carries the topic in a hash tag
 * (`po:{orders}:stream`) so that all of a topic's keys live in one slot and
 * the Lua scripts that touch them run unchanged on Redis Cluster. Global
 * keys (the topic list, the publisher index, cluster bookkeeping) hold no
 * per-message data and are never touched by the same script as topic keys.
 */
export interface TopicKeys {
  /** hash: the topic record (id, name, origin_host, created_at, received; recovered and the last recovery, see `Store`). */
  readonly meta: string;
  /** stream: the topic's messages; one consumer group per publisher. */
  readonly stream: string;
  /**
   * hash: message id -> stream entry id, only for messages whose id was given
   * before they entered the stream (scheduled messages, pull replacements)
   * and for messages written before ids named their entry (UUIDs).
   */
  readonly ids: string;
  /** hash: publisher id -> publisher JSON. */
  readonly publishers: string;
  /** hash: "type target" -> publisher id, for the uniqueness check. */
  readonly targets: string;
  /** sorted set: scheduled message id (UUID) -> time (ms) it is due to enter the stream. */
  readonly scheduled: string;
  /** hash: scheduled message id -> JSON {p, a, at, created_at}, until it enters the stream. */
  readonly scheduledData: string;
  /** hash: outbox id -> JSON list of replacement messages (pull `replace`) still to be added to their topics. */
  readonly outbox: string;
  /** hash: source id -> source JSON (the external queues that feed the topic). */
  readonly sources: string;
}

export interface PublisherKeys {
  /** sorted set: stream entry id -> due time (ms) of its next attempt. */
  readonly retries: string;
  /** hash: stream entry id -> attempts made so far and the last one (`attempt-record.ts`), while it waits for a retry. */
  readonly attempts: string;
  /** sorted set: stream entry id -> time (ms) it became a dead letter. */
  readonly dead: string;
  /**
   * sorted set: the attempt log. One member per settle batch (or part of
   * one), holding every attempt of the batch compactly, scored by the
   * receipt time of its oldest message (`attempt-record.ts`).
   */
  readonly log: string;
  /** hash: stream entry id -> JSON note of an exception (dead reason, operator action, deletion, replacement). */
  readonly notes: string;
  /** hash: stream entry id -> its current lease JSON (pull publishers: token, worker, expiry). */
  readonly leases: string;
  /** hash: the cluster-wide rate limit's token bucket (tokens, last refill ms). */
  readonly bucket: string;
  /**
   * sorted set: operator actions on a range of the publisher's messages at
   * once (purge, seek), one JSON record each, scored by the receipt time
   * (ms) of the newest message the record covers (`flow-ranges.ts`).
   */
  readonly ranges: string;
  /**
   * hash: counters of messages acknowledged without being delivered: `skipped`
   * (the filter did not match), `deleted` (from the failing list). `GET /api/stats`
   * keeps them apart from the delivered.
   */
  readonly counts: string;
  /**
   * string: the circuit breaker of the publisher while it is not closed, JSON
   * `{state, since, next_probe_at, failures, node}` written by the node whose
   * pipeline moved it (open or probing); deleted when the circuit closes, and
   * expiring shortly after its next probe was due, so a node that died leaves
   * nothing behind for long.
   */
  readonly circuit: string;
}

export class Keys {
  constructor(readonly prefix = 'po:') {}

  topic(name: string): TopicKeys {
    const base = `${this.prefix}{${name}}`;
    return {
      meta: `${base}:topic`,
      stream: `${base}:stream`,
      ids: `${base}:ids`,
      publishers: `${base}:publishers`,
      targets: `${base}:targets`,
      scheduled: `${base}:scheduled`,
      scheduledData: `${base}:scheduled-data`,
      outbox: `${base}:outbox`,
      sources: `${base}:sources`,
    };
  }

  publisher(topic: string, publisherId: string): PublisherKeys {
    const base = `${this.prefix}{${topic}}:p:${publisherId}`;
    return {
      retries: `${base}:retries`,
      attempts: `${base}:attempts`,
      dead: `${base}:dead`,
      log: `${base}:log`,
      notes: `${base}:notes`,
      leases: `${base}:leases`,
      bucket: `${base}:bucket`,
      ranges: `${base}:ranges`,
      counts: `${base}:counts`,
      circuit: `${base}:circuit`,
    };
  }

  /**
   * hash: one hour of the topic's per-minute counters (`series.ts`); `hour`
   * is the hour's number since the epoch (ms / 3,600,000). Fields are
   * `<minute of the hour>:<kind>[:<publisher id>]`; each key expires
   * `SERIES_TTL_SECONDS` after it was last written.
   */
  series(topic: string, hour: number): string {
    return `${this.prefix}{${topic}}:series:${hour}`;
  }

  /** string: the lease of one of a publisher's slots, holding its owner's `<node id> <token>`. */
  slotLease(topic: string, publisherId: string, slot: number): string {
    return `${this.prefix}{${topic}}:p:${publisherId}:lease:${slot}`;
  }

  /**
   * hash: publisher id -> delivery state JSON, for one message; expires after
   * the retention period. Written only by versions before the attempt log;
   * read until the last of them expires.
   */
  history(topic: string, messageId: string): string {
    return `${this.prefix}{${topic}}:h:${messageId}`;
  }

  /** string: the first answer to a request with this `Idempotency-Key` on this topic; expires after 24 h. */
  idempotency(topic: string, key: string): string {
    return `${this.prefix}{${topic}}:idem:${key}`;
  }

  /**
   * string: a message that came from outside (a recovered message, a message
   * read from a source), written once: the ingest script's idempotency key
   * for it, `digest` naming its origin and its id there (see `OnceWriter`).
   */
  once(topic: string, digest: string): string {
    return `${this.prefix}{${topic}}:once:${digest}`;
  }

  /** hash: a source's counters and state (read, ingested, failed, last error), written by the node reading it. */
  sourceStats(topic: string, sourceId: string): string {
    return `${this.prefix}{${topic}}:source:${sourceId}`;
  }

  /** string: the lease of a source, holding its reader's `<node id> <token>`. */
  sourceLease(topic: string, sourceId: string): string {
    return `${this.prefix}{${topic}}:source:${sourceId}:lease`;
  }

  /**
   * set: names of the topics with `recovery_enabled` (what message recovery
   * reads each round, rather than every topic).
   */
  get recoveryTopics(): string {
    return `${this.prefix}recovery-topics`;
  }

  /** hash: source id -> topic name. */
  get sourceIndex(): string {
    return `${this.prefix}source-topics`;
  }

  /** hash: "<type> <queue url or subscription>" -> source id: one source per external queue. */
  get sourceOrigins(): string {
    return `${this.prefix}source-origins`;
  }

  /** sorted set: topic name -> earliest due time (ms) of its scheduled messages (may be early, never late). */
  get scheduleDue(): string {
    return `${this.prefix}schedule-due`;
  }

  /** stream: one entry per successful delivery (the audit trail), when AUDIT_STREAM is on. */
  get auditStream(): string {
    return `${this.prefix}audit`;
  }

  /** set: every topic name. */
  get topics(): string {
    return `${this.prefix}topics`;
  }

  /** hash: publisher id -> topic name. */
  get publisherIndex(): string {
    return `${this.prefix}publisher-topics`;
  }

  /** string: counter for topic, publisher and source ids. */
  sequence(kind: 'topic' | 'publisher' | 'source'): string {
    return `${this.prefix}seq:${kind}`;
  }

  /** string: failed logins from one client address (an IPv6 /64), expiring at the end of the throttle window. */
  loginFailures(client: string): string {
    return `${this.prefix}login-failures:${client}`;
  }

  /** sorted set: publisher id -> earliest due time (ms) of its retries (may be early, never late). */
  get retryDue(): string {
    return `${this.prefix}retry-due`;
  }

  /** sorted set: consumer node id -> last heartbeat (ms). */
  get nodes(): string {
    return `${this.prefix}nodes`;
  }

  /** string: a node's self-description, expiring with its heartbeat. */
  node(nodeId: string): string {
    return `${this.prefix}node:${nodeId}`;
  }

  /** string: a singleton's lease, holding its owner's token. */
  lock(name: string): string {
    return `${this.prefix}lock:${name}`;
  }

  /** Pub/Sub channel: a topic name each time messages are added to it. */
  get wakeChannel(): string {
    return `${this.prefix}wake`;
  }

  /** Pub/Sub channel: JSON change events for topics and publishers. */
  get eventsChannel(): string {
    return `${this.prefix}events`;
  }
}
