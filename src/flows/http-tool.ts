import { promises as dns, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { z } from 'zod';
import { outboundRoute } from '../lib/outbound-proxy';
import { guardedLookup, isPrivateAddress, PrivateAddressError } from '../lib/private-address';
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

/** Whether `address` (an IP literal) is in a range HTTP tools keep away from. */
export { isPrivateAddress };

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
      if (error instanceof PrivateAddressError) return reject(new HttpToolError('private_address', error.message));
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
