/**
 * The leak check after each test (leak-check.ts): run on a file whose tests
 * leave a Redis client open and a redis-server running, it fails each of
 * those tests by name (mocha counts them failing), not the test that closes
 * what it opens, and closes what they left.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const require = createRequire(import.meta.url);
const MOCHA = require.resolve('mocha/bin/mocha.js');
const LEAK_CHECK = fileURLToPath(new URL('../src/leak-check.ts', import.meta.url));
const LEAKY = fileURLToPath(new URL('./fixtures/leaky.ts', import.meta.url));

function runMocha(file: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        MOCHA,
        '--no-config',
        '--reporter',
        'spec',
        '--timeout',
        '60000',
        '--require',
        LEAK_CHECK,
        file,
      ],
      { env: { ...process.env, FORCE_COLOR: '0' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('the leak check after each test', function () {
  this.timeout(120_000);

  it('fails each test that leaves a client or a redis-server open, by name, and passes the others', async () => {
    const { code, output } = await runMocha(LEAKY);
    expect(code, output).to.not.equal(0);
    expect(output).to.match(/^ {2}2 failing$/m);
    expect(output).to.contain('✔ closes what it opens');
    expect(output).to.contain(
      '"a file with a leak leaves a client open" left 1 Redis client(s) open and 0 redis-server(s)',
    );
    expect(output).to.contain(
      '"a file with a leak leaves a redis-server running" left 0 Redis client(s) open and 1 redis-server(s)',
    );
    expect(output).to.not.contain('the tests left');
  });
});
