import { SwitchboardApiError } from './errors';

/** The tokens a client holds; `onTokens` hears every change (login, refresh). */
export interface ClientTokens {
  accessToken?: string;
  refreshToken?: string;
}

export interface TransportOptions extends ClientTokens {
  /** Server root (`http://127.0.0.1:3000`) or the API base (`…/api/v1`). */
  baseUrl: string;
  /** A fetch to use instead of the global one (tests, proxies, polyfills). */
  fetch?: typeof fetch;
  /** Called whenever the tokens change, e.g. to persist the rotated refresh token. */
  onTokens?: (tokens: ClientTokens) => void;
  /**
   * An API key (`sb_live_…`, from `apiKeys.create`): a program authenticates with it instead of
   * signing in. Sent as `Authorization: Bearer` whenever the client holds no access token.
   */
  apiKey?: string;
  /**
   * How a new pair is obtained when the access token expires, instead of `POST /auth/refresh` with
   * the refresh token the client holds: e.g. a browser app whose refresh token lives in an HttpOnly
   * cookie shared by its tabs, which serializes the exchange across them. Resolves with the new
   * tokens, or undefined when the session is over.
   */
  exchange?: () => Promise<ClientTokens | undefined>;
}

export interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Send the access token and refresh it once on 401 (default true). */
  auth?: boolean;
}

/**
 * HTTP over fetch with the API's conventions: JSON bodies (a `FormData` body goes as multipart), Bearer tokens, the error shape, and one
 * refresh-and-retry when the access token has expired. Shared by the JSON methods and SSE streams.
 */
export class Transport {
  readonly apiBase: string;
  private tokens: ClientTokens;
  private refreshing?: Promise<boolean>;

  constructor(private readonly options: TransportOptions) {
    const base = options.baseUrl.replace(/\/+$/, '');
    this.apiBase = /\/api\/v\d+$/.test(base) ? base : `${base}/api/v1`;
    this.tokens = { accessToken: options.accessToken, refreshToken: options.refreshToken };
  }

  /** Server root, for Socket.IO (`/canvas`, `/device` live beside `/api/v1`). */
  get serverUrl(): string {
    return this.apiBase.replace(/\/api\/v\d+$/, '');
  }

  getTokens(): ClientTokens {
    return { ...this.tokens };
  }

  setTokens(tokens: ClientTokens): void {
    this.tokens = { ...this.tokens, ...tokens };
    this.options.onTokens?.(this.getTokens());
  }

  /** A JSON request; resolves with the parsed body (undefined for 204), throws `SwitchboardApiError`. */
  async json<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.send(method, path, { ...options, headers: { accept: 'application/json', ...options.headers } });
    const text = await response.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** A request whose successful response is returned unread (SSE). Non-2xx answers throw. */
  async send(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const useAuth = options.auth !== false;
    const sentToken = useAuth ? this.tokens.accessToken : undefined;
    let response = await this.fetchOnce(method, path, options, sentToken ?? (useAuth ? this.options.apiKey : undefined));
    // A refused API key is final: only an access token can be refreshed.
    if (response.status === 401 && sentToken && (await this.refreshAfter(sentToken))) {
      // eslint-disable-next-line no-restricted-syntax -- the refused body is dropped before the retry: a failed cancel changes nothing
      await response.body?.cancel().catch(() => undefined);
      response = await this.fetchOnce(method, path, options, this.tokens.accessToken);
    }
    if (!response.ok) throw SwitchboardApiError.fromResponse(response.status, await response.text(), response.headers);
    return response;
  }

  /**
   * An access token valid for at least `minValidityMs` more (default 60 s): the current one, or a
   * new one from `POST /auth/refresh` when it expires sooner (the API key when the client has only that). For sockets: `token: () =>
   * sb.freshAccessToken()` keeps them authenticated across expiry (they send `auth:refresh`).
   */
  async freshAccessToken(minValidityMs = 60_000): Promise<string | undefined> {
    const current = this.tokens.accessToken;
    // A client on an API key hands sockets the key: it has no expiry to refresh ahead of.
    if (!current && this.options.apiKey) return this.options.apiKey;
    const expiresAt = current ? tokenExpiry(current) : undefined;
    if (current && (expiresAt === undefined || expiresAt - Date.now() > minValidityMs)) return current;
    if (current && (await this.refreshAfter(current))) return this.tokens.accessToken;
    return current;
  }

  /**
   * Exchanges the refresh token for a new pair now, joining an exchange already under way (the
   * refresh token rotates: two exchanges with the same one would end the session). Resolves false
   * when there is nothing to refresh with or the server refused it.
   */
  refresh(): Promise<boolean> {
    return this.refreshAfter(this.tokens.accessToken ?? '');
  }

  /**
   * Exchanges the refresh token for a new pair, once even when several requests failed together.
   * Resolves false when there is nothing to refresh with or the server refused it.
   */
  private refreshAfter(staleToken: string): Promise<boolean> {
    // Another request refreshed since this one was sent: just retry with the new token.
    if (this.tokens.accessToken && this.tokens.accessToken !== staleToken) return Promise.resolve(true);
    const refreshToken = this.tokens.refreshToken;
    const { exchange } = this.options;
    if (!refreshToken && !exchange) return Promise.resolve(false);
    this.refreshing ??= (async () => {
      try {
        const pair = exchange
          ? await exchange()
          : await this.json<{ accessToken: string; refreshToken: string }>('POST', '/auth/refresh', {
              body: { refreshToken },
              auth: false,
            });
        if (!pair?.accessToken) return false;
        this.setTokens({ accessToken: pair.accessToken, refreshToken: pair.refreshToken });
        return true;
      } catch {
        return false;
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  private async fetchOnce(method: string, path: string, options: RequestOptions, token: string | undefined): Promise<Response> {
    const headers: Record<string, string> = { ...options.headers };
    if (token) headers.authorization = `Bearer ${token}`;
    // A form (a file upload) goes as multipart, its boundary set by fetch; anything else as JSON.
    const form = typeof FormData !== 'undefined' && options.body instanceof FormData;
    if (options.body !== undefined && !form) headers['content-type'] = 'application/json';
    const doFetch = this.options.fetch ?? globalThis.fetch;
    try {
      return await doFetch(`${this.apiBase}${path}`, {
        method,
        headers,
        body: options.body === undefined ? undefined : form ? (options.body as FormData) : JSON.stringify(options.body),
        signal: options.signal,
      });
    } catch (error) {
      if (options.signal?.aborted) throw error;
      throw new SwitchboardApiError(0, 'network_error', error instanceof Error ? error.message : String(error));
    }
  }
}

/** `encodeURIComponent` for path segments. */
export const seg = (value: string) => encodeURIComponent(value);

/** The `exp` of a JWT in ms (read, not verified: only to know when to refresh), or undefined. */
export function tokenExpiry(token: string): number | undefined {
  try {
    const part = token.split('.')[1] ?? '';
    const base64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const json = typeof atob === 'function' ? atob(base64) : Buffer.from(base64, 'base64').toString('binary');
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === 'number' ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
