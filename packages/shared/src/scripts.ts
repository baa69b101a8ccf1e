/**
 * The Lua scripts under `lua/`, one file per atomic command, each called
 * through one typed function of the `scripts` namespace
 * (`scripts.settle(redis, keys, args)`): named keys in the order of the
 * script's KEYS tuple (the key count is taken from it), named arguments,
 * and the reply parsed once into a named type (`scripts/script.ts`).
 * Business failures come back as the negative codes of `errors.ts`, thrown
 * as their typed errors. `queue` puts a call in a `pipeline()` or `multi()`
 * and `parse` reads its reply there.
 *
 * `defineScripts` defines every script on a client once with
 * `defineCommand` (EVALSHA, falling back to EVAL); `createRedis` does it.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as all from './scripts/index.js';
import type { ScriptClient, ScriptInfo } from './scripts/script.js';

export * as scripts from './scripts/index.js';
export type { Script, ScriptArg, ScriptInfo, ScriptClient, ScriptKeys, ScriptPipeline } from './scripts/script.js';

/** Every script (one per file under `lua/`). */
const exported: unknown[] = Object.values(all);
export const SCRIPTS: readonly ScriptInfo[] = exported.filter(
  (v): v is ScriptInfo => typeof v === 'function' && 'command' in v,
);

const LUA_DIR = fileURLToPath(new URL('../lua/', import.meta.url));
const sources = new Map<string, string>();

/** The text of one script, read from `lua/<file>.lua`. */
export function scriptSource(file: string): string {
  let lua = sources.get(file);
  if (lua === undefined) {
    lua = readFileSync(`${LUA_DIR}${file}.lua`, 'utf8');
    sources.set(file, lua);
  }
  return lua;
}

/** Defines every script on the client (idempotent). */
export function defineScripts(client: ScriptClient): ScriptClient {
  for (const script of SCRIPTS) {
    if (typeof (client as unknown as Record<string, unknown>)[script.command] !== 'function') {
      client.defineCommand(script.command, { lua: scriptSource(script.file) });
    }
  }
  return client;
}
