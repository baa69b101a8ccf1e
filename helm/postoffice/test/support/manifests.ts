/** Reading rendered manifests: a workload's container, its environment, the value sets under test. */
import { expect } from 'chai';
import type { Rendered } from './helm.js';

export interface EnvVar {
  readonly name: string;
  readonly value?: string;
  readonly valueFrom?: {
    readonly secretKeyRef?: { readonly name: string; readonly key: string };
    readonly fieldRef?: { readonly fieldPath: string };
  };
}

export interface Container {
  readonly name: string;
  readonly image: string;
  readonly command: string[];
  readonly workingDir?: string;
  readonly env: EnvVar[];
  readonly ports: { name: string; containerPort: number }[];
  readonly startupProbe: { httpGet: { path: string; port: string } };
  readonly livenessProbe: { httpGet: { path: string; port: string } };
  readonly readinessProbe: { httpGet: { path: string; port: string }; periodSeconds: number; failureThreshold: number };
  readonly lifecycle?: { preStop?: { exec?: { command: string[] } } };
  readonly securityContext: Record<string, unknown>;
  readonly volumeMounts?: { name: string; mountPath: string }[];
}

export interface PodSpec {
  readonly containers: Container[];
  readonly terminationGracePeriodSeconds: number;
  readonly securityContext: Record<string, unknown>;
  readonly volumes?: { name: string; secret?: { secretName: string } }[];
}

export function find(docs: Rendered[], kind: string, nameSuffix: string): Rendered {
  const doc = docs.find((d) => d.kind === kind && d.metadata.name.endsWith(nameSuffix));
  expect(doc, `${kind} *${nameSuffix}`).to.not.equal(undefined);
  return doc!;
}

export function podSpec(docs: Rendered[], component: 'producer' | 'consumer'): PodSpec {
  const d = find(docs, 'Deployment', `-${component}`) as unknown as { spec: { template: { spec: PodSpec } } };
  return d.spec.template.spec;
}

export function container(docs: Rendered[], component: 'producer' | 'consumer'): Container {
  const c = podSpec(docs, component).containers.find((x) => x.name === component);
  expect(c, `${component} container`).to.not.equal(undefined);
  return c!;
}

/** The environment of a container, secrets and pod fields resolved from the rendered manifests. */
export function resolveEnv(
  docs: Rendered[],
  c: Pick<Container, 'env'>,
  podName: string,
  podIp = '127.0.0.1',
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of c.env) {
    if (e.value !== undefined) out[e.name] = e.value;
    else if (e.valueFrom?.secretKeyRef) {
      const { name, key } = e.valueFrom.secretKeyRef;
      const secret = docs.find((d) => d.kind === 'Secret' && d.metadata.name === name) as
        { stringData?: Record<string, string>; data?: Record<string, string> } | undefined;
      const value =
        secret?.stringData?.[key] ??
        (secret?.data?.[key] === undefined ? undefined : Buffer.from(secret.data[key], 'base64').toString());
      if (value === undefined) throw new Error(`${e.name}: secret ${name} has no key ${key} in the rendered chart`);
      out[e.name] = value;
    } else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') out[e.name] = podName;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'status.podIP') out[e.name] = podIp;
    else throw new Error(`${e.name}: cannot resolve ${JSON.stringify(e.valueFrom)}`);
  }
  return out;
}

const TOKEN = 'a-test-token-of-enough-length-1';

/** Value sets every test renders: the defaults and one per feature. */
export const VALUE_SETS: Record<string, Record<string, unknown>> = {
  'the default values (bundled Redis, auth on with a generated token)': {},
  'an external Redis URL': { redis: { url: 'redis://:secret@redis.example:6379/2' } },
  'a Redis Cluster URL': { redis: { url: 'redis+cluster://:secret@redis-0.example:6379,redis-1.example:6379' } },
  'an existing Secret for Redis': { redis: { existingSecret: 'my-redis', existingSecretKey: 'url' } },
  'Redis with Sentinel, passwords in values': {
    redis: {
      sentinel: { hosts: ['po-redis:26379', '10.0.0.7:26379'], url: 'redis://:node-secret@redis/2', password: 's-pw' },
    },
  },
  "Redis with Sentinel, Bitnami's Secrets": {
    redis: {
      sentinel: {
        hosts: ['po-redis:26379'],
        name: 'cache',
        existingSecret: 'po-redis-nodes',
        existingPasswordSecret: 'po-redis',
      },
    },
  },
  'a Redis Cluster with replicas': {
    redis: {
      cluster: { nodes: ['po-redis-cluster-0:6379', 'po-redis-cluster-1:6379'], url: 'rediss://:c-pw@cluster' },
    },
  },
  'the bundled Redis with a storage class and appendfsync always': {
    redis: { bundled: { enabled: true, appendfsync: 'always', persistence: { size: '5Gi', storageClass: 'fast' } } },
  },
  'the consumer HPA on': { consumer: { autoscaling: { enabled: true, minReplicas: 3, maxReplicas: 12 } } },
  'auth on with tokens from values': { auth: { enabled: true, tokens: [TOKEN, `${TOKEN}-2`] } },
  'auth off': { auth: { enabled: false } },
  'everything on (ingress, ServiceMonitor, Pub/Sub, auth from a Secret)': {
    redis: { url: 'rediss://redis.example:6380' },
    auth: { enabled: true, existingSecret: 'tokens' },
    pubsub: { enabled: true, projectId: 'my-project', credentials: { json: '{"type":"service_account"}' } },
    producer: {
      ingress: { enabled: true, className: 'nginx', tls: [{ hosts: ['po.example'], secretName: 'po-tls' }] },
    },
    serviceMonitor: { enabled: true, labels: { release: 'prometheus' } },
    prometheusRule: { enabled: true, labels: { release: 'prometheus' } },
    grafanaDashboard: { enabled: true },
    config: { SHUTDOWN_TIMEOUT_SECONDS: 50, LOG_LEVEL: 'debug' },
  },
  'consumers scaled by KEDA on the backlog': {
    consumer: { keda: { enabled: true, minReplicaCount: 1, maxReplicaCount: 8 } },
    serviceMonitor: { enabled: true },
  },
  'KEDA on the oldest age, images pinned by digest, no preStop hook': {
    image: { digest: `sha256:${'a'.repeat(64)}` },
    redis: { bundled: { image: { digest: `sha256:${'b'.repeat(64)}` } } },
    producer: { preStop: { enabled: false } },
    consumer: { keda: { enabled: true, metric: 'oldestAge', threshold: 30, minReplicaCount: 2, maxReplicaCount: 4 } },
  },
};
