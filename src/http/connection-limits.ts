import type http from 'node:http';
import { BlockList, isIP, type Socket } from 'node:net';
import type { Logger } from '../lib/logger';
import { clientKey } from '../lib/ip-address';

/** The names Express's `trust proxy` accepts for address ranges, as subnets. */
const NAMED_RANGES: Record<string, Array<[string, number, 'ipv4' | 'ipv6']>> = {
  loopback: [
    ['127.0.0.0', 8, 'ipv4'],
    ['::1', 128, 'ipv6'],
  ],
  linklocal: [
    ['169.254.0.0', 16, 'ipv4'],
    ['fe80::', 10, 'ipv6'],
  ],
  uniquelocal: [
    ['10.0.0.0', 8, 'ipv4'],
    ['172.16.0.0', 12, 'ipv4'],
    ['192.168.0.0', 16, 'ipv4'],
    ['fc00::', 7, 'ipv6'],
  ],
};

/**
 * Whether a TCP peer is one of the proxies `TRUST_PROXY` names, read as Express reads it: `true`
 * trusts every peer, a hop count of 1 or more trusts the nearest one (the peer), a comma list
 * trusts the addresses, CIDR ranges and named ranges (`loopback`, `linklocal`, `uniquelocal`) in
 * it. An IPv4-mapped peer (`::ffff:a.b.c.d`) is judged by its IPv4 address.
 */
export function trustedPeer(trustProxy: boolean | number | string): (address: string) => boolean {
  if (trustProxy === true) return () => true;
  if (trustProxy === false) return () => false;
  if (typeof trustProxy === 'number') return () => trustProxy > 0;
  const list = new BlockList();
  for (const entry of trustProxy
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)) {
    const named = NAMED_RANGES[entry];
    if (named) {
      for (const [net, bits, family] of named) list.addSubnet(net, bits, family);
      continue;
    }
    const [address, bits] = entry.split('/');
    const family = isIP(address);
    if (!family) continue;
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) list.addAddress(address, type);
    else if (/^\d+$/.test(bits)) list.addSubnet(address, Number(bits), type);
  }
  return (address) => {
    const family = isIP(address);
    return family !== 0 && list.check(address, family === 4 ? 'ipv4' : 'ipv6');
  };
}

const REFUSED_BODY = '{"error":{"code":"too_many_connections","message":"Too many open connections from this address"}}';
const REFUSED = Buffer.from(
  `HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nConnection: close\r\nRetry-After: 5\r\n` +
    `Content-Length: ${Buffer.byteLength(REFUSED_BODY)}\r\n\r\n${REFUSED_BODY}`,
);
/** A refusal is logged at most once per this long (a flood must not flood the log). */
const WARN_EVERY_MS = 60_000;

/**
 * Caps the connections one client address holds open at once: past `maxPerIp`, a new connection
 * is answered 429 `too_many_connections` and closed at once, before the HTTP server reads any of
 * its bytes (the listener runs first). Peers that `trusted` names (the proxies in front) are not
 * counted: the proxy caps its own clients.
 */
export function limitConnectionsPerIp(
  server: http.Server,
  options: { maxPerIp: number; trusted: (address: string) => boolean; logger?: Logger },
): void {
  const open = new Map<string, number>();
  let warnedAt = -Infinity;
  server.prependListener('connection', (socket: Socket) => {
    const remote = socket.remoteAddress;
    if (!remote || options.trusted(remote)) return;
    const address = clientKey(remote);
    const count = open.get(address) ?? 0;
    if (count >= options.maxPerIp) {
      if (Date.now() - warnedAt > WARN_EVERY_MS) {
        warnedAt = Date.now();
        options.logger?.warn({ limit: options.maxPerIp }, 'connections refused: too many open from one address');
      }
      socket.on('error', () => undefined);
      // The answer goes out with the socket's first write (a fresh socket writes at once); nothing
      // of the request is read.
      socket.write(REFUSED);
      socket.destroy();
      return;
    }
    open.set(address, count + 1);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left > 0) open.set(address, left);
      else open.delete(address);
    });
  });
}
