/**
 * `GET /api/cluster`: the consumer nodes that are alive (a heartbeat within
 * the last three, written by each node), the publisher slots each holds,
 * the singletons' holders, and per publisher its backlog (`lag`: entries
 * not yet read by its group), `pending` (read and not yet settled: in
 * flight or waiting for a retry) and `retrying` (in the retry set). All of
 * it in three round trips (one pipeline per hash slot each), whatever the
 * number of publishers.
 */
import { execBySlot, parseGroups, slotCount, type GroupInfo, type RateLimit } from '@postoffice/shared';
import type { FastifyInstance } from 'fastify';
import type { ChainableCommander } from 'ioredis';
import type { ApiContext } from '../types.js';
import { clusterView as clusterSchema, data, responses } from '../schemas.js';

/** A live consumer node, as `GET /api/cluster` shows it. */
export interface NodeView {
  readonly id: string;
  readonly host?: string;
  readonly pid?: number;
  readonly started_at?: string;
  readonly last_heartbeat: string;
  readonly slots: string[];
}

/** A publisher's slots and backlog, as `GET /api/cluster` shows them. */
export interface ClusterPublisherView {
  readonly id: string;
  readonly topic: string;
  readonly active: boolean;
  readonly parallelism: number;
  readonly ordered: boolean;
  readonly rate_limit: RateLimit | null;
  /** Each slot and the node holding its lease (null: free, or its holder is dead). */
  readonly slots: { slot: number; node: string | null }[];
  readonly lag: number | null;
  readonly pending: number;
  readonly retrying: number;
}

/** `GET /api/cluster`'s answer. */
export interface ClusterView {
  readonly nodes: NodeView[];
  readonly publishers: ClusterPublisherView[];
  readonly singletons: Record<string, string | null>;
}

type Reply = [Error | null, unknown][];

/** The node id in a lease's value (`<node id> <token>`). */
function holder(value: unknown): string | null {
  if (typeof value !== 'string' || value === '') return null;
  const i = value.lastIndexOf(' ');
  return i < 0 ? value : value.slice(0, i);
}

export async function clusterView(ctx: ApiContext): Promise<ClusterView> {
  const { redis, keys, store } = ctx;
  const [rows, publishers] = await Promise.all([redis.zrange(keys.nodes, 0, -1, 'WITHSCORES'), store.listPublishers()]);
  const seen: { id: string; at: number }[] = [];
  for (let i = 0; i + 1 < rows.length; i += 2) seen.push({ id: rows[i] as string, at: Number(rows[i + 1]) });

  // Round trip 1: who is alive (the node key expires three heartbeats after the last), the singleton.
  // Each a global key of its own (its own hash slot): one command each, all sent at once.
  const firstReply: Reply = await Promise.all(
    [...seen.map((n) => keys.node(n.id)), keys.lock('janitor')].map((key) =>
      redis.get(key).then(
        (v): [Error | null, unknown] => [null, v],
        (err: unknown): [Error | null, unknown] => [err instanceof Error ? err : new Error(String(err)), null],
      ),
    ),
  );
  const nodes = new Map<string, NodeView>();
  seen.forEach((n, i) => {
    const [err, json] = firstReply[i] ?? [null, null];
    if (err || typeof json !== 'string' || n.at === 0) return;
    let info: { host?: string; pid?: number; started_at?: string } = {};
    try {
      info = JSON.parse(json) as typeof info;
    } catch {
      info = {};
    }
    nodes.set(n.id, {
      id: n.id,
      host: info.host,
      pid: info.pid,
      started_at: info.started_at,
      last_heartbeat: new Date(n.at).toISOString(),
      slots: [],
    });
  });
  const janitor = holder(firstReply[seen.length]?.[1]);

  // Round trip 2: every slot's lease, every group's lag and pending count, every retry set's size.
  // One pipeline per topic (one hash slot each), all sent at once.
  const topics = [...new Set(publishers.map((p) => p.topic))];
  const reply: Reply = await execBySlot(redis, [
    ...topics.map((t) => (p: ChainableCommander) => void p.xinfo('GROUPS', keys.topic(t).stream)),
    ...publishers.map((p) => (pipeline: ChainableCommander) => {
      pipeline.zcard(keys.publisher(p.topic, p.id).retries);
      for (let s = 0; s < slotCount(p); s++) pipeline.get(keys.slotLease(p.topic, p.id, s));
    }),
  ]);
  const groups = new Map<string, Map<string, GroupInfo>>();
  topics.forEach((t, i) => {
    const [err, list] = reply[i] ?? [null, []];
    if (!err) groups.set(t, parseGroups(list));
  });
  let at = topics.length;
  const views: ClusterPublisherView[] = publishers.map((p) => {
    const retrying = Number(reply[at++]?.[1] ?? 0);
    const slots: { slot: number; node: string | null }[] = [];
    for (let s = 0; s < slotCount(p); s++) {
      const node = holder(reply[at++]?.[1]);
      const alive = node !== null && nodes.has(node);
      if (alive && p.active) nodes.get(node)?.slots.push(`${p.id}/${s}`);
      slots.push({ slot: s, node: alive && p.active ? node : null });
    }
    const g = groups.get(p.topic)?.get(p.id);
    return {
      id: p.id,
      topic: p.topic,
      active: p.active,
      parallelism: p.parallelism,
      ordered: p.ordered,
      rate_limit: p.rate_limit,
      slots,
      lag: g ? g.lag : null,
      pending: g?.pending ?? 0,
      retrying,
    };
  });
  return {
    nodes: [...nodes.values()].sort((a, b) => a.id.localeCompare(b.id)),
    publishers: views,
    singletons: { janitor: janitor !== null && nodes.has(janitor) ? janitor : null },
  };
}

export function registerClusterRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    '/api/cluster',
    {
      schema: {
        tags: ['operations'],
        summary: 'The consumer nodes, the slots they hold, and each publisher’s backlog',
        response: responses({ 200: data(clusterSchema, 'The cluster.') }),
      },
    },
    async () => ({ data: await clusterView(ctx) }),
  );
}
