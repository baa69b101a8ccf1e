/**
 * `tsx bench/profile.ts <file.cpuprofile> [--folded out.folded] [--svg out.svg] [--top N]`
 *
 * Summarizes a V8 CPU profile (from `pnpm bench --cpu-prof <dir>`): the
 * functions with the most self time, and the same grouped by package, so a
 * hot path shows without a browser. `--folded` writes collapsed stacks
 * (`a;b;c <samples>`), the input of flame graph tools (flamegraph.pl,
 * speedscope); `--svg` draws a flame graph itself (idle time left out;
 * hover a frame for its name and share).
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
const svg = args.includes('--svg') ? args[args.indexOf('--svg') + 1] : undefined;
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

/** Collapsed stacks: root-first frame labels -> samples. */
function collapse(): Map<string, number> {
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
  return stacks;
}

if (folded) {
  writeFileSync(folded, [...collapse()].map(([k, v]) => `${k} ${v}`).join('\n') + '\n');
  console.log(`\nfolded stacks in ${folded}`);
}

interface Frame {
  name: string;
  samples: number;
  children: Map<string, Frame>;
}

const COLORS: Record<string, string> = {
  consumer: '#e8743b',
  producer: '#e8743b',
  shared: '#e8a33b',
  undici: '#4a90d9',
  ioredis: '#5cb85c',
  'node:': '#b0b0b0',
  native: '#d9534f',
};

function color(name: string): string {
  for (const [key, c] of Object.entries(COLORS)) if (name.includes(key)) return c;
  return name.includes('(') ? COLORS.native! : '#c9a0dc';
}

const escapeXml = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

if (svg) {
  const root: Frame = { name: 'all', samples: 0, children: new Map() };
  for (const [stack, n] of collapse()) {
    if (stack.startsWith('(idle)')) continue;
    root.samples += n;
    let node = root;
    for (const name of stack.split(';')) {
      let child = node.children.get(name);
      if (!child) node.children.set(name, (child = { name, samples: 0, children: new Map() }));
      child.samples += n;
      node = child;
    }
  }
  const width = 1600;
  const row = 16;
  const rects: string[] = [];
  let depth = 0;
  const draw = (f: Frame, x: number, level: number) => {
    depth = Math.max(depth, level);
    const w = (f.samples / root.samples) * width;
    if (w < 0.3) return;
    const share = ((100 * f.samples) / root.samples).toFixed(1);
    const label = w > 40 ? escapeXml(f.name.slice(0, Math.floor(w / 6.5))) : '';
    rects.push(
      `<g><title>${escapeXml(f.name)} (${share}%)</title><rect x="${x.toFixed(1)}" y="${level}" width="${w.toFixed(1)}" height="${row - 1}" fill="${color(f.name)}"/>` +
        (label ? `<text x="${(x + 3).toFixed(1)}" y="${level}" dy="11">${label}</text>` : '') +
        '</g>',
    );
    let cx = x;
    for (const c of [...f.children.values()].sort((a, b) => b.samples - a.samples)) {
      draw(c, cx, level + 1);
      cx += (c.samples / root.samples) * width;
    }
  };
  draw(root, 0, 0);
  const height = (depth + 1) * row;
  // Levels were recorded as depths; flip so the root is at the bottom, as flame graphs are drawn.
  const body = rects
    .map((r) => r.replace(/ y="(\d+)"/g, (_, l: string) => ` y="${height - (Number(l) + 1) * row}"`))
    .join('\n');
  writeFileSync(
    svg,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="monospace" font-size="11">\n${body}\n</svg>\n`,
  );
  console.log(`flame graph in ${svg} (${root.samples} samples, idle left out)`);
}
