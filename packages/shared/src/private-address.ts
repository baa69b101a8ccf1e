/**
 * Addresses a target may reach when `REFUSE_PRIVATE_TARGETS` is on: global
 * unicast only, as the IANA IPv4 and IPv6 Special-Purpose Address
 * Registries say ("Globally Reachable"), checked as pure functions of the
 * address.
 *
 * IPv4: everything but the special-purpose blocks that are not globally
 * reachable (this network, private, CGNAT, loopback, link-local with the
 * cloud metadata address, IETF protocol assignments but 192.0.0.9 and
 * 192.0.0.10, documentation, the deprecated 6to4 relay anycast,
 * benchmarking), multicast and the reserved 240.0.0.0/4 (broadcast
 * included).
 *
 * IPv6: only the global unicast space 2000::/3, less the blocks of the
 * registry inside it that are not globally reachable (2001::/23 but its
 * listed anycast, AMT, AS112, ORCHIDv2 and drone blocks; documentation
 * 2001:db8::/32 and 3fff::/20; 6to4 2002::/16, which carries an IPv4
 * address a relay would reach). Outside 2000::/3, two forms stand for an
 * IPv4 address and are judged as that address: IPv4-mapped
 * (`::ffff:a.b.c.d`) and the well-known NAT64 prefix (`64:ff9b::a.b.c.d`,
 * which DNS64 gives for every IPv4-only name on an IPv6-only cluster).
 * Everything else is refused: unspecified, loopback, IPv4-compatible
 * (`::a.b.c.d`) and IPv4-translated forms, local-use NAT64
 * 64:ff9b:1::/48, discard-only, SRv6 SIDs, unique local, link-local,
 * multicast, and unassigned space.
 */
import { lookup, type LookupAddress, type LookupAllOptions, type LookupOneOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';

function blockList(family: 'ipv4' | 'ipv6', subnets: readonly (readonly [string, number])[]): BlockList {
  const list = new BlockList();
  for (const [net, prefix] of subnets) list.addSubnet(net, prefix, family);
  return list;
}

const REFUSED_V4 = blockList('ipv4', [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // shared address space (CGNAT)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments (DS-Lite, NAT64 discovery, ...)
  ['192.0.2.0', 24], // documentation (TEST-NET-1)
  ['192.88.99.0', 24], // deprecated 6to4 relay anycast
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation (TEST-NET-2)
  ['203.0.113.0', 24], // documentation (TEST-NET-3)
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, limited broadcast
]);

/** Inside refused IPv4 blocks, but globally reachable per the registry. */
const GLOBAL_V4 = blockList('ipv4', [
  ['192.0.0.9', 32], // Port Control Protocol anycast
  ['192.0.0.10', 32], // TURN anycast
]);

/** Inside 2000::/3, not globally reachable. */
const REFUSED_V6 = blockList('ipv6', [
  ['2001::', 23], // IETF protocol assignments: Teredo, benchmarking, deprecated ORCHID, ...
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4
  ['3fff::', 20], // documentation
]);

/** Inside refused IPv6 blocks, but globally reachable per the registry. */
const GLOBAL_V6 = blockList('ipv6', [
  ['2001:1::1', 128], // Port Control Protocol anycast
  ['2001:1::2', 128], // TURN anycast
  ['2001:1::3', 128], // DNS-SD service registration anycast
  ['2001:3::', 32], // AMT
  ['2001:4:112::', 48], // AS112-v6
  ['2001:20::', 28], // ORCHIDv2
  ['2001:30::', 28], // drone remote ID
]);

function globalV4(ip: string): boolean {
  return GLOBAL_V4.check(ip, 'ipv4') || !REFUSED_V4.check(ip, 'ipv4');
}

/** The eight 16-bit words of a valid IPv6 address (a trailing dotted IPv4 part included). */
function ipv6Words(ip: string): number[] {
  let text = ip;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((w) => parseInt(w, 16)));
  const left = parse(head);
  if (tail === undefined) return left;
  const right = parse(tail);
  return [...left, ...(Array(8 - left.length - right.length).fill(0) as number[]), ...right];
}

/** The IPv4 address in the last 32 bits of `words`. */
function embeddedV4(words: readonly number[]): string {
  const [hi = 0, lo = 0] = words.slice(6);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

function globalV6(ip: string): boolean {
  const w = ipv6Words(ip);
  const zeros = (from: number, to: number): boolean => w.slice(from, to).every((x) => x === 0);
  // ::ffff:a.b.c.d (IPv4-mapped) and 64:ff9b::a.b.c.d (NAT64): the IPv4 address they stand for.
  if (zeros(0, 5) && w[5] === 0xffff) return globalV4(embeddedV4(w));
  if (w[0] === 0x64 && w[1] === 0xff9b && zeros(2, 6)) return globalV4(embeddedV4(w));
  if (((w[0] ?? 0) & 0xe000) !== 0x2000) return false;
  return GLOBAL_V6.check(ip, 'ipv6') || !REFUSED_V6.check(ip, 'ipv6');
}

/** `address` without brackets or an IPv6 zone (`fe80::1%eth0`). */
function bare(address: string): string {
  const ip = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const zone = ip.indexOf('%');
  return zone >= 0 && ip.includes(':') ? ip.slice(0, zone) : ip;
}

/** Whether `address` (an IP literal, IPv6 with or without brackets) is a global unicast address. */
export function isGlobalUnicast(address: string): boolean {
  const ip = bare(address);
  const family = isIP(ip);
  if (family === 4) return globalV4(ip);
  if (family === 6) return globalV6(ip);
  return false;
}

/** Whether `address` is an IP literal that is not global unicast (refused); false for anything else, such as a name. */
export function isPrivateAddress(address: string): boolean {
  return isIP(bare(address)) !== 0 && !isGlobalUnicast(address);
}

/** The error of a refused target; its message says which address. */
export class PrivateTargetError extends Error {
  readonly code = 'PO_PRIVATE_TARGET';

  constructor(
    readonly host: string,
    readonly address: string,
  ) {
    super(
      address === host
        ? `target is a private address (${address}); REFUSE_PRIVATE_TARGETS is on`
        : `target resolves to a private address (${host} -> ${address}); REFUSE_PRIVATE_TARGETS is on`,
    );
    this.name = 'PrivateTargetError';
  }
}

/** How long the producer waits for DNS when checking a new target. */
const LOOKUP_TIMEOUT_MS = 5000;

/** `dns.lookup`'s shape, as `net.connect` calls it; tests pass one that answers without DNS. */
export type Lookup = (
  hostname: string,
  options: LookupOneOptions | LookupAllOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
) => void;

const systemLookup: Lookup = (hostname, options, callback) =>
  lookup(hostname, { ...options, all: true }, (err, addresses) => callback(err, addresses ?? []));

/**
 * The first refused address `host` is or resolves to (every address of the
 * name is checked), or undefined. A name that does not resolve (within 5 s)
 * is not refused here: its deliveries fail anyway, and every connection is
 * checked again by the consumer.
 */
export async function privateAddressOf(host: string, resolve: Lookup = systemLookup): Promise<string | undefined> {
  const ip = bare(host);
  if (isIP(ip) !== 0) return isPrivateAddress(ip) ? ip : undefined;
  let timer: NodeJS.Timeout | undefined;
  const addresses = await new Promise<LookupAddress[]>((done) => {
    timer = setTimeout(() => done([]), LOOKUP_TIMEOUT_MS);
    resolve(ip, { all: true }, (err, found) => done(err || !Array.isArray(found) ? [] : found));
  }).finally(() => clearTimeout(timer));
  return addresses.find((a) => isPrivateAddress(a.address))?.address;
}

/**
 * A lookup for `net.connect` (undici's connector) that fails with a
 * `PrivateTargetError` when any address of the name is refused, so that
 * the connection is never opened; otherwise it answers as `resolve` did.
 * The address connected to is one of those checked.
 */
export function publicOnlyLookup(resolve: Lookup = systemLookup): Lookup {
  return (hostname, options, callback) => {
    resolve(hostname, { ...options, all: true }, (err, found) => {
      if (err) return callback(err, []);
      const addresses = Array.isArray(found) ? found : [];
      const refused = addresses.find((a) => isPrivateAddress(a.address));
      if (refused) return callback(new PrivateTargetError(hostname, refused.address), []);
      if (options.all) return callback(null, addresses);
      const first = addresses[0];
      if (!first) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), []);
      callback(null, first.address, first.family);
    });
  };
}
