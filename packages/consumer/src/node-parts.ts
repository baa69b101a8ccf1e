/**
 * The parts of a consumer node that need nothing of its state, made once
 * from its config and connection: the target, the stores and indexes over
 * Redis, the membership record, and the components the node only starts,
 * ticks and closes (janitor, message recovery, source readers). How the
 * node moves them is in `node.ts`; this module only builds them.
 */
import { hostname } from 'node:os';
import type { SQSClientConfig } from '@aws-sdk/client-sqs';
import {
  OnceWriter,
  SourceStore,
  Store,
  type Config,
  type Keys,
  type Logger,
  type Lookup,
  type ScriptClient,
} from '@postoffice/shared';
import { AuditTrail } from './audit-trail.js';
import { Lease } from './cluster/lease.js';
import { Membership } from './cluster/membership.js';
import { Janitor } from './janitor.js';
import type { Metrics } from './metrics.js';
import { Source } from './pipeline/source.js';
import { MessageRecovery } from './recovery/message-recovery.js';
import { OriginClient } from './recovery/origin-client.js';
import { RetryIndex } from './retry-index.js';
import { ScheduleRelease } from './schedule-release.js';
import { SourceReaders } from './sources/source-readers.js';
import { HttpTarget } from './targets/http-target.js';
import { PubsubTarget } from './targets/pubsub-target.js';
import { TargetRouter } from './targets/target-router.js';
import type { Clock, Target } from './types.js';

export interface NodePartsInput {
  readonly config: Config;
  readonly keys: Keys;
  readonly redis: ScriptClient;
  readonly metrics: Metrics;
  readonly now: Clock;
  /** The node's logger (`consumer`), for what its parts report on its behalf. */
  readonly logger: Logger;
  /** A logger for one of the node's components, bound to the node's id. */
  readonly componentLogger: (component: string) => Logger;
  readonly target?: Target | undefined;
  readonly sqsClientConfig?: SQSClientConfig | undefined;
  readonly originLookup?: Lookup | undefined;
}

export interface NodeParts {
  readonly target: Target;
  readonly store: Store;
  readonly source: Source;
  readonly retryIndex: RetryIndex;
  readonly scheduleRelease: ScheduleRelease;
  readonly audit: AuditTrail | undefined;
  readonly membership: Membership;
  readonly janitor: Janitor;
  readonly originClient: OriginClient;
  readonly recovery: MessageRecovery;
  readonly sources: SourceReaders;
}

export function createNodeParts(input: NodePartsInput): NodeParts {
  const { config, keys, redis, metrics, now, logger, componentLogger } = input;
  const target =
    input.target ??
    new TargetRouter({
      http: new HttpTarget(now, { refusePrivateTargets: config.refusePrivateTargets }),
      pubsub: new PubsubTarget({
        projectId: config.gcloudPubsubProjectId,
        keyFilename: config.googleApplicationCredentials,
        emulatorHost: config.pubsubEmulatorHost,
        now,
      }),
    });
  const store = new Store(redis, keys);
  const source = new Source(redis, keys, config.nodeId, config.claimTimeoutSeconds * 1000);
  source.onGroupRecreated = (p) =>
    logger.error(
      { publisherId: p.id, topic: p.topic },
      "the publisher's consumer group was missing; created it again from the oldest retained message",
    );
  const retryIndex = new RetryIndex(redis, keys);
  const scheduleRelease = new ScheduleRelease(redis, keys);
  const audit = AuditTrail.create(redis, keys, config, componentLogger('audit'));
  const membership = new Membership(
    redis,
    keys,
    { id: config.nodeId, host: hostname(), pid: process.pid, started_at: new Date(now()).toISOString() },
    config.heartbeatSeconds * 1000,
    now,
  );
  const janitor = new Janitor({
    redis,
    keys,
    store,
    membership,
    lease: new Lease(redis, keys.lock('janitor'), config.heartbeatSeconds * 3000, config.nodeId),
    retryIndex,
    config,
    logger: componentLogger('janitor'),
    now,
  });
  const writer = new OnceWriter(redis, keys, config);
  const originClient = new OriginClient({
    timeoutMs: config.recoveryTimeoutSeconds * 1000,
    refusePrivateTargets: config.refusePrivateTargets,
    ...(input.originLookup ? { lookup: input.originLookup } : {}),
  });
  const recovery = new MessageRecovery({
    store,
    writer,
    client: originClient,
    lease: new Lease(redis, keys.lock('recovery'), config.heartbeatSeconds * 3000, config.nodeId),
    metrics,
    config,
    logger: componentLogger('recovery'),
    now,
  });
  const sources = new SourceReaders({
    redis,
    keys,
    store: new SourceStore(redis, keys),
    writer,
    metrics,
    config,
    logger: componentLogger('sources'),
    now,
    ...(input.sqsClientConfig ? { sqsClientConfig: input.sqsClientConfig } : {}),
  });
  return {
    target,
    store,
    source,
    retryIndex,
    scheduleRelease,
    audit,
    membership,
    janitor,
    originClient,
    recovery,
    sources,
  };
}
