import { expect } from 'chai';
import type { LookupAddress } from 'node:dns';
import {
  PrivateTargetError,
  isGlobalUnicast,
  isPrivateAddress,
  privateAddressOf,
  publicOnlyLookup,
  type Lookup,
} from '../src/index.js';

/**
 * Every block of the IANA IPv4 and IPv6 Special-Purpose Address Registries
 * that is not globally reachable, with an address inside it, its first and
 * its last address; and the IPv6 forms that carry such an IPv4 address.
 */
const REFUSED: [string, string[]][] = [
  ['0.0.0.0/8 this network', ['0.0.0.0', '0.1.2.3', '0.255.255.255']],
  ['10.0.0.0/8 private', ['10.0.0.0', '10.1.2.3', '10.255.255.255']],
  ['100.64.0.0/10 shared (CGNAT)', ['100.64.0.0', '100.100.100.200', '100.127.255.255']],
  ['127.0.0.0/8 loopback', ['127.0.0.1', '127.255.255.255']],
  ['169.254.0.0/16 link-local, cloud metadata', ['169.254.0.0', '169.254.169.254', '169.254.255.255']],
  ['172.16.0.0/12 private', ['172.16.0.0', '172.20.1.1', '172.31.255.255']],
  ['192.0.0.0/24 IETF protocol assignments', ['192.0.0.0', '192.0.0.8', '192.0.0.170', '192.0.0.171', '192.0.0.255']],
  ['192.0.2.0/24 TEST-NET-1', ['192.0.2.0', '192.0.2.1', '192.0.2.255']],
  ['192.88.99.0/24 deprecated 6to4 relay anycast', ['192.88.99.0', '192.88.99.1', '192.88.99.255']],
  ['192.168.0.0/16 private', ['192.168.0.0', '192.168.1.1', '192.168.255.255']],
  ['198.18.0.0/15 benchmarking', ['198.18.0.0', '198.18.0.1', '198.19.255.255']],
  ['198.51.100.0/24 TEST-NET-2', ['198.51.100.0', '198.51.100.255']],
  ['203.0.113.0/24 TEST-NET-3', ['203.0.113.0', '203.0.113.255']],
  ['224.0.0.0/4 multicast', ['224.0.0.1', '239.255.255.255']],
  ['240.0.0.0/4 reserved, broadcast', ['240.0.0.0', '255.255.255.255']],
  ['::/128 unspecified, ::1/128 loopback', ['::', '::1', '[::1]', '0:0:0:0:0:0:0:1']],
  ['::/96 IPv4-compatible', ['::7f00:1', '::127.0.0.1', '::8.8.8.8', '::a00:1']],
  [
    '::ffff:0:0/96 IPv4-mapped, of a refused address',
    [
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::ffff:10.0.0.1',
      '::ffff:169.254.169.254',
      '::ffff:198.18.0.1',
      '[::ffff:192.168.0.1]',
    ],
  ],
  ['::ffff:0:0:0/96 IPv4-translated', ['::ffff:0:7f00:1', '::ffff:0:808:808']],
  [
    '64:ff9b::/96 NAT64, of a refused address',
    ['64:ff9b::7f00:1', '64:ff9b::127.0.0.1', '64:ff9b::a9fe:a9fe', '64:ff9b::10.0.0.1', '64:ff9b::c612:1'],
  ],
  ['64:ff9b:1::/48 local-use NAT64', ['64:ff9b:1::', '64:ff9b:1::808:808', '64:ff9b:1:ffff:ffff:ffff:ffff:ffff']],
  ['100::/64 discard-only', ['100::', '100::ffff:ffff:ffff:ffff']],
  [
    '2001::/23 IETF protocol assignments',
    [
      '2001::',
      '2001::1',
      '2001:0:4136:e378:8000:63bf:3fff:fdd2',
      '2001:1::4',
      '2001:2::1',
      '2001:10::1',
      '2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff',
    ],
  ],
  ['2001:db8::/32 documentation', ['2001:db8::', '2001:db8::1', '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff']],
  [
    '2002::/16 6to4',
    ['2002::', '2002:7f00:1::', '2002:a00:1::1', '2002:808:808::1', '2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
  ],
  ['3fff::/20 documentation', ['3fff::', '3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff']],
  ['5f00::/16 SRv6 SIDs', ['5f00::1']],
  ['fc00::/7 unique local', ['fc00::', 'fd00::1', 'fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff']],
  ['fe80::/10 link-local', ['fe80::', 'fe80::1', 'fe80::1%eth0', 'febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff']],
  ['fec0::/10 deprecated site-local', ['fec0::1']],
  ['ff00::/8 multicast', ['ff02::1', 'ff0e::1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff']],
  ['outside 2000::/3, unassigned', ['1::1', '4000::1', 'e000::1', '1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff']],
];

/** Global unicast: next to the refused blocks, and the globally reachable exceptions inside them. */
const ALLOWED = [
  '1.1.1.1',
  '8.8.8.8',
  '9.255.255.255',
  '11.0.0.0',
  '100.63.255.255',
  '100.128.0.0',
  '126.255.255.255',
  '128.0.0.0',
  '169.253.255.255',
  '172.15.255.255',
  '172.32.0.0',
  '192.0.0.9',
  '192.0.0.10',
  '192.0.1.0',
  '192.31.196.1',
  '192.52.193.1',
  '192.88.98.255',
  '192.167.255.255',
  '192.169.0.0',
  '192.175.48.1',
  '198.17.255.255',
  '198.20.0.0',
  '203.0.112.255',
  '223.255.255.255',
  '93.184.215.14',
  '2000::1',
  '2001:200::1',
  '2001:1::1',
  '2001:1::2',
  '2001:1::3',
  '2001:3::1',
  '2001:4:112::1',
  '2001:20::1',
  '2001:30::1',
  '2001:4860:4860::8888',
  '[2606:4700:4700::1111]',
  '2620:4f:8000::1',
  '2001:db7:ffff:ffff:ffff:ffff:ffff:ffff',
  '2001:db9::',
  '2003::1',
  '3ffe:ffff::1',
  '3fff:1000::',
  '::ffff:8.8.8.8',
  '::ffff:808:808',
  '::ffff:192.0.0.9',
  '64:ff9b::8.8.8.8',
  '64:ff9b::808:808',
];

/** A resolver that answers from a table and never asks DNS; it records what it was asked. */
function resolver(table: Record<string, string[]>): Lookup & { asked: string[] } {
  const asked: string[] = [];
  const fn = ((hostname, _options, callback) => {
    asked.push(hostname);
    const found = table[hostname];
    if (!found) {
      callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
      return;
    }
    callback(
      null,
      found.map((address): LookupAddress => ({ address, family: address.includes(':') ? 6 : 4 })),
    );
  }) as Lookup & { asked: string[] };
  fn.asked = asked;
  return fn;
}

describe('REFUSE_PRIVATE_TARGETS address checks', () => {
  for (const [block, addresses] of REFUSED) {
    it(`refuses ${block}`, () => {
      for (const address of addresses) {
        expect(isGlobalUnicast(address), address).to.equal(false);
        expect(isPrivateAddress(address), address).to.equal(true);
      }
    });
  }

  it('allows global unicast addresses, the registries’ globally reachable exceptions, and their mapped and NAT64 forms', () => {
    for (const address of ALLOWED) {
      expect(isGlobalUnicast(address), address).to.equal(true);
      expect(isPrivateAddress(address), address).to.equal(false);
    }
  });

  it('takes a name or anything else that is not an IP literal as not an address (it is resolved, then checked)', () => {
    for (const text of ['example.com', 'localhost', '', '127.1', '0x7f000001', '::ffff:999.0.0.1', '1.2.3.4.5']) {
      expect(isGlobalUnicast(text), text).to.equal(false);
      expect(isPrivateAddress(text), text).to.equal(false);
    }
  });

  describe('privateAddressOf, with a resolver that never asks DNS', () => {
    it('answers the first refused address of a name, or nothing when all are global', async () => {
      const resolve = resolver({
        'nat64.test': ['64:ff9b::a9fe:a9fe'],
        'mixed.test': ['93.184.215.14', '198.18.0.7'],
        'public.test': ['93.184.215.14', '2001:4860:4860::8888', '64:ff9b::808:808'],
      });
      expect(await privateAddressOf('nat64.test', resolve)).to.equal('64:ff9b::a9fe:a9fe');
      expect(await privateAddressOf('mixed.test', resolve)).to.equal('198.18.0.7');
      expect(await privateAddressOf('public.test', resolve)).to.equal(undefined);
      // A name that does not resolve is left to fail at delivery (and checked again there).
      expect(await privateAddressOf('nowhere.test', resolve)).to.equal(undefined);
      expect(resolve.asked).to.deep.equal(['nat64.test', 'mixed.test', 'public.test', 'nowhere.test']);
    });

    it('judges an IP literal without resolving it', async () => {
      const resolve = resolver({});
      expect(await privateAddressOf('[2002:7f00:1::]', resolve)).to.equal('2002:7f00:1::');
      expect(await privateAddressOf('192.0.0.170', resolve)).to.equal('192.0.0.170');
      expect(await privateAddressOf('8.8.8.8', resolve)).to.equal(undefined);
      expect(resolve.asked).to.deep.equal([]);
    });
  });

  describe('the connect-time lookup, with a resolver that never asks DNS (nothing is dialled)', () => {
    const call = (
      lookup: Lookup,
      host: string,
      all: boolean,
    ): Promise<{ err: NodeJS.ErrnoException | null; address: string | LookupAddress[]; family?: number }> =>
      new Promise((done) => lookup(host, { all }, (err, address, family) => done({ err, address, family })));

    it('fails with PrivateTargetError naming the host and the refused address, when any address is refused', async () => {
      const lookup = publicOnlyLookup(
        resolver({
          'rebind.test': ['93.184.215.14', '::ffff:10.0.0.1'],
          'nat64.test': ['64:ff9b::7f00:1'],
          'sixtofour.test': ['2002:a9fe:a9fe::1'],
          'bench.test': ['198.19.1.1'],
        }),
      );
      for (const [host, address] of [
        ['rebind.test', '::ffff:10.0.0.1'],
        ['nat64.test', '64:ff9b::7f00:1'],
        ['sixtofour.test', '2002:a9fe:a9fe::1'],
        ['bench.test', '198.19.1.1'],
      ] as const) {
        for (const all of [false, true]) {
          const { err } = await call(lookup, host, all);
          expect(err, host).to.be.instanceOf(PrivateTargetError);
          expect(err).to.include({ code: 'PO_PRIVATE_TARGET', host, address });
          expect(err!.message).to.equal(
            `target resolves to a private address (${host} -> ${address}); REFUSE_PRIVATE_TARGETS is on`,
          );
        }
      }
    });

    it('answers as the resolver did when every address is global, and passes resolver errors on', async () => {
      const lookup = publicOnlyLookup(resolver({ 'public.test': ['93.184.215.14', '2001:4860:4860::8888'] }));
      expect(await call(lookup, 'public.test', false)).to.deep.equal({
        err: null,
        address: '93.184.215.14',
        family: 4,
      });
      const all = await call(lookup, 'public.test', true);
      expect(all.err).to.equal(null);
      expect(all.address).to.deep.equal([
        { address: '93.184.215.14', family: 4 },
        { address: '2001:4860:4860::8888', family: 6 },
      ]);
      const missing = await call(lookup, 'nowhere.test', false);
      expect(missing.err).to.include({ code: 'ENOTFOUND' });
    });
  });
});
