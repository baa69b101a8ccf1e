import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig, SETTINGS } from '@postoffice/shared';
import { CHART_DIR, lint, notes, template, type Rendered } from './support/helm.js';
import { container, find, podSpec, resolveEnv, VALUE_SETS } from './support/manifests.js';
import { validateManifest } from './support/validate.js';

const DEFAULT_SHUTDOWN = SETTINGS.shutdownTimeoutSeconds.default;

const helmSource = (path: string): Promise<string> => readFile(join(CHART_DIR, path), 'utf8');

describe('the Helm chart', function () {
  this.timeout(120_000);

  for (const [title, values] of Object.entries(VALUE_SETS)) {
    describe(`with ${title}`, () => {
      let docs: Rendered[];
      before(async () => {
        docs = await template(values);
      });

      it('passes helm lint --strict', async () => {
        expect(await lint(values)).to.contain('0 chart(s) failed');
      });

      it('renders only manifests that are valid Kubernetes objects', () => {
        expect(docs.length).to.be.above(5);
        for (const doc of docs) validateManifest(doc);
      });

      it('probes the real health endpoints on the container port', () => {
        for (const [component, path] of [
          ['producer', '/api/health'],
          ['consumer', '/healthz'],
        ] as const) {
          const c = container(docs, component);
          expect(c.livenessProbe.httpGet.path, component).to.equal(path);
          expect(c.readinessProbe.httpGet.path, component).to.equal(path);
          expect(c.ports.map((p) => p.name)).to.include(c.readinessProbe.httpGet.port);
        }
      });

      it('gives the pods longer than the drain deadline (SHUTDOWN_TIMEOUT_SECONDS plus the hard-stop margin)', () => {
        const config = (values as { config?: { SHUTDOWN_TIMEOUT_SECONDS?: number } }).config;
        const drain = config?.SHUTDOWN_TIMEOUT_SECONDS ?? DEFAULT_SHUTDOWN;
        for (const component of ['producer', 'consumer'] as const) {
          const pod = podSpec(docs, component);
          expect(pod.terminationGracePeriodSeconds, component).to.be.above(drain + 5);
          const env = container(docs, component).env.find((e) => e.name === 'SHUTDOWN_TIMEOUT_SECONDS');
          expect(env?.value, component).to.equal(String(drain));
        }
      });

      it('runs as non-root on a read-only root filesystem, with every capability dropped', () => {
        for (const component of ['producer', 'consumer'] as const) {
          const pod = podSpec(docs, component);
          expect(pod.securityContext.runAsNonRoot).to.equal(true);
          const c = container(docs, component);
          expect(c.securityContext).to.deep.include({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
          expect(c.securityContext.capabilities).to.deep.equal({ drop: ['ALL'] });
          expect(c.command).to.deep.equal(['node', `packages/${component}/dist/main.js`]);
        }
      });

      it('has a PodDisruptionBudget for each Deployment, selecting its pods', () => {
        for (const component of ['producer', 'consumer'] as const) {
          const pdb = find(docs, 'PodDisruptionBudget', `-${component}`) as unknown as {
            spec: { selector: { matchLabels: Record<string, string> } };
          };
          const deployment = find(docs, 'Deployment', `-${component}`) as unknown as {
            spec: { template: { metadata: { labels: Record<string, string> } } };
          };
          expect(deployment.spec.template.metadata.labels).to.deep.include(pdb.spec.selector.matchLabels);
        }
      });

      it('passes REDIS_URL through a Secret', () => {
        const redis = (values as { redis?: { url?: string; existingSecret?: string } }).redis;
        for (const component of ['producer', 'consumer'] as const) {
          const c = container(docs, component);
          const entry = c.env.find((e) => e.name === 'REDIS_URL');
          expect(entry?.valueFrom?.secretKeyRef, component).to.not.equal(undefined);
          if (redis?.existingSecret) {
            expect(entry?.valueFrom?.secretKeyRef).to.deep.equal({ name: 'my-redis', key: 'url' });
          } else {
            const env = resolveEnv(docs, { ...c, env: [entry!] }, 'pod');
            expect(env.REDIS_URL).to.equal(redis?.url ?? 'redis://po-postoffice-redis:6379');
          }
        }
      });
    });
  }

  it('bundles a Redis StatefulSet with append-only persistence on a PVC unless an external Redis is given', async () => {
    const bundled = await template(VALUE_SETS['the bundled Redis with a storage class and appendfsync always']!);
    const sts = find(bundled, 'StatefulSet', '-redis') as unknown as {
      spec: {
        template: { spec: { containers: { command: string[] }[] } };
        volumeClaimTemplates: { spec: { storageClassName: string; resources: { requests: { storage: string } } } }[];
      };
    };
    const command = sts.spec.template.spec.containers[0]!.command.join(' ');
    expect(command).to.contain('--appendonly yes').and.contain('--appendfsync always').and.contain('--dir /data');
    expect(sts.spec.volumeClaimTemplates[0]!.spec).to.deep.include({ storageClassName: 'fast' });
    expect(sts.spec.volumeClaimTemplates[0]!.spec.resources.requests.storage).to.equal('5Gi');
    const external = await template(VALUE_SETS['an external Redis URL']!);
    expect(external.filter((d) => d.kind === 'StatefulSet')).to.deep.equal([]);
  });

  it('replaces the consumer replica count with an HPA when autoscaling is on', async () => {
    const docs = await template(VALUE_SETS['the consumer HPA on']!);
    const hpa = find(docs, 'HorizontalPodAutoscaler', '-consumer') as unknown as {
      spec: { minReplicas: number; maxReplicas: number; scaleTargetRef: { name: string } };
    };
    expect(hpa.spec).to.deep.include({ minReplicas: 3, maxReplicas: 12 });
    expect(hpa.spec.scaleTargetRef.name).to.equal(find(docs, 'Deployment', '-consumer').metadata.name);
    expect((find(docs, 'Deployment', '-consumer') as unknown as { spec: object }).spec).to.not.have.property(
      'replicas',
    );
  });

  it('puts API tokens in a Secret and gives them to the producer as API_TOKENS when auth is on', async () => {
    const docs = await template(VALUE_SETS['auth on with tokens from values']!);
    const env = resolveEnv(docs, container(docs, 'producer'), 'pod');
    expect(env.API_TOKENS).to.equal('a-test-token-of-enough-length-1,a-test-token-of-enough-length-1-2');
    expect(container(docs, 'consumer').env.map((e) => e.name)).to.not.include('API_TOKENS');
    const off = await template(VALUE_SETS['auth off']!);
    expect(container(off, 'producer').env.map((e) => e.name)).to.not.include('API_TOKENS');
    expect(off.filter((d) => d.kind === 'Secret').map((d) => d.metadata.name)).to.not.include('po-postoffice-auth');
  });

  it('turns auth on by default with a generated random token, which the app accepts', async () => {
    const tokens: string[] = [];
    for (let i = 0; i < 2; i++) {
      const docs = await template({});
      const secret = find(docs, 'Secret', '-auth') as unknown as {
        metadata: { name: string };
        data: Record<string, string>;
      };
      expect(secret.metadata.name).to.equal('po-postoffice-auth');
      const env = resolveEnv(docs, container(docs, 'producer'), 'pod');
      expect(env.API_TOKENS).to.match(/^[A-Za-z0-9]{32}$/);
      expect(Buffer.from(secret.data['api-tokens']!, 'base64').toString()).to.equal(env.API_TOKENS);
      expect(loadConfig(env, 'producer').apiTokens).to.deep.equal([env.API_TOKENS]);
      tokens.push(env.API_TOKENS!);
    }
    // Without a cluster to look the Secret up in (helm template), each render draws a new token.
    expect(tokens[0]).to.not.equal(tokens[1]);
    const secrets = await helmSource('templates/secrets.yaml');
    expect(secrets, 'an installed token is kept across upgrades').to.match(
      /lookup "v1" "Secret" \.Release\.Namespace \$name/,
    );
  });

  it('mounts the Pub/Sub key and points GOOGLE_APPLICATION_CREDENTIALS at it', async () => {
    const docs = await template(VALUE_SETS['everything on (ingress, ServiceMonitor, Pub/Sub, auth from a Secret)']!);
    const c = container(docs, 'consumer');
    const env = resolveEnv(docs, c, 'pod');
    expect(env.GCLOUD_PUBSUB_PROJECT_ID).to.equal('my-project');
    const mount = c.volumeMounts?.find((m) => m.name === 'pubsub-credentials');
    expect(env.GOOGLE_APPLICATION_CREDENTIALS).to.equal(`${mount?.mountPath}/key.json`);
    find(docs, 'Secret', '-pubsub');
    find(docs, 'ServiceMonitor', 'po-postoffice');
    find(docs, 'Ingress', 'po-postoffice');
  });

  describe('refuses bad values with a clear error', () => {
    const refusals: [string, Record<string, unknown>, RegExp][] = [
      ['a setting below its minimum', { config: { CLAIM_TIMEOUT_SECONDS: 1 } }, /CLAIM_TIMEOUT_SECONDS/],
      ['an unknown setting', { config: { NO_SUCH_SETTING: 1 } }, /NO_SUCH_SETTING/],
      ['a bad log level', { config: { LOG_LEVEL: 'loud' } }, /LOG_LEVEL/],
      [
        'a grace period shorter than the drain deadline',
        { terminationGracePeriodSeconds: 20 },
        /terminationGracePeriodSeconds/,
      ],
      ['no Redis at all', { redis: { bundled: { enabled: false } } }, /redis\.url/],
      ['an API token shorter than 16 characters', { auth: { enabled: true, tokens: ['short'] } }, /auth\/tokens/],
      [
        'an API token with a comma or a space',
        { auth: { enabled: true, tokens: ['a-token-of-enough-length,x', 'another token of enough length'] } },
        /auth\/tokens\/0[\s\S]*auth\/tokens\/1|auth\/tokens\/1[\s\S]*auth\/tokens\/0/,
      ],
    ];
    for (const [what, values, message] of refusals) {
      it(what, async () => {
        const err = await template(values).then(
          () => undefined,
          (e: unknown) => e as { stderr: string },
        );
        expect(err?.stderr, 'helm template should fail').to.match(message);
      });
    }
  });

  it('routes Services, the Ingress and the ServiceMonitor to the port the app listens on (PORT)', async () => {
    const docs = await template(VALUE_SETS['everything on (ingress, ServiceMonitor, Pub/Sub, auth from a Secret)']!);
    const monitor = find(docs, 'ServiceMonitor', 'po-postoffice') as unknown as {
      spec: { endpoints: { port: string; path: string }[] };
    };
    for (const role of ['producer', 'consumer'] as const) {
      const c = container(docs, role);
      const port = c.ports.find((p) => p.name === 'http')!;
      expect(c.env.find((e) => e.name === 'PORT')?.value).to.equal(String(port.containerPort));
      const service = find(docs, 'Service', `-${role}`) as unknown as {
        spec: { ports: { name: string; targetPort: string }[] };
      };
      expect(service.spec.ports.map((p) => p.targetPort)).to.deep.equal(['http']);
      expect(service.spec.ports.map((p) => p.name)).to.include(monitor.spec.endpoints[0]!.port);
    }
    expect(monitor.spec.endpoints[0]!.path).to.equal('/metrics');
    const ingress = find(docs, 'Ingress', 'po-postoffice') as unknown as {
      spec: { rules: { http: { paths: { backend: { service: { name: string; port: { name: string } } } }[] } }[] };
    };
    expect(ingress.spec.rules[0]!.http.paths[0]!.backend.service).to.deep.equal({
      name: 'po-postoffice-producer',
      port: { name: 'http' },
    });
  });

  it('NOTES.txt shows how to publish a first message', async () => {
    const text = await notes({});
    expect(text).to.contain('port-forward svc/po-postoffice-producer');
    expect(text).to.contain('/api/topics').and.contain('/api/publishers').and.contain('/api/messages');
  });

  it('NOTES.txt tells how to read the API token when auth is on, and sends it with every call', async () => {
    const text = await notes({});
    expect(text).to.contain(
      "kubectl --namespace mail get secret po-postoffice-auth -o jsonpath='{.data.api-tokens}' | base64 -d",
    );
    for (const line of text.split('\n').filter((l) => l.includes('curl '))) {
      expect(line).to.contain('-H "authorization: Bearer $TOKEN"');
    }
    const existing = await notes({
      auth: { enabled: true, existingSecret: 'tokens', existingSecretKey: 'api.tokens' },
    });
    expect(existing).to.contain("get secret tokens -o jsonpath='{.data.api\\.tokens}'");
    const off = await notes(VALUE_SETS['auth off']!);
    expect(off).to.contain('curl -XPOST localhost:4000/api/topics').and.not.contain('TOKEN');
    expect(off).to.not.contain('authorization');
  });
});
