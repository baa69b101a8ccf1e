/**
 * There is no Docker engine here, so the Dockerfile is checked another way:
 * every path it copies and runs exists after `pnpm build` and is not
 * excluded by .dockerignore, its entrypoints and user are the chart's, and
 * its `pnpm deploy` steps are run for real (offline, into a temporary
 * directory standing for /out) and the deployed processes start.
 */
import { expect } from 'chai';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, startRedis, waitFor } from '@postoffice/test-support';
import { REPO_ROOT, template } from './support/helm.js';
import { container, podSpec } from './support/manifests.js';

const run = promisify(execFile);

interface Instruction {
  readonly stage: number;
  readonly op: string;
  readonly args: string;
}

/** The Dockerfile's instructions (continuation lines joined, comments dropped), with their stage. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = -1;
  for (const line of text.replace(/\\\n/g, ' ').split('\n')) {
    const m = /^\s*([A-Z]+)\s+(.*)$/.exec(line);
    if (!m || line.trim().startsWith('#')) continue;
    if (m[1] === 'FROM') stage++;
    out.push({ stage, op: m[1]!, args: m[2]!.trim() });
  }
  return out;
}

const dockerfile = instructions(readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8'));
const lastStage = Math.max(...dockerfile.map((i) => i.stage));
const ignored = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const deploys = dockerfile.filter((i) => i.op === 'RUN' && / deploy /.test(i.args));

/** Whether .dockerignore keeps `path` out of the build context (the patterns this repository uses). */
function isIgnored(path: string): boolean {
  return ignored.some((pattern) => {
    const bare = pattern.replace(/^\*\*\//, '').replace(/\/$/, '');
    if (bare.startsWith('*.')) return path.endsWith(bare.slice(1));
    return pattern.startsWith('**/') ? path.split('/').includes(bare) : path === bare || path.startsWith(`${bare}/`);
  });
}

describe('the Dockerfile', function () {
  this.timeout(180_000);

  it('copies into the build stage only paths that exist and that .dockerignore lets through', () => {
    const copies = dockerfile.filter((i) => i.op === 'COPY' && !i.args.includes('--from'));
    expect(copies.length).to.be.above(3);
    for (const copy of copies) {
      const parts = copy.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      for (const source of parts.slice(0, -1)) {
        const path = source.replace(/\/$/, '');
        expect(existsSync(join(REPO_ROOT, path)), `COPY ${source}`).to.equal(true);
        expect(isIgnored(path), `COPY ${source} is excluded by .dockerignore`).to.equal(false);
      }
    }
    // What the build makes is not copied from the context.
    expect(isIgnored('packages/producer/dist')).to.equal(true);
    expect(isIgnored('packages/consumer/node_modules')).to.equal(true);
  });

  it('deploys each process to the path its chart entrypoint runs, and runs as the chart user', async () => {
    const final = dockerfile.filter((i) => i.stage === lastStage);
    const workdir = final.find((i) => i.op === 'WORKDIR')?.args;
    const copy = final.find((i) => i.op === 'COPY' && i.args.includes('--from'))!;
    const [, from, to] = /--from=\S+\s+(\S+)\s+(\S+)/.exec(copy.args)!;
    const cmd = JSON.parse(final.find((i) => i.op === 'CMD')!.args) as string[];
    const user = final.find((i) => i.op === 'USER')!.args;
    const docs = await template({});
    for (const role of ['producer', 'consumer'] as const) {
      const c = container(docs, role);
      expect(c.workingDir).to.equal(workdir);
      const entry = c.command[1]!;
      // The image path of the entrypoint, and where the deploy step put it in the build stage.
      const inImage = join(workdir!, entry);
      const packageDir = dirname(dirname(entry));
      const deploy = deploys.find((d) => d.args.includes(`@postoffice/${role} `));
      expect(deploy, `a deploy step for ${role}`).to.not.equal(undefined);
      expect(join(to!, deploy!.args.split(/\s+/).at(-1)!.slice(from!.replace(/\/$/, '').length))).to.equal(
        join(workdir!, packageDir),
      );
      expect(inImage).to.equal(`/app/packages/${role}/dist/main.js`);
      // After `pnpm build`, the entrypoint and everything the package ships (its `files`) exist.
      expect(existsSync(join(REPO_ROOT, entry)), entry).to.equal(true);
      for (const pkg of [packageDir, 'packages/shared']) {
        const files = (JSON.parse(readFileSync(join(REPO_ROOT, pkg, 'package.json'), 'utf8')) as { files: string[] })
          .files;
        for (const f of files) expect(existsSync(join(REPO_ROOT, pkg, f)), `${pkg}/${f}`).to.equal(true);
      }
    }
    expect(cmd).to.deep.equal(container(docs, 'producer').command);
    const pod = podSpec(docs, 'producer').securityContext;
    expect(user).to.equal(`${String(pod.runAsUser)}:${String(pod.runAsGroup)}`);
  });

  it('its pnpm deploy steps produce processes that start from the image layout', async () => {
    const out = mkdtempSync(join(tmpdir(), 'po-image-'));
    const redis = await startRedis();
    try {
      for (const d of deploys) {
        const args = d.args
          .split(/\s+/)
          .slice(1)
          .map((a) => a.replace(/^\/out\//, `${out}/`));
        // --prefer-offline: the packages come from the local store, as the build stage's install
        // fetched them; package metadata the store lacks (a fresh machine has none cached) comes
        // from the registry, as it would in the image's build stage.
        await run('pnpm', [...args, '--prefer-offline'], { cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 });
      }
      for (const role of ['producer', 'consumer'] as const) {
        const port = await freePort();
        const child = spawn(process.execPath, [`packages/${role}/dist/main.js`], {
          cwd: out,
          env: {
            PATH: process.env.PATH ?? '',
            REDIS_URL: redis.url,
            PORT: String(port),
            HOST: '127.0.0.1',
            LOG_LEVEL: 'warn',
          },
          stdio: 'ignore',
        });
        const exited = new Promise((resolve) => child.once('exit', resolve));
        try {
          const path = role === 'producer' ? '/api/health' : '/healthz';
          await waitFor(async () => {
            if (child.exitCode !== null) throw new Error(`${role} exited ${child.exitCode}`);
            return (await fetch(`http://127.0.0.1:${port}${path}`).catch(() => undefined))?.status === 200;
          }, `the deployed ${role}`);
        } finally {
          child.kill('SIGTERM');
          expect(await exited, `${role} exit code`).to.equal(0);
        }
      }
    } finally {
      await redis.stop();
      rmSync(out, { recursive: true, force: true });
    }
  });
});
