/** The printed table: one row per figure and baseline. */
import type { CaseResult, Measure } from './types.js';

function fmt(m: Measure): string {
  const v = m.value >= 1000 ? Math.round(m.value).toLocaleString('en-US') : String(m.value);
  const extra = m.extra && m.extra.p99_ms !== undefined ? ` (p99 ${m.extra.p99_ms} ms)` : '';
  return `${v} ${m.unit}${extra}`;
}

export function formatTable(
  rows: readonly { name: string; measure: string; result?: CaseResult; error?: string }[],
): string {
  const lines: string[][] = [['case', 'measure', 'postoffice', 'baseline', 'ratio', 'goal', 'met']];
  for (const r of rows) {
    if (!r.result) {
      lines.push([r.name, r.measure, 'FAILED', (r.error ?? '').split('\n')[0]!.slice(0, 60), '', '', 'no']);
      continue;
    }
    const res = r.result;
    lines.push([
      r.name,
      r.measure,
      fmt(res.figure),
      `${res.baseline.label}: ${fmt(res.baseline)}`,
      `${res.ratio}x`,
      res.goal,
      res.met ? 'yes' : 'NO',
    ]);
    for (const more of res.more ?? []) {
      lines.push([
        '',
        more.figure ? more.figure.label : '',
        more.figure ? fmt(more.figure) : '',
        `${more.baseline.label}: ${fmt(more.baseline)}`,
        `${more.ratio}x`,
        more.goal,
        more.met ? 'yes' : 'NO',
      ]);
    }
  }
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => (l[i] ?? '').length)));
  const render = (l: string[]) => `| ${l.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [render(lines[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.slice(1).map(render)].join(
    '\n',
  );
}
