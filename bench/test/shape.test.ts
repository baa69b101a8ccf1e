/**
 * The bench harness must not rot: run every case at its smallest size
 * (`--shape`; `--quick` takes about two minutes, too long for the suite on
 * two CPUs) and check that each produced a figure, a baseline from the same
 * run, a ratio and its configuration, and that the results file has the
 * documented shape. Speed is not asserted here: that is the bench's job.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { CASES } from '../cases/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function expectMeasure(m: any, where: string): void {
  expect(m, where).to.be.an('object');
  expect(m.label, `${where}.label`).to.be.a('string').and.not.empty;
  expect(m.unit, `${where}.unit`).to.be.a('string').and.not.empty;
  expect(Number.isFinite(m.value), `${where}.value is a number (${m.value})`).to.be.true;
  expect(m.value, `${where}.value`).to.be.at.least(0);
  for (const [k, v] of Object.entries(m.extra ?? {})) expect(Number.isFinite(v), `${where}.extra.${k}`).to.be.true;
}

function expectComparison(c: any, where: string): void {
  expectMeasure(c.baseline, `${where}.baseline`);
  expect(c.baseline.value, `${where}.baseline.value`).to.be.above(0);
  expect(Number.isFinite(c.ratio), `${where}.ratio is a number (${c.ratio})`).to.be.true;
  expect(c.goal, `${where}.goal`).to.be.a('string').and.not.empty;
  expect(c.met, `${where}.met`).to.be.a('boolean');
  if (c.figure !== undefined) expectMeasure(c.figure, `${where}.figure`);
}

describe('pnpm bench --shape', function () {
  this.timeout(600_000);
  this.slow(120_000);

  const dir = mkdtempSync(join(tmpdir(), 'po-bench-'));
  const file = join(dir, 'shape.json');
  let output = '';
  let code: number | null = null;
  let report: any;

  before(async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--shape', '--out', file], {
      cwd: ROOT,
      env: { ...process.env, INIT_CWD: ROOT },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    report = JSON.parse(readFileSync(file, 'utf8'));
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it('exits 0 with every case run', () => {
    expect(code, output).to.equal(0);
    expect(report.cases.map((c: any) => c.name)).to.deep.equal(CASES.map((c) => c.name));
    for (const c of report.cases) expect(c.error, `${c.name}: ${c.error}`).to.be.undefined;
  });

  it('records the mode, the command, the times and the machine', () => {
    expect(report.version).to.equal(1);
    expect(report.mode).to.equal('shape');
    expect(report.command).to.equal('pnpm bench --shape');
    expect(Date.parse(report.started_at)).to.be.below(Date.parse(report.finished_at) + 1);
    for (const field of ['cpu_model', 'cpus', 'memory_gb', 'os', 'node', 'redis', 'commit', 'load_average_at_start'])
      expect(report.machine, field).to.have.property(field);
  });

  it('gives every case a figure, a baseline from the same run, a ratio and its configuration', () => {
    for (const c of report.cases) {
      expect(c.measure, c.name).to.be.a('string').and.not.empty;
      expect(c.seconds, c.name).to.be.above(0);
      const r = c.result;
      expectMeasure(r.figure, `${c.name}.figure`);
      expectComparison(r, c.name);
      for (const [i, more] of (r.more ?? []).entries()) expectComparison(more, `${c.name}.more[${i}]`);
      expect(Object.keys(r.config), `${c.name}.config`).to.not.be.empty;
    }
  });

  it('compares delivery with the no-queue limit and BullMQ, and counts Redis commands per delivery', () => {
    const d = report.cases.find((c: any) => c.name === 'delivery').result;
    expect(d.baseline.label).to.match(/undici/);
    expect(d.more.map((m: any) => m.baseline.label)).to.deep.equal([
      'BullMQ Queue + Worker',
      'postoffice, fraction of the limit',
      'goal',
    ]);
    expect(d.more[2].figure.unit).to.equal('cmd/msg');
  });

  it('measures retention memory against a bare stream for small, large and retried messages', () => {
    const m = report.cases.find((c: any) => c.name === 'retention memory').result;
    expect(m.baseline.label).to.match(/bare stream/);
    expect(m.more).to.have.length(2);
    for (const row of m.details.rows) expect(row.postoffice, row.label).to.be.above(0);
  });

  it('measures replicated ingest with WAIT against the same producer without it', () => {
    const r = report.cases.find((c: any) => c.name === 'replicated ingest').result;
    expect(r.config.producer_env.with_wait.REDIS_MIN_REPLICAS).to.equal('1');
    expect(r.config.producer_env.without_wait.REDIS_MIN_REPLICAS).to.equal('0');
    for (const cost of r.details.cost_per_request.wait) expect(cost.redis_cmds_per_msg.wait).to.be.above(0);
    for (const cost of r.details.cost_per_request.plain) expect(cost.redis_cmds_per_msg).to.not.have.property('wait');
  });

  it('times failover recovery from the SIGKILL to the first 201 and the first delivery, and Redis alone', () => {
    const r = report.cases.find((c: any) => c.name === 'failover recovery').result;
    expect(r.more.map((m: any) => m.figure.label)).to.deep.equal([
      'postoffice, first delivery',
      'postoffice, first 201',
    ]);
    expect(r.more[1].baseline.label).to.match(/new master/);
    for (const run of r.details.runs) {
      expect(run.first201, 'first 201').to.be.above(0);
      expect(run.firstDelivery, 'first delivery').to.be.above(0);
      expect(run.killedPort, 'killed port').to.be.a('number');
    }
  });

  it('prints the table with a row per case', () => {
    for (const c of CASES) expect(output).to.match(new RegExp(`^\\| ${c.name} `, 'm'));
    expect(output).to.include(`results in ${file}`);
  });
});
