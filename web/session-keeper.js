// Keeps a tab signed in for as long as its refresh token lasts, the way the SDK's sockets do:
// the access token is renewed a little before it expires and handed to the
// open socket with `auth:refresh`; a socket the server closed at expiry (`auth:expired`
// "token_expired") refreshes and reconnects; a revoked session ("session_revoked") signs the tab
// out. Background tabs run timers late, so a tab coming back (visible, online) checks at once.

/** Renew when a fifth of the lifetime is left: at least 5 s and at most 60 s before expiry. */
const leadMs = (lifetimeMs) => Math.min(60_000, Math.max(5_000, lifetimeMs / 5));

/** How soon a renewal that failed (offline) is tried again. */
const RETRY_MS = 5_000;

/** A JWT's `{exp, iat}` in ms (read, not verified: only to know when to renew); undefined when unreadable. */
export function tokenTimes(token) {
  try {
    const claims = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    if (typeof claims.exp !== 'number') return undefined;
    return { exp: claims.exp * 1000, iat: typeof claims.iat === 'number' ? claims.iat * 1000 : undefined };
  } catch {
    return undefined;
  }
}

/** How far ahead of its expiry a token with these times is renewed, in ms. */
function renewLead(times) {
  return leadMs(times.exp - (times.iat ?? Date.now()));
}

export class SessionKeeper {
  /**
   * @param {object} deps
   * @param {import('./api.js').Api} deps.api
   * @param {import('socket.io-client').Socket} deps.socket the tab's `/canvas` socket
   * @param {(message: string, isError?: boolean) => void} deps.notify
   */
  constructor({ api, socket, notify }) {
    this.api = api;
    this.socket = socket;
    this.notify = notify;
    this.timer = 0;
    this.running = false;
    socket.on('auth:expired', ({ reason } = {}) => void this.expired(reason));
    socket.on('connect', () => this.schedule());
    const wake = () => this.running && void this.check();
    document.addEventListener('visibilitychange', () => document.visibilityState === 'visible' && wake());
    window.addEventListener('online', wake);
    window.addEventListener('focus', wake);
  }

  start() {
    this.running = true;
    this.schedule();
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
  }

  /**
   * Arms the timer for the current access token's renewal; a renewal that is due already (the last
   * try failed: offline) is tried again every RETRY_MS.
   */
  schedule() {
    clearTimeout(this.timer);
    const token = this.api.accessToken;
    const times = token ? tokenTimes(token) : undefined;
    if (!this.running || !times) return;
    const delay = times.exp - renewLead(times) - Date.now();
    this.timer = setTimeout(() => void this.check(), delay > 0 ? Math.min(delay, 2 ** 31 - 1) : RETRY_MS);
  }

  /**
   * Renews the access token when it is due (the transport's one shared exchange: the refresh
   * token rotates), hands the new one to a connected socket, and reconnects a dropped one.
   */
  async check() {
    if (!this.running || !this.api.session) return;
    const before = this.api.accessToken;
    const times = before ? tokenTimes(before) : undefined;
    const lead = times ? renewLead(times) : leadMs(0);
    try {
      const token = await this.api.transport.freshAccessToken(lead + 1_000);
      if (token === before && times && times.exp - lead <= Date.now()) {
        // Due, yet not renewed: offline, or the refresh token was refused. A request tells which
        // (a 401 that survives the transport's refresh signs the tab out in api.js).
        try {
          await this.api.get('/me');
        } catch (error) {
          // Still signed in: the request failed for another reason (offline), handled below.
          if (this.api.session) throw error;
        }
        if (!this.api.session) return this.notify('Your session ended; please sign in again.', true);
      } else if (token && token !== before && this.socket.connected) {
        // Unanswered (a timeout, below) or refused: the server closes the socket at expiry, and the
        // reconnect presents the new token.
        await this.socket.timeout(10_000).emitWithAck('auth:refresh', { token });
      }
    } catch {
      // Offline, or the socket did not answer `auth:refresh`: the next wake-up, reconnect or request tries again.
    }
    if (this.socket.disconnected && this.api.session) this.socket.connect();
    this.schedule();
  }

  /**
   * `auth:expired` comes just before the server closes the socket. A revoked session (signed out
   * elsewhere, account deleted) ends this tab's; a token that ran out is renewed, and the socket,
   * which Socket.IO does not reconnect after a server-side close, is reconnected with it.
   */
  async expired(reason) {
    if (!this.api.session) return;
    if (reason === 'session_revoked') {
      this.api.setSession(null);
      this.notify('You were signed out (this session was ended on the server).', true);
      return;
    }
    try {
      await this.api.refresh();
    } catch {
      this.notify('Your session ended; please sign in again.', true);
      return;
    }
    if (this.socket.connected)
      await new Promise((resolve) => {
        this.socket.once('disconnect', resolve);
        setTimeout(resolve, 5_000);
      });
    if (this.api.session && this.socket.disconnected) this.socket.connect();
  }
}
