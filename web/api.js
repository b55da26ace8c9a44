// The console's HTTP client: JSON requests with the Bearer token, one silent refresh on 401,
// and the session kept in sessionStorage (this tab only, gone when the tab closes).
import { readSse } from './sse.js';

const SESSION_KEY = 'switchboard.console.session';
const BASE = '/api/v1';

/** An error answer of the API, in its `{error:{code,message,details?}}` shape. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

async function errorFrom(response) {
  let body;
  try {
    body = await response.json();
  } catch {
    body = undefined;
  }
  const error = body?.error ?? {};
  return new ApiError(response.status, error.code ?? 'http_error', error.message ?? `HTTP ${response.status}`, error.details);
}

export class Api {
  constructor() {
    this.session = null;
    this.refreshing = null;
    /** Called with `null` when the session ends (sign-out or a refresh that failed). */
    this.onSessionChange = () => {};
    try {
      this.session = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? 'null');
    } catch {
      this.session = null;
    }
  }

  get user() {
    return this.session?.user ?? null;
  }

  get accessToken() {
    return this.session?.accessToken ?? null;
  }

  setSession(session) {
    this.session = session;
    if (session) sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
    else sessionStorage.removeItem(SESSION_KEY);
    this.onSessionChange(session);
  }

  async signIn(email, password) {
    this.setSession(await this.publicPost('/auth/login', { email, password }));
  }

  async signUp(name, email, password) {
    this.setSession(await this.publicPost('/auth/register', { name, email, password }));
  }

  signOut() {
    this.setSession(null);
  }

  async publicPost(path, body) {
    const response = await fetch(BASE + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (!response.ok) throw await errorFrom(response);
    return response.json();
  }

  /** Trades the refresh token for a new pair; concurrent callers share one attempt (tokens rotate). */
  refresh() {
    if (!this.refreshing) {
      const refreshToken = this.session?.refreshToken;
      this.refreshing = (async () => {
        try {
          if (!refreshToken) throw new ApiError(401, 'unauthorized', 'Signed out');
          this.setSession(await this.publicPost('/auth/refresh', { refreshToken }));
        } catch (error) {
          this.setSession(null);
          throw error;
        } finally {
          this.refreshing = null;
        }
      })();
    }
    return this.refreshing;
  }

  /** fetch() with the access token; on 401 refreshes once and retries. */
  async authorizedFetch(path, init = {}) {
    const send = () => fetch(BASE + path, { ...init, headers: { ...init.headers, authorization: `Bearer ${this.accessToken}` } });
    let response = await send();
    if (response.status === 401 && this.session?.refreshToken) {
      await this.refresh();
      response = await send();
    }
    return response;
  }

  /** A JSON request; resolves to the parsed body (undefined for 204), rejects with ApiError. */
  async request(method, path, body) {
    const init = { method, headers: {} };
    if (body !== undefined) {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const response = await this.authorizedFetch(path, init);
    if (!response.ok) throw await errorFrom(response);
    return response.status === 204 ? undefined : response.json();
  }

  get(path) {
    return this.request('GET', path);
  }

  post(path, body) {
    return this.request('POST', path, body ?? {});
  }

  /**
   * POSTs and reads the answer as Server-Sent Events (EventSource cannot send the Authorization
   * header, so this is fetch() streaming). Calls `onMessage({id, event, data})` per message.
   */
  async stream(path, body, onMessage, signal) {
    const response = await this.authorizedFetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify(body),
      signal,
    });
    if (!response.ok) throw await errorFrom(response);
    await readSse(response.body, onMessage);
    return response;
  }
}
