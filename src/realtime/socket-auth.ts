import type { DefaultEventsMap, Socket } from 'socket.io';
import { z } from 'zod';
import { isApiKeySecret } from '../auth/api-keys';
import { verifyAccessToken, type AccessClaims, type TokenSettings } from '../auth/tokens';
import type { Logger } from '../lib/logger';
import { rooms, type AuthRefreshAck } from '../schemas/socket-events';

/** Longest delay a Node timer takes (about 24.8 days); a longer expiry is re-armed in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const refreshSchema = z.strictObject({ token: z.string().min(1).max(4096) });

type AuthedSocket = Socket<DefaultEventsMap, DefaultEventsMap, DefaultEventsMap, { user: { id: string }; exp: number }>;

/**
 * Sends `auth:expired` to this socket now. With connection-state recovery on, `socket.emit` goes
 * through the Redis adapter and would arrive after an immediate disconnect; a local broadcast to
 * the socket's own room writes it to the connection at once, ahead of the DISCONNECT packet.
 */
function tellExpired(socket: Socket, reason: 'token_expired' | 'session_revoked') {
  const EVENT = 2; // socket.io-parser's PacketType.EVENT
  void socket.nsp.adapter.broadcast(
    { type: EVENT, data: ['auth:expired', { reason }], nsp: socket.nsp.name },
    { rooms: new Set([socket.id]), except: new Set(), flags: { local: true } },
  );
}

/** A handshake's claims, and whether a person signed in (an access token) rather than a program (an API key). */
export type HandshakeClaims = AccessClaims & { person: boolean };

/**
 * Reads and checks the handshake's access token (`auth.token`). Runs on every connection,
 * including a recovered one (connection-state recovery does not skip middlewares), so an
 * expired or revoked token is never restored. Answers null for a missing or bad token; throws when
 * the check itself failed (database down).
 *
 * The token is taken out of the handshake as it is read: an open socket holds no credential it
 * will not use again (nor its half a kilobyte).
 */
export async function handshakeClaims(
  tokens: TokenSettings,
  handshake: Pick<Socket['handshake'], 'auth' | 'address'>,
): Promise<HandshakeClaims | null> {
  const { token, ...rest } = (handshake.auth ?? {}) as { token?: unknown };
  handshake.auth = rest;
  if (typeof token !== 'string' || token.length > 4096) return null;
  const person = !isApiKeySecret(token);
  const claims = person ? await verifyAccessToken(tokens, token) : await apiKeyClaims(tokens, token, handshake.address);
  return claims && { ...claims, person };
}

/** How long a socket opened with a key that never expires stays before it must reconnect (and be checked again). */
const KEY_SOCKET_LIFETIME_S = 24 * 3600;

/**
 * A socket opened with an API key: a socket both reads and writes, so the key needs the
 * `write` scope; an admin's key is not an admin. The key's id stands for the session, so revoking
 * the key disconnects its sockets on every node as a logout does. Failed attempts count against
 * the client's IP like on HTTP (a 429 is thrown, as the check failing).
 */
async function apiKeyClaims(tokens: TokenSettings, secret: string, ip: string): Promise<AccessClaims | null> {
  const caller = tokens.apiKeys ? await tokens.apiKeys.authenticate(secret, ip) : null;
  if (!caller || !caller.scopes.includes('write')) return null;
  const { user } = caller;
  const lifetime = Math.floor(Date.now() / 1000) + KEY_SOCKET_LIFETIME_S;
  const exp = caller.expiresAt ? Math.min(Math.floor(caller.expiresAt.getTime() / 1000), lifetime) : lifetime;
  const role = user.role === 'admin' ? 'user' : user.role;
  return { sub: user.id, email: user.email, name: user.name, tier: user.tier, role, sid: caller.keyId, exp };
}

/**
 * The sockets of one namespace by the second their access expires (a token's `exp` is in
 * seconds), with one timer for all of them, armed for the earliest second: an expired socket is
 * told `auth:expired` and disconnected. Thousands of idle sockets cost a map entry each, not a
 * timer each.
 */
class ExpiryWatch {
  private readonly bySecond = new Map<number, Set<AuthedSocket>>();
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Infinity;

  add(socket: AuthedSocket, exp: number): void {
    let sockets = this.bySecond.get(exp);
    if (!sockets) this.bySecond.set(exp, (sockets = new Set()));
    sockets.add(socket);
    if (exp < this.armedFor) this.arm(exp);
  }

  remove(socket: AuthedSocket, exp: number): void {
    const sockets = this.bySecond.get(exp);
    if (!sockets?.delete(socket) || sockets.size > 0) return;
    this.bySecond.delete(exp);
    if (this.bySecond.size > 0) return;
    clearTimeout(this.timer);
    this.armedFor = Infinity;
  }

  private arm(exp: number): void {
    clearTimeout(this.timer);
    this.armedFor = exp;
    // A far expiry wakes the watch early; it finds nothing due and arms again.
    this.timer = setTimeout(() => this.expire(), Math.min(Math.max(exp * 1000 - Date.now(), 0), MAX_TIMER_MS)).unref();
  }

  private expire(): void {
    this.armedFor = Infinity;
    const now = Date.now();
    let next = Infinity;
    for (const [exp, sockets] of this.bySecond) {
      if (exp * 1000 > now) {
        next = Math.min(next, exp);
        continue;
      }
      this.bySecond.delete(exp);
      for (const socket of sockets) {
        tellExpired(socket, 'token_expired');
        // Not close=true: the DISCONNECT packet then follows auth:expired on the wire, so the client hears why.
        socket.disconnect();
      }
    }
    if (next < Infinity) this.arm(next);
  }
}

/**
 * Keeps a namespace's connected sockets' authentication current: a socket is disconnected (after
 * an `auth:expired` event) when its access token expires, unless the client sends `auth:refresh`
 * with a newer token of the same user before then. Joins each socket to its session's room so a
 * logout can disconnect it at once.
 */
export class SocketAuthGuard {
  private readonly expiries = new ExpiryWatch();

  constructor(
    private readonly tokens: TokenSettings,
    private readonly log: Logger,
  ) {}

  /** Guards a socket just connected with a token of session `sid`, valid until `socket.data.exp`. */
  guard(socket: AuthedSocket, sid: string | undefined): void {
    const { tokens, log, expiries } = this;
    let session = sid;
    if (session) void socket.join(rooms.session(session));
    expiries.add(socket, socket.data.exp);
    socket.on('disconnect', () => expiries.remove(socket, socket.data.exp));

    socket.on('auth:refresh', async (payload: unknown, ack: unknown) => {
      const reply = typeof ack === 'function' ? (ack as (response: AuthRefreshAck) => void) : () => undefined;
      const parsed = refreshSchema.safeParse(payload);
      if (!parsed.success) return reply({ ok: false, error: { code: 'validation_failed', message: 'expected {token: string}' } });
      let fresh: AccessClaims | null;
      try {
        fresh = await verifyAccessToken(tokens, parsed.data.token);
      } catch (error) {
        log.warn({ err: error, socketId: socket.id }, 'auth:refresh check failed');
        return reply({ ok: false, error: { code: 'unavailable', message: 'Could not check the token; try again' } });
      }
      if (!fresh) return reply({ ok: false, error: { code: 'unauthorized', message: 'Invalid or expired access token' } });
      if (fresh.sub !== socket.data.user.id)
        return reply({ ok: false, error: { code: 'forbidden', message: 'The token belongs to another user' } });
      if (!socket.connected) return reply({ ok: false, error: { code: 'unauthorized', message: 'The socket has closed' } });
      // A token that expires sooner than the current one would only shorten the socket's life: keep the later.
      const exp = Math.max(socket.data.exp, fresh.exp!);
      expiries.remove(socket, socket.data.exp);
      socket.data.exp = exp;
      expiries.add(socket, exp);
      if (fresh.sid !== session) {
        if (session) void socket.leave(rooms.session(session));
        session = fresh.sid;
        if (session) void socket.join(rooms.session(session));
      }
      reply({ ok: true, expiresAt: new Date(exp * 1000).toISOString() });
    });
  }
}
