export { ConsumerNode, type ConsumerNodeOptions } from './consumer-node.js';
export { buildConsumerServer } from './server.js';
export { decideFate, type FateInput } from './fate.js';
export { HttpTarget, httpBody } from './targets/http-target.js';
export { Metrics } from './metrics.js';
export { assignSlots, slotName } from './cluster/assignment.js';
export { RECLAIMED_CONSUMER } from './janitor.js';
export type * from './types.js';
