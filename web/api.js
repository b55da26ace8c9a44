// The console's HTTP client is the SDK's transport (@switchboard/client, served built at
// /console/sdk/, decision 0130): JSON with the Bearer token, one refresh on 401 shared by
// concurrent requests, the API's error shape. This module only keeps the session in
// sessionStorage (this tab only, gone when the tab closes) and signs out when a refresh fails.
import { SwitchboardApiError, Transport } from '/console/sdk/switchboard-client.js';
import { readSse } from './sse.js';

/** An error answer of the API (`status`, `code`, `message`, `details`). */
export { SwitchboardApiError as ApiError };

const SESSION_KEY = 'switchboard.console.session';

export class Api {
  constructor() {
    this.session = null;
    /** Called with `null` when the session ends (sign-out or a refresh that failed). */
    this.onSessionChange = () => {};
    try {
      this.session = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? 'null');
    } catch {
      this.session = null;
    }
    this.transport = new Transport({
      baseUrl: location.origin,
      accessToken: this.session?.accessToken,
      refreshToken: this.session?.refreshToken,
      // A refresh inside the transport rotated the tokens: keep them with the session.
      onTokens: (tokens) => {
        if (this.session && tokens.accessToken !== this.session.accessToken) this.store({ ...this.session, ...tokens });
      },
    });
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
    this.transport.setTokens({ accessToken: session?.accessToken, refreshToken: session?.refreshToken });
    this.onSessionChange(session);
  }

  async signIn(email, password) {
    this.setSession(await this.publicPost('/auth/login', { email, password }));
  }

  async signUp(name, email, password) {
    this.setSession(await this.publicPost('/auth/register', { name, email, password }));
  }

  /**
   * Signs out here at once, then ends the session on the server (`POST /auth/logout` revokes the
   * refresh-token family: its tokens stop working and its sockets close). Resolves false when the
   * server could not be reached.
   */
  async signOut() {
    const { refreshToken } = this.transport.getTokens();
    this.setSession(null);
    if (!refreshToken) return true;
    try {
      await this.publicPost('/auth/logout', { refreshToken });
      return true;
    } catch {
      return false;
    }
  }

  publicPost(path, body) {
    return this.transport.json('POST', path, { body, auth: false });
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
