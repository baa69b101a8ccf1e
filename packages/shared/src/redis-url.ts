/**
 * What `REDIS_URL` names: one Redis (`redis://`, `rediss://`, as ioredis
 * reads them) or a Redis Cluster (`redis+cluster://` or
 * `rediss+cluster://`, then one or more seed nodes `host:port` separated by
 * commas, with an optional `user:password@` before them that every node
 * shares). A cluster has one database only, so a cluster URL takes no
 * `/db` path.
 */
export type RedisTarget =
  | { readonly kind: 'single'; readonly url: string }
  | {
      readonly kind: 'cluster';
      readonly nodes: readonly { readonly host: string; readonly port: number }[];
      readonly username?: string;
      readonly password?: string;
      readonly tls: boolean;
    };

const CLUSTER_URL = /^(rediss?)\+cluster:\/\/(?:([^@/?#]*)@)?([^/?#]*)\/?$/i;
const NODE = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/i;

/** Parses a Redis URL; throws an `Error` saying what is wrong. */
export function parseRedisUrl(text: string): RedisTarget {
  const url = text.trim();
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
      throw new Error('expected a redis:// or rediss:// URL (or redis+cluster://host:port,host:port for a cluster)');
    }
    return { kind: 'single', url };
  }
  const [, scheme = '', auth, hosts = ''] = cluster;
  const nodes = hosts.split(',').map((part) => {
    const m = NODE.exec(part.trim());
    const port = Number(m?.[2] ?? 6379);
    if (!m || port < 1 || port > 65535) throw new Error(`expected host:port for each cluster node, got "${part}"`);
    return { host: (m[1] ?? '').replace(/^\[(.*)\]$/, '$1'), port };
  });
  let username: string | undefined;
  let password: string | undefined;
  if (auth !== undefined && auth !== '') {
    const colon = auth.indexOf(':');
    const user = decodeURIComponent(colon === -1 ? auth : auth.slice(0, colon));
    if (user !== '') username = user;
    if (colon !== -1) password = decodeURIComponent(auth.slice(colon + 1));
  }
  return {
    kind: 'cluster',
    nodes,
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
    tls: scheme.toLowerCase() === 'rediss',
  };
}

/**
 * The cluster URL for `REDIS_CLUSTER_NODES` (`host:port,host:port`): the
 * scheme (TLS or not) and the credentials come from `REDIS_URL`.
 */
export function clusterUrl(nodes: string, base: string): string {
  const list = nodes
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '')
    .join(',');
  let tls = false;
  let auth = '';
  try {
    const u = new URL(base);
    tls = u.protocol === 'rediss:';
    if (u.username || u.password) auth = `${u.username}${u.password ? `:${u.password}` : ''}@`;
  } catch {
    const m = CLUSTER_URL.exec(base.trim());
    if (m) {
      tls = m[1]?.toLowerCase() === 'rediss';
      if (m[2]) auth = `${m[2]}@`;
    }
  }
  return `${tls ? 'rediss' : 'redis'}+cluster://${auth}${list}`;
}

/** The URL without its password, for logs. */
export function redactUrl(url: string): string {
  const cluster = CLUSTER_URL.exec(url.trim());
  if (cluster) {
    const [, scheme = '', auth, hosts = ''] = cluster;
    const user = auth === undefined ? '' : `${auth.includes(':') ? `${auth.slice(0, auth.indexOf(':'))}:***` : auth}@`;
    return `${scheme}+cluster://${user}${hosts}`;
  }
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '[unparseable url]';
  }
}
