import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { lookup as dnsLookup } from 'node:dns/promises';
import { guardedLookup, isPrivateAddress } from '../lib/private-address';

/** Where webhooks may go: the operator's settings (WEBHOOK_*). */
export interface WebhookTargetRules {
  /** Origins allowed to be on loopback and private addresses (none by default). */
  privateOrigins: readonly string[];
}

/**
 * Why an endpoint URL is refused, or null when it may be used: http(s) only, no credentials in the
 * URL, and a host that is not (and does not resolve to) a loopback, private, link-local or
 * reserved address unless the operator allowed its origin. The check at send time is the one that
 * counts (the address connected to is checked, so DNS rebinding gains nothing); this one gives the
 * owner a clear 400 when they register it.
 */
export async function refuseEndpointUrl(raw: string, rules: WebhookTargetRules): Promise<string | null> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'not a URL';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'only http and https URLs are allowed';
  if (url.username || url.password) return 'credentials in the URL are not allowed';
  if (rules.privateOrigins.includes(url.origin)) return null;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  // The refusal names the setting that allows it, so an operator with a receiver on their network knows what to set.
  const allow = `; an operator allows it by adding ${url.origin} to WEBHOOK_PRIVATE_ORIGINS`;
  if (isIP(host)) return isPrivateAddress(host) ? `${url.origin} is a private address${allow}` : null;
  try {
    const addresses = await dnsLookup(host, { all: true });
    if (addresses.some((entry) => isPrivateAddress(entry.address))) return `${url.hostname} resolves to a private address${allow}`;
  } catch {
    return `${url.hostname} does not resolve`;
  }
  return null;
}

/** How one POST ended: the receiver's status code, or no answer and why. */
export type SendResult = { status: number } | { status: null; error: string };

/**
 * POSTs `body` to `url` with `headers`: redirects are not followed, the address connected to must
 * not be private (unless the origin is allowed), and the attempt ends after `timeoutMs` whatever
 * the receiver does. The response body is read and dropped (at most `maxResponseBytes`).
 */
export function sendWebhook(
  url: string,
  headers: Record<string, string>,
  body: string,
  options: WebhookTargetRules & { timeoutMs: number; maxResponseBytes?: number },
): Promise<SendResult> {
  const target = new URL(url);
  const mayBePrivate = options.privateOrigins.includes(target.origin);
  const host = target.hostname.replace(/^\[|\]$/g, '');
  if (!mayBePrivate && isIP(host) && isPrivateAddress(host)) return Promise.resolve({ status: null, error: 'private address' });
  const deadline = AbortSignal.timeout(options.timeoutMs);
  const client = target.protocol === 'https:' ? https : http;
  const limit = options.maxResponseBytes ?? 64 * 1024;
  return new Promise((resolve) => {
    let settled = false;
    const done = (result: SendResult) => {
      if (settled) return;
      settled = true;
      resolve(result);
    };
    const request = client.request(
      target,
      {
        method: 'POST',
        signal: deadline,
        lookup: mayBePrivate ? undefined : guardedLookup,
        headers: { 'content-type': 'application/json', 'user-agent': 'Switchboard-webhooks', ...headers },
      },
      (response) => {
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > limit) response.destroy();
        });
        const finish = () => done({ status: response.statusCode ?? 0 });
        response.on('end', finish);
        response.on('close', finish);
        response.on('error', finish);
      },
    );
    request.on('error', (error) => {
      if (deadline.aborted) return done({ status: null, error: `no answer within ${options.timeoutMs} ms` });
      const code = (error as NodeJS.ErrnoException).code;
      done({
        status: null,
        error: error.name === 'PrivateAddressError' ? 'private address' : `could not connect${code ? ` (${code})` : ''}`,
      });
    });
    request.end(body);
  });
}
