import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { guardedLookup, isPrivateAddress, PrivateAddressError } from '../lib/private-address';

/** What an outbound MCP request may do: the operator's limits of outbound tool calls. */
export interface OutboundLimits {
  /** Bytes of one response read at most; past that the response fails with {@link ResponseTooLargeError}. */
  maxResponseBytes: number;
  /** Origins the operator lets reach loopback and private addresses (none by default). */
  privateOrigins: readonly string[];
}

/** A response longer than the operator allows: it was cut off and fails. */
export class ResponseTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`the server answered more than ${limit} bytes`);
    this.name = 'ResponseTooLargeError';
  }
}

/** Whether `url`'s host is a private address literal that `limits` does not allow. */
export function isRefusedLiteral(url: URL, limits: Pick<OutboundLimits, 'privateOrigins'>): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return !limits.privateOrigins.includes(url.origin) && isIP(host) !== 0 && isPrivateAddress(host);
}

/**
 * A `fetch` for the MCP client transport over node:http(s): a host that is or resolves to a private
 * address is refused (the address checked is the one connected to, so DNS rebinding gains nothing)
 * unless the operator allowed its origin, redirects are not followed, and a response body longer than
 * `maxResponseBytes` is cut off with an error, whatever it claims in its headers, and told to
 * `onTooLarge` (a reader of an event stream may not pass the error on).
 */
export function guardedFetch(limits: OutboundLimits, onTooLarge?: (error: ResponseTooLargeError) => void): FetchLike {
  return (input, init = {}) => {
    const url = new URL(String(input));
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return Promise.reject(new TypeError(`unsupported protocol ${url.protocol}`));
    if (isRefusedLiteral(url, limits))
      return Promise.reject(new PrivateAddressError(`${url.origin} is a private address; tools may not reach it`));
    const mayBePrivate = limits.privateOrigins.includes(url.origin);
    const client = url.protocol === 'https:' ? https : http;
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, key) => {
      headers[key] = value;
    });
    return new Promise<Response>((resolve, reject) => {
      const request = client.request(
        url,
        { method: init.method ?? 'GET', headers, signal: init.signal ?? undefined, lookup: mayBePrivate ? undefined : guardedLookup },
        (response) => {
          let size = 0;
          const body = new ReadableStream<Uint8Array>({
            start(controller) {
              response.on('data', (chunk: Buffer) => {
                size += chunk.length;
                if (size > limits.maxResponseBytes) {
                  response.destroy();
                  const error = new ResponseTooLargeError(limits.maxResponseBytes);
                  controller.error(error);
                  onTooLarge?.(error);
                  return;
                }
                controller.enqueue(new Uint8Array(chunk));
              });
              response.on('end', () => controller.close());
              response.on('error', (error) => controller.error(error));
            },
            cancel() {
              response.destroy();
            },
          });
          const answered = new Headers();
          for (const [name, value] of Object.entries(response.headers))
            for (const one of [value ?? []].flat()) answered.append(name, String(one));
          const status = response.statusCode ?? 502;
          resolve(new Response(status === 204 || status === 304 ? null : body, { status, headers: answered }));
        },
      );
      request.on('error', reject);
      // A JSON-RPC message or a registration (a string), or an OAuth token request's form (URLSearchParams).
      request.end(typeof init.body === 'string' || init.body instanceof URLSearchParams ? String(init.body) : undefined);
    });
  };
}
