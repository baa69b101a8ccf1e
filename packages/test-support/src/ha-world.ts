/**
 * The world of a fault case in which Redis loses a machine
 * (`@postoffice/test-support/ha-world`): a replicated cluster or a
 * Sentinel set (ha.ts), one producer with `REDIS_MIN_REPLICAS=1`, two
 * consumers, one topic with two publishers (a plain one and an `ordered`
 * one, each to its own path of the sink), and client loops that post
 * `/api/messages` at a steady rate, every answer kept in a history.
 *
 * A case marks when its fault starts and when its last action (restart,
 * thaw, move) is done; `finish` waits for the recovery, lets traffic run a
 * little longer, stops it, waits for the deliveries, judges the history
 * with `checkHistory` (history.ts), reports the figures and fails on any
 * problem.
 */
import { api, killAll, startApp, type AppProcess } from './processes.js';
import { FAST_FAILOVER_ENV, createPublisher, createTopic, report, startSink, type Sink } from './faults.js';
import { checkHistory, type Publish, type PublisherHistory, type Verdict } from './history.js';
import { waitFor } from './wait.js';

/** Every process's env on top of the backend's: fast failure detection, and each 201 waits for a replica. */
export const HA_ENV: Readonly<Record<string, string>> = { ...FAST_FAILOVER_ENV, REDIS_MIN_REPLICAS: '1' };

const TOPIC = 'ha';
const CONSUMERS = 2;
/** The plain publisher's concurrency; the ordered one delivers one at a time. */
const PLAIN_CONCURRENCY = 10;
/** Client loops, and the rate they post at together (messages a second). */
const CLIENTS = 4;
const RATE = 200;
/** Traffic before the fault: this many acknowledged and delivered to both publishers. */
const WARM_UP = 300;
/** Traffic after the recovery: this many more acknowledged. */
const COOL_DOWN = 600;

export interface HaWorld<B> {
  /** The Redis of the running case. */
  readonly backend: B;
  readonly sink: Sink;
  /** Starts the producer, the consumers, the topic, its publishers and the traffic; resolves once it flows. */
  begin(): Promise<HaRun>;
}

export interface HaRun {
  readonly producer: AppProcess;
  readonly consumers: readonly AppProcess[];
  readonly topic: string;
  /** A key in the topic's hash slot (for `masterOf`). */
  readonly key: string;
  /** Every publish so far. */
  readonly publishes: readonly Publish[];
  /** The fault begins now. */
  faultStarts(): void;
  /** The fault's last action is done now. */
  faultEnds(): void;
  /**
   * Waits for the recovery, runs more traffic, stops it, waits for every
   * acknowledged message, then judges, reports as `name` (with `extra`) and
   * fails on any broken promise.
   */
  finish(name: string, extra?: Record<string, unknown>): Promise<Verdict>;
}

/** The publishers of every case: a plain one and an ordered one, on paths of their own. */
const PUBLISHERS = [
  { name: 'plain', ordered: false, fields: { concurrency: PLAIN_CONCURRENCY } },
  { name: 'ordered', ordered: true, fields: { ordered: true } },
] as const;

/**
 * Registers, in the calling `describe`, hooks that give each test a fresh
 * backend (`start`) and sink, and stop the traffic, the processes, the sink
 * and the backend after it. `env` says how the processes reach the backend.
 */
export function haWorld<B extends { stop(): Promise<void> }>(options: {
  start: () => Promise<B>;
  env: (backend: B) => Record<string, string>;
}): HaWorld<B> {
  let backend: B | undefined;
  let sink: Sink | undefined;
  const apps: AppProcess[] = [];
  let stopTraffic: (() => Promise<void>) | undefined;
  const world: HaWorld<B> = {
    get backend(): B {
      if (!backend) throw new Error('the HA world is used before its hooks ran');
      return backend;
    },
    get sink(): Sink {
      if (!sink) throw new Error('the HA world is used before its hooks ran');
      return sink;
    },
    async begin() {
      const run = await begin(world, options.env(world.backend), apps);
      stopTraffic = run.stopTraffic;
      return run.run;
    },
  };
  beforeEach(async () => {
    backend = await options.start();
    sink = await startSink();
  });
  afterEach(async () => {
    await stopTraffic?.();
    stopTraffic = undefined;
    await killAll(apps.splice(0));
    await sink?.close();
    await backend?.stop();
  });
  return world;
}

async function begin<B>(
  world: HaWorld<B>,
  backendEnv: Record<string, string>,
  apps: AppProcess[],
): Promise<{ run: HaRun; stopTraffic: () => Promise<void> }> {
  const env = { ...HA_ENV, ...backendEnv };
  const producer = await startApp('producer', env);
  apps.push(producer);
  const topic = await createTopic(producer, TOPIC);
  for (const p of PUBLISHERS) {
    await createPublisher(producer, {
      topic,
      target: world.sink.url(`/${p.name}`),
      seconds_timeout: 2,
      seconds_retry: 1,
      ...p.fields,
    });
  }
  const consumers: AppProcess[] = [];
  for (let i = 0; i < CONSUMERS; i++) {
    const consumer = await startApp('consumer', { ...env, NODE_ID: `ha-${i + 1}` });
    apps.push(consumer);
    consumers.push(consumer);
  }

  const publishes: Publish[] = [];
  let stopping = false;
  const traffic = Promise.all(
    Array.from({ length: CLIENTS }, (_, c) => clientLoop(producer, topic, publishes, () => stopping, c)),
  );
  const stopTraffic = async (): Promise<void> => {
    stopping = true;
    await traffic;
  };
  const acknowledged = (): number => publishes.reduce((n, p) => n + (p.status === 201 ? 1 : 0), 0);
  const delivered = (name: string): number => world.sink.countsOf(`/${name}`).size;
  await waitFor(
    () => acknowledged() >= WARM_UP && PUBLISHERS.every((p) => delivered(p.name) >= WARM_UP),
    'traffic under way',
    60_000,
    50,
  );

  let fault: { start?: number; end?: number } = {};
  const run: HaRun = {
    producer,
    consumers,
    topic,
    key: `{${topic}}`,
    publishes,
    faultStarts() {
      fault = { start: Date.now() };
    },
    faultEnds() {
      if (fault.start === undefined) throw new Error('faultEnds() before faultStarts()');
      fault.end = Date.now();
    },
    async finish(name, extra = {}) {
      const { start, end } = fault;
      if (start === undefined || end === undefined) throw new Error('finish() before the fault started and ended');
      const sentAfterEnd = (): Set<string> =>
        new Set(publishes.flatMap((p) => (p.status === 201 && p.sentAt >= end && p.id ? [p.id] : [])));
      // Recovered: a message sent after the fault ended, answered 201, reached both publishers.
      await waitFor(
        () => {
          const ids = sentAfterEnd();
          return PUBLISHERS.every((p) => [...world.sink.countsOf(`/${p.name}`).keys()].some((id) => ids.has(id)));
        },
        'a message sent after the fault delivered to both publishers',
        90_000,
        50,
      ).catch(() => undefined);
      const target = acknowledged() + COOL_DOWN;
      await waitFor(() => acknowledged() >= target, 'traffic after the recovery', 60_000, 50).catch(() => undefined);
      await stopTraffic();
      const ids = publishes.flatMap((p) => (p.status === 201 && p.id ? [p.id] : []));
      await waitFor(
        () => PUBLISHERS.every((p) => ids.every((id) => world.sink.countsOf(`/${p.name}`).has(id))),
        'every acknowledged message delivered to both publishers',
        90_000,
        100,
      ).catch(() => undefined);
      // Late duplicates count too: wait until nothing has arrived for 2 s.
      const total = (): number => PUBLISHERS.reduce((n, p) => n + world.sink.deliveries(`/${p.name}`).length, 0);
      let seen = -1;
      await waitFor(
        () => {
          const now = total();
          const quiet = now === seen;
          seen = now;
          return quiet;
        },
        'deliveries to stop',
        30_000,
        2000,
      ).catch(() => undefined);

      const publishers: PublisherHistory[] = PUBLISHERS.map((p) => ({
        name: p.name,
        ordered: p.ordered,
        maxInFlight: (p.ordered ? 1 : PLAIN_CONCURRENCY) * CONSUMERS,
        deliveries: world.sink.deliveries(`/${p.name}`),
      }));
      const verdict = checkHistory({ publishes, publishers, fault: { start, end } });
      const seconds = (ms: number | undefined): number | null => (ms === undefined ? null : Math.round(ms / 100) / 10);
      const alive = apps.filter((a) => a.child.exitCode === null && a.child.signalCode === null).length;
      report(name, {
        acknowledged: verdict.acknowledged,
        lost: Object.fromEntries(Object.entries(verdict.publishers).map(([n, v]) => [n, v.lost])),
        unavailable503: verdict.unavailable,
        serverErrors5xx: verdict.serverErrors,
        otherStatuses: verdict.otherStatuses,
        connectionErrors: verdict.connectionErrors,
        statuses: verdict.statuses,
        duplicates: Object.fromEntries(
          Object.entries(verdict.publishers).map(([n, v]) => [n, { duplicates: v.duplicates, bound: v.bound }]),
        ),
        outOfOrder: verdict.publishers.ordered?.outOfOrder.length ?? 0,
        unacknowledgedDelivered: Object.fromEntries(
          Object.entries(verdict.publishers).map(([n, v]) => [n, v.unacknowledgedDelivered]),
        ),
        faultSeconds: seconds(end - start),
        recoverySeconds: {
          first201: seconds(verdict.first201Ms),
          firstDelivery: Object.fromEntries(Object.entries(verdict.firstDeliveryMs).map(([n, ms]) => [n, seconds(ms)])),
        },
        processesAlive: `${alive}/${apps.length}`,
        ...extra,
      });
      const problems = [...verdict.problems];
      if (alive !== apps.length) problems.push(`${apps.length - alive} process(es) ended`);
      else if ((await api(producer, 'GET', '/api/health')).status !== 200) problems.push('the producer is not healthy');
      if (problems.length > 0) {
        const errors = producer.output().match(/^.*"level":("error"|"fatal"|50|60).*$/gm) ?? [];
        throw new Error(`${name}: ${problems.join('; ')}\nlast producer errors:\n${errors.slice(-5).join('\n')}`);
      }
      return verdict;
    },
  };
  return { run, stopTraffic };
}

/** Posts a message every CLIENTS/RATE seconds until `stopped()`, recording each answer. */
async function clientLoop(
  producer: AppProcess,
  topic: string,
  publishes: Publish[],
  stopped: () => boolean,
  client: number,
): Promise<void> {
  const intervalMs = (CLIENTS * 1000) / RATE;
  let next = Date.now();
  for (let n = 0; !stopped(); n++) {
    const sentAt = Date.now();
    try {
      const res = await fetch(`${producer.url}/api/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ topic, payload: { client, n } }),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await res.text();
      const id = res.status === 201 ? String((JSON.parse(text) as { data: { id: string } }).data.id) : undefined;
      publishes.push({ sentAt, at: Date.now(), status: res.status, ...(id ? { id } : {}) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      publishes.push({ sentAt, at: Date.now(), status: 0, error: cause?.code ?? (err as Error).message });
    }
    next = Math.max(next + intervalMs, Date.now() - intervalMs);
    await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
  }
}
