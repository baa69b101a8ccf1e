/** Every script, by the name of its typed function (`scripts.settle`, ...). */
export * from './records.js';
export * from './delivery.js';
export * from './pull.js';
export * from './flow.js';
export * from './locks.js';
export { publisherKeys } from './script.js';
