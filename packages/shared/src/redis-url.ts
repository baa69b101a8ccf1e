/**
 * What `REDIS_URL` names: one Redis (`redis://`, `rediss://`, as ioredis
 * reads them); a Redis Cluster (`redis+cluster://` or
 * `rediss+cluster://`, then one or more seed nodes `host:port` separated by
 * commas, with an optional `user:password@` before them that every node
 * shares; a cluster has one database only, so a cluster URL takes no
 * `/db` path); or a primary found through Redis Sentinel
 * (`redis+sentinel://[user:password@]host:port,host:port/<master set>[/db]`,
 * `rediss+sentinel://` for TLS to the data nodes, and
 * `?sentinelPassword=…` for the sentinels' own password).
 */
export type RedisTarget =
  | { readonly kind: 'single'; readonly url: string }
  | {
      readonly kind: 'cluster';
      readonly nodes: readonly { readonly host: string; readonly port: number }[];
      readonly username?: string;
      readonly password?: string;
      readonly tls: boolean;
    }
  | {
      readonly kind: 'sentinel';
      /** The sentinels to ask for the primary. */
      readonly sentinels: readonly { readonly host: string; readonly port: number }[];
      /** The master set's name (`sentinel monitor <name> …`). */
      readonly name: string;
      readonly db: number;
      readonly username?: string;
      readonly password?: string;
      readonly sentinelPassword?: string;
      readonly tls: boolean;
    };

const CLUSTER_URL = /^(rediss?)\+cluster:\/\/(?:([^@/?#]*)@)?([^/?#]*)\/?$/i;
const SENTINEL_URL =
  /^(rediss?)\+sentinel:\/\/(?:([^@/?#]*)@)?([^/?#]*)(?:\/([^/?#]*))?(?:\/([^/?#]*))?\/?(?:\?([^#]*))?$/i;
const NODE = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/i;
/** Whether `name` is a master set's name as Sentinel takes it: no spaces, slashes or control characters. */
export function isMasterSetName(name: string): boolean {
  return /^[A-Za-z0-9._:-]{1,128}$/.test(name);
}

/** `host:port,host:port` (each port 1-65535; `defaultPort` when left out), or an `Error` saying which part is wrong. */
export function parseNodes(
  text: string,
  what: string,
  defaultPort: number,
): { readonly host: string; readonly port: number }[] {
  const parts = text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
  if (parts.length === 0) throw new Error(`expected one or more ${what} host:port, separated by commas`);
  return parts.map((part) => {
    const m = NODE.exec(part);
    const port = Number(m?.[2] ?? defaultPort);
    if (!m || port < 1 || port > 65535) throw new Error(`expected host:port for each ${what}, got "${part}"`);
    return { host: (m[1] ?? '').replace(/^\[(.*)\]$/, '$1'), port };
  });
}

/** `user:password@`'s parts, percent-decoded; an empty user is none. */
function credentials(auth: string | undefined): { username?: string; password?: string } {
  if (auth === undefined || auth === '') return {};
  const colon = auth.indexOf(':');
  const user = decodeURIComponent(colon === -1 ? auth : auth.slice(0, colon));
  return {
    ...(user === '' ? {} : { username: user }),
    ...(colon === -1 ? {} : { password: decodeURIComponent(auth.slice(colon + 1)) }),
  };
}

/** Parses a Redis URL; throws an `Error` saying what is wrong. */
export function parseRedisUrl(text: string): RedisTarget {
  const url = text.trim();
  if (/^rediss?\+sentinel:/i.test(url)) return parseSentinelUrl(url);
  const cluster = CLUSTER_URL.exec(url);
  if (!cluster) {
    if (/^rediss?\+cluster:/i.test(url)) {
      throw new Error('expected redis+cluster://host:port,host:port (no path: a cluster has one database)');
    }
    let protocol: string;
    try {
      protocol = new URL(url).protocol;
    } catch {
      protocol = '';
    }
    if (protocol !== 'redis:' && protocol !== 'rediss:') {
      throw new Error(
        'expected a redis:// or rediss:// URL (or redis+cluster://host:port,host:port for a cluster, redis+sentinel://host:port,host:port/name for Sentinel)',
      );
    }
    return { kind: 'single', url };
  }
  const [, scheme = '', auth, hosts = ''] = cluster;
  return {
    kind: 'cluster',
    nodes: parseNodes(hosts, 'cluster node', 6379),
    ...credentials(auth),
    tls: scheme.toLowerCase() === 'rediss',
  };
}

function parseSentinelUrl(url: string): RedisTarget {
  const m = SENTINEL_URL.exec(url);
  if (!m) throw new Error('expected redis+sentinel://host:port,host:port/<master set>[/db]');
  const [, scheme = '', auth, hosts = '', name = '', dbText = '', query = ''] = m;
  const set = decodeURIComponent(name);
  if (!isMasterSetName(set)) {
    throw new Error(`expected the master set's name after the sentinels (letters, digits, . _ : -), got "${set}"`);
  }
  if (dbText !== '' && !/^\d{1,5}$/.test(dbText))
    throw new Error(`expected a database number after the name, got "${dbText}"`);
  const sentinelPassword = new URLSearchParams(query).get('sentinelPassword') ?? '';
  return {
    kind: 'sentinel',
    sentinels: parseNodes(hosts, 'sentinel', 26379),
    name: set,
    db: dbText === '' ? 0 : Number(dbText),
    ...credentials(auth),
    ...(sentinelPassword === '' ? {} : { sentinelPassword }),
    tls: scheme.toLowerCase() === 'rediss',
  };
}

/** `host:port,host:port` with blanks and empty entries dropped. */
function nodeList(text: string): string {
  return text
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '')
    .join(',');
}

/**
 * What `REDIS_URL` gives a cluster or sentinel URL made from it: TLS or not,
 * `user:password@` (as written), and the database (`/n`, left out for 0).
 * A cluster or sentinel URL as the base gives its scheme and credentials.
 */
function baseOf(base: string): { tls: boolean; auth: string; db: string } {
  try {
    const u = new URL(base);
    const path = u.pathname.replace(/^\//, '');
    return {
      tls: u.protocol === 'rediss:',
      auth: u.username || u.password ? `${u.username}${u.password ? `:${u.password}` : ''}@` : '',
      db: /^\d+$/.test(path) && path !== '0' ? `/${path}` : '',
    };
  } catch {
    const m = /^(rediss?)\+\w+:\/\/(?:([^@/?#]*)@)?/i.exec(base.trim());
    return { tls: m?.[1]?.toLowerCase() === 'rediss', auth: m?.[2] ? `${m[2]}@` : '', db: '' };
  }
}

/**
 * The cluster URL for `REDIS_CLUSTER_NODES` (`host:port,host:port`): the
 * scheme (TLS or not) and the credentials come from `REDIS_URL`.
 */
export function clusterUrl(nodes: string, base: string): string {
  const { tls, auth } = baseOf(base);
  return `${tls ? 'rediss' : 'redis'}+cluster://${auth}${nodeList(nodes)}`;
}

/**
 * The sentinel URL for `REDIS_SENTINELS` (`host:port,host:port`), the
 * master set `name` and the sentinels' own password: the scheme (TLS or
 * not), the credentials and the database come from `REDIS_URL`.
 */
export function sentinelUrl(sentinels: string, name: string, sentinelPassword: string, base: string): string {
  const { tls, auth, db } = baseOf(base);
  const query = sentinelPassword === '' ? '' : `?sentinelPassword=${encodeURIComponent(sentinelPassword)}`;
  return `${tls ? 'rediss' : 'redis'}+sentinel://${auth}${nodeList(sentinels)}/${encodeURIComponent(name)}${db}${query}`;
}

/** The URL without its passwords, for logs. */
export function redactUrl(url: string): string {
  const cluster = CLUSTER_URL.exec(url.trim());
  const user = (auth: string | undefined): string =>
    auth === undefined ? '' : `${auth.includes(':') ? `${auth.slice(0, auth.indexOf(':'))}:***` : auth}@`;
  if (cluster) {
    const [, scheme = '', auth, hosts = ''] = cluster;
    return `${scheme}+cluster://${user(auth)}${hosts}`;
  }
  const sentinel = SENTINEL_URL.exec(url.trim());
  if (sentinel) {
    const [, scheme = '', auth, hosts = '', name = '', db, query = ''] = sentinel;
    const hidden = query === '' ? '' : `?${query.replace(/(^|&)(sentinelPassword=)[^&]*/g, '$1$2***')}`;
    return `${scheme}+sentinel://${user(auth)}${hosts}/${name}${db === undefined ? '' : `/${db}`}${hidden}`;
  }
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '[unparseable url]';
  }
}
