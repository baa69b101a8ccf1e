/**
 * `pnpm bench [--quick | --shape] [--only <case>[,<case>]] [--out <file>]`
 *
 * Runs every case against real processes (redis-server, producer, consumer,
 * receivers, baselines), prints a table of each figure beside its baseline
 * from the same run, and writes the whole result with the exact
 * configuration and machine to bench/results/<name>.json.
 *
 *   (default)  full sizes: the figures of record (several minutes)
 *   --quick    smaller sizes, under two minutes
 *   --shape    the smallest sizes that exercise every path (the harness test)
 *   --cpu-prof <dir>  producer and consumer write V8 CPU profiles there
 *                     (summarize one with `tsx bench/profile.ts <file>`)
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem, release } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CASES } from './cases/index.js';
import { formatTable } from './lib/table.js';
import type { CaseResult, Mode } from './lib/types.js';

const HERE = dirname(fileURLToPath(import.meta.url));

function parseArgs(argv: string[]): { mode: Mode; only: string[] | undefined; out: string | undefined } {
  let mode: Mode = 'full';
  let only: string[] | undefined;
  let out: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') continue;
    else if (a === '--quick') mode = 'quick';
    else if (a === '--shape') mode = 'shape';
    else if (a === '--full') mode = 'full';
    else if (a === '--only') only = (argv[++i] ?? '').split(',').map((s) => s.trim());
    else if (a === '--out') out = argv[++i];
    else if (a === '--cpu-prof')
      process.env.BENCH_CPU_PROF = resolve(process.env.INIT_CWD ?? process.cwd(), argv[++i] ?? '');
    else {
      console.error(
        `unknown argument ${a}\nusage: pnpm bench [--quick | --shape] [--only <case>,...] [--out <file>] [--cpu-prof <dir>]`,
      );
      process.exit(2);
    }
  }
  return { mode, only, out };
}

function machine(): Record<string, unknown> {
  const cpu = cpus();
  let redis = 'unknown';
  let commit = 'unknown';
  try {
    redis = execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    // reported as unknown
  }
  try {
    commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: HERE, encoding: 'utf8' }).trim();
  } catch {
    // not a checkout
  }
  return {
    cpu_model: cpu[0]?.model ?? 'unknown',
    cpus: cpu.length,
    memory_gb: Math.round(totalmem() / 2 ** 30),
    os: `${process.platform} ${release()}`,
    node: process.version,
    redis,
    commit,
    load_average_at_start: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

async function main(): Promise<void> {
  const { mode, only, out } = parseArgs(process.argv.slice(2));
  const cases = only ? CASES.filter((c) => only.includes(c.name) || only.includes(c.name.replace(/ /g, '-'))) : CASES;
  if (cases.length === 0) {
    console.error(`no case matches ${only?.join(', ')}; cases: ${CASES.map((c) => c.name).join(', ')}`);
    process.exit(2);
  }
  const started = new Date();
  const info = machine();
  const results: {
    name: string;
    measure: string;
    seconds: number;
    result?: CaseResult;
    error?: string;
  }[] = [];
  const previous = new Map<string, CaseResult>();
  for (const c of cases) {
    const t0 = performance.now();
    const log = (m: string) => console.error(`[bench] ${c.name}: ${m}`);
    log('start');
    try {
      const result = await c.run({ mode, log, previous });
      previous.set(c.name, result);
      results.push({ name: c.name, measure: c.measure, seconds: secondsSince(t0), result });
      log(`done in ${secondsSince(t0)} s`);
    } catch (err) {
      const error = err instanceof Error ? (err.stack ?? err.message) : String(err);
      results.push({ name: c.name, measure: c.measure, seconds: secondsSince(t0), error });
      log(`FAILED: ${error}`);
    }
  }
  const finished = new Date();
  const report = {
    version: 1,
    mode,
    command: `pnpm bench${mode === 'full' ? '' : ` --${mode}`}${only ? ` --only ${only.join(',')}` : ''}`,
    started_at: started.toISOString(),
    finished_at: finished.toISOString(),
    duration_seconds: Math.round((finished.getTime() - started.getTime()) / 100) / 10,
    machine: { ...info, load_average_at_end: loadavg().map((l) => Math.round(l * 100) / 100) },
    cases: results,
  };
  const file = out
    ? resolve(process.env.INIT_CWD ?? process.cwd(), out)
    : join(HERE, 'results', `${started.toISOString().replace(/[:.]/g, '-')}-${mode}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  console.log(formatTable(results));
  console.log(`\n${mode} run, ${report.duration_seconds} s; results in ${file}`);
  if (results.some((r) => r.error)) process.exit(1);
}

function secondsSince(t0: number): number {
  return Math.round((performance.now() - t0) / 100) / 10;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
