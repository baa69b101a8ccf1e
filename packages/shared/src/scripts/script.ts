/**
 * How a Lua script under `lua/` becomes one typed function: named keys in
 * the order of its KEYS tuple (the key count is the tuple's, less the
 * optional keys left out at its end), named arguments encoded in the order
 * of its ARGV, and its reply parsed once into a named type, a business code
 * (a small negative number) thrown as the typed error of `errors.ts`.
 *
 * Each script is defined on the client with `defineCommand` (EVALSHA,
 * falling back to EVAL) under the name `command`; a call is that one
 * command, on the client or queued in a `pipeline()` / `multi()`.
 */
import type { ChainableCommander, Cluster, Redis } from 'ioredis';
import { checkScriptResult } from '../errors.js';
import type { Keys, PublisherKeys, TopicKeys } from '../keys.js';

/** A client with the scripts defined: one Redis, or a Redis Cluster (see `createRedis`). */
export type ScriptClient = Redis | Cluster;

/** A `pipeline()` or `multi()` of a `ScriptClient`. */
export type ScriptPipeline = ChainableCommander;

export type ScriptArg = string | number;

/**
 * The named keys of a KEYS tuple; the `Optional` ones (always at the end of
 * the tuple) may be left out, from the last one back.
 */
export type ScriptKeys<K extends readonly string[], Optional extends K[number] = never> = {
  readonly [k in Exclude<K[number], Optional>]: string;
} & { readonly [k in Optional]?: string | undefined };

/** What every script has, whatever its keys, arguments and reply. */
export interface ScriptInfo {
  /** The file, `lua/<file>.lua`. */
  readonly file: string;
  /** The name the script is defined under on a client (`defineScripts`). */
  readonly command: string;
  /** Its KEYS tuple; undefined for a script of n keys of one kind. */
  readonly keys: readonly string[] | undefined;
}

export interface Script<KeyMap, Args, Reply> extends ScriptInfo {
  /** Runs the script on the client and parses its reply. */
  (client: ScriptClient, keys: KeyMap, args: Args): Promise<Reply>;
  /** Queues the script in a pipeline; `parse` its entry of the pipeline's replies. */
  queue(pipeline: ScriptPipeline, keys: KeyMap, args: Args): ScriptPipeline;
  /** The script's reply as its named type; throws the typed error of a business code. */
  parse(raw: unknown): Reply;
}

type Send = (numKeys: number, ...keysAndArgs: ScriptArg[]) => unknown;

/**
 * The keys given, in tuple order: every name up to the first one left out.
 * A key given after one left out would be sent in the wrong place: refused.
 */
function keyList(names: readonly string[], keys: unknown): string[] {
  const given = keys as Readonly<Record<string, string | undefined>>;
  const out: string[] = [];
  for (const name of names) {
    const key = given[name];
    if (key === undefined) break;
    out.push(key);
  }
  for (let i = out.length + 1; i < names.length; i++) {
    if (given[names[i] as string] !== undefined) throw new Error(`key ${names[i]} given without ${names[out.length]}`);
  }
  return out;
}

/** `take-retries` -> `poTakeRetries`. */
function commandName(file: string): string {
  return `po${file.replace(/(^|-)([a-z])/g, (_m, _d, c: string) => c.toUpperCase())}`;
}

export function defineScript<KeyMap, Args, Reply>(spec: {
  /** `lua/<file>.lua` */
  readonly file: string;
  /** The KEYS tuple, or for a script of n keys of one kind, the keys from the named keys. */
  readonly keys: readonly string[] | ((keys: KeyMap) => readonly string[]);
  /** ARGV, in order. */
  readonly args: (args: Args) => ScriptArg[];
  readonly reply: (raw: unknown) => Reply;
}): Script<KeyMap, Args, Reply> {
  const command = commandName(spec.file);
  const names = spec.keys;
  const send = (target: ScriptClient | ScriptPipeline, keys: KeyMap, args: Args): unknown => {
    const list = typeof names === 'function' ? names(keys) : keyList(names, keys);
    const fn = (target as unknown as Record<string, Send>)[command];
    if (typeof fn !== 'function') throw new Error(`script ${spec.file} is not defined on this client (defineScripts)`);
    return fn.call(target, list.length, ...list, ...spec.args(args));
  };
  const run = async (client: ScriptClient, keys: KeyMap, args: Args): Promise<Reply> =>
    spec.reply(await send(client, keys, args));
  return Object.assign(run, {
    queue: (pipeline: ScriptPipeline, keys: KeyMap, args: Args) => send(pipeline, keys, args) as ScriptPipeline,
    parse: spec.reply,
    file: spec.file,
    command,
    keys: typeof names === 'function' ? undefined : names,
  });
}

/** A reply that says nothing more than done (`1`), or a business code (thrown). */
export function done(raw: unknown): void {
  checkScriptResult(raw);
}

/** A number, or a business code (thrown). */
export function count(raw: unknown): number {
  return checkScriptResult(raw) as number;
}

/** '' for none, else a number (a time in ms). */
export function optionalTime(raw: unknown): number | undefined {
  return raw === '' ? undefined : Number(raw);
}

/**
 * Every key of a topic and of one of its publishers, by the names the
 * scripts' KEYS give them (the topic's record is `topic`): the keys of any
 * script of that publisher, its optional ones included, but for the
 * per-hour `series` and a request's `idempotency` key.
 */
export function publisherKeys(
  keys: Keys,
  topic: string,
  publisherId: string,
): TopicKeys & PublisherKeys & { readonly topic: string } {
  const tk = keys.topic(topic);
  return { ...tk, ...keys.publisher(topic, publisherId), topic: tk.meta };
}
