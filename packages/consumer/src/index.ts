export { ConsumerNode, type ConsumerNodeOptions } from './consumer-node.js';
export { buildConsumerServer } from './server.js';
export { decideFate, type FateInput } from './fate.js';
export { HttpTarget, httpBody } from './targets/http-target.js';
export { PubsubTarget, PUBSUB_FATES, pubsubMessageProblem } from './targets/pubsub-target.js';
export { TargetRouter } from './targets/target-router.js';
export { Metrics } from './metrics.js';
export { RECLAIMED_CONSUMER } from './janitor.js';
export type * from './types.js';
