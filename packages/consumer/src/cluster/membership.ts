/**
 * Node membership: each consumer node writes a heartbeat (its score in the
 * nodes sorted set, and a self-description key that expires) every
 * `heartbeatSeconds`. A node silent for three heartbeats is dead; one that
 * leaves on SIGTERM sets its score to 0 so that its pending work is taken
 * over at once.
 *
 * The nodes set and a node's self-description are two global keys, in two
 * hash slots of a cluster: they are written one after the other, not in one
 * MULTI. Either order is safe: the set alone decides who is alive, and the
 * description only says who a node is.
 */
import type { Keys, ScriptClient } from '@postoffice/shared';
import type { Clock } from '../types.js';

export interface NodeInfo {
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  readonly started_at: string;
}

export class Membership {
  constructor(
    private readonly redis: ScriptClient,
    private readonly keys: Keys,
    private readonly info: NodeInfo,
    private readonly heartbeatMs: number,
    private readonly now: Clock,
  ) {}

  get ttlMs(): number {
    return this.heartbeatMs * 3;
  }

  async beat(): Promise<void> {
    await this.redis.set(this.keys.node(this.info.id), JSON.stringify(this.info), 'PX', this.ttlMs);
    await this.redis.zadd(this.keys.nodes, this.now(), this.info.id);
  }

  async leave(): Promise<void> {
    await this.redis.zadd(this.keys.nodes, 0, this.info.id);
    await this.redis.del(this.keys.node(this.info.id));
  }

  /** Nodes whose last heartbeat is older than three heartbeats (or who left), with that time. */
  async silent(): Promise<{ id: string; lastSeen: number }[]> {
    const rows = await this.redis.zrange(this.keys.nodes, '-inf', this.now() - this.ttlMs, 'BYSCORE', 'WITHSCORES');
    const out: { id: string; lastSeen: number }[] = [];
    for (let i = 0; i + 1 < rows.length; i += 2) out.push({ id: rows[i] as string, lastSeen: Number(rows[i + 1]) });
    return out;
  }

  /** Ids of the nodes heard from within the last three heartbeats (not those that left). */
  async live(): Promise<string[]> {
    return this.redis.zrange(this.keys.nodes, `(${this.now() - this.ttlMs}`, '+inf', 'BYSCORE');
  }

  async forget(nodeId: string): Promise<void> {
    await this.redis.zrem(this.keys.nodes, nodeId);
  }
}
