/** Test support: field names the fuzz tests build request bodies from (the API's, and keys that prototype pollution would use). */

/** The fields of topics and publishers. */
export const TOPIC_AND_PUBLISHER_FIELDS: readonly string[] = [
  'name',
  'origin_host',
  'recovery_enabled',
  'topic',
  'target',
  'type',
  'active',
  'from_now',
  'seconds_timeout',
  'seconds_retry',
  'chunk_size',
  'concurrency',
  'parallelism',
  'ordered',
  'rate_limit',
];

/** The fields of messages and of the requests about them. */
export const MESSAGE_FIELDS: readonly string[] = [
  'payload',
  'attributes',
  'schedule_at',
  'ids',
  'all',
  'since',
  'next_attempt_at',
];

/** Keys that would reach an object's prototype if a body were merged carelessly. */
export const PROTOTYPE_KEYS: readonly string[] = ['__proto__', 'constructor'];
