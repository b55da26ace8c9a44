import { AsyncLocalStorage } from 'node:async_hooks';
import { toStorableText } from './text-safety';

/** Where a request came from, as the audit trail records it. */
export interface RequestOrigin {
  /** The client address (`req.ip`: the socket's, or the client's behind TRUST_PROXY's proxies). */
  ip: string | null;
  /** The `User-Agent` header, cut to {@link MAX_USER_AGENT} characters. */
  userAgent: string | null;
}

export const MAX_USER_AGENT = 300;

const storage = new AsyncLocalStorage<RequestOrigin>();

/**
 * Runs `fn` as part of the request from `origin`: every audit row written while it (and what it
 * awaits) runs carries that origin, without each service passing the request along.
 */
export function withRequestOrigin<T>(origin: RequestOrigin, fn: () => T): T {
  return storage.run(origin, fn);
}

/** The origin of the request being served, or null outside one (a worker, the CLI, a socket). */
export function currentRequestOrigin(): RequestOrigin | null {
  return storage.getStore() ?? null;
}

/** A header value as stored: text without control characters or lone surrogates, bounded. */
export function storableHeader(value: string | undefined): string | null {
  if (!value) return null;
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is dropped
  const cleaned = toStorableText(value.replace(/[\u0000-\u001f\u007f]/g, '')).slice(0, MAX_USER_AGENT);
  return cleaned || null;
}

/**
 * A value kept for the rest of the request being served, so the steps of one request read a fact
 * once (the user's plan: the session check reads it, the feature gates and the budget door use
 * it). Outside a request (a worker, a socket, the CLI) nothing is kept: `get` answers undefined.
 */
export function perRequest<V>(): { get(): V | undefined; set(value: V): void } {
  // Keyed by the request's own store object: gone with the request, never shared between two.
  const values = new WeakMap<RequestOrigin, V>();
  return {
    get: () => {
      const store = storage.getStore();
      return store && values.get(store);
    },
    set: (value) => {
      const store = storage.getStore();
      if (store) values.set(store, value);
    },
  };
}
