/**
 * Addresses a target may not reach when `REFUSE_PRIVATE_TARGETS` is on:
 * loopback, private (RFC 1918, ULA), link-local (the cloud metadata
 * address 169.254.169.254 included), CGNAT, unspecified, multicast and
 * reserved. IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) count as their
 * IPv4 address (node's `BlockList` checks them so).
 */
import { lookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';

const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // CGNAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128],
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv6');
}

/** Whether `address` (an IP literal, IPv6 with or without brackets) is in a refused range; false for anything else. */
export function isPrivateAddress(address: string): boolean {
  const ip = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const family = isIP(ip);
  if (family === 0) return false;
  return PRIVATE.check(ip, family === 4 ? 'ipv4' : 'ipv6');
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

/**
 * The first refused address `host` is or resolves to (every address of the
 * name is checked), or undefined. A name that does not resolve (within 5 s)
 * is not refused here: its deliveries fail anyway, and every connection is
 * checked again by the consumer.
 */
export async function privateAddressOf(host: string): Promise<string | undefined> {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (isIP(bare) !== 0) return isPrivateAddress(bare) ? bare : undefined;
  let timer: NodeJS.Timeout | undefined;
  const addresses = await new Promise<LookupAddress[]>((resolve) => {
    timer = setTimeout(() => resolve([]), LOOKUP_TIMEOUT_MS);
    lookup(bare, { all: true }, (err, found) => resolve(err ? [] : found));
  }).finally(() => clearTimeout(timer));
  return addresses.find((a) => isPrivateAddress(a.address))?.address;
}
