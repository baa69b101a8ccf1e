/**
 * Where the CPU went: CPU seconds of each process (from /proc) and of
 * redis-server (INFO cpu), and Redis commands by name (INFO commandstats),
 * between two snapshots. Divided by the messages of the run, this is the
 * evidence of what limits a figure on a given machine.
 */
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { round } from './stats.js';
import { commandCount } from './world.js';

const TICKS_PER_SECOND = 100;

export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at state (field 3).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const user = Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? 0);
  const sys = Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? 0);
  return user + sys;
}

interface Snapshot {
  cpu: Record<string, number>;
  commands: Record<string, number>;
}

async function snapshot(pids: Record<string, number>, redis: Redis): Promise<Snapshot> {
  const cpu: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pids)) cpu[name] = cpuSeconds(pid);
  cpu['redis-server'] = await redisCpuSeconds(redis);
  return { cpu, commands: (await commandCount(redis)).byCommand };
}

export interface UsageReport {
  /** CPU milliseconds each process spent per message. */
  readonly cpu_ms_per_msg: Record<string, number>;
  /** Redis commands per message, by command (those above 0.001). */
  readonly redis_cmds_per_msg: Record<string, number>;
}

/** Starts measuring; call the result with the number of messages handled to get the report. */
export async function measureUsage(
  pids: Record<string, number>,
  redis: Redis,
): Promise<(messages: number) => Promise<UsageReport>> {
  const before = await snapshot(pids, redis);
  return async (messages) => {
    const after = await snapshot(pids, redis);
    const cpu: Record<string, number> = {};
    for (const [name, s] of Object.entries(after.cpu))
      cpu[name] = round(((s - before.cpu[name]!) * 1000) / messages, 4);
    const cmds: Record<string, number> = {};
    for (const [name, calls] of Object.entries(after.commands)) {
      const per = (calls - (before.commands[name] ?? 0)) / messages;
      if (per >= 0.001) cmds[name] = round(per, 3);
    }
    return { cpu_ms_per_msg: cpu, redis_cmds_per_msg: cmds };
  };
}
