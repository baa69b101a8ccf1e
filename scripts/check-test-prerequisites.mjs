#!/usr/bin/env node
/**
 * Run first by `pnpm test`, `pnpm test:cluster` and `pnpm test:faults`:
 * stops at once, with one line saying what to install, when a program the
 * tests need is missing, instead of failing half-way through the suite.
 *
 *   redis-server 6.2+   on the PATH (every test file starts its own)
 *   redis-cli           on the PATH, with POSTOFFICE_TEST_REDIS=cluster (it creates the clusters)
 *   Chromium            at CHROMIUM_PATH or /usr/bin/chromium, unless --no-browser (the web UI's tests)
 *
 * Plain Node, nothing to build. Exit 0 when all is there, 1 otherwise.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';

const browser = !process.argv.includes('--no-browser');
const cluster = process.env.POSTOFFICE_TEST_REDIS === 'cluster';

/** The output of `command --version`, or undefined when it cannot be run. */
function version(command) {
  const res = spawnSync(command, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return res.error || res.status !== 0 ? undefined : `${res.stdout}${res.stderr}`;
}

const missing = [];
const packages = [];

const server = version('redis-server');
const found = server && /v=(\d+)\.(\d+)/.exec(server);
if (!found) {
  missing.push('redis-server 6.2+ on the PATH');
  packages.push('redis-server');
} else if (Number(found[1]) < 6 || (Number(found[1]) === 6 && Number(found[2]) < 2)) {
  missing.push(`redis-server 6.2+ (found ${found[1]}.${found[2]})`);
  packages.push('redis-server');
}
if (cluster && !version('redis-cli')) {
  missing.push('redis-cli on the PATH (it creates the test clusters)');
  packages.push('redis-tools');
}
if (browser) {
  const chromium = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
  try {
    accessSync(chromium, constants.X_OK);
  } catch {
    missing.push(`Chromium at ${chromium} for the web UI's tests (or set CHROMIUM_PATH)`);
    packages.push('chromium');
  }
}

if (missing.length > 0) {
  process.stderr.write(
    `The tests need ${missing.join(', ')}: install with \`sudo apt-get install ${packages.join(' ')}\` (Debian) and run again.\n`,
  );
  process.exit(1);
}
