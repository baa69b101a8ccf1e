/**
 * Message recovery (Postoffice's rescuer): a singleton, one lease holder in
 * the whole cluster, that every `RECOVERY_INTERVAL_SECONDS` asks the
 * `origin_host` of every topic with `recovery_enabled` for the messages its
 * sender failed to publish, writes them, then deletes them at the origin.
 *
 * States of a node's recovery: idle (no lease, or not due) -> polling (a
 * round runs; at most one at a time) -> idle. The lease is taken and
 * renewed at each heartbeat (`tick`), whatever the interval; a round starts
 * at the first tick after it is due.
 *
 * A round reads the topics with recovery on from their set
 * (`Keys.recoveryTopics`), so its cost follows those topics, not all of
 * them; every 20th round looks at every topic, to add one the set missed.
 * One round asks each origin once, however many topics name it (as the
 * original did). The answer is a JSON list of items
 * `{id, topic, payload, attributes}`; an item with `"bulk": true` carries a
 * list of `{topic?, payload, attributes?}` as its `payload`. An item's
 * messages go to the topics they name, which must be topics that recover
 * from this origin (an item without a topic goes to the origin's only
 * topic). Each item is written durably and once (`OnceWriter`, keyed by the
 * origin, the item's id and the topic) before `DELETE <origin_host><id>/`:
 * a crash in between, or a failed deletion, means the item is read again
 * and found already written, never stored twice. An item is deleted only
 * when all its messages are written.
 *
 * Whatever goes wrong (an origin that is down, answers non-2xx, bad JSON or
 * nothing in time, an item that is malformed or names an unknown topic, a
 * failed write or deletion) is logged, counted in
 * `postoffice_recovery_failures_total`, and shown on the topics of that
 * origin (`last_recovery_error`); the round goes on with the next item and
 * the next origin, and the next round tries again.
 */
import {
  TOPIC_NAME,
  type Config,
  type Logger,
  type OnceMessage,
  type OnceWrite,
  type OnceWriter,
  type Store,
  type TopicWithCounts,
} from '@postoffice/shared';
import type { Lease } from '../cluster/lease.js';
import type { Metrics } from '../metrics.js';
import type { Clock } from '../types.js';
import type { OriginClient, OriginFailure } from './origin-client.js';

/** Why one round failed for a topic, as the `reason` label has it. */
export type RecoveryFailure = OriginFailure | 'bad_origin' | 'invalid_item' | 'unknown_topic' | 'write' | 'delete';

/** Rounds between two looks at every topic (the others read only the set of topics with recovery on). */
const SCAN_EVERY_ROUNDS = 20;
/** Origins asked at once in a round. */
const ORIGINS_AT_ONCE = 4;
/** Most attributes of a recovered message (the API's own bound). */
const MAX_ATTRIBUTES = 100;

export interface MessageRecoveryDeps {
  readonly store: Store;
  readonly writer: OnceWriter;
  readonly client: OriginClient;
  readonly lease: Lease;
  readonly metrics: Metrics;
  readonly config: Pick<Config, 'recoveryIntervalSeconds'>;
  readonly logger: Logger;
  readonly now: Clock;
}

/** One item of an origin's list, checked. */
interface Item {
  readonly id: string;
  /** The item's messages by topic. */
  readonly byTopic: Map<string, OnceMessage[]>;
}

/** What one origin's part of a round did, per topic of the origin. */
class OriginRound {
  readonly errors = new Map<string, string[]>();
  readonly recovered = new Map<string, number>();

  constructor(
    readonly host: string,
    readonly topics: readonly string[],
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {}

  fail(reason: RecoveryFailure, error: string, topics: readonly string[] = this.topics): void {
    this.logger.warn({ origin: this.host, topics, reason, error }, 'message recovery failed');
    for (const t of topics) {
      const list = this.errors.get(t);
      if (list) list.push(error);
      else this.errors.set(t, [error]);
      this.metrics.recoveryFailures.inc({ topic: t, reason });
    }
  }

  count(topic: string, n: number): void {
    this.recovered.set(topic, (this.recovered.get(topic) ?? 0) + n);
    this.metrics.recovered.inc({ topic }, n);
  }
}

export class MessageRecovery {
  private nextAt = 0;
  /** Rounds until every topic is looked at again (0: this round). */
  private untilScan = 0;
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly deps: MessageRecoveryDeps) {}

  /** Whether this node holds the recovery lease (as of its last tick). */
  get holdsLease(): boolean {
    return this.deps.lease.held;
  }

  /** At each heartbeat: keeps the lease, and starts a round when one is due and none runs. */
  async tick(): Promise<void> {
    if (this.closed || !(await this.deps.lease.acquireOrRenew())) return;
    if (this.running || this.deps.now() < this.nextAt) return;
    this.nextAt = this.deps.now() + this.deps.config.recoveryIntervalSeconds * 1000;
    this.running = this.round()
      .catch((err: unknown) => this.deps.logger.error({ err }, 'message recovery round failed'))
      .finally(() => (this.running = undefined));
  }

  /** One round over every origin of the topics with recovery enabled. */
  async round(): Promise<void> {
    if (this.untilScan-- <= 0) {
      // Now and then, every topic: one with recovery on that the set missed (made before the set existed,
      // or by two changes that crossed) joins it.
      for (const t of await this.deps.store.listTopics())
        if (t.recovery_enabled) await this.deps.store.markRecovery(t.name, true);
      this.untilScan = SCAN_EVERY_ROUNDS;
    }
    const byHost = new Map<string, TopicWithCounts[]>();
    for (const t of await this.deps.store.listRecoveryTopics()) {
      const host = t.origin_host.trim();
      const list = byHost.get(host);
      if (list) list.push(t);
      else byHost.set(host, [t]);
    }
    const hosts = [...byHost];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (!this.closed && next < hosts.length) {
        const [host, topics] = hosts[next++] as [string, TopicWithCounts[]];
        await this.recoverOrigin(
          host,
          topics.map((t) => t.name),
        );
      }
    };
    await Promise.all(Array.from({ length: Math.min(ORIGINS_AT_ONCE, hosts.length) }, worker));
  }

  /** Asks one origin, writes and deletes its items, and records the round on its topics. */
  async recoverOrigin(host: string, topics: readonly string[]): Promise<void> {
    const at = new Date(this.deps.now());
    const round = new OriginRound(host, topics, this.deps.metrics, this.deps.logger);
    await this.poll(round);
    for (const topic of topics) {
      const errors = round.errors.get(topic) ?? [];
      const error =
        errors.length === 0 ? null : errors.length === 1 ? errors[0]! : `${errors[0]!} (and ${errors.length - 1} more)`;
      try {
        await this.deps.store.recordRecovery(topic, at, error, round.recovered.get(topic) ?? 0);
      } catch (err) {
        this.deps.logger.error({ err, topic }, 'could not record the recovery round');
      }
    }
    this.deps.metrics.recoveryRounds.inc();
  }

  private async poll(round: OriginRound): Promise<void> {
    if (!isHttpUrl(round.host)) {
      round.fail('bad_origin', 'origin_host is not an http or https URL');
      return;
    }
    const listed = await this.deps.client.list(round.host);
    if (!listed.ok) {
      round.fail(listed.reason, listed.error);
      return;
    }
    if (!Array.isArray(listed.value)) {
      round.fail('bad_json', 'the list is not a JSON array');
      return;
    }
    for (const [index, raw] of listed.value.entries()) {
      if (this.closed) return;
      const item = parseItem(raw, round.topics);
      if (typeof item === 'string') {
        round.fail('invalid_item', `item ${index + 1} of the list: ${item}`);
        continue;
      }
      const unknown = [...item.byTopic.keys()].filter((t) => !round.topics.includes(t));
      if (unknown.length > 0) {
        round.fail(
          'unknown_topic',
          `item ${item.id}: topic ${unknown.join(', ')} does not recover from this origin (no such topic, recovery off, or another origin_host)`,
        );
        continue;
      }
      await this.recoverItem(round, item);
    }
  }

  private async recoverItem(round: OriginRound, item: Item): Promise<void> {
    const writes: OnceWrite[] = [...item.byTopic].map(([topic, messages]) => ({
      topic,
      origin: `recovery ${round.host} ${item.id} ${topic}`,
      messages,
    }));
    const outcomes = await this.deps.writer.write(writes);
    let written = true;
    outcomes.forEach((o, i) => {
      if (o.ok) return;
      written = false;
      const topic = writes[i]!.topic;
      round.fail(o.code === 'topic_not_found' ? 'unknown_topic' : 'write', `item ${item.id}: ${o.error.message}`, [
        topic,
      ]);
    });
    if (!written) return;
    const deleted = await this.deps.client.delete(round.host, item.id);
    // Counted once: a repeat of an item already written (a failed deletion) adds nothing.
    outcomes.forEach((o, i) => {
      if (o.ok && !o.replayed) round.count(writes[i]!.topic, o.ids.length);
    });
    if (!deleted.ok) {
      round.fail(
        'delete',
        `item ${item.id} is written but could not be deleted at the origin (${deleted.error}); it is deleted at the next round`,
        writes.map((w) => w.topic),
      );
      return;
    }
    await this.deps.writer.settled(writes).catch(() => undefined);
    this.deps.logger.info(
      { origin: round.host, item: item.id, ids: outcomes.flatMap((o) => (o.ok ? o.ids : [])) },
      'recovered messages from the origin',
    );
  }

  /** Stops starting rounds, waits for the running one, and releases the lease. */
  async close(): Promise<void> {
    this.closed = true;
    await this.running;
    await this.deps.lease.release();
  }
}

function isHttpUrl(s: string): boolean {
  try {
    const url = new URL(s);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

/** An item of the list, checked; a string says what is wrong with it. */
export function parseItem(raw: unknown, originTopics: readonly string[]): Item | string {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return 'not a JSON object';
  const o = raw as Record<string, unknown>;
  const id = o.id;
  if (
    !(typeof id === 'string' && id !== '' && id.length <= 512) &&
    !(typeof id === 'number' && Number.isSafeInteger(id))
  )
    return 'id must be a whole number or a non-empty string';
  const fallback = originTopics.length === 1 ? originTopics[0] : undefined;
  const topicOf = (v: unknown, dflt: string | undefined): string | undefined =>
    v === undefined || v === null ? dflt : typeof v === 'string' && TOPIC_NAME.test(v) ? v : undefined;
  const itemTopic = topicOf(o.topic, fallback);
  if (o.topic !== undefined && o.topic !== null && itemTopic === undefined) return `item ${String(id)}: bad topic`;
  const byTopic = new Map<string, OnceMessage[]>();
  const add = (topic: string | undefined, payload: unknown, attributes: unknown): string | undefined => {
    if (topic === undefined) return 'names no topic';
    if (payload === undefined || payload === null) return 'has no payload';
    const attrs = attributesOf(attributes);
    if (typeof attrs === 'string') return attrs;
    const list = byTopic.get(topic);
    const message = { payload: JSON.stringify(payload), attributes: attrs };
    if (list) list.push(message);
    else byTopic.set(topic, [message]);
    return undefined;
  };
  if (o.bulk === true) {
    if (!Array.isArray(o.payload)) return `item ${String(id)}: a bulk item's payload must be a list of messages`;
    for (const [i, m] of o.payload.entries()) {
      if (typeof m !== 'object' || m === null || Array.isArray(m))
        return `item ${String(id)}: message ${i + 1} is not a JSON object`;
      const inner = m as Record<string, unknown>;
      const topic = topicOf(inner.topic, itemTopic);
      const why = add(topic, inner.payload, inner.attributes ?? o.attributes);
      if (why) return `item ${String(id)}: message ${i + 1} ${why}`;
    }
  } else {
    const why = add(itemTopic, o.payload, o.attributes);
    if (why) return `item ${String(id)} ${why}`;
  }
  return { id: String(id), byTopic };
}

function attributesOf(v: unknown): Record<string, string> | string {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) return 'has attributes that are not a map of strings';
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length > MAX_ATTRIBUTES) return `has more than ${MAX_ATTRIBUTES} attributes`;
  if (!entries.every(([k, value]) => k !== '' && typeof value === 'string'))
    return 'has attributes that are not a map of strings';
  return v as Record<string, string>;
}
