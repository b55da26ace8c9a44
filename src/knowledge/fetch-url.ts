import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { guardedLookup, isPrivateAddress, PrivateAddressError } from '../lib/private-address';

/** Thrown when a URL may not be fetched or its answer is unusable: the document fails with this message. */
export class UrlRefusedError extends Error {
  override name = 'UrlRefusedError';
}

/** How a URL is fetched: the size cap, the deadline, and origins allowed on private addresses. */
export interface UrlRules {
  maxBytes: number;
  timeoutMs: number;
  privateOrigins: readonly string[];
}

const MAX_REDIRECTS = 3;

/** The reason `raw` may not be fetched (not http(s), credentials, a private address as a literal), or null. */
export function refuseUrl(raw: string, rules: Pick<UrlRules, 'privateOrigins'>): string | null {
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
  if (isIP(host) && isPrivateAddress(host)) return `${url.origin} is a private address`;
  if (host === 'localhost' || host.endsWith('.localhost')) return `${url.origin} is a private address`;
  return null;
}

/**
 * GETs a document: every address connected to must be public (checked at connect, so DNS
 * rebinding gains nothing) unless its origin is allowed, redirects are followed at most three
 * times under the same checks, and the body stops at `maxBytes`.
 */
export async function fetchDocument(raw: string, rules: UrlRules): Promise<{ bytes: Buffer; contentType: string; url: string }> {
  let target = raw;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const refusal = refuseUrl(target, rules);
    if (refusal) throw new UrlRefusedError(refusal);
    const answer = await getOnce(new URL(target), rules);
    if ('location' in answer) {
      target = new URL(answer.location, target).toString();
      continue;
    }
    return { ...answer, url: target };
  }
  throw new UrlRefusedError(`more than ${MAX_REDIRECTS} redirects`);
}

function getOnce(url: URL, rules: UrlRules): Promise<{ bytes: Buffer; contentType: string } | { location: string }> {
  const mayBePrivate = rules.privateOrigins.includes(url.origin);
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const request = client.get(
      url,
      {
        lookup: mayBePrivate ? undefined : guardedLookup,
        timeout: rules.timeoutMs,
        headers: { accept: 'text/html, application/pdf, text/*;q=0.9, */*;q=0.5' },
      },
      (response) => {
        const status = response.statusCode ?? 0;
        if (status >= 300 && status < 400 && response.headers.location) {
          response.resume();
          return resolve({ location: response.headers.location });
        }
        if (status < 200 || status >= 300) {
          response.resume();
          return reject(new UrlRefusedError(`${url.origin} answered HTTP ${status}`));
        }
        const declared = Number(response.headers['content-length']);
        if (declared > rules.maxBytes) {
          response.destroy();
          return reject(new UrlRefusedError(`the document is ${declared} bytes (at most ${rules.maxBytes})`));
        }
        const parts: Buffer[] = [];
        let size = 0;
        response.on('data', (part: Buffer) => {
          size += part.length;
          if (size > rules.maxBytes) {
            response.destroy();
            reject(new UrlRefusedError(`the document is over ${rules.maxBytes} bytes`));
          } else parts.push(part);
        });
        response.on('end', () => resolve({ bytes: Buffer.concat(parts), contentType: String(response.headers['content-type'] ?? '') }));
        response.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(new UrlRefusedError(`no answer within ${rules.timeoutMs} ms`)));
    request.on('error', (error) =>
      reject(
        error instanceof PrivateAddressError
          ? new UrlRefusedError(error.message)
          : error instanceof UrlRefusedError
            ? error
            : new UrlRefusedError(`could not fetch: ${error.message}`),
      ),
    );
  });
}
