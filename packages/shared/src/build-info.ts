/** What `postoffice_build_info` says about a process: Postoffice's version and Node's. */
import { readFileSync } from 'node:fs';

export interface BuildInfo {
  /** The version of the Postoffice packages (they are released together). */
  readonly version: string;
  /** Node.js, without the `v`. */
  readonly nodeVersion: string;
}

let cached: BuildInfo | undefined;

/** Read once, on first use, from this package's package.json. */
export function buildInfo(): BuildInfo {
  if (!cached) {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    cached = {
      version: typeof pkg.version === 'string' ? pkg.version : 'unknown',
      nodeVersion: process.versions.node,
    };
  }
  return cached;
}
