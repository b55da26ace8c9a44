// The console's HTTP client is the SDK's transport (@switchboard/client, served built at
// /console/sdk/): JSON with the Bearer token, one refresh on 401 shared by
// concurrent requests, the API's error shape. The session is shared by the browser's tabs:
// the refresh token lives in an HttpOnly cookie no script can read, each tab keeps
// its own access token (sessionStorage: it outlives a reload), a new tab gets one from the cookie,
// and refreshes are taken one tab at a time (the token rotates: two at once would end the session).
// Signing out in one tab signs out every tab.
import { SwitchboardApiError, Transport } from '/console/sdk/switchboard-client.js';
import { readSse } from './sse.js';

/** An error answer of the API (`status`, `code`, `message`, `details`). */
export { SwitchboardApiError as ApiError };

const SESSION_KEY = 'switchboard.console.session';
/** Asks the auth routes to keep the refresh token in the cookie (and read it from there). */
const COOKIE_MODE = { 'x-session-cookie': '1' };
/** One refresh at a time across the browser's tabs (Web Locks). */
const REFRESH_LOCK = 'switchboard.console.refresh';
/** Tabs tell each other about sign-in and sign-out. */
const CHANNEL = 'switchboard.console.session';

/** Runs `exchange` holding the browser-wide refresh lock, where the browser has Web Locks. */
const oneTabAtATime = (exchange) => (navigator.locks ? navigator.locks.request(REFRESH_LOCK, exchange) : exchange());

export class Api {
  constructor() {
    this.session = null;
    /** Called with the new session when one starts (sign-in, sign-up, another tab's), and with `null` when it ends (sign-out or a refresh that failed). */
    this.onSessionChange = () => {};
    try {
      const stored = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? 'null');
      // This tab's user and access token; a refresh token kept here by an earlier console is dropped.
      this.session = stored?.user && stored.accessToken ? { user: stored.user, accessToken: stored.accessToken } : null;
    } catch {
      this.session = null;
    }
    this.transport = new Transport({
      baseUrl: location.origin,
      accessToken: this.session?.accessToken,
      // An expired access token is renewed from the cookie, one tab at a time.
      exchange: () => this.exchange(),
      // A refresh inside the transport gave a new access token: keep it with the session.
      onTokens: (tokens) => {
        if (this.session && tokens.accessToken && tokens.accessToken !== this.session.accessToken)
          this.store({ ...this.session, accessToken: tokens.accessToken });
      },
    });
    this.channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(CHANNEL) : null;
    if (this.channel)
      this.channel.onmessage = ({ data }) => {
        // Signed out in another tab: this one too (the server has ended the session already).
        if (data?.type === 'signed-out' && this.session) this.setSession(null);
        // Signed in in another tab: a tab on the sign-in form takes the session from the cookie.
        if (data?.type === 'signed-in' && !this.session) void this.resume();
      };
  }

  /**
   * A new access token from the session cookie, holding the browser-wide lock (the cookie's token
   * rotates with each exchange). Resolves with `{accessToken}`, or undefined when there is no
   * session (no cookie, or the server refused it: signed out, revoked, reused).
   */
  exchange() {
    return oneTabAtATime(async () => {
      try {
        const answer = await this.publicPost('/auth/refresh', {}, COOKIE_MODE);
        if (this.session) this.store({ user: answer.user, accessToken: answer.accessToken });
        return { accessToken: answer.accessToken, user: answer.user };
      } catch (error) {
        if (error instanceof SwitchboardApiError && error.status === 401) return undefined;
        throw error;
      }
    });
  }

  /**
   * A tab without a session of its own (a new tab, a tab on the sign-in form) takes the browser's:
   * resolves true when the cookie gave it one.
   */
  async resume() {
    // The server's hint that the browser holds a session cookie (the cookie itself is unreadable).
    if (!document.cookie.split(';').some((part) => part.trim() === 'sb_session=1')) return false;
    let pair;
    try {
      pair = await this.exchange();
    } catch {
      return false;
    }
    if (!pair || this.session) return Boolean(this.session);
    this.setSession({ user: pair.user, accessToken: pair.accessToken });
    return true;
  }

  get user() {
    return this.session?.user ?? null;
  }

  get accessToken() {
    return this.session?.accessToken ?? null;
  }

  store(session) {
    this.session = session;
    if (session) sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
    else sessionStorage.removeItem(SESSION_KEY);
  }

  setSession(session) {
    this.store(session);
    this.transport.setTokens({ accessToken: session?.accessToken });
    this.onSessionChange(session);
  }

  /** A new session: this tab's, and the cookie's for every other tab (told so). */
  signedIn(answer) {
    this.setSession({ user: answer.user, accessToken: answer.accessToken });
    this.channel?.postMessage({ type: 'signed-in' });
  }

  async signIn(email, password) {
    this.signedIn(await this.publicPost('/auth/login', { email, password }, COOKIE_MODE));
  }

  async signUp(name, email, password) {
    this.signedIn(await this.publicPost('/auth/register', { name, email, password }, COOKIE_MODE));
  }

  /**
   * Signs out here at once, then ends the session on the server (`POST /auth/logout` revokes the
   * refresh-token family: its tokens stop working and its sockets close). Resolves false when the
   * server could not be reached.
   */
  async signOut() {
    this.setSession(null);
    this.channel?.postMessage({ type: 'signed-out' });
    try {
      // The cookie names the session; the answer also clears it.
      await this.publicPost('/auth/logout', {}, COOKIE_MODE);
      return true;
    } catch {
      return false;
    }
  }

  publicPost(path, body, headers) {
    return this.transport.json('POST', path, { body, auth: false, headers });
  }

  /**
   * Trades the refresh token for a new pair now (the socket's `unauthorized`), sharing the
   * transport's exchange with any request refreshing at the same moment; a refusal signs out.
   */
  async refresh() {
    if (this.session && (await this.transport.refresh())) return;
    this.setSession(null);
    throw new SwitchboardApiError(401, 'unauthorized', 'Signed out');
  }

  /** A 401 that survived the transport's refresh: the session is over. */
  signedOutBy(error) {
    if (error instanceof SwitchboardApiError && error.status === 401 && this.session) this.setSession(null);
    return error;
  }

  /** A JSON request; resolves to the parsed body (undefined for 204), rejects with ApiError. */
  async request(method, path, body) {
    try {
      return await this.transport.json(method, path, { body });
    } catch (error) {
      throw this.signedOutBy(error);
    }
  }

  /**
   * A request whose successful Response is handed back unread (for streams): the transport's token
   * and refresh. An error answer rejects with ApiError (`status`, `code`), as every request does.
   */
  async authorizedFetch(path, init = {}) {
    const body = typeof init.body === 'string' ? JSON.parse(init.body) : init.body;
    try {
      return await this.transport.send(init.method ?? 'GET', path, { body, headers: init.headers, signal: init.signal });
    } catch (error) {
      throw this.signedOutBy(error);
    }
  }

  get(path) {
    return this.request('GET', path);
  }

  post(path, body) {
    return this.request('POST', path, body ?? {});
  }

  /**
   * POSTs `form` (a FormData: multipart/form-data) and resolves with the parsed JSON answer,
   * calling `onProgress(sentBytes, totalBytes)` as the body goes out. XMLHttpRequest, because
   * fetch() reports no upload progress. The token is renewed first when it is about to expire, and
   * once more on a 401 (the files are then sent again); an error answer rejects with ApiError.
   */
  async upload(path, form, { onProgress, signal } = {}) {
    const send = (token) =>
      new Promise((resolve, reject) => {
        const xhr = new XMLHttpRequest();
        xhr.open('POST', `${this.transport.apiBase}${path}`);
        if (token) xhr.setRequestHeader('authorization', `Bearer ${token}`);
        xhr.setRequestHeader('accept', 'application/json');
        xhr.upload.onprogress = (event) => onProgress?.(event.loaded, event.lengthComputable ? event.total : 0);
        xhr.onload = () => resolve(xhr);
        xhr.onerror = () => reject(new SwitchboardApiError(0, 'network_error', 'The upload failed: the server could not be reached.'));
        xhr.onabort = () => reject(new DOMException('Aborted', 'AbortError'));
        signal?.addEventListener('abort', () => xhr.abort(), { once: true });
        xhr.send(form);
      });
    const token = await this.transport.freshAccessToken();
    let xhr = await send(token);
    if (xhr.status === 401 && token) {
      await this.refresh();
      xhr = await send(this.accessToken);
    }
    if (xhr.status < 200 || xhr.status >= 300) {
      const error = SwitchboardApiError.fromResponse(xhr.status, xhr.responseText);
      throw this.signedOutBy(error);
    }
    return xhr.responseText ? JSON.parse(xhr.responseText) : undefined;
  }

  /**
   * POSTs and reads the answer as Server-Sent Events (EventSource cannot send the Authorization
   * header, so this is fetch() streaming). Calls `onMessage({id, event, data})` per message.
   */
  async stream(path, body, onMessage, signal) {
    let response;
    try {
      response = await this.transport.send('POST', path, { body, headers: { accept: 'text/event-stream' }, signal });
    } catch (error) {
      throw this.signedOutBy(error);
    }
    await readSse(response.body, onMessage);
    return response;
  }
}
