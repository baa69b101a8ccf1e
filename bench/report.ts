/**
 * `tsx bench/report.ts [results.json] [--doc]` prints the Markdown tables of
 * docs/performance.md from a results file (bench/results/reference.json by
 * default), so the document quotes exactly what a run measured. With
 * `--doc` it writes them between the report markers of that document.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const toDoc = args.includes('--doc');
const file =
  args.find((a) => !a.startsWith('--')) ?? fileURLToPath(new URL('./results/reference.json', import.meta.url));
const lines: string[] = [];
const print = (text: string) => lines.push(text);
const report = JSON.parse(readFileSync(file, 'utf8'));
const byName = new Map<string, any>(report.cases.map((c: any) => [c.name, c.result]));

const num = (v: number) => (v >= 1000 ? Math.round(v).toLocaleString('en-US') : String(v));
const measure = (m: any) => {
  const p99 = m.extra?.p99_ms !== undefined ? `, p99 ${m.extra.p99_ms} ms` : '';
  return `${num(m.value)} ${m.unit}${p99}`;
};
const row = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
const table = (head: string[], rows: (string | number)[][]) =>
  [row(head), row(head.map(() => '---')), ...rows.map(row)].join('\n');

const main: (string | number)[][] = [];
for (const c of report.cases) {
  const r = c.result;
  if (!r) {
    main.push([c.name, c.measure, 'failed', '', '', '', '']);
    continue;
  }
  main.push([
    c.name,
    measure(r.figure),
    `${r.baseline.label}: ${measure(r.baseline)}`,
    `${r.ratio}×`,
    r.goal,
    r.met ? 'yes' : '**no**',
  ]);
  for (const m of r.more ?? [])
    main.push([
      '',
      m.figure ? `${m.figure.label}: ${measure(m.figure)}` : '',
      `${m.baseline.label}: ${measure(m.baseline)}`,
      `${m.ratio}×`,
      m.goal,
      m.met ? 'yes' : '**no**',
    ]);
}
print(
  `Run: \`${report.command}\`, ${report.started_at}, ${report.duration_seconds} s, commit ${String(report.machine.commit).slice(0, 7)}.\n`,
);
print(
  `Machine: ${report.machine.cpus} × ${report.machine.cpu_model}, ${report.machine.memory_gb} GB, ${report.machine.os}, Node ${report.machine.node}, ${report.machine.redis.split(' sha')[0]}; load average ${report.machine.load_average_at_start[0]} at start, ${report.machine.load_average_at_end[0]} at end.\n`,
);
print(table(['case', 'postoffice', 'baseline (same run)', 'ratio', 'goal', 'met'], main));

const cost = (title: string, entries: [string, any][]) => {
  const procs = [...new Set(entries.flatMap(([, u]) => Object.keys(u.cpu_ms_per_msg)))];
  print(`\n${title}\n`);
  print(
    table(
      ['run', ...procs.map((p) => `${p} CPU µs/msg`), 'Redis round trips/msg', 'Redis commands/msg'],
      entries.map(([name, u]) => {
        const cmds = u.redis_cmds_per_msg as Record<string, number>;
        const trips = ['evalsha', 'xreadgroup'].reduce((s, k) => s + (cmds[k] ?? 0), 0);
        return [
          name,
          ...procs.map((p) => (u.cpu_ms_per_msg[p] !== undefined ? Math.round(u.cpu_ms_per_msg[p] * 1000) : '')),
          name.includes('BullMQ') ? '≥ 2 (see commands)' : trips.toFixed(3),
          Object.values(cmds)
            .reduce((s, v) => s + v, 0)
            .toFixed(2),
        ];
      }),
    ),
  );
};
const d = byName.get('delivery');
if (d?.details?.cost) {
  cost('Delivery, where the CPU goes (per delivered message):', [
    ['postoffice', d.details.cost.postoffice],
    ['undici Pool, no queue', d.details.cost.undici_pool],
    ['BullMQ Queue + Worker', d.details.cost.bullmq],
  ]);
  print(`\nNo-queue limit over BullMQ in this run: ${d.details.limit_over_bullmq}×.`);
}
const f = byName.get('fan-out');
if (f?.details?.by_publishers) {
  print('\nFan-out: the same number of deliveries through 1, 10 and 50 publishers of one topic:\n');
  print(
    table(
      ['publishers', 'deliveries/s', 'consumer CPU µs/delivery', 'Redis CPU µs/delivery', 'Redis round trips/delivery'],
      Object.entries(f.details.by_publishers).map(([n, v]: [string, any]) => [
        n,
        num(v.per_s),
        Math.round(v.cost.cpu_ms_per_msg.consumer * 1000),
        Math.round(v.cost.cpu_ms_per_msg['redis-server'] * 1000),
        ((v.cost.redis_cmds_per_msg.evalsha ?? 0) + (v.cost.redis_cmds_per_msg.xreadgroup ?? 0)).toFixed(3),
      ]),
    ),
  );
}
const p = byName.get('payload size');
if (p?.details?.by_size) {
  print('\nPayload size: one publisher draining a backlog:\n');
  print(
    table(
      ['payload', 'msgs/s', 'MB/s', 'consumer CPU µs/msg', 'receiver CPU µs/msg', 'Redis CPU µs/msg'],
      Object.entries(p.details.by_size).map(([b, v]: [string, any]) => [
        `${Number(b) >= 1024 ? `${Number(b) / 1024} KB` : `${b} B`}`,
        num(v.per_s),
        v.mb_per_s,
        Math.round(v.cost.cpu_ms_per_msg.consumer * 1000),
        Math.round(v.cost.cpu_ms_per_msg.receiver * 1000),
        Math.round(v.cost.cpu_ms_per_msg['redis-server'] * 1000),
      ]),
    ),
  );
}
const i = byName.get('idle scale');
if (i) {
  print('\nIdle publishers:\n');
  print(
    table(
      ['publishers', 'Redis commands/s', 'consumer RSS MB'],
      [
        [0, i.details.no_publishers.cmd_per_s, i.details.no_publishers.rss_mb],
        [num(i.config.publishers), i.figure.value, i.more[0].figure.value],
      ],
    ),
  );
  print(
    `\nCommands/s by name with ${num(i.config.publishers)} publishers: ${JSON.stringify(i.details.loaded_by_command)}`,
  );
}
const l = byName.get('latency');
if (l?.details?.by_rate) {
  print('\nLatency, publish -> received (and the POST -> 201 part of it), ms:\n');
  print(
    table(
      ['rate', 'achieved', 'p50', 'p99', 'max', 'POST->201 p50', 'POST->201 p99', 'POST->201 max'],
      Object.entries(l.details.by_rate).map(([rate, v]: [string, any]) => [
        `${Number(rate) / 1000}k/s`,
        num(v.achieved_per_s),
        v.p50,
        v.p99,
        v.max,
        v.ingest_p50,
        v.ingest_p99,
        v.ingest_max,
      ]),
    ),
  );
}
const s = byName.get('slow receiver');
if (s?.details?.rss_mb_each_second) {
  const series = s.details.rss_mb_each_second as number[];
  const every = Math.max(1, Math.floor(series.length / 12));
  print(
    `\nSlow receiver, consumer RSS (MB) every ${every} s after warm-up, backlog left ${num(s.details.backlog_left)}:\n`,
  );
  print(series.filter((_, k) => k % every === 0).join(' → '));
}

if (toDoc) {
  const doc = fileURLToPath(new URL('../docs/performance.md', import.meta.url));
  const text = readFileSync(doc, 'utf8');
  const start = '<!-- report:start -->';
  const end = '<!-- report:end -->';
  const before = text.slice(0, text.indexOf(start) + start.length);
  const after = text.slice(text.indexOf(end));
  writeFileSync(doc, `${before}\n\n${lines.join('\n')}\n\n${after}`);
  console.log(`wrote the figures of ${file} into ${doc}`);
} else {
  console.log(lines.join('\n'));
}
