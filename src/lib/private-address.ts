import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { ipv6Groups } from './ip-address';

/** A host that is, or resolves to, a private address an outbound call may not reach. */
export class PrivateAddressError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PrivateAddressError';
  }
}

/**
 * Addresses outbound calls to user-given URLs (HTTP tools, MCP servers, PSA, webhooks) never reach unless the
 * operator allowed their origin: loopback,
 * private, link-local, shared, multicast and reserved ranges (IPv4, IPv6, and IPv4 inside IPv6).
 * The IPv6 ranges that carry an IPv4 address (or lead to one through a translator or tunnel) are
 * refused whole: IPv4-compatible `::/96`, the NAT64 prefixes `64:ff9b::/96` and `64:ff9b:1::/48`,
 * 6to4 `2002::/16`, Teredo `2001::/32` and the discard prefix `100::/64`. An IPv4-mapped
 * (`::ffff:0:0/96`) or IPv4-translated (`::ffff:0:0:0/96`) address is judged by its IPv4 address.
 */
const PRIVATE = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  PRIVATE.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 96],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001::', 32],
  ['2001:db8::', 32],
  ['2002::', 16],
] as const)
  PRIVATE.addSubnet(net, bits, 'ipv6');

/** Whether `address` (an IP literal) is in a range outbound calls keep away from; anything not an IP counts as private. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return PRIVATE.check(address, 'ipv4');
  if (family !== 6) return true;
  const embedded = embeddedIpv4(address);
  if (embedded) return PRIVATE.check(embedded, 'ipv4');
  return PRIVATE.check(address, 'ipv6');
}

/**
 * The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`) or IPv4-translated
 * (`::ffff:0:a.b.c.d`) IPv6 address, in any spelling (dotted or hex, zeros compressed or not);
 * undefined for any other address.
 */
function embeddedIpv4(address: string): string | undefined {
  const groups = ipv6Groups(address);
  if (!groups || groups.slice(0, 4).some(Boolean)) return undefined;
  const [, , , , fifth, sixth, high, low] = groups;
  const mapped = fifth === 0 && sixth === 0xffff;
  const translated = fifth === 0xffff && sixth === 0;
  if (!mapped && !translated) return undefined;
  return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');
}

/**
 * A DNS lookup that refuses private answers with `refuse(hostname)`: the address checked is the
 * address connected to, so a name that resolves differently on a second lookup (DNS rebinding)
 * gains nothing.
 */
export function publicOnlyLookup(refuse: (hostname: string) => Error): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
      if (error) return callback(error, '', 0);
      const usable = addresses.filter((entry) => !isPrivateAddress(entry.address));
      if (!usable.length || usable.length !== addresses.length) return callback(refuse(hostname), '', 0);
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, usable);
      callback(null, usable[0].address, usable[0].family);
    });
  };
}

/** `publicOnlyLookup` refusing with a {@link PrivateAddressError}. */
export const guardedLookup = publicOnlyLookup((hostname) => new PrivateAddressError(`${hostname} resolves to a private address`));
