import { lookup as dnsLookup, promises as dns, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { z } from 'zod';
import { outboundRoute } from '../lib/outbound-proxy';
import type { HttpTool } from './definition';

/** What an agentflow's HTTP tools may do; the operator's settings (FLOW_HTTP_*). */
export interface HttpToolLimits {
  /** A call that has not answered in full by then fails. */
  timeoutMs: number;
  /** The response body read at most; the rest is cut off and the result says so. */
  maxResponseBytes: number;
  /** Origins the operator lets reach loopback and private addresses (none by default). */
  privateOrigins: readonly string[];
}

/** The arguments the model sends to an HTTP tool: query parameters and, for POST, a body. */
export const httpToolArgsSchema = z.strictObject({
  query: z.record(z.string().max(100), z.string().max(2_000)).optional().describe('Query parameters to add to the URL'),
  body: z.string().max(20_000).optional().describe('The request body (POST only), usually JSON text'),
});

/** An HTTP tool call that did not happen or did not finish; its message is what the model reads. */
export class HttpToolError extends Error {
  constructor(
    readonly code: 'origin_not_allowed' | 'private_address' | 'timeout' | 'failed' | 'invalid_input',
    message: string,
  ) {
    super(message);
    this.name = 'HttpToolError';
  }
}

/**
 * Addresses an HTTP tool never reaches unless its origin is one the operator allowed: loopback,
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

/** Whether `address` (an IP literal) is in a range HTTP tools keep away from. */
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

/** The eight 16-bit groups of an IPv6 literal (a trailing dotted IPv4 counts as two), or undefined. */
function ipv6Groups(address: string): number[] | undefined {
  let text = address.replace(/%.*$/, '');
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number);
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail === undefined ? [] : tail ? tail.split(':') : [];
  const zeros = tail === undefined ? 0 : 8 - left.length - right.length;
  const groups = [...left, ...Array<string>(Math.max(zeros, 0)).fill('0'), ...right].map((group) => parseInt(group, 16));
  return groups.length === 8 && groups.every((group) => group >= 0 && group <= 0xffff) ? groups : undefined;
}

/**
 * A DNS lookup that refuses private answers: the address checked is the address connected to, so a
 * name that resolves differently on a second lookup (DNS rebinding) gains nothing.
 */
const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
    if (error) return callback(error, '', 0);
    const usable = addresses.filter((entry) => !isPrivateAddress(entry.address));
    if (!usable.length || usable.length !== addresses.length)
      return callback(new HttpToolError('private_address', `${hostname} resolves to a private address`), '', 0);
    if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, usable);
    callback(null, usable[0].address, usable[0].family);
  });
};

/** Refuses a host name that resolves to a private address (any of its addresses). */
async function refusePrivateName(host: string): Promise<void> {
  let addresses: LookupAddress[];
  try {
    addresses = await dns.lookup(host, { all: true });
  } catch {
    throw new HttpToolError('failed', `${host} could not be resolved`);
  }
  if (!addresses.length || addresses.some((entry) => isPrivateAddress(entry.address)))
    throw new HttpToolError('private_address', `${host} resolves to a private address`);
}

/**
 * Calls `tool` with the model's arguments: the final URL must stay on one of `allowedOrigins`, its
 * host must not be (or resolve to) a private address unless the operator allowed that origin,
 * redirects are not followed, the call ends after `timeoutMs` and at most `maxResponseBytes` of the
 * body are read. Returns readable text for the model; throws {@link HttpToolError}. `headers` are
 * sent as well (a credential's). Through an outbound proxy (HTTPS_PROXY / HTTP_PROXY, unless
 * NO_PROXY names the host) the proxy connects, so the host is resolved and checked here first.
 */
export async function callHttpTool(
  tool: HttpTool,
  rawArgs: unknown,
  allowedOrigins: readonly string[],
  limits: HttpToolLimits,
  signal?: AbortSignal,
  headers: Record<string, string> = {},
): Promise<{ text: string; status: number; truncated: boolean }> {
  const parsed = httpToolArgsSchema.safeParse(rawArgs ?? {});
  if (!parsed.success) throw new HttpToolError('invalid_input', `invalid arguments for ${tool.name}: ${parsed.error.issues[0].message}`);
  const args = parsed.data;
  if (args.body !== undefined && tool.method !== 'POST')
    throw new HttpToolError('invalid_input', `${tool.name} is a GET: it takes no body`);
  const url = new URL(tool.url);
  for (const [key, value] of Object.entries(args.query ?? {})) url.searchParams.append(key, value);
  if (!allowedOrigins.includes(url.origin))
    throw new HttpToolError('origin_not_allowed', `${url.origin} is not an allowed origin of this flow`);
  const mayBePrivate = limits.privateOrigins.includes(url.origin);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  // A literal address is connected to without a lookup, so it is checked here.
  if (!mayBePrivate && isIP(host) && isPrivateAddress(host))
    throw new HttpToolError('private_address', `${url.origin} is a private address; HTTP tools may not reach it`);

  const route = outboundRoute();
  const proxied = route.proxyFor(url) !== undefined;
  if (proxied && !mayBePrivate && !isIP(host)) await refusePrivateName(host);

  const deadline = AbortSignal.timeout(limits.timeoutMs);
  const stop = signal ? AbortSignal.any([signal, deadline]) : deadline;
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const fail = (error: unknown) => {
      if (error instanceof HttpToolError) return reject(error);
      if (deadline.aborted) return reject(new HttpToolError('timeout', `${tool.name} did not answer within ${limits.timeoutMs} ms`));
      if (signal?.aborted) return reject(signal.reason instanceof Error ? signal.reason : new Error('cancelled'));
      reject(new HttpToolError('failed', `${tool.name} could not be reached`));
    };
    const request = client.request(
      url,
      {
        method: tool.method,
        signal: stop,
        // Through a proxy, the proxy resolves the host (checked above); directly, every address connected to is checked.
        ...(proxied ? { agent: route.agentFor(url) } : { lookup: mayBePrivate ? undefined : guardedLookup }),
        headers: {
          ...headers,
          accept: 'application/json, text/plain;q=0.9, */*;q=0.5',
          'user-agent': 'Switchboard-agentflow',
          ...(args.body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        let truncated = false;
        const finish = () => {
          const body = Buffer.concat(chunks)
            .toString('utf8')
            .replace(/\uFFFD$/, '');
          resolve({
            text: `HTTP ${response.statusCode ?? 0}\n${body}${truncated ? '\n[response truncated]' : ''}`,
            status: response.statusCode ?? 0,
            truncated,
          });
        };
        response.on('data', (chunk: Buffer) => {
          if (truncated) return;
          if (size + chunk.length > limits.maxResponseBytes) {
            chunks.push(chunk.subarray(0, limits.maxResponseBytes - size));
            truncated = true;
            response.destroy();
            finish();
            return;
          }
          chunks.push(chunk);
          size += chunk.length;
        });
        response.on('end', () => !truncated && finish());
        response.on('error', (error) => !truncated && fail(error));
      },
    );
    request.on('error', fail);
    request.end(args.body);
  });
}
