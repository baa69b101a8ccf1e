/**
 * `tsx bench/profile.ts <file.cpuprofile> [--folded out.folded] [--top N]`
 *
 * Summarizes a V8 CPU profile (from `pnpm bench --cpu-prof <dir>`): the
 * functions with the most self time, and the same grouped by package, so a
 * hot path shows without a browser. `--folded` writes collapsed stacks
 * (`a;b;c <samples>`), the input of flame graph tools (flamegraph.pl,
 * speedscope, clinic-style viewers).
 */
import { readFileSync, writeFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const args = process.argv.slice(2);
const file = args[0];
if (!file) {
  console.error('usage: tsx bench/profile.ts <file.cpuprofile> [--folded out.folded] [--top N]');
  process.exit(2);
}
const folded = args.includes('--folded') ? args[args.indexOf('--folded') + 1] : undefined;
const top = args.includes('--top') ? Number(args[args.indexOf('--top') + 1]) : 30;

const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

function short(url: string): string {
  const m = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1]!;
  const p = /packages\/([^/]+)\/dist\/(.*)$/.exec(url);
  if (p) return `${p[1]}/${p[2]}`;
  if (url.startsWith('node:')) return url;
  return url
    ? url
        .replace(/^file:\/\//, '')
        .split('/')
        .slice(-2)
        .join('/')
    : '(native)';
}
function label(n: Node): string {
  const f = n.callFrame;
  return `${f.functionName || '(anonymous)'} ${short(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;
}
function group(n: Node): string {
  const name = n.callFrame.functionName;
  if (name === '(garbage collector)' || name === '(idle)' || name === '(program)') return name;
  const s = short(n.callFrame.url);
  return s.startsWith('node:') ? 'node core' : s.split('/')[0]!;
}

const byFn = new Map<string, number>();
const byGroup = new Map<string, number>();
for (const [id, us] of selfUs) {
  const n = byId.get(id)!;
  byFn.set(label(n), (byFn.get(label(n)) ?? 0) + us);
  byGroup.set(group(n), (byGroup.get(group(n)) ?? 0) + us);
}
const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled`);
console.log('\nself time by package');
for (const [g, us] of [...byGroup].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${pct(us)}  ${g}`);
console.log(`\ntop ${top} functions by self time`);
for (const [f, us] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(us)}  ${f}`);

if (folded) {
  const stacks = new Map<string, number>();
  profile.samples.forEach((id) => {
    const frames: string[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur)!;
      if (n.callFrame.functionName !== '(root)') frames.push(label(n).replace(/;/g, ','));
    }
    const key = frames.reverse().join(';');
    stacks.set(key, (stacks.get(key) ?? 0) + 1);
  });
  writeFileSync(folded, [...stacks].map(([k, v]) => `${k} ${v}`).join('\n') + '\n');
  console.log(`\nfolded stacks in ${folded}`);
}
