/**
 * Test support: the real producer and consumer processes, started from
 * their built entry points (`pnpm build` first), as the chart runs them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from './redis-server.js';
import { waitFor } from './wait.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * The standard output of every process started here, in start order: the
 * leak check reads each line at the end of the run (one JSON object, no key
 * twice, a level's name).
 */
export const startedOutputs: { readonly name: string; stdout(): string }[] = [];

export interface AppProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly url: string;
  /** Everything the process printed (stdout and stderr). */
  output(): string;
  /** Resolves with the exit code (or signal name) when the process ends. */
  readonly exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

export async function startApp(
  which: 'producer' | 'consumer',
  env: Record<string, string>,
  options: { waitReady?: boolean } = {},
): Promise<AppProcess> {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const child = spawn(process.execPath, [`${ROOT}packages/${which}/dist/main.js`], {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let stdout = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
    stdout += d.toString();
  });
  startedOutputs.push({ name: `${which} on port ${port}`, stdout: () => stdout });
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  const url = `http://127.0.0.1:${port}`;
  const app: AppProcess = {
    child,
    port,
    url,
    output: () => out,
    exited,
    kill: (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
  if (options.waitReady ?? true) {
    const path = which === 'producer' ? '/api/health' : '/healthz';
    let ended = false;
    void exited.then(() => (ended = true));
    await waitFor(async () => {
      if (ended) throw new Error(`${which} exited: ${out}`);
      const res = await fetch(`${url}${path}`);
      return res.status === 200;
    }, `${which} to be ready`);
  }
  return app;
}

/** Stops processes that are still running (SIGKILL) and waits for them. */
export async function killAll(apps: AppProcess[]): Promise<void> {
  for (const app of apps) app.kill('SIGKILL');
  await Promise.all(apps.map((a) => a.exited));
}

/** Calls the HTTP API of a started process: the status and the parsed JSON body (undefined when empty). */
export async function api(
  app: AppProcess,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: any }> {
  const res = await fetch(`${app.url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}
