/**
 * Configuration: environment variables in, a frozen typed object out.
 *
 * `SETTINGS` is the one table of every variable the processes read: its
 * name, default, meaning and which process reads it. The docs/configuration.md is
 * checked against it by a test. `loadConfig(env, role)` is pure: it never
 * reads `process.env` itself, and reports every bad value in one error.
 */
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { ConfigError } from './errors.js';
import { clusterUrl, isMasterSetName, parseNodes, parseRedisUrl, sentinelUrl } from './redis-url.js';

export type Role = 'producer' | 'consumer';

/** What a setting of each kind parses to: its field's type in `Config`. */
interface KindTypes {
  /** Any text. */
  readonly string: string;
  /** A Redis URL (`parseRedisUrl`). */
  readonly url: string;
  /** A whole number, at least the setting's `min`. */
  readonly int: number;
  /** A pino log level. */
  readonly level: string;
  readonly bool: boolean;
  /** Comma-separated API tokens; an empty list when unset. */
  readonly tokens: readonly string[];
}

type Kind = keyof KindTypes;

/** A setting whose default is of its kind's type (a tokens setting has none: unset is the empty list). */
type Setting = {
  [K in Kind]: {
    readonly env: string;
    readonly kind: K;
    readonly default: K extends 'tokens' ? '' : KindTypes[K] | ((role: Role) => KindTypes[K]);
    readonly min?: number;
    readonly roles: readonly Role[];
    readonly doc: string;
    /** Another name accepted for the variable when it is unset (the and Postoffice's spelling). */
    readonly alias?: string;
  };
}[Kind];

/** The shortest API token accepted: a token is a password that never expires, so it must not be guessable. */
export const MIN_TOKEN_LENGTH = 16;

const BOTH: readonly Role[] = ['producer', 'consumer'];

export const SETTINGS = {
  /** Where Redis is: a `redis://`/`rediss://` URL, or a cluster URL (`REDIS_CLUSTER_NODES` folded in). */
  redisUrl: {
    env: 'REDIS_URL',
    kind: 'url',
    default: 'redis://127.0.0.1:6379',
    roles: BOTH,
    doc: 'Redis to use (`redis://` or `rediss://`, with password and db if needed), or a Redis Cluster: `redis+cluster://host:port,host:port` (`rediss+cluster://` for TLS, `user:password@` before the nodes if needed), or a primary found through Redis Sentinel: `redis+sentinel://host:port,host:port/<master set>` (see `REDIS_SENTINELS`, an easier way to say the same).',
  },
  redisClusterNodes: {
    env: 'REDIS_CLUSTER_NODES',
    kind: 'string',
    default: '',
    roles: BOTH,
    doc: "Another way to name a Redis Cluster: seed nodes `host:port,host:port`. When set, Postoffice talks to that cluster, with the TLS and credentials of `REDIS_URL`'s scheme and `user:password@` (its host is ignored).",
  },
  redisSentinels: {
    env: 'REDIS_SENTINELS',
    kind: 'string',
    default: '',
    roles: BOTH,
    doc: "Redis Sentinel: the sentinels `host:port,host:port` to ask for the primary of `REDIS_SENTINEL_NAME`. When set, Postoffice talks to that primary and follows its failovers, with the TLS, credentials and database of `REDIS_URL`'s scheme, `user:password@` and `/db` (its host is ignored).",
  },
  redisSentinelName: {
    env: 'REDIS_SENTINEL_NAME',
    kind: 'string',
    default: 'mymaster',
    roles: BOTH,
    doc: 'The master set the sentinels watch (`sentinel monitor <name> …`), with `REDIS_SENTINELS`.',
  },
  redisSentinelPassword: {
    env: 'REDIS_SENTINEL_PASSWORD',
    kind: 'string',
    default: '',
    roles: BOTH,
    doc: "The sentinels' own password (`requirepass` in sentinel.conf), when they have one; the data nodes' password comes from `REDIS_URL`.",
  },
  redisPrefix: {
    env: 'REDIS_PREFIX',
    kind: 'string',
    default: 'po:',
    roles: BOTH,
    doc: 'Prefix of every Redis key and channel; lets several installations share one Redis.',
  },
  host: {
    env: 'HOST',
    kind: 'string',
    default: '0.0.0.0',
    roles: BOTH,
    doc: 'Address the HTTP server listens on.',
  },
  port: {
    env: 'PORT',
    kind: 'int',
    default: (role: Role) => (role === 'producer' ? 4000 : 4001),
    min: 0,
    roles: BOTH,
    doc: 'HTTP port: the API on the producer (default 4000), `/healthz` and `/metrics` on a consumer (default 4001).',
  },
  logLevel: {
    env: 'LOG_LEVEL',
    kind: 'level',
    default: 'info',
    roles: BOTH,
    doc: 'pino log level: fatal, error, warn, info, debug, trace or silent.',
  },
  claimTimeoutSeconds: {
    env: 'CLAIM_TIMEOUT_SECONDS',
    kind: 'int',
    default: 60,
    min: 2,
    roles: BOTH,
    doc: "How long a dead node's in-flight messages wait before another node takes them over. A publisher's `seconds_timeout` must be at least 1 s shorter.",
  },
  retentionSeconds: {
    env: 'RETENTION_SECONDS',
    alias: 'RETENTION',
    kind: 'int',
    default: 7 * 24 * 3600,
    min: 1,
    roles: BOTH,
    doc: 'How long delivered messages, dead letters and delivery history are kept (seconds; `RETENTION` is read when this is unset). Must be at least `RETRY_MAX_AGE_SECONDS`.',
  },
  retryMaxAgeSeconds: {
    env: 'RETRY_MAX_AGE_SECONDS',
    kind: 'int',
    default: 3 * 24 * 3600,
    min: 1,
    roles: BOTH,
    doc: 'A message still undelivered this long after receipt becomes a dead letter.',
  },
  maxBulkMessages: {
    env: 'MAX_BULK_MESSAGES',
    kind: 'int',
    default: 3000,
    min: 1,
    roles: ['producer'],
    doc: 'Most messages accepted by one `POST /api/bulk_messages` (406 above).',
  },
  bodyLimitBytes: {
    env: 'BODY_LIMIT_BYTES',
    kind: 'int',
    default: 5 * 1024 * 1024,
    min: 1024,
    roles: ['producer'],
    doc: 'Largest request body the API accepts (413 above).',
  },
  redisMinReplicas: {
    env: 'REDIS_MIN_REPLICAS',
    kind: 'int',
    default: 0,
    min: 0,
    roles: BOTH,
    doc: 'When above 0, a message is acknowledged (201) only after `WAIT` has seen this many replicas; 503 otherwise. Consumers wait for it too before a recovered or sourced message is deleted (or acked) at its origin.',
  },
  redisWaitTimeoutMs: {
    env: 'REDIS_WAIT_TIMEOUT_MS',
    kind: 'int',
    default: 1000,
    min: 1,
    roles: BOTH,
    doc: 'How long `WAIT` may take when `REDIS_MIN_REPLICAS` is set.',
  },
  nodeId: {
    env: 'NODE_ID',
    kind: 'string',
    default: '',
    roles: ['consumer'],
    doc: 'Name of this consumer node in Redis (consumer name in every group). Empty: host name, pid and a random suffix, new at each start.',
  },
  heartbeatSeconds: {
    env: 'HEARTBEAT_SECONDS',
    kind: 'int',
    default: 5,
    min: 1,
    roles: ['consumer'],
    doc: 'How often a consumer node reports itself alive; a node silent for three heartbeats is dead.',
  },
  retryMaxBackoffSeconds: {
    env: 'RETRY_MAX_BACKOFF_SECONDS',
    kind: 'int',
    default: 3600,
    min: 1,
    roles: ['consumer'],
    doc: "Cap of the exponential backoff between attempts (which starts at the publisher's `seconds_retry`).",
  },
  breakerThreshold: {
    env: 'BREAKER_THRESHOLD',
    kind: 'int',
    default: 10,
    min: 1,
    roles: ['consumer'],
    doc: 'Consecutive failures after which a publisher stops taking new messages and probes with one (circuit breaker).',
  },
  retryPollMs: {
    env: 'RETRY_POLL_MS',
    kind: 'int',
    default: 1000,
    min: 10,
    roles: ['consumer'],
    doc: 'How often a node looks for publishers with retries due (one Redis command, whatever the number of publishers).',
  },
  trimIntervalSeconds: {
    env: 'TRIM_INTERVAL_SECONDS',
    kind: 'int',
    default: 60,
    min: 1,
    roles: ['consumer'],
    doc: 'How often the janitor trims the streams of topics that received messages.',
  },
  recoveryIntervalSeconds: {
    env: 'RECOVERY_INTERVAL_SECONDS',
    kind: 'int',
    default: 30,
    min: 1,
    roles: ['consumer'],
    doc: "How often one consumer node asks the `origin_host` of every topic with `recovery_enabled` for the messages its sender failed to publish (Postoffice's message recovery).",
  },
  recoveryTimeoutSeconds: {
    env: 'RECOVERY_TIMEOUT_SECONDS',
    kind: 'int',
    default: 10,
    min: 1,
    roles: ['consumer'],
    doc: 'Longest time one request to an `origin_host` (the list, or the deletion of one message) may take.',
  },
  searchScanBudget: {
    env: 'SEARCH_SCAN_BUDGET',
    kind: 'int',
    default: 10000,
    min: 100,
    roles: ['producer'],
    doc: 'Most stream entries one `GET /api/messages` search examines; past it the answer says `truncated` and gives a cursor to go on.',
  },
  answerByteBudget: {
    env: 'ANSWER_BYTE_BUDGET',
    kind: 'int',
    default: 1048576,
    min: 1024,
    roles: ['producer'],
    doc: 'Most bytes of payloads one page of search, failing list or pull lease carries, whatever its `limit` or `max`: the page stops there (with at least one message) and its `cursor` (or the next lease) goes on.',
  },
  auditLog: {
    env: 'AUDIT_LOG',
    kind: 'string',
    default: 'off',
    roles: ['consumer'],
    doc: 'Audit trail of successful deliveries as JSON lines: `off`, `stdout`, or the path of a file to append to.',
  },
  auditStream: {
    env: 'AUDIT_STREAM',
    kind: 'bool',
    default: false,
    roles: ['consumer'],
    doc: 'When `true`, each successful delivery is also added to the Redis stream `<prefix>audit` for other consumers to read.',
  },
  auditStreamMaxLen: {
    env: 'AUDIT_STREAM_MAXLEN',
    kind: 'int',
    default: 1000000,
    min: 1,
    roles: ['consumer'],
    doc: 'About how many entries the audit stream keeps (`XADD MAXLEN ~`).',
  },
  gcloudPubsubProjectId: {
    env: 'GCLOUD_PUBSUB_PROJECT_ID',
    kind: 'string',
    default: '',
    roles: ['consumer'],
    doc: 'Google Cloud project of `pubsub` publishers whose target is a bare topic name (a target `projects/<p>/topics/<t>` names its own). Empty: the project of the credentials.',
  },
  googleApplicationCredentials: {
    env: 'GOOGLE_APPLICATION_CREDENTIALS',
    kind: 'string',
    default: '',
    roles: ['consumer'],
    doc: 'Path of the service account key file `pubsub` publishers use. Empty: Application Default Credentials (workload identity, metadata server).',
  },
  pubsubEmulatorHost: {
    env: 'PUBSUB_EMULATOR_HOST',
    kind: 'string',
    default: '',
    roles: ['consumer'],
    doc: '`host:port` of a Pub/Sub emulator: `pubsub` publishers publish there, without TLS or credentials.',
  },
  /** API_TOKENS, split and trimmed; empty when authentication is off. Never log it. */
  apiTokens: {
    env: 'API_TOKENS',
    kind: 'tokens',
    default: '',
    roles: ['producer'],
    doc: `Comma-separated API tokens (each at least ${MIN_TOKEN_LENGTH} characters). When set, every \`/api\` route but health and the session needs \`Authorization: Bearer <token>\` or a session cookie; two tokens let you rotate. Empty: no authentication.`,
  },
  shutdownTimeoutSeconds: {
    env: 'SHUTDOWN_TIMEOUT_SECONDS',
    kind: 'int',
    default: 25,
    min: 1,
    roles: BOTH,
    doc: 'On SIGTERM, how long in-flight work may take before the process stops anyway.',
  },
  refusePrivateTargets: {
    env: 'REFUSE_PRIVATE_TARGETS',
    kind: 'bool',
    default: false,
    roles: BOTH,
    doc: 'When `true`, http targets must be global unicast addresses (or names that resolve only to such): loopback, private, link-local (cloud metadata included), CGNAT, documentation, benchmarking, multicast, reserved and every other special-purpose range of the IANA registries are refused, and so are IPv6 forms that carry such an IPv4 address (IPv4-mapped, NAT64, 6to4). Checked at creation and change (400 `target`) and again when a delivery connects (a failed attempt). The Helm chart turns it on.',
  },
  requestTimeoutMs: {
    env: 'REQUEST_TIMEOUT_MS',
    kind: 'int',
    default: 30_000,
    min: 100,
    roles: ['producer'],
    doc: 'Longest time a client may take to send a whole request, headers and body; a slower one gets 408 and its connection is closed.',
  },
  headersTimeoutMs: {
    env: 'HEADERS_TIMEOUT_MS',
    kind: 'int',
    default: 10_000,
    min: 100,
    roles: ['producer'],
    doc: 'Longest time a client may take to send the request headers (408 and closed after). At most `REQUEST_TIMEOUT_MS`.',
  },
  connectionTimeoutMs: {
    env: 'CONNECTION_TIMEOUT_MS',
    kind: 'int',
    default: 60_000,
    min: 100,
    roles: ['producer'],
    doc: 'A connection on which nothing is sent or received for this long is closed.',
  },
  keepAliveTimeoutMs: {
    env: 'KEEP_ALIVE_TIMEOUT_MS',
    kind: 'int',
    default: 72_000,
    min: 100,
    roles: ['producer'],
    doc: 'How long an idle keep-alive connection stays open after an answer. Keep it longer than the idle timeout of a load balancer in front (60 s for most), or the balancer may reuse a connection the producer is closing.',
  },
  maxConnections: {
    env: 'MAX_CONNECTIONS',
    kind: 'int',
    default: 1024,
    min: 1,
    roles: ['producer'],
    doc: 'Most client connections the producer keeps open at once; connections past it are closed as soon as they are accepted.',
  },
  loginMaxFailures: {
    env: 'LOGIN_MAX_FAILURES',
    kind: 'int',
    default: 10,
    min: 1,
    roles: ['producer'],
    doc: 'Failed logins (`POST /api/session`) one client address may make within `LOGIN_WINDOW_SECONDS`, counted in Redis across producer replicas; past it, every login from that address is a 429 with `Retry-After` until the window ends.',
  },
  loginWindowSeconds: {
    env: 'LOGIN_WINDOW_SECONDS',
    kind: 'int',
    default: 300,
    min: 1,
    roles: ['producer'],
    doc: 'The window of `LOGIN_MAX_FAILURES`, starting at the first failure.',
  },
  /** TRUST_PROXY as given (validated); `trustedProxies(config)` splits it. */
  trustProxy: {
    env: 'TRUST_PROXY',
    kind: 'string',
    default: '',
    roles: ['producer'],
    doc: 'Comma-separated addresses or CIDR ranges (or `loopback`, `linklocal`, `uniquelocal`) of proxies in front of the producer, such as the ingress controller: a request from one of them is taken to come from the address it names in `X-Forwarded-For` (the login throttle counts per client address). Empty: the address of the connection.',
  },
  statsCacheMs: {
    env: 'STATS_CACHE_MS',
    kind: 'int',
    default: 1000,
    min: 0,
    roles: ['producer'],
    doc: 'How long a `GET /api/stats` answer is reused; requests that arrive while one is computed share it. 0: computed for each request (concurrent ones still share).',
  },
} as const satisfies Record<string, Setting>;

type Settings = typeof SETTINGS;

/**
 * The configuration `loadConfig` returns: one field per setting of
 * `SETTINGS`, of its kind's type (and documented there), and the role it
 * was loaded for.
 */
export interface Config extends Readonly<{ [K in keyof Settings]: KindTypes[Settings[K]['kind']] }> {
  readonly role: Role;
}

const BOOLEANS = new Map([
  ['true', true],
  ['1', true],
  ['yes', true],
  ['false', false],
  ['0', false],
  ['no', false],
]);

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

export type Env = Readonly<Record<string, string | undefined>>;

export function loadConfig(env: Env, role: Role): Config {
  const problems: string[] = [];
  const values = {} as { -readonly [K in keyof Settings]: Config[K] };
  for (const field of Object.keys(SETTINGS) as (keyof Settings)[]) set(values, field, read(field, env, role, problems));
  foldRedisTopology(values, problems);
  if (/[{}\s]/.test(values.redisPrefix)) {
    problems.push(
      `REDIS_PREFIX=${JSON.stringify(values.redisPrefix)}: expected no braces or spaces (keys carry the topic in a {hash tag})`,
    );
  }
  const bothValid = !problems.some((p) => /^(RETENTION_SECONDS|RETENTION|RETRY_MAX_AGE_SECONDS)=/.test(p));
  if (bothValid && values.retentionSeconds < values.retryMaxAgeSeconds) {
    problems.push(
      `RETENTION_SECONDS=${values.retentionSeconds}: expected at least RETRY_MAX_AGE_SECONDS (${values.retryMaxAgeSeconds}), or messages still being retried could be trimmed`,
    );
  }
  const timeoutsValid = !problems.some((p) => /^(REQUEST_TIMEOUT_MS|HEADERS_TIMEOUT_MS)=/.test(p));
  if (timeoutsValid && values.headersTimeoutMs > values.requestTimeoutMs) {
    problems.push(
      `HEADERS_TIMEOUT_MS=${values.headersTimeoutMs}: expected at most REQUEST_TIMEOUT_MS (${values.requestTimeoutMs}), which covers the headers too`,
    );
  }
  checkProxies(values.trustProxy, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  if (role === 'consumer' && values.nodeId === '') {
    values.nodeId = `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  }
  const config: Config = { role, ...values };
  return Object.freeze(config);
}

/**
 * `REDIS_CLUSTER_NODES` or `REDIS_SENTINELS` (one of them at most) become
 * `redisUrl`, a cluster or sentinel URL with `REDIS_URL`'s scheme and
 * credentials, so that every client is made from one string.
 */
function foldRedisTopology(values: { -readonly [F in keyof Settings]: Config[F] }, problems: string[]): void {
  if (values.redisClusterNodes !== '' && values.redisSentinels !== '') {
    problems.push(
      `REDIS_SENTINELS=${JSON.stringify(values.redisSentinels)}: expected REDIS_CLUSTER_NODES or REDIS_SENTINELS, not both (a Redis Cluster has no sentinels)`,
    );
    return;
  }
  if (values.redisClusterNodes !== '') {
    const url = clusterUrl(values.redisClusterNodes, values.redisUrl);
    try {
      parseRedisUrl(url);
      values.redisUrl = url;
    } catch (err) {
      problems.push(`REDIS_CLUSTER_NODES=${JSON.stringify(values.redisClusterNodes)}: ${(err as Error).message}`);
    }
  }
  if (values.redisSentinels !== '') {
    let valid = true;
    try {
      parseNodes(values.redisSentinels, 'sentinel', 26379);
    } catch (err) {
      valid = false;
      problems.push(`REDIS_SENTINELS=${JSON.stringify(values.redisSentinels)}: ${(err as Error).message}`);
    }
    if (!isMasterSetName(values.redisSentinelName)) {
      valid = false;
      problems.push(
        `REDIS_SENTINEL_NAME=${JSON.stringify(values.redisSentinelName)}: expected the master set's name (letters, digits, . _ : -)`,
      );
    }
    if (/^rediss?\+(cluster|sentinel):/i.test(values.redisUrl)) {
      valid = false;
      problems.push(
        `REDIS_URL=${JSON.stringify(values.redisUrl)}: with REDIS_SENTINELS, expected a redis:// or rediss:// URL (for the scheme, credentials and db; its host is ignored)`,
      );
    }
    if (valid) {
      values.redisUrl = sentinelUrl(
        values.redisSentinels,
        values.redisSentinelName,
        values.redisSentinelPassword,
        values.redisUrl,
      );
    }
  }
}

function set<K extends keyof Settings>(
  values: { -readonly [F in keyof Settings]: Config[F] },
  field: K,
  value: Config[K],
): void {
  values[field] = value;
}

/**
 * A setting's value: from its variable (or its alias), else its default. A
 * bad value adds a problem (and gives the default, so the others are still
 * checked: `loadConfig` throws when there is any problem).
 */
function read<K extends keyof Settings>(field: K, env: Env, role: Role, problems: string[]): Config[K] {
  const s: Setting = SETTINGS[field];
  const own = env[s.env];
  const name = (own === undefined || own === '') && s.alias !== undefined ? s.alias : s.env;
  const raw = env[name];
  const given = raw === undefined || raw === '' ? undefined : parse(s, name, raw, problems);
  // The table ties each field's kind to its type (`Setting`, `Config`); TypeScript cannot follow the kind through `s`.
  return (given ?? defaultOf(s, role)) as Config[K];
}

function defaultOf(s: Setting, role: Role): KindTypes[Kind] {
  if (s.kind === 'tokens') return Object.freeze([]);
  return typeof s.default === 'function' ? s.default(role) : s.default;
}

/** The value of the variable `name` (`raw`, not empty) for the setting, or undefined with a problem. */
function parse(s: Setting, name: string, raw: string, problems: string[]): KindTypes[Kind] | undefined {
  const value = raw.trim();
  switch (s.kind) {
    case 'int': {
      const n = Number(value);
      if (/^\d+$/.test(value) && Number.isSafeInteger(n) && n >= (s.min ?? 0)) return n;
      problems.push(`${name}=${JSON.stringify(raw)}: expected a whole number >= ${s.min ?? 0}`);
      return undefined;
    }
    case 'url':
      try {
        parseRedisUrl(value);
        return value;
      } catch (err) {
        problems.push(`${name}=${JSON.stringify(raw)}: ${(err as Error).message}`);
        return undefined;
      }
    case 'level':
      if (LEVELS.has(value)) return value;
      problems.push(`${name}=${JSON.stringify(raw)}: expected one of ${[...LEVELS].join(', ')}`);
      return undefined;
    case 'string':
      return value;
    case 'tokens':
      return parseTokens(name, value, problems);
    case 'bool': {
      const b = BOOLEANS.get(value.toLowerCase());
      if (b === undefined) problems.push(`${name}=${JSON.stringify(raw)}: expected true or false`);
      return b;
    }
  }
}

/**
 * A comma-separated list of secrets, whitespace trimmed around each. Problems
 * say which entry (by position) is wrong and why, never what it is.
 */
function parseTokens(name: string, value: string, problems: string[]): readonly string[] | undefined {
  const tokens = value.split(',').map((t) => t.trim());
  let ok = true;
  tokens.forEach((token, i) => {
    const which = tokens.length === 1 ? 'the token' : `token ${i + 1} of ${tokens.length}`;
    if (token === '') {
      problems.push(`${name}: ${which} is empty (expected comma-separated tokens, no empty entries)`);
      ok = false;
    } else if (token.length < MIN_TOKEN_LENGTH) {
      problems.push(`${name}: ${which} is ${token.length} characters long (expected at least ${MIN_TOKEN_LENGTH})`);
      ok = false;
    } else if (!/^[\x21-\x7e]+$/.test(token)) {
      problems.push(`${name}: ${which} has a character other than printable ASCII (it must fit an HTTP header)`);
      ok = false;
    }
  });
  return ok ? Object.freeze(tokens) : undefined;
}

/** Names of address ranges that TRUST_PROXY takes besides addresses and CIDRs (those of fastify's `trustProxy`). */
const PROXY_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** TRUST_PROXY's entries (empty: no proxy is trusted). */
export function trustedProxies(config: Pick<Config, 'trustProxy'>): string[] {
  return config.trustProxy === '' ? [] : config.trustProxy.split(',').map((e) => e.trim());
}

/** Every entry of TRUST_PROXY must be an IP address, a CIDR range or a range name. */
function checkProxies(value: string, problems: string[]): void {
  const bad = trustedProxies({ trustProxy: value }).filter((e) => {
    if (PROXY_RANGES.has(e)) return false;
    const [address = '', prefix, ...rest] = e.split('/');
    const family = isIP(address);
    if (family === 0 || rest.length > 0) return true;
    if (prefix === undefined) return false;
    return !/^\d{1,3}$/.test(prefix) || Number(prefix) > (family === 4 ? 32 : 128);
  });
  if (bad.length === 0) return;
  problems.push(
    `TRUST_PROXY=${JSON.stringify(value)}: expected comma-separated IP addresses, CIDR ranges or loopback, linklocal, uniquelocal (not ${bad.map((b) => JSON.stringify(b)).join(', ')})`,
  );
}

/** The longest `seconds_timeout` a publisher may have: delivery must end before its message can be claimed. */
export function maxPublisherTimeout(config: Pick<Config, 'claimTimeoutSeconds'>): number {
  return config.claimTimeoutSeconds - 1;
}
