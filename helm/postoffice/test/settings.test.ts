/**
 * The chart and the app agree on every setting: each environment variable
 * the app reads (SETTINGS in packages/shared/src/config.ts) is reachable from
 * values.yaml, typed in values.schema.json, set on exactly the processes that
 * read it, and listed in the README; and the other way round.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { SETTINGS } from '@postoffice/shared';
import { CHART_DIR, REPO_ROOT, template } from './support/helm.js';
import { container, VALUE_SETS } from './support/manifests.js';

type Role = 'producer' | 'consumer';

/** Set by the chart from structured values rather than from `config`. */
const MANAGED: Record<string, string> = {
  REDIS_URL: 'redis.url / redis.existingSecret / redis.sentinel / redis.cluster / the bundled Redis',
  REDIS_SENTINELS: 'redis.sentinel.hosts',
  REDIS_SENTINEL_NAME: 'redis.sentinel.name',
  REDIS_SENTINEL_PASSWORD: 'redis.sentinel.password / redis.sentinel.existingPasswordSecret',
  REDIS_CLUSTER_NODES: 'redis.cluster.nodes',
  HOST: '0.0.0.0 in a pod',
  PORT: 'producer.port, consumer.port',
  NODE_ID: "the consumer pod's name",
  API_TOKENS: 'auth.*',
  GCLOUD_PUBSUB_PROJECT_ID: 'pubsub.projectId',
  GOOGLE_APPLICATION_CREDENTIALS: 'pubsub.credentials.*',
  PUBSUB_EMULATOR_HOST: 'pubsub.emulatorHost',
};

/**
 * Variables the chart already sets for features whose app side lands with
 * another issue. While SETTINGS does not know one, the chart may set it only
 * on the process named here; once SETTINGS knows it, it is checked like
 * every other setting (and should be removed from this list).
 */
const PENDING: Record<string, { role: Role; issue: string }> = {};

/** Settings whose chart default differs from the app's on purpose: the app's suits a laptop, the chart's a cluster. */
const CHART_DEFAULTS: Record<string, string> = { REFUSE_PRIVATE_TARGETS: 'true' };

const settings = Object.values(SETTINGS) as {
  env: string;
  kind: string;
  default: unknown;
  min?: number;
  roles: readonly Role[];
}[];
const known = new Set(settings.map((s) => s.env));
const valuesText = readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8');
const values = parse(valuesText) as { config: Record<string, unknown> };
const schema = JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8')) as {
  properties: { config: { properties: Record<string, { type: string[]; minimum?: number; enum?: unknown[] }> } };
};
const configurationDoc = readFileSync(join(REPO_ROOT, 'docs', 'configuration.md'), 'utf8');
const operationsDoc = readFileSync(join(REPO_ROOT, 'docs', 'operations.md'), 'utf8');

describe('the chart and the app agree on every setting', function () {
  this.timeout(60_000);

  it('every variable the app reads is a key of config in values.yaml, or set by the chart and named there', () => {
    for (const s of settings) {
      if (s.env in MANAGED) expect(valuesText, `values.yaml names ${s.env}`).to.contain(s.env);
      else expect(values.config, `config.${s.env} in values.yaml`).to.have.property(s.env);
    }
  });

  it('every key of config is a variable the app reads, with the app default', () => {
    for (const [env, value] of Object.entries(values.config)) {
      const s = settings.find((x) => x.env === env);
      expect(s, `config.${env} is not in SETTINGS`).to.not.equal(undefined);
      expect(MANAGED, env).to.not.have.property(env);
      expect(String(value), `default of ${env}`).to.equal(CHART_DEFAULTS[env] ?? String(s!.default));
    }
  });

  it('turns REFUSE_PRIVATE_TARGETS on by default, on both processes, where the app alone leaves it off', async () => {
    expect(SETTINGS.refusePrivateTargets.default).to.equal(false);
    const docs = await template({});
    for (const role of ['producer', 'consumer'] as const) {
      const env = container(docs, role).env.find((e) => e.name === 'REFUSE_PRIVATE_TARGETS');
      expect(env, role).to.deep.equal({ name: 'REFUSE_PRIVATE_TARGETS', value: 'true' });
    }
    const off = await template({ config: { REFUSE_PRIVATE_TARGETS: false } });
    for (const role of ['producer', 'consumer'] as const) {
      expect(container(off, role).env.find((e) => e.name === 'REFUSE_PRIVATE_TARGETS')?.value, role).to.equal('false');
    }
  });

  it('values.schema.json types every key of config as the app does', () => {
    const props = schema.properties.config.properties;
    expect(Object.keys(props).sort()).to.deep.equal(Object.keys(values.config).sort());
    for (const [env, prop] of Object.entries(props)) {
      const s = settings.find((x) => x.env === env)!;
      if (s.kind === 'int') {
        expect(prop.type, env).to.include('integer');
        expect(prop.minimum, `minimum of ${env}`).to.equal(s.min ?? 0);
      } else if (s.kind === 'bool') expect(prop.type, env).to.include('boolean');
      else expect(prop.type, env).to.include('string');
    }
  });

  it('sets each variable on exactly the processes that read it', async () => {
    const everything = VALUE_SETS['everything on (ingress, ServiceMonitor, Pub/Sub, auth from a Secret)']!;
    const SENTINEL = ['REDIS_SENTINELS', 'REDIS_SENTINEL_NAME', 'REDIS_SENTINEL_PASSWORD'];
    // Sentinel and a cluster exclude each other: each render sets every variable but the other's.
    for (const [redis, without] of [
      [{ sentinel: { hosts: ['s-0:26379', 's-1:26379'], password: 'pw' } }, ['REDIS_CLUSTER_NODES']],
      [{ cluster: { nodes: ['redis-0:6379', 'redis-1:6379'] } }, SENTINEL],
    ] as const) {
      const docs = await template({
        ...everything,
        redis,
        pubsub: { ...(everything.pubsub as object), emulatorHost: 'e:8085' },
        // Empty settings are not rendered: give the ones empty by default a value.
        config: { ...(everything.config as object | undefined), TRUST_PROXY: '10.0.0.0/8' },
      });
      for (const role of ['producer', 'consumer'] as const) {
        const set = container(docs, role)
          .env.map((e) => e.name)
          .sort();
        const expected = [
          ...settings
            .filter((s) => s.roles.includes(role) && !(without as readonly string[]).includes(s.env))
            .map((s) => s.env),
          ...Object.entries(PENDING)
            .filter(([env, p]) => !known.has(env) && p.role === role)
            .map(([env]) => env),
        ].sort();
        expect(set, `${role} with ${Object.keys(redis)[0]}`).to.deep.equal(expected);
      }
    }
  });

  it('docs/configuration.md lists every variable the chart sets, and the chart can set every variable of its table', async () => {
    const section = configurationDoc;
    const table = [...section.matchAll(/^\|\s*`([A-Z0-9_]+)`\s*\|/gm)].map((m) => m[1]!);
    for (const env of table) {
      expect(env in MANAGED || env in values.config, `${env} from the README is reachable from values.yaml`).to.equal(
        true,
      );
    }
    const kubernetes = operationsDoc.split('## Kubernetes')[1]?.split('\n## ')[0] ?? '';
    for (const env of [...Object.keys(values.config), ...Object.keys(MANAGED)]) {
      expect(
        table.includes(env) || kubernetes.includes(`\`${env}\``),
        `${env} in docs/configuration.md or docs/operations.md`,
      ).to.equal(true);
    }
  });
});
