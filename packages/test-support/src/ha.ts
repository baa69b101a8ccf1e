/**
 * Test support: Redis that can lose a machine, made of real `redis-server`
 * processes on 127.0.0.1 (`@postoffice/test-support/ha`):
 *
 * - `startReplicatedCluster`: a Redis Cluster whose masters have replicas
 *   (`redis-cli --cluster create --cluster-replicas`), a short node timeout
 *   so that a failover takes seconds; it can grow a master and move a slot
 *   to it while clients write.
 * - `startSentinelSet`: a primary, its replicas and the Sentinels that
 *   watch them (`sentinel monitor <name> 127.0.0.1 <port> <quorum>`).
 *
 * Every data node keeps its data (append-only, fsync always, unless `args`
 * say otherwise) in a directory of its own, and its role in a file Redis
 * rewrites (`nodes.conf` in a cluster; the config file, which Sentinel
 * rewrites, otherwise), so a node killed and restarted comes back as the
 * node it was. Each one can be killed (SIGKILL), frozen (SIGSTOP), thawed
 * and restarted on its port; both answer which node is the master now.
 * Both are in `runningServers`, so the leak check stops what a test left.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import {
  freeClusterPort,
  freePort,
  redisCli,
  redisUrl,
  runningServers,
  serverArgs,
  spawnRedis,
  type RedisProcess,
  type RunningServer,
} from './redis-server.js';
import { waitFor } from './wait.js';

/** One `redis-server` process (a data node or a Sentinel) that a test can make fail. */
export interface HaNode {
  readonly port: number;
  /** The process id of the current process (a restart changes it). */
  readonly pid: number;
  /** Whether the process is running (frozen or not). */
  readonly alive: boolean;
  /** Whether it is frozen by `pause()`. */
  readonly paused: boolean;
  /** SIGKILL, and waits for the process to end. */
  kill(): Promise<void>;
  /** SIGSTOP: the process keeps its sockets and answers nothing. */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** Starts it again (killing it first if it runs) on the same port, directory and config; waits until it answers. */
  restart(): Promise<void>;
}

export interface ReplicatedCluster {
  /** `redis+cluster://127.0.0.1:p,...` naming every node (a client finds the masters from any of them). */
  readonly url: string;
  /** Every data node, masters and replicas, in start order (`addMaster` appends). */
  readonly nodes: readonly HaNode[];
  /** `cluster-node-timeout`: a master silent this long is failed over. */
  readonly nodeTimeoutMs: number;
  /** The master of `key`'s slot, as most live nodes see it (CLUSTER KEYSLOT, CLUSTER SLOTS). */
  masterOf(key: string): Promise<HaNode>;
  /** The master of `slot`, as most live nodes see it. */
  masterOfSlot(slot: number): Promise<HaNode>;
  /** `key`'s hash slot (CLUSTER KEYSLOT). */
  slotOf(key: string): Promise<number>;
  /** The replicas of `master` that the cluster does not flag as failed (CLUSTER NODES). */
  replicasOf(master: HaNode): Promise<HaNode[]>;
  /** Waits until a live node other than `old` is `key`'s master and says it is one (30 s by default). */
  waitForNewMaster(key: string, old: HaNode, timeoutMs?: number): Promise<HaNode>;
  /**
   * Waits until every live node says the cluster is ok, flags no live node
   * as failed, sees the same slot map, and every live replica's link to its
   * master is up (60 s by default).
   */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** A new empty master joined to the cluster, with `replicas` (the cluster's replicas per master by default) of its own. */
  addMaster(options?: { replicas?: number }): Promise<HaNode>;
  /**
   * Moves `slot` to the master `to` while clients may write: SETSLOT
   * IMPORTING and MIGRATING, MIGRATE of its keys in batches, then SETSLOT
   * NODE on both and the other masters; waits until every live node agrees.
   */
  moveSlot(slot: number, to: HaNode): Promise<void>;
  /** Kills every node and removes the data. */
  stop(): Promise<void>;
}

export interface SentinelSet {
  /** `127.0.0.1:p,127.0.0.1:p,...`, for REDIS_SENTINELS. */
  readonly sentinels: string;
  /** The monitored master's name (`mymaster`). */
  readonly name: string;
  /** The data nodes: the first primary at first, then its replicas. */
  readonly nodes: readonly HaNode[];
  readonly sentinelNodes: readonly HaNode[];
  /** `down-after-milliseconds`: a primary silent this long is down. */
  readonly downAfterMs: number;
  /** The primary as most live Sentinels name it (SENTINEL get-master-addr-by-name). */
  primary(): Promise<HaNode>;
  /** Waits until the Sentinels name a live primary other than `old`, and it says it is one (30 s by default). */
  waitForNewPrimary(old: HaNode, timeoutMs?: number): Promise<HaNode>;
  /**
   * Waits until every live Sentinel names the same primary, which says it
   * is one, and every other live data node replicates it with its link up
   * (60 s by default).
   */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Kills every process and removes the data. */
  stop(): Promise<void>;
}

/** What every data node runs with unless `args` say otherwise: each write fsynced before it is answered. */
const DURABLE = ['--appendonly', 'yes', '--appendfsync', 'always'];

class ProcessNode implements HaNode {
  private process: RedisProcess;
  private frozen = false;

  constructor(
    readonly port: number,
    private readonly args: string[],
  ) {
    this.process = spawnRedis(port, args);
  }

  /** Resolves once the current process answers PING. */
  get ready(): Promise<void> {
    return this.process.ready;
  }

  get pid(): number {
    return this.process.child.pid ?? -1;
  }

  get alive(): boolean {
    const { child } = this.process;
    return child.exitCode === null && child.signalCode === null;
  }

  get paused(): boolean {
    return this.frozen && this.alive;
  }

  /** Answers to be asked of it: alive and not frozen. */
  get reachable(): boolean {
    return this.alive && !this.frozen;
  }

  async kill(): Promise<void> {
    await this.process.stop(true);
    this.frozen = false;
  }

  pause(): void {
    if (!this.alive) throw new Error(`redis-server on port ${this.port} is not running`);
    this.process.child.kill('SIGSTOP');
    this.frozen = true;
  }

  resume(): void {
    if (!this.alive) throw new Error(`redis-server on port ${this.port} is not running`);
    this.process.child.kill('SIGCONT');
    this.frozen = false;
  }

  async restart(): Promise<void> {
    if (this.alive) await this.kill();
    this.process = spawnRedis(this.port, this.args);
    await this.process.ready;
  }

  /** What the current process printed. */
  output(): string {
    return this.process.output();
  }
}

/** Runs `fn` on a short-lived connection to `port` that gives up within seconds (a frozen node never answers). */
async function ask<T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis(port, '127.0.0.1', {
    lazyConnect: true,
    connectTimeout: 1000,
    commandTimeout: 2000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  r.on('error', () => {});
  try {
    await r.connect();
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

function call(port: number, ...args: (string | number)[]): Promise<unknown> {
  return ask(port, (r) => r.call(String(args[0]), ...args.slice(1)));
}

/** The value most of `answers` give (undefined for none); ties go to the first seen. */
function mostCommon<T>(answers: readonly T[]): T | undefined {
  const counts = new Map<T, number>();
  for (const a of answers) counts.set(a, (counts.get(a) ?? 0) + 1);
  let best: T | undefined;
  let bestCount = 0;
  for (const [a, n] of counts) {
    if (n > bestCount) [best, bestCount] = [a, n];
  }
  return best;
}

/** Answers from every reachable node in `nodes` (those that fail to answer are left out). */
async function askAll<T>(nodes: readonly ProcessNode[], fn: (r: Redis) => Promise<T>): Promise<T[]> {
  const answers = await Promise.allSettled(nodes.filter((n) => n.reachable).map((n) => ask(n.port, fn)));
  return answers.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []));
}

/** One line of CLUSTER NODES. */
interface NodeLine {
  readonly id: string;
  readonly port: number;
  readonly flags: readonly string[];
  /** The master's id, for a replica. */
  readonly master: string | undefined;
}

function parseClusterNodes(text: string): NodeLine[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((line) => {
      const [id = '', address = '', flags = '', master = '-'] = line.split(' ');
      const port = Number(/:(\d+)@/.exec(address)?.[1] ?? NaN);
      return { id, port, flags: flags.split(','), master: master === '-' ? undefined : master };
    });
}

type SlotRange = [number, number, [string, number, string?], ...unknown[]];

/** `slot`'s master port in a CLUSTER SLOTS answer. */
function slotOwner(slots: SlotRange[], slot: number): number | undefined {
  return slots.find(([from, to]) => from <= slot && slot <= to)?.[2][1];
}

/** A CLUSTER SLOTS answer as text that two nodes with the same slot map give alike. */
function slotMapText(slots: SlotRange[]): string {
  return slots
    .map(([from, to, master]) => `${from}-${to}:${master[1]}`)
    .sort()
    .join(' ');
}

export async function startReplicatedCluster(
  options: { masters?: number; replicasPerMaster?: number; nodeTimeoutMs?: number; args?: string[] } = {},
): Promise<ReplicatedCluster> {
  const masters = options.masters ?? 3;
  const replicasPerMaster = options.replicasPerMaster ?? 1;
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 2000;
  const dir = mkdtempSync(join(tmpdir(), 'po-ha-cluster-'));
  const nodes: ProcessNode[] = [];

  const spawnNode = async (): Promise<ProcessNode> => {
    const port = await freeClusterPort(nodes.map((n) => n.port));
    const nodeDir = join(dir, String(port));
    mkdirSync(nodeDir);
    const node = new ProcessNode(
      port,
      serverArgs(port, nodeDir, [
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(nodeDir, 'nodes.conf'),
        '--cluster-node-timeout',
        String(nodeTimeoutMs),
        ...DURABLE,
        ...(options.args ?? []),
      ]),
    );
    nodes.push(node);
    await node.ready;
    return node;
  };
  const byPort = (port: number | undefined): ProcessNode | undefined => nodes.find((n) => n.port === port);
  const anyReachable = (): ProcessNode => {
    const node = nodes.find((n) => n.reachable);
    if (!node) throw new Error('no cluster node is running');
    return node;
  };
  const idOf = async (node: HaNode): Promise<string> => String(await call(node.port, 'CLUSTER', 'MYID'));

  const slotOf = async (key: string): Promise<number> =>
    Number(await call(anyReachable().port, 'CLUSTER', 'KEYSLOT', key));
  const masterOfSlot = async (slot: number): Promise<HaNode> => {
    const owners = await askAll(nodes, async (r) => slotOwner((await r.call('CLUSTER', 'SLOTS')) as SlotRange[], slot));
    const master = byPort(mostCommon(owners.filter((p) => p !== undefined)));
    if (!master) throw new Error(`no live node names a master of slot ${slot}`);
    return master;
  };
  const masterOf = async (key: string): Promise<HaNode> => masterOfSlot(await slotOf(key));

  const replicasOf = async (master: HaNode): Promise<HaNode[]> => {
    const lines = parseClusterNodes(String(await call(anyReachable().port, 'CLUSTER', 'NODES')));
    const id = lines.find((l) => l.port === master.port)?.id;
    return lines
      .filter((l) => id !== undefined && l.master === id && !l.flags.includes('fail'))
      .flatMap((l) => byPort(l.port) ?? []);
  };

  const isMaster = async (node: HaNode): Promise<boolean> =>
    ((await call(node.port, 'ROLE')) as unknown[])[0] === 'master';

  const waitForNewMaster = async (key: string, old: HaNode, timeoutMs = 30_000): Promise<HaNode> =>
    waitFor(
      async () => {
        const master = await masterOf(key);
        return master !== old && (master as ProcessNode).reachable && (await isMaster(master)) ? master : undefined;
      },
      `a new master of ${key} (the old one on port ${old.port})`,
      timeoutMs,
      100,
    );

  const healthProblems = async (): Promise<string[]> => {
    const live = nodes.filter((n) => n.reachable);
    const livePorts = new Set(live.map((n) => n.port));
    const views = await Promise.all(
      live.map(async (n) =>
        ask(n.port, async (r) => ({
          port: n.port,
          info: String(await r.call('CLUSTER', 'INFO')),
          lines: parseClusterNodes(String(await r.call('CLUSTER', 'NODES'))),
          slots: slotMapText((await r.call('CLUSTER', 'SLOTS')) as SlotRange[]),
          replication: await r.info('replication'),
        })),
      ),
    );
    const problems: string[] = [];
    for (const v of views) {
      if (!/cluster_state:ok/.test(v.info)) problems.push(`${v.port}: cluster_state not ok`);
      if (v.lines.length !== nodes.length) problems.push(`${v.port}: knows ${v.lines.length} of ${nodes.length} nodes`);
      for (const l of v.lines) {
        const bad = l.flags.filter((f) => ['fail', 'fail?', 'handshake', 'noaddr'].includes(f));
        if (livePorts.has(l.port) && bad.length > 0) problems.push(`${v.port}: flags ${l.port} ${bad.join(',')}`);
      }
      if (/role:slave/.test(v.replication) && !/master_link_status:up/.test(v.replication)) {
        problems.push(`${v.port}: replica link down`);
      }
    }
    if (new Set(views.map((v) => v.slots)).size > 1) problems.push('the nodes disagree on the slot map');
    return problems;
  };
  const waitHealthy = (timeoutMs = 60_000): Promise<void> =>
    waitNoProblems(healthProblems, 'the cluster to be healthy', timeoutMs);

  const addNode = async (node: HaNode, replicaOf?: HaNode): Promise<void> => {
    const via = nodes.find((n) => n !== node && n.reachable) ?? anyReachable();
    await redisCli([
      '--cluster',
      'add-node',
      `127.0.0.1:${node.port}`,
      `127.0.0.1:${via.port}`,
      ...(replicaOf ? ['--cluster-slave', '--cluster-master-id', await idOf(replicaOf)] : []),
    ]);
  };
  const addMaster = async ({ replicas = replicasPerMaster }: { replicas?: number } = {}): Promise<HaNode> => {
    const master = await spawnNode();
    await addNode(master);
    await waitHealthy();
    for (let i = 0; i < replicas; i++) {
      const replica = await spawnNode();
      await addNode(replica, master);
      await waitHealthy();
    }
    await waitFor(
      async () => (await replicasOf(master)).length >= replicas,
      `the new master on port ${master.port} to have ${replicas} replica(s)`,
      30_000,
      100,
    );
    return master;
  };

  const moveSlot = async (slot: number, to: HaNode): Promise<void> => {
    const from = await masterOfSlot(slot);
    if (from === to) return;
    const [fromId, toId] = await Promise.all([idOf(from), idOf(to)]);
    await call(to.port, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', fromId);
    await call(from.port, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', toId);
    for (;;) {
      const keys = (await call(from.port, 'CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[];
      if (keys.length === 0) break;
      await call(from.port, 'MIGRATE', '127.0.0.1', to.port, '', 0, 10_000, 'KEYS', ...keys);
    }
    // The new owner first (it takes a new epoch), then the old one, then the other masters.
    await call(to.port, 'CLUSTER', 'SETSLOT', slot, 'NODE', toId);
    await call(from.port, 'CLUSTER', 'SETSLOT', slot, 'NODE', toId);
    const others = nodes.filter((n) => n !== to && n !== from && n.reachable);
    await Promise.allSettled(
      others.map(async (n) => {
        if (await isMaster(n)) await call(n.port, 'CLUSTER', 'SETSLOT', slot, 'NODE', toId);
      }),
    );
    await waitFor(
      async () => {
        const owners = await askAll(nodes, async (r) =>
          slotOwner((await r.call('CLUSTER', 'SLOTS')) as SlotRange[], slot),
        );
        return owners.length === nodes.filter((n) => n.reachable).length && owners.every((p) => p === to.port);
      },
      `every node to see slot ${slot} on port ${to.port}`,
      30_000,
      100,
    );
  };

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (!stopped) {
      stopped = true;
      await Promise.all(nodes.map((n) => n.kill()));
    }
    runningServers.delete(handle);
    rmSync(dir, { recursive: true, force: true });
  };
  const handle: RunningServer = { stop };
  runningServers.add(handle);

  try {
    for (let i = 0; i < masters * (1 + replicasPerMaster); i++) await spawnNode();
    await redisCli([
      '--cluster',
      'create',
      ...nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas',
      String(replicasPerMaster),
      '--cluster-yes',
    ]);
    await waitHealthy();
    const masterNodes = (await Promise.all(nodes.map(async (n) => ((await isMaster(n)) ? [n] : [])))).flat();
    await waitFor(
      async () => {
        const counts = await Promise.all(masterNodes.map(async (m) => (await replicasOf(m)).length));
        return masterNodes.length === masters && counts.every((c) => c === replicasPerMaster);
      },
      `${masters} masters with ${replicasPerMaster} replica(s) each`,
      30_000,
      100,
    );
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    get url() {
      return redisUrl(nodes.map((n) => n.port));
    },
    nodes,
    nodeTimeoutMs,
    masterOf,
    masterOfSlot,
    slotOf,
    replicasOf,
    waitForNewMaster,
    waitHealthy,
    addMaster,
    moveSlot,
    stop,
  };
}

/** Config-file lines for `redis-server` arguments (`--name value ...`), so that Redis can rewrite them. */
function configLines(args: readonly string[]): string {
  const lines: string[] = [];
  for (const arg of args) {
    if (arg.startsWith('--')) lines.push(arg.slice(2));
    else lines[lines.length - 1] += ` ${arg === '' ? '""' : arg}`;
  }
  return `${lines.join('\n')}\n`;
}

export async function startSentinelSet(
  options: {
    replicas?: number;
    sentinels?: number;
    downAfterMs?: number;
    failoverTimeoutMs?: number;
    args?: string[];
  } = {},
): Promise<SentinelSet> {
  const replicas = options.replicas ?? 1;
  const sentinelCount = options.sentinels ?? 3;
  const downAfterMs = options.downAfterMs ?? 1000;
  const failoverTimeoutMs = options.failoverTimeoutMs ?? 5000;
  const name = 'mymaster';
  const quorum = Math.floor(sentinelCount / 2) + 1;
  const dir = mkdtempSync(join(tmpdir(), 'po-ha-sentinel-'));
  const nodes: ProcessNode[] = [];
  const sentinelNodes: ProcessNode[] = [];
  const taken = (): number[] => [...nodes, ...sentinelNodes].map((n) => n.port);
  const port = async (): Promise<number> => {
    for (;;) {
      const p = await freePort();
      if (!taken().includes(p)) return p;
    }
  };

  const byPort = (p: number | undefined): ProcessNode | undefined => nodes.find((n) => n.port === p);
  const primaryPort = async (): Promise<number | undefined> => {
    const answers = await askAll(sentinelNodes, (r) => r.call('SENTINEL', 'get-master-addr-by-name', name));
    return mostCommon(answers.flatMap((a) => (Array.isArray(a) ? [Number(a[1])] : [])));
  };
  const primary = async (): Promise<HaNode> => {
    const node = byPort(await primaryPort());
    if (!node) throw new Error('no live Sentinel names a primary');
    return node;
  };
  const isPrimary = async (node: HaNode): Promise<boolean> =>
    ((await call(node.port, 'ROLE')) as unknown[])[0] === 'master';
  const waitForNewPrimary = async (old: HaNode, timeoutMs = 30_000): Promise<HaNode> =>
    waitFor(
      async () => {
        const p = await primary();
        return p !== old && (p as ProcessNode).reachable && (await isPrimary(p)) ? p : undefined;
      },
      `a new primary (the old one on port ${old.port})`,
      timeoutMs,
      100,
    );

  const healthProblems = async (): Promise<string[]> => {
    const problems: string[] = [];
    const live = sentinelNodes.filter((n) => n.reachable);
    const views = await askAll(live, async (r) => {
      const fields = (await r.call('SENTINEL', 'master', name)) as string[];
      const at = (key: string): string => fields[fields.indexOf(key) + 1] ?? '';
      return { port: Number(at('port')), flags: at('flags'), others: Number(at('num-other-sentinels')) };
    });
    if (views.length < live.length) problems.push(`${live.length - views.length} Sentinel(s) did not answer`);
    const ports = new Set(views.map((v) => v.port));
    if (ports.size !== 1) return [...problems, `the Sentinels name ${ports.size} primaries`];
    for (const v of views) {
      if (v.flags !== 'master') problems.push(`a Sentinel flags the primary ${v.flags}`);
      if (v.others !== sentinelCount - 1) problems.push(`a Sentinel knows ${v.others} other Sentinels`);
    }
    const primaryNode = byPort([...ports][0]);
    if (!primaryNode?.reachable) return [...problems, 'the primary named is not running'];
    if (!(await isPrimary(primaryNode))) problems.push(`port ${primaryNode.port} is named primary but is not one`);
    for (const n of nodes.filter((x) => x !== primaryNode && x.reachable)) {
      const info = await ask(n.port, (r) => r.info('replication'));
      if (!info.includes(`master_port:${primaryNode.port}`) || !/master_link_status:up/.test(info)) {
        problems.push(`port ${n.port} does not replicate port ${primaryNode.port}`);
      }
    }
    return problems;
  };
  const waitHealthy = (timeoutMs = 60_000): Promise<void> =>
    waitNoProblems(healthProblems, 'the Sentinel set to be healthy', timeoutMs);

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (!stopped) {
      stopped = true;
      await Promise.all([...sentinelNodes, ...nodes].map((n) => n.kill()));
    }
    runningServers.delete(handle);
    rmSync(dir, { recursive: true, force: true });
  };
  const handle: RunningServer = { stop };
  runningServers.add(handle);

  try {
    // Data nodes: a config file each, which Sentinel has rewritten (CONFIG REWRITE) when it changed the node's role.
    for (let i = 0; i <= replicas; i++) {
      const p = await port();
      const nodeDir = join(dir, `data-${p}`);
      mkdirSync(nodeDir);
      const first = nodes[0];
      const config = join(nodeDir, 'redis.conf');
      writeFileSync(
        config,
        configLines(
          serverArgs(p, nodeDir, [...DURABLE, ...(first ? ['--replicaof', '127.0.0.1', String(first.port)] : [])]),
        ),
      );
      const node = new ProcessNode(p, [config, ...(options.args ?? [])]);
      nodes.push(node);
      await node.ready;
    }
    const first = nodes[0] as ProcessNode;
    for (let i = 0; i < sentinelCount; i++) {
      const p = await port();
      const nodeDir = join(dir, `sentinel-${p}`);
      mkdirSync(nodeDir);
      const config = join(nodeDir, 'sentinel.conf');
      writeFileSync(
        config,
        [
          `port ${p}`,
          'bind 127.0.0.1',
          'daemonize no',
          `dir ${nodeDir}`,
          'loglevel warning',
          `sentinel monitor ${name} 127.0.0.1 ${first.port} ${quorum}`,
          `sentinel down-after-milliseconds ${name} ${downAfterMs}`,
          `sentinel failover-timeout ${name} ${failoverTimeoutMs}`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'),
      );
      const node = new ProcessNode(p, [config, '--sentinel']);
      sentinelNodes.push(node);
      await node.ready;
    }
    await waitHealthy();
    // Each Sentinel must know every replica too, or it cannot promote one.
    await waitFor(
      async () => {
        const known = await askAll(
          sentinelNodes,
          async (r) => ((await r.call('SENTINEL', 'replicas', name)) as unknown[]).length,
        );
        return known.length === sentinelCount && known.every((k) => k === replicas);
      },
      `every Sentinel to know the ${replicas} replica(s)`,
      30_000,
      100,
    );
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    sentinels: sentinelNodes.map((n) => `127.0.0.1:${n.port}`).join(','),
    name,
    nodes,
    sentinelNodes,
    downAfterMs,
    primary,
    waitForNewPrimary,
    waitHealthy,
    stop,
  };
}

/** Waits until `problems` finds none; on time-out, the error says the last ones it found. */
async function waitNoProblems(problems: () => Promise<string[]>, what: string, timeoutMs: number): Promise<void> {
  let last: string[] = [];
  try {
    await waitFor(async () => (last = await problems()).length === 0, what, timeoutMs, 100);
  } catch (err) {
    throw new Error(`${(err as Error).message}; last seen: ${last.join('; ')}`);
  }
}
