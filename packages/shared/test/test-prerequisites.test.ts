import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../../scripts/check-test-prerequisites.mjs', import.meta.url));

/** Runs the check with only `bin` on the PATH. */
function check(bin: string, env: Record<string, string> = {}, args: string[] = []) {
  const res = spawnSync(process.execPath, [SCRIPT, ...args], { env: { PATH: bin, ...env }, encoding: 'utf8' });
  return { status: res.status, stderr: res.stderr, stdout: res.stdout };
}

describe('the check pnpm test runs before the suite', () => {
  let bin: string;
  let browser: string;

  before(() => {
    bin = mkdtempSync(join(tmpdir(), 'po-prereq-'));
    browser = join(bin, 'chromium');
    writeFileSync(browser, '#!/bin/sh\n');
    chmodSync(browser, 0o755);
  });
  after(() => rmSync(bin, { recursive: true, force: true }));

  /** A fake program on the test's PATH that prints `output` for --version. */
  function fake(name: string, output: string): void {
    writeFileSync(join(bin, name), `#!/bin/sh\necho '${output}'\n`);
    chmodSync(join(bin, name), 0o755);
  }

  it('stops with one line naming what to install when redis-server and Chromium are missing', () => {
    const res = check(join(bin, 'none'), { CHROMIUM_PATH: join(bin, 'no-chromium') });
    expect(res.status).to.equal(1);
    const lines = res.stderr.trimEnd().split('\n');
    expect(lines).to.have.length(1);
    expect(lines[0])
      .to.contain('redis-server 6.2+')
      .and.contain('Chromium')
      .and.contain('apt-get install redis-server chromium');
    expect(res.stdout).to.equal('');
  });

  it('refuses a redis-server older than 6.2', () => {
    fake('redis-server', 'Redis server v=6.0.16 sha=00000000:0 malloc=jemalloc-5.2.1 bits=64');
    const res = check(bin, { CHROMIUM_PATH: browser });
    expect(res.status).to.equal(1);
    expect(res.stderr).to.contain('found 6.0');
  });

  it('asks for redis-cli only for the cluster leg, and for Chromium only when the browser tests run', () => {
    fake('redis-server', 'Redis server v=7.2.4 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64');
    expect(check(bin, { CHROMIUM_PATH: browser }).status).to.equal(0);
    const cluster = check(bin, { CHROMIUM_PATH: browser, POSTOFFICE_TEST_REDIS: 'cluster' });
    expect(cluster.status).to.equal(1);
    expect(cluster.stderr).to.contain('redis-cli').and.contain('redis-tools');
    fake('redis-cli', 'redis-cli 7.2.4');
    expect(check(bin, { CHROMIUM_PATH: browser, POSTOFFICE_TEST_REDIS: 'cluster' }).status).to.equal(0);
    expect(check(bin, { CHROMIUM_PATH: join(bin, 'no-chromium') }).status).to.equal(1);
    expect(check(bin, { CHROMIUM_PATH: join(bin, 'no-chromium') }, ['--no-browser']).status).to.equal(0);
  });
});
