/**
 * Helper processes (receivers, baselines) run as their own Node processes
 * from TypeScript through tsx, and talk to the bench over IPC: the child
 * sends `{ type: 'ready', ... }` once, then answers each `{ id, cmd, ... }`
 * with `{ id, result }` or `{ id, error }`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CHILDREN = fileURLToPath(new URL('../children/', import.meta.url));

export interface Child<Ready = Record<string, unknown>> {
  readonly pid: number;
  readonly ready: Ready;
  call<T = unknown>(cmd: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  close(): Promise<void>;
}

interface Reply {
  id?: number;
  type?: string;
  result?: unknown;
  error?: string;
}

/** Starts `children/<name>.ts` with `args` as env (BENCH_*), and resolves once it says it is ready. */
export async function startChild<Ready = Record<string, unknown>>(
  name: string,
  env: Record<string, string | number> = {},
): Promise<Child<Ready>> {
  const child: ChildProcess = fork(`${CHILDREN}${name}.ts`, [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let gone = false;
  void exited.then(() => {
    gone = true;
    for (const p of pending.values()) p.reject(new Error(`${name} exited`));
    pending.clear();
  });
  const ready = await new Promise<Ready>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s`)), 30_000);
    child.on('message', (raw: Reply) => {
      if (raw.type === 'ready') {
        clearTimeout(timer);
        resolve(raw as unknown as Ready);
        return;
      }
      const p = raw.id !== undefined ? pending.get(raw.id) : undefined;
      if (!p) return;
      pending.delete(raw.id!);
      if (raw.error !== undefined) p.reject(new Error(`${name}: ${raw.error}`));
      else p.resolve(raw.result);
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${name} exited before it was ready`));
    });
  });
  return {
    pid: child.pid!,
    ready,
    call<T>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 600_000): Promise<T> {
      if (gone) return Promise.reject(new Error(`${name} has exited`));
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${name}: ${cmd} took longer than ${timeoutMs / 1000} s`));
        }, timeoutMs);
        pending.set(id, {
          resolve: (v) => {
            clearTimeout(timer);
            resolve(v as T);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
        child.send({ id, cmd, ...args });
      });
    },
    async close() {
      if (!gone) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** In a child: says it is ready, then serves commands with `handlers`. */
export function serve(
  ready: Record<string, unknown>,
  handlers: Record<string, (args: Record<string, unknown>) => unknown>,
): void {
  process.on('message', (msg: { id: number; cmd: string } & Record<string, unknown>) => {
    const handler = handlers[msg.cmd];
    if (!handler) {
      process.send?.({ id: msg.id, error: `unknown command ${msg.cmd}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(msg))
      .then(
        (result) => process.send?.({ id: msg.id, result: result ?? null }),
        (err: unknown) => process.send?.({ id: msg.id, error: err instanceof Error ? err.message : String(err) }),
      );
  });
  // The bench going away (IPC closed) ends the child.
  process.on('disconnect', () => process.exit(0));
  process.send?.({ type: 'ready', ...ready });
}

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes on one machine. */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}
