/**
 * Test support shared by every package's tests, the benchmarks and the
 * fault suite (`@postoffice/test-support`). Heavier or narrower parts have
 * their own entry points: `/settle` (delivery outcomes recorded without a
 * node), `/faults` (the fault suite's fixtures), `/ha` (replicated Redis
 * Clusters and Sentinel sets that fail over), `/origin-server` and
 * `/sqs-server` (fake upstreams), `/leak-check` (mocha's root hooks).
 */
export * from './redis-server.js';
export * from './wait.js';
export * from './clock.js';
export * from './commands.js';
export * from './receiver.js';
export * from './processes.js';
export * from './log-lines.js';
export * from './prng.js';
export * from './fuzz.js';
