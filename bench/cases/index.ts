/** Every case, in the order they run. A new case is one more file and one more line here. */
import type { BenchCase } from '../lib/types.js';
import { batchDelivery } from './batch-delivery.js';
import { bulkIngest } from './bulk-ingest.js';
import { clusterScale } from './cluster-scale.js';
import { delivery } from './delivery.js';
import { failoverRecovery } from './failover-recovery.js';
import { fanOut } from './fan-out.js';
import { idleScale } from './idle-scale.js';
import { latency } from './latency.js';
import { orderingKeys } from './ordering-keys.js';
import { payloadSize } from './payload-size.js';
import { replicatedIngest } from './replicated-ingest.js';
import { retentionMemory } from './retention-memory.js';
import { singleIngest } from './single-ingest.js';
import { slowReceiver } from './slow-receiver.js';

export const CASES: readonly BenchCase[] = [
  singleIngest,
  replicatedIngest,
  bulkIngest,
  delivery,
  latency,
  retentionMemory,
  fanOut,
  idleScale,
  slowReceiver,
  payloadSize,
  clusterScale,
  batchDelivery,
  orderingKeys,
  failoverRecovery,
];
