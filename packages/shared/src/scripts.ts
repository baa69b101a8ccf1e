/**
 * The Lua scripts under `lua/`, one file per atomic command, defined on a
 * client once with `defineCommand` (EVALSHA, falling back to EVAL).
 * Each is called with its number of keys first, then keys, then arguments;
 * business failures come back as the negative codes of `errors.ts`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ClientContext, Cluster, Redis, Result } from 'ioredis';

export const SCRIPT_NAMES = {
  poIngest: 'ingest',
  poCreateTopic: 'create-topic',
  poUpdateTopic: 'update-topic',
  poDeleteTopic: 'delete-topic',
  poCreatePublisher: 'create-publisher',
  poUpdatePublisher: 'update-publisher',
  poDeletePublisher: 'delete-publisher',
  poTakeRetries: 'take-retries',
  poTakeOrdered: 'take-ordered',
  poSettle: 'settle',
  poAttempts: 'attempts',
  poReclaim: 'reclaim',
  poTrim: 'trim',
  poRenewLock: 'renew-lock',
  poReleaseLock: 'release-lock',
  poSchedule: 'schedule',
  poReleaseScheduled: 'release-scheduled',
  poFailing: 'failing',
  poPullLease: 'pull-lease',
  poPullSettle: 'pull-settle',
  poOutboxMove: 'outbox-move',
  poTakeLease: 'take-lease',
  poRateLimit: 'rate-limit',
  poPurge: 'purge',
  poSeek: 'seek',
  poCountRange: 'count-range',
  poCancelScheduled: 'cancel-scheduled',
  poCreateSource: 'create-source',
  poUpdateSource: 'update-source',
  poRecordRecovery: 'record-recovery',
} as const;

export type ScriptCommand = keyof typeof SCRIPT_NAMES;

type ScriptFn<Context extends ClientContext> = (
  numKeys: number,
  ...keysAndArgs: (string | number)[]
) => Result<unknown, Context>;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    poIngest: ScriptFn<Context>;
    poCreateTopic: ScriptFn<Context>;
    poUpdateTopic: ScriptFn<Context>;
    poDeleteTopic: ScriptFn<Context>;
    poCreatePublisher: ScriptFn<Context>;
    poUpdatePublisher: ScriptFn<Context>;
    poDeletePublisher: ScriptFn<Context>;
    poTakeRetries: ScriptFn<Context>;
    poTakeOrdered: ScriptFn<Context>;
    poSettle: ScriptFn<Context>;
    poAttempts: ScriptFn<Context>;
    poReclaim: ScriptFn<Context>;
    poTrim: ScriptFn<Context>;
    poRenewLock: ScriptFn<Context>;
    poReleaseLock: ScriptFn<Context>;
    poSchedule: ScriptFn<Context>;
    poReleaseScheduled: ScriptFn<Context>;
    poFailing: ScriptFn<Context>;
    poPullLease: ScriptFn<Context>;
    poPullSettle: ScriptFn<Context>;
    poOutboxMove: ScriptFn<Context>;
    poTakeLease: ScriptFn<Context>;
    poRateLimit: ScriptFn<Context>;
    poPurge: ScriptFn<Context>;
    poSeek: ScriptFn<Context>;
    poCountRange: ScriptFn<Context>;
    poCancelScheduled: ScriptFn<Context>;
    poCreateSource: ScriptFn<Context>;
    poUpdateSource: ScriptFn<Context>;
    poRecordRecovery: ScriptFn<Context>;
  }
}

/** A client with the scripts defined: one Redis, or a Redis Cluster (see `createRedis`). */
export type ScriptClient = Redis | Cluster;

const LUA_DIR = fileURLToPath(new URL('../lua/', import.meta.url));
let sources: Map<ScriptCommand, string> | undefined;

/** The text of one script, read from `lua/<name>.lua`. */
export function scriptSource(name: ScriptCommand): string {
  if (!sources) {
    sources = new Map();
    for (const [command, file] of Object.entries(SCRIPT_NAMES) as [ScriptCommand, string][]) {
      sources.set(command, readFileSync(`${LUA_DIR}${file}.lua`, 'utf8'));
    }
  }
  const lua = sources.get(name);
  if (lua === undefined) throw new Error(`no script ${name}`);
  return lua;
}

/** Defines every script on the client (idempotent). */
export function defineScripts(client: ScriptClient): ScriptClient {
  for (const name of Object.keys(SCRIPT_NAMES) as ScriptCommand[]) {
    if (typeof (client as unknown as Record<string, unknown>)[name] !== 'function') {
      client.defineCommand(name, { lua: scriptSource(name) });
    }
  }
  return client;
}
