import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig, SETTINGS } from '@postoffice/shared';
import { CHART_DIR, helm, lint, notes, template, type Rendered } from './support/helm.js';
import { container, find, podSpec, resolveEnv, VALUE_SETS, type Container } from './support/manifests.js';
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

      it('passes helm lint --strict under Helm 4 and Helm 3', async () => {
        expect(await lint(values, 4)).to.contain('0 chart(s) failed');
        expect(await lint(values, 3)).to.contain('0 chart(s) failed');
      });

      it('renders only manifests that are valid Kubernetes objects (custom resources against their CRDs)', () => {
        expect(docs.length).to.be.above(5);
        for (const doc of docs) validateManifest(doc);
      });

      it('renders the same objects under Helm 3', async () => {
        const helm3 = await template(values, 'po', 3);
        for (const doc of helm3) validateManifest(doc);
        const names = (list: Rendered[]) => list.map((d) => `${d.kind}/${d.metadata.name}`).sort();
        expect(names(helm3)).to.deep.equal(names(docs));
        for (const component of ['producer', 'consumer'] as const) {
          expect(container(helm3, component)).to.deep.equal(container(docs, component));
        }
      });

      it('probes liveness without Redis, readiness with it, and startup, on the container port', () => {
        for (const [component, live, ready] of [
          ['producer', '/api/health/live', '/api/health'],
          ['consumer', '/livez', '/healthz'],
        ] as const) {
          const c = container(docs, component);
          expect(c.livenessProbe.httpGet.path, component).to.equal(live);
          expect(c.startupProbe.httpGet.path, component).to.equal(live);
          expect(c.readinessProbe.httpGet.path, component).to.equal(ready);
          for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe]) {
            expect(c.ports.map((p) => p.name)).to.include(probe.httpGet.port);
          }
        }
      });

      it('annotates each pod with a checksum of the Secrets it uses that holds no random value', async () => {
        const again = await template(values);
        for (const component of ['producer', 'consumer'] as const) {
          const annotations = (d: Rendered[]) =>
            (
              find(d, 'Deployment', `-${component}`) as unknown as {
                spec: { template: { metadata: { annotations: Record<string, string> } } };
              }
            ).spec.template.metadata.annotations;
          expect(annotations(docs)['checksum/secrets'], component).to.match(/^[0-9a-f]{64}$/);
          expect(annotations(again), component).to.deep.equal(annotations(docs));
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
        type UrlValues = { url?: string; existingSecret?: string; existingSecretKey?: string };
        const given = (values as { redis?: UrlValues & { sentinel?: UrlValues; cluster?: UrlValues } }).redis;
        // With Sentinel or a cluster, the URL carrying the nodes' credentials is theirs.
        const redis = given?.sentinel ?? given?.cluster ?? given;
        for (const component of ['producer', 'consumer'] as const) {
          const c = container(docs, component);
          const entry = c.env.find((e) => e.name === 'REDIS_URL');
          expect(entry?.valueFrom?.secretKeyRef, component).to.not.equal(undefined);
          if (redis?.existingSecret) {
            expect(entry?.valueFrom?.secretKeyRef).to.deep.equal({
              name: redis.existingSecret,
              key: redis.existingSecretKey ?? 'redis-url',
            });
          } else {
            const env = resolveEnv(docs, { ...c, env: [entry!] }, 'pod');
            if (redis?.url) expect(env.REDIS_URL).to.equal(redis.url);
            else {
              // The bundled Redis, with the password of its Secret.
              const secret = find(docs, 'Secret', '-redis') as unknown as { data: Record<string, string> };
              const password = Buffer.from(secret.data['redis-password']!, 'base64').toString();
              expect(password).to.match(/^[A-Za-z0-9]{32}$/);
              expect(env.REDIS_URL).to.equal(`redis://:${password}@po-postoffice-redis:6379`);
            }
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
    expect(external.filter((d) => d.kind === 'NetworkPolicy')).to.deep.equal([]);
    expect(external.map((d) => d.metadata.name)).to.not.include('po-postoffice-redis');
  });

  describe('with Sentinel or a Redis Cluster instead of the bundled Redis', () => {
    const SENTINEL = VALUE_SETS['Redis with Sentinel, passwords in values']!;
    const BITNAMI = VALUE_SETS["Redis with Sentinel, Bitnami's Secrets"]!;
    const CLUSTER = VALUE_SETS['a Redis Cluster with replicas']!;
    const names = (docs: Rendered[]) => docs.map((d) => `${d.kind}/${d.metadata.name}`);
    const envOf = (docs: Rendered[], role: 'producer' | 'consumer') =>
      Object.fromEntries(container(docs, role).env.map((e) => [e.name, e]));

    for (const major of [4, 3] as const) {
      it(`gives both processes the sentinels, the master set, the sentinels' password from a Secret and REDIS_MIN_REPLICAS 1 (Helm ${major})`, async () => {
        const docs = await template(SENTINEL, 'po', major);
        for (const role of ['producer', 'consumer'] as const) {
          const env = envOf(docs, role);
          expect(env.REDIS_SENTINELS, role).to.deep.equal({
            name: 'REDIS_SENTINELS',
            value: 'po-redis:26379,10.0.0.7:26379',
          });
          expect(env.REDIS_SENTINEL_NAME, role).to.deep.equal({ name: 'REDIS_SENTINEL_NAME', value: 'mymaster' });
          expect(env.REDIS_SENTINEL_PASSWORD?.valueFrom?.secretKeyRef, role).to.deep.equal({
            name: 'po-postoffice-redis-url',
            key: 'sentinel-password',
          });
          expect(env.REDIS_MIN_REPLICAS, role).to.deep.equal({ name: 'REDIS_MIN_REPLICAS', value: '1' });
          expect(env, role).to.not.have.property('REDIS_CLUSTER_NODES');
          const resolved = resolveEnv(docs, container(docs, role), 'pod');
          expect(resolved.REDIS_SENTINEL_PASSWORD).to.equal('s-pw');
          expect(resolved.REDIS_URL).to.equal('redis://:node-secret@redis/2');
          // The app folds them into one URL: the sentinels, the master set, the nodes' password and db.
          const config = loadConfig(resolved, role);
          expect(config.redisUrl).to.equal(
            'redis+sentinel://:node-secret@po-redis:26379,10.0.0.7:26379/mymaster/2?sentinelPassword=s-pw',
          );
          expect(config.redisMinReplicas).to.equal(1);
        }
        for (const doc of docs) validateManifest(doc);
      });

      it(`gives both processes the cluster's seed nodes and REDIS_MIN_REPLICAS 1 (Helm ${major})`, async () => {
        const docs = await template(CLUSTER, 'po', major);
        for (const role of ['producer', 'consumer'] as const) {
          const env = envOf(docs, role);
          expect(env.REDIS_CLUSTER_NODES, role).to.deep.equal({
            name: 'REDIS_CLUSTER_NODES',
            value: 'po-redis-cluster-0:6379,po-redis-cluster-1:6379',
          });
          expect(env.REDIS_MIN_REPLICAS, role).to.deep.equal({ name: 'REDIS_MIN_REPLICAS', value: '1' });
          for (const name of ['REDIS_SENTINELS', 'REDIS_SENTINEL_NAME', 'REDIS_SENTINEL_PASSWORD']) {
            expect(env, role).to.not.have.property(name);
          }
          // The app reads the seeds with the URL's scheme and password: TLS and c-pw on every node.
          const config = loadConfig(resolveEnv(docs, container(docs, role), 'pod'), role);
          expect(config.redisUrl).to.equal('rediss+cluster://:c-pw@po-redis-cluster-0:6379,po-redis-cluster-1:6379');
          expect(config.redisMinReplicas).to.equal(1);
        }
        for (const doc of docs) validateManifest(doc);
      });

      it(`refuses two choices of Redis at once, naming both (Helm ${major})`, async () => {
        for (const [values, both] of [
          [
            { redis: { url: 'redis://:x@r:6379', sentinel: { hosts: ['s:26379'] } } },
            'redis.url / redis.existingSecret and redis.sentinel.hosts',
          ],
          [
            { redis: { existingSecret: 'r', cluster: { nodes: ['c:6379'] } } },
            'redis.url / redis.existingSecret and redis.cluster.nodes',
          ],
          [
            { redis: { sentinel: { hosts: ['s:26379'] }, cluster: { nodes: ['c:6379'] } } },
            'redis.sentinel.hosts and redis.cluster.nodes',
          ],
        ] as const) {
          const err = await template(values, 'po', major).then(
            () => undefined,
            (e: unknown) => e as { stderr: string },
          );
          expect(err?.stderr, `${both}: helm template should fail`).to.contain(
            `Redis: choose one of redis.url / redis.existingSecret, redis.sentinel.hosts, redis.cluster.nodes (or none, for the bundled Redis), not both ${both}`,
          );
        }
      });
    }

    it('renders no bundled Redis: no StatefulSet, Service, NetworkPolicy or password Secret of its own', async () => {
      for (const values of [SENTINEL, BITNAMI, CLUSTER]) {
        const docs = await template(values);
        expect(
          docs.filter((d) => ['StatefulSet', 'NetworkPolicy', 'PersistentVolumeClaim'].includes(d.kind)),
        ).to.deep.equal([]);
        expect(names(docs)).to.not.include('Service/po-postoffice-redis').and.not.include('Secret/po-postoffice-redis');
      }
    });

    it("reads the nodes' URL and the sentinels' password from existing Secrets (Bitnami's)", async () => {
      const docs = await template(BITNAMI);
      for (const role of ['producer', 'consumer'] as const) {
        const env = envOf(docs, role);
        expect(env.REDIS_URL?.valueFrom?.secretKeyRef).to.deep.equal({ name: 'po-redis-nodes', key: 'redis-url' });
        expect(env.REDIS_SENTINEL_PASSWORD?.valueFrom?.secretKeyRef).to.deep.equal({
          name: 'po-redis',
          key: 'redis-password',
        });
        expect(env.REDIS_SENTINEL_NAME?.value).to.equal('cache');
      }
      // Nothing of Redis's is left for the chart to store.
      expect(names(docs)).to.not.include('Secret/po-postoffice-redis-url');
    });

    it('without credentials: REDIS_URL redis:// (no password, no TLS) and no REDIS_SENTINEL_PASSWORD', async () => {
      const docs = await template({ redis: { sentinel: { hosts: ['s:26379'] } } });
      const env = resolveEnv(docs, container(docs, 'producer'), 'pod');
      expect(env.REDIS_URL).to.equal('redis://');
      expect(env).to.not.have.property('REDIS_SENTINEL_PASSWORD');
      expect(loadConfig(env, 'producer').redisUrl).to.equal('redis+sentinel://s:26379/mymaster');
      const cluster = await template({ redis: { cluster: { nodes: ['c:6379'] } } });
      const config = loadConfig(resolveEnv(cluster, container(cluster, 'consumer'), 'pod'), 'consumer');
      expect(config.redisUrl).to.equal('redis+cluster://c:6379');
    });

    it('takes REDIS_MIN_REPLICAS from minReplicas, and keeps 0 for the bundled Redis and a plain URL', async () => {
      const minReplicas = async (values: Record<string, unknown>) =>
        envOf(await template(values), 'producer').REDIS_MIN_REPLICAS?.value;
      expect(await minReplicas({ redis: { cluster: { nodes: ['c:6379'], minReplicas: 0 } } })).to.equal('0');
      expect(await minReplicas({ redis: { sentinel: { hosts: ['s:26379'], minReplicas: 2 } } })).to.equal('2');
      expect(
        await minReplicas({
          redis: { sentinel: { hosts: ['s:26379'], minReplicas: 2 } },
          config: { REDIS_MIN_REPLICAS: 2 },
        }),
      ).to.equal('2');
      expect(await minReplicas({})).to.equal('0');
      expect(await minReplicas(VALUE_SETS['an external Redis URL']!)).to.equal('0');
      expect(await minReplicas({ redis: { url: 'redis://r:6379' }, config: { REDIS_MIN_REPLICAS: 1 } })).to.equal('1');
    });

    it("restarts the pods when the sentinels' password or the nodes' URL changes (checksum of the values)", async () => {
      const checksum = async (values: Record<string, unknown>) =>
        (
          find(await template(values), 'Deployment', '-consumer') as unknown as {
            spec: { template: { metadata: { annotations: Record<string, string> } } };
          }
        ).spec.template.metadata.annotations['checksum/secrets'];
      const base = await checksum(SENTINEL);
      expect(await checksum(SENTINEL)).to.equal(base);
      const sentinel = (SENTINEL.redis as { sentinel: Record<string, unknown> }).sentinel;
      expect(await checksum({ redis: { sentinel: { ...sentinel, password: 'other' } } })).to.not.equal(base);
      expect(await checksum({ redis: { sentinel: { ...sentinel, url: 'redis://:other@redis/2' } } })).to.not.equal(
        base,
      );
    });

    it('NOTES.txt names the topology and what a 201 waits for; only the bundled Redis is called not highly available', async () => {
      const bundled = await notes({});
      expect(bundled).to.contain('The bundled Redis is for trying Postoffice out: it is NOT highly available.');
      expect(bundled).to.contain('no replica and no failover').and.contain('if the volume is lost');
      expect(bundled).to.contain('appendfsync everysec: a crash of Redis may lose up to the last second');
      const sentinel = await notes(SENTINEL);
      expect(sentinel).to.contain('Sentinel po-redis:26379,10.0.0.7:26379, master set mymaster');
      expect(sentinel).to.contain('once 1 replica(s) have it too').and.not.contain('NOT highly available');
      const cluster = await notes(CLUSTER);
      expect(cluster)
        .to.contain('Redis Cluster, seeds po-redis-cluster-0:6379')
        .and.not.contain('NOT highly available');
      expect(await notes(VALUE_SETS['an external Redis URL']!)).to.not.contain('NOT highly available');
    });
  });

  describe('the bundled Redis', () => {
    interface RedisPod {
      spec: {
        serviceName: string;
        template: {
          spec: {
            containers: {
              image: string;
              command: string[];
              env: { name: string; valueFrom: { secretKeyRef: { name: string; key: string } } }[];
              volumeMounts: { name: string; mountPath: string }[];
            }[];
            volumes: { name: string; secret?: { secretName: string; items: { key: string; path: string }[] } }[];
          };
        };
      };
    }
    let docs: Rendered[];
    let redis: RedisPod['spec']['template']['spec']['containers'][0];
    before(async () => {
      docs = await template({});
      const sts = find(docs, 'StatefulSet', '-redis') as unknown as RedisPod;
      redis = sts.spec.template.spec.containers[0]!;
    });

    it('requires a generated password, read from a file of its Secret, never from the command line', () => {
      const secret = find(docs, 'Secret', 'po-postoffice-redis') as unknown as { data: Record<string, string> };
      const password = Buffer.from(secret.data['redis-password']!, 'base64').toString();
      expect(password).to.match(/^[A-Za-z0-9]{32}$/);
      expect(Buffer.from(secret.data['auth.conf']!, 'base64').toString()).to.equal(`requirepass "${password}"\n`);
      expect(redis.command.join(' ')).to.contain('--include /etc/redis/auth/auth.conf').and.not.contain(password);
      const sts = find(docs, 'StatefulSet', '-redis') as unknown as RedisPod;
      const volume = sts.spec.template.spec.volumes.find((v) => v.name === 'auth');
      expect(volume?.secret?.secretName).to.equal('po-postoffice-redis');
      expect(redis.volumeMounts.find((m) => m.name === 'auth')?.mountPath).to.equal('/etc/redis/auth');
      // The probes' redis-cli reads it from REDISCLI_AUTH.
      expect(redis.env.find((e) => e.name === 'REDISCLI_AUTH')?.valueFrom.secretKeyRef).to.deep.equal({
        name: 'po-postoffice-redis',
        key: 'redis-password',
      });
    });

    it('keeps the password of an installed release across upgrades (helm lookup), like the API token', async () => {
      const secrets = await helmSource('templates/secrets.yaml');
      expect(secrets).to.match(/lookup "v1" "Secret" \.Release\.Namespace \(printf "%s-redis" \$fullname\)/);
      // Without a cluster to look in (helm template), each render draws a new one.
      const again = find(await template({}), 'Secret', 'po-postoffice-redis') as unknown as {
        data: Record<string, string>;
      };
      const first = find(docs, 'Secret', 'po-postoffice-redis') as unknown as { data: Record<string, string> };
      expect(again.data['redis-password']).to.not.equal(first.data['redis-password']);
    });

    it('refuses writes at 80% of its memory limit rather than evict or be OOM-killed', async () => {
      const arg = (c: { command: string[] }, name: string) => c.command[c.command.indexOf(name) + 1];
      // 512Mi by default.
      expect(arg(redis, '--maxmemory')).to.equal(String(Math.floor((512 * 1024 * 1024 * 8) / 10)));
      expect(arg(redis, '--maxmemory-policy')).to.equal('noeviction');
      const redisOf = async (values: Record<string, unknown>) =>
        (find(await template(values), 'StatefulSet', '-redis') as unknown as RedisPod).spec.template.spec
          .containers[0]!;
      const gi = await redisOf({ redis: { bundled: { resources: { limits: { memory: '2Gi' } } } } });
      expect(arg(gi, '--maxmemory')).to.equal(String(Math.floor((2 * 1024 ** 3 * 8) / 10)));
      const given = await redisOf({ redis: { bundled: { maxmemory: '300mb' } } });
      expect(arg(given, '--maxmemory')).to.equal('300mb');
    });

    it('runs a pinned image, behind a headless Service', async () => {
      expect(redis.image).to.match(/^redis:\d+\.\d+\.\d+-alpine$/);
      const service = find(docs, 'Service', '-redis') as unknown as {
        metadata: { name: string };
        spec: { clusterIP: string };
      };
      expect(service.spec.clusterIP).to.equal('None');
      const sts = find(docs, 'StatefulSet', '-redis') as unknown as RedisPod;
      expect(sts.spec.serviceName).to.equal(service.metadata.name);
    });

    it("admits only this release's producer and consumer pods (NetworkPolicy)", () => {
      const policy = find(docs, 'NetworkPolicy', '-redis') as unknown as {
        spec: {
          podSelector: { matchLabels: Record<string, string> };
          policyTypes: string[];
          ingress: {
            from: { podSelector: { matchLabels: Record<string, string>; matchExpressions: { values: string[] }[] } }[];
          }[];
        };
      };
      const sts = find(docs, 'StatefulSet', '-redis') as unknown as {
        spec: { template: { metadata: { labels: Record<string, string> } } };
      };
      expect(sts.spec.template.metadata.labels).to.deep.include(policy.spec.podSelector.matchLabels);
      expect(policy.spec.policyTypes).to.deep.equal(['Ingress']);
      expect(policy.spec.ingress).to.have.length(1);
      const from = policy.spec.ingress[0]!.from;
      expect(from).to.have.length(1);
      expect(from[0]!.podSelector.matchLabels).to.deep.equal({
        'app.kubernetes.io/name': 'postoffice',
        'app.kubernetes.io/instance': 'po',
      });
      expect(from[0]!.podSelector.matchExpressions[0]!.values).to.deep.equal(['producer', 'consumer']);
      for (const component of ['producer', 'consumer']) {
        const labels = (find(docs, 'Deployment', `-${component}`) as unknown as typeof sts).spec.template.metadata
          .labels;
        expect(labels).to.deep.include(from[0]!.podSelector.matchLabels);
        expect(labels['app.kubernetes.io/component']).to.equal(component);
      }
    });
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

  it('gives the consumer HPA a behavior that scales up fast and down one node at a time', async () => {
    const docs = await template(VALUE_SETS['the consumer HPA on']!);
    const hpa = find(docs, 'HorizontalPodAutoscaler', '-consumer') as unknown as {
      spec: { behavior: { scaleDown: { stabilizationWindowSeconds: number; policies: { value: number }[] } } };
    };
    expect(hpa.spec.behavior.scaleDown.stabilizationWindowSeconds).to.equal(300);
    expect(hpa.spec.behavior.scaleDown.policies[0]!.value).to.equal(1);
  });

  describe('with KEDA', () => {
    interface ScaledObjectSpec {
      scaleTargetRef: { name: string };
      minReplicaCount: number;
      maxReplicaCount: number;
      advanced: { horizontalPodAutoscalerConfig: { behavior: object } };
      triggers: { type: string; metadata: Record<string, string> }[];
    }
    const scaledObject = (docs: Rendered[]) =>
      (find(docs, 'ScaledObject', '-consumer') as unknown as { spec: ScaledObjectSpec }).spec;

    it("scales the consumer Deployment on the backlog, capped at the publishers' slots, instead of an HPA", async () => {
      const docs = await template(VALUE_SETS['consumers scaled by KEDA on the backlog']!);
      const spec = scaledObject(docs);
      expect(spec.scaleTargetRef.name).to.equal('po-postoffice-consumer');
      expect(spec).to.deep.include({ minReplicaCount: 1, maxReplicaCount: 8 });
      expect(docs.filter((d) => d.kind === 'HorizontalPodAutoscaler')).to.deep.equal([]);
      expect((find(docs, 'Deployment', '-consumer') as unknown as { spec: object }).spec).to.not.have.property(
        'replicas',
      );
      expect(spec.advanced.horizontalPodAutoscalerConfig.behavior).to.have.property('scaleDown');
      const trigger = spec.triggers[0]!;
      expect(trigger.type).to.equal('prometheus');
      expect(trigger.metadata.threshold).to.equal('1000');
      const selector = 'namespace="mail",job="po-postoffice-consumer"';
      // ceil(value / threshold) consumers, never more than the slots there are to hold.
      expect(trigger.metadata.query).to.equal(
        `clamp_max(sum(max by (publisher) (postoffice_publisher_backlog_messages{${selector}})) or vector(0), ` +
          `scalar(sum(max by (publisher) (postoffice_publisher_slots{${selector}})) or vector(0)) * 1000)`,
      );
    });

    it('can scale on the oldest undelivered age instead', async () => {
      const spec = scaledObject(
        await template(VALUE_SETS['KEDA on the oldest age, images pinned by digest, no preStop hook']!),
      );
      expect(spec.triggers[0]!.metadata.threshold).to.equal('30');
      expect(spec.triggers[0]!.metadata.query).to.match(
        /^clamp_max\(max\(postoffice_publisher_oldest_undelivered_age_seconds\{[^}]+\}\) or vector\(0\), scalar\(sum\(max by \(publisher\) \(postoffice_publisher_slots\{[^}]+\}\)\) or vector\(0\)\) \* 30\)$/,
      );
    });

    it('is checked against the ScaledObject CRD schema, which refuses a broken one', async () => {
      const doc = find(
        await template(VALUE_SETS['consumers scaled by KEDA on the backlog']!),
        'ScaledObject',
        '-consumer',
      );
      validateManifest(doc);
      const broken = structuredClone(doc) as unknown as { spec: { scaleTargetRef?: unknown } };
      delete broken.spec.scaleTargetRef;
      expect(() => validateManifest(broken as unknown as Rendered)).to.throw(/scaleTargetRef/);
    });
  });

  it('keeps every name a DNS label and every label value within 63 characters, for release names up to 53', async () => {
    const everything = {
      ...VALUE_SETS['everything on (ingress, ServiceMonitor, Pub/Sub, auth from a Secret)']!,
      redis: { bundled: { enabled: true } },
      consumer: { keda: { enabled: true } },
    };
    for (const release of ['r'.repeat(53), `${'p'.repeat(40)}-postoffice-x`, 'postoffice']) {
      const docs = await template(everything, release);
      expect(docs.length, release).to.be.above(10);
      const seen = new Set<string>();
      for (const doc of docs) {
        const { name, labels = {} } = doc.metadata;
        expect(name, `${doc.kind} of ${release}`).to.match(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
        // A StatefulSet's pods carry "<name>-<10-character hash>" as a label: 52 at most.
        expect(name.length, `${doc.kind} ${name}`).to.be.at.most(doc.kind === 'StatefulSet' ? 52 : 63);
        for (const [key, value] of Object.entries(labels))
          expect(String(value).length, `${name} ${key}`).to.be.at.most(63);
        expect(seen.has(`${doc.kind}/${name}`), `${doc.kind}/${name} twice`).to.equal(false);
        seen.add(`${doc.kind}/${name}`);
      }
    }
    const short = await template({});
    expect(find(short, 'Deployment', '-producer').metadata.name).to.equal('po-postoffice-producer');
  });

  describe('checksum annotations', () => {
    const checksums = async (values: Record<string, unknown>) => {
      const docs = await template(values);
      const of = (component: string) =>
        (
          find(docs, 'Deployment', `-${component}`) as unknown as {
            spec: { template: { metadata: { annotations: Record<string, string> } } };
          }
        ).spec.template.metadata.annotations['checksum/secrets'];
      return { producer: of('producer'), consumer: of('consumer') };
    };

    it('change only for the pods whose Secrets change', async () => {
      const base = { redis: { url: 'redis://a:6379' }, auth: { enabled: true, tokens: ['a-token-of-enough-length'] } };
      const before = await checksums(base);
      const tokens = await checksums({ ...base, auth: { enabled: true, tokens: ['another-token-of-enough-length'] } });
      expect(tokens.producer).to.not.equal(before.producer);
      expect(tokens.consumer).to.equal(before.consumer);
      const redis = await checksums({ ...base, redis: { url: 'redis://b:6379' } });
      expect(redis.producer).to.not.equal(before.producer);
      expect(redis.consumer).to.not.equal(before.consumer);
      const pubsub = await checksums({ ...base, pubsub: { enabled: true, credentials: { json: '{"a":1}' } } });
      expect(pubsub.producer).to.equal(before.producer);
      expect(pubsub.consumer).to.not.equal(before.consumer);
    });

    it('stay the same between renders that generate a new token and Redis password', async () => {
      expect(await checksums({})).to.deep.equal(await checksums({}));
    });
  });

  describe("the producer's preStop hook", () => {
    it('fails readiness and waits the readiness period times its threshold plus 5 s before SIGTERM', async () => {
      const docs = await template({});
      const c = container(docs, 'producer');
      expect(c.lifecycle?.preStop?.exec?.command).to.deep.equal([
        'node',
        'packages/producer/dist/main.js',
        'pre-stop',
        '15',
      ]);
      expect(c.readinessProbe.periodSeconds * c.readinessProbe.failureThreshold + 5).to.equal(15);
      // The grace period counts the preStop wait: producer 25 + 15 + 15, consumer 25 + 15.
      expect(podSpec(docs, 'producer').terminationGracePeriodSeconds).to.equal(DEFAULT_SHUTDOWN + 15 + 15);
      expect(podSpec(docs, 'consumer').terminationGracePeriodSeconds).to.equal(DEFAULT_SHUTDOWN + 15);
      expect(container(docs, 'consumer').lifecycle).to.equal(undefined);
    });

    it('can be given its own wait, or be turned off', async () => {
      const given = container(await template({ producer: { preStop: { delaySeconds: 30 } } }), 'producer');
      expect(given.lifecycle?.preStop?.exec?.command.at(-1)).to.equal('30');
      const off = await template({ producer: { preStop: { enabled: false } } });
      expect(container(off, 'producer').lifecycle).to.equal(undefined);
      expect(podSpec(off, 'producer').terminationGracePeriodSeconds).to.equal(DEFAULT_SHUTDOWN + 15);
    });
  });

  it('pins the image by digest when one is given', async () => {
    const docs = await template(VALUE_SETS['KEDA on the oldest age, images pinned by digest, no preStop hook']!);
    expect(container(docs, 'producer').image).to.equal(`postoffice:0.1.0@sha256:${'a'.repeat(64)}`);
    const sts = find(docs, 'StatefulSet', '-redis') as unknown as {
      spec: { template: { spec: { containers: { image: string }[] } } };
    };
    expect(sts.spec.template.spec.containers[0]!.image).to.match(
      new RegExp(`^redis:[0-9.]+-alpine@sha256:${'b'.repeat(64)}$`),
    );
  });

  it('has a PrometheusRule with the alerts of docs/operations.md, no more, no fewer', async () => {
    const docs = await template(VALUE_SETS['everything on (ingress, ServiceMonitor, Pub/Sub, auth from a Secret)']!);
    const rule = find(docs, 'PrometheusRule', 'po-postoffice') as unknown as {
      metadata: { labels: Record<string, string> };
      spec: { groups: { rules: { alert: string; expr: string; for: string; labels: { severity: string } }[] }[] };
    };
    expect(rule.metadata.labels.release).to.equal('prometheus');
    const chart = rule.spec.groups.flatMap((g) => g.rules).map((r) => [r.alert, r.expr, r.for, r.labels.severity]);
    const operations = await readFile(join(CHART_DIR, '..', '..', 'docs', 'operations.md'), 'utf8');
    const alerts = operations.slice(operations.indexOf('### Alerts'));
    const documented = [
      ...alerts.matchAll(/^\|\s*`(Postoffice\w+)`\s*\|\s*`([^`]+)`\s*\|\s*(\S+)\s*\|\s*(\w+)\s*\|/gm),
    ].map((m) => [m[1], m[2], m[3], m[4]]);
    expect(documented.length).to.be.at.least(5);
    expect(chart).to.deep.equal(documented);
    expect((await template({})).filter((d) => d.kind === 'PrometheusRule')).to.deep.equal([]);
  });

  it('has a Grafana dashboard ConfigMap with received, delivered, failed, backlog and oldest age per publisher', async () => {
    const docs = await template(VALUE_SETS['everything on (ingress, ServiceMonitor, Pub/Sub, auth from a Secret)']!);
    const map = find(docs, 'ConfigMap', '-dashboard') as unknown as {
      metadata: { labels: Record<string, string> };
      data: Record<string, string>;
    };
    expect(map.metadata.labels.grafana_dashboard).to.equal('1');
    const dashboard = JSON.parse(map.data['postoffice.json']!) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    const operations = await readFile(join(CHART_DIR, '..', '..', 'docs', 'operations.md'), 'utf8');
    for (const [title, metric] of [
      [/^Received/, 'postoffice_messages_received_total'],
      [/^Delivered/, 'postoffice_deliveries_total'],
      [/^Failed/, 'postoffice_deliveries_total'],
      [/^Backlog/, 'postoffice_publisher_backlog_messages'],
      [/^Oldest/, 'postoffice_publisher_oldest_undelivered_age_seconds'],
    ] as const) {
      const panel = dashboard.panels.find((p) => title.test(p.title));
      expect(panel, String(title)).to.not.equal(undefined);
      const expr = panel!.targets[0]!.expr;
      expect(expr)
        .to.contain(metric)
        .and.match(/by \(publisher, topic/);
    }
    // Every metric a panel reads is one Postoffice exports (docs/operations.md lists them all).
    for (const panel of dashboard.panels) {
      for (const m of panel.targets[0]!.expr.matchAll(/postoffice_[a-z_]+/g))
        expect(operations, m[0]).to.contain(`\`${m[0]}\``);
    }
    expect((await template({})).filter((d) => d.kind === 'ConfigMap')).to.deep.equal([]);
  });

  it('has a helm test hook that runs files/smoke-test.mjs against the producer Service with the API token', async () => {
    const docs = await template({});
    const pod = find(docs, 'Pod', '-test') as unknown as {
      metadata: { annotations: Record<string, string> };
      spec: { restartPolicy: string; containers: Container[] };
    };
    expect(pod.metadata.annotations['helm.sh/hook']).to.equal('test');
    expect(pod.spec.restartPolicy).to.equal('Never');
    const c = pod.spec.containers[0]!;
    expect(c.command.slice(0, 3)).to.deep.equal(['node', '--input-type=module', '-e']);
    expect(c.command[3]).to.equal(await helmSource('files/smoke-test.mjs'));
    const env = resolveEnv(docs, c, 'po-postoffice-test');
    expect(env.POSTOFFICE_URL).to.equal('http://po-postoffice-producer.mail.svc:80');
    expect(env.API_TOKENS).to.equal(resolveEnv(docs, container(docs, 'producer'), 'x').API_TOKENS);
    expect((await template({ tests: { enabled: false } })).filter((d) => d.kind === 'Pod')).to.deep.equal([]);
  });

  it('has its own README, shown by helm show readme, that names every top-level value', async () => {
    const { stdout } = await helm(['show', 'readme', CHART_DIR]);
    expect(stdout.trim()).to.equal((await helmSource('README.md')).trim());
    const values = await helmSource('values.yaml');
    for (const key of values.match(/^[a-zA-Z]+(?=:)/gm) ?? []) expect(stdout, key).to.contain(`\`${key}`);
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
      [
        "the sentinels' password without sentinels",
        { redis: { sentinel: { password: 'pw' } } },
        /redis\.sentinel\.password is set but redis\.sentinel\.hosts is empty/,
      ],
      [
        "a cluster's URL without seed nodes",
        { redis: { cluster: { url: 'redis://:pw@c' } } },
        /redis\.cluster\.url is set but redis\.cluster\.nodes is empty/,
      ],
      [
        'a master set name the sentinels cannot have',
        { redis: { sentinel: { hosts: ['s:26379'], name: 'my master' } } },
        /redis\/sentinel\/name/,
      ],
      ['a sentinel without its port', { redis: { sentinel: { hosts: ['po-redis'] } } }, /redis\/sentinel\/hosts\/0/],
      [
        'a cluster URL with a db (a cluster has one database)',
        { redis: { cluster: { nodes: ['c:6379'], url: 'redis://:pw@c/3' } } },
        /redis\/cluster\/url/,
      ],
      [
        'config.REDIS_MIN_REPLICAS that disagrees with the Sentinel minReplicas',
        { redis: { sentinel: { hosts: ['s:26379'] } }, config: { REDIS_MIN_REPLICAS: 2 } },
        /config\.REDIS_MIN_REPLICAS \(2\) and redis\.sentinel\.minReplicas \(1\) disagree/,
      ],
      ['an API token shorter than 16 characters', { auth: { enabled: true, tokens: ['short'] } }, /auth\/tokens/],
      [
        'an API token with a comma or a space',
        { auth: { enabled: true, tokens: ['a-token-of-enough-length,x', 'another token of enough length'] } },
        /auth\/tokens\/0[\s\S]*auth\/tokens\/1|auth\/tokens\/1[\s\S]*auth\/tokens\/0/,
      ],
      [
        'an HPA whose minReplicas is above its maxReplicas',
        { consumer: { autoscaling: { enabled: true, minReplicas: 5, maxReplicas: 3 } } },
        /minReplicas \(5\) must not be more than maxReplicas \(3\)/,
      ],
      [
        'a KEDA ScaledObject whose minReplicaCount is above its maxReplicaCount',
        { consumer: { keda: { enabled: true, minReplicaCount: 4, maxReplicaCount: 2 } } },
        /minReplicaCount \(4\) must not be more than maxReplicaCount \(2\)/,
      ],
      [
        'KEDA and the CPU HPA at once',
        { consumer: { keda: { enabled: true }, autoscaling: { enabled: true } } },
        /choose one/,
      ],
      [
        'a producer PodDisruptionBudget that blocks drains with 1 replica',
        { producer: { replicas: 1 } },
        /producer\.pdb: minAvailable 1 with 1 replica\(s\) lets no pod be evicted/,
      ],
      [
        'a consumer PodDisruptionBudget that allows no pod unavailable',
        { consumer: { pdb: { enabled: true, maxUnavailable: 0 } } },
        /consumer\.pdb: maxUnavailable 0 lets no pod be evicted/,
      ],
      [
        'RETENTION_SECONDS shorter than RETRY_MAX_AGE_SECONDS',
        { config: { RETENTION_SECONDS: 3600, RETRY_MAX_AGE_SECONDS: 7200 } },
        /RETENTION_SECONDS \(3600\) must be at least config\.RETRY_MAX_AGE_SECONDS \(7200\)/,
      ],
      ['an image digest that is not a sha256 digest', { image: { digest: 'latest' } }, /image\/digest|image\.digest/],
      [
        'a moving tag for the bundled Redis',
        { redis: { bundled: { image: { tag: '7.2-alpine' } } } },
        /redis\/bundled\/image\/tag|bundled\.image\.tag/,
      ],
      [
        'a bundled Redis with neither a memory limit nor maxmemory',
        { redis: { bundled: { resources: { limits: null } } } },
        /resources\.limits\.memory \(maxmemory is 80% of it\) or maxmemory/,
      ],
      [
        "a grace period that leaves no time for the producer's preStop wait",
        { terminationGracePeriodSeconds: 40 },
        /terminationGracePeriodSeconds \(40\) must be more than SHUTDOWN_TIMEOUT_SECONDS \+ 5 \+ the producer's preStop delay \(45\)/,
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
