import type { Server, Socket } from 'socket.io';
import { guardSocketText } from './socket-text';
import { z } from 'zod';
import type { TokenSettings } from '../auth/tokens';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../observability/metrics';
import type { CanvasesRepository } from '../models/canvases-repository';
import type { CanvasNamespace } from './canvas-emitter';
import type { CanvasLog } from './canvas-log';
import { handshakeClaims, SocketAuthGuard } from './socket-auth';
import type { CursorRelay } from './cursor-relay';
import { SocketRateLimits } from './token-bucket';
import {
  CANVAS_NAMESPACE,
  rooms,
  type CanvasClientEvents,
  type CanvasServerEvents,
  type CanvasServerSideEvents,
  type CanvasSocketData,
} from '../schemas/socket-events';
import { canvasPresence } from './canvas-presence';

type CanvasSocket = Socket<CanvasClientEvents, CanvasServerEvents, CanvasServerSideEvents, CanvasSocketData>;

// Lower-cased: room names are compared as strings and events go to rooms named with the canonical
// (lower-case) ids the API returns, so an upper-case id would join a room nobody emits to.
const canvasIdSchema = z.uuid().transform((id) => id.toLowerCase());
const cursorSchema = z.object({ canvasId: canvasIdSchema, x: z.number().finite(), y: z.number().finite() });
/**
 * Per socket: joins and leaves (each a membership query and a presence broadcast over
 * the cluster) and catch-ups (up to CANVAS_SYNC_MAX_EVENTS read from Redis) are refused with
 * `rate_limited` past a burst a real client never reaches; cursors past 20 a second (the console
 * sends one per 50 ms at most) are dropped, as a volatile event may be.
 */
export const CANVAS_SOCKET_LIMITS = {
  rooms: { burst: 20, perSecond: 5 },
  sync: { burst: 30, perSecond: 10 },
  cursor: { burst: 20, perSecond: 20 },
  typing: { burst: 2, perSecond: 1 },
} as const;
/** After a burst of presence changes on this node, one more announcement this much later (see announcePresence). */
const PRESENCE_SETTLE_MS = 300;
const rateLimited = { ok: false as const, error: { code: 'rate_limited', message: 'Too many requests on this socket; slow down' } };

const typingSchema = z.object({ canvasId: canvasIdSchema, threadId: z.uuid().transform((id) => id.toLowerCase()) });

const syncSchema = z.object({ canvasId: canvasIdSchema, afterSeq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER) });

/**
 * `/canvas`: authenticated in `io.use`; members join `canvas:<id>` rooms, see who else is there,
 * and relay cursors. Every handler validates its input and answers bad input with an error ack
 * (or ignores it when there is no ack), never with an exception.
 */
export function registerCanvasNamespace(
  io: Server,
  deps: {
    tokens: TokenSettings;
    canvases: CanvasesRepository;
    /** Whether a user may post to a thread of a canvas (its typing is relayed only then); without it, typing is dropped. */
    threadPoster?: (canvasId: string, threadId: string, userId: string) => Promise<boolean>;
    canvasLog: CanvasLog;
    logger: Logger;
    metrics?: Metrics;
    cursors?: CursorRelay;
  },
): CanvasNamespace {
  const nsp = io.of(CANVAS_NAMESPACE) as CanvasNamespace;
  const log = deps.logger.child({ component: 'canvas-namespace' });
  /** A socket's session id, from its handshake's middleware to its `connection`. */
  const sessionOf = new WeakMap<object, string | undefined>();
  const authGuard = new SocketAuthGuard(deps.tokens, log);

  // Runs on recovered connections too: a restored session still needs a valid token.
  nsp.use(
    (socket, next) =>
      void (async () => {
        try {
          const claims = await handshakeClaims(deps.tokens, socket.handshake);
          if (!claims) return next(new Error('unauthorized'));
          socket.data.user = { id: claims.sub, name: claims.name, email: claims.email };
          socket.data.exp = claims.exp!;
          sessionOf.set(socket, claims.sid);
          next();
        } catch (error) {
          log.warn({ err: error }, 'canvas handshake check failed');
          next(new Error('unavailable'));
        }
      })(),
  );

  const presenceOf = (canvasId: string) => canvasPresence(nsp, canvasId, log);

  /**
   * Announces a canvas's presence to its whole room. Computing it (a query to every node)
   * and emitting it are not one step, so two joins at once could deliver a list computed before
   * the second join after the one computed after it, and a member would be left out of a room it
   * is in. Announcements therefore run one at a time per canvas on this node (a change during one
   * asks for another, computed after it), and a last one follows PRESENCE_SETTLE_MS after a burst,
   * so changes on other nodes in between end in an up-to-date list too.
   *
   * Presence lists users, not sockets: a socket coming or going that leaves the same users in the
   * room (a tab reconnecting, a user's second tab) announces nothing, since each announcement goes to
   * every socket of the room. Each node compares with the list it sent last: a node whose list was
   * overtaken by a newer one from another node computes the newer list at its settle, finds it
   * different from its own, and sends it, so the room still ends with the current list.
   */
  const announcing = new Map<string, { running: boolean; again: boolean; settle?: NodeJS.Timeout }>();
  /** The list this node sent last, per canvas with sockets here (forgotten when the room empties here). */
  const sent = new Map<string, string>();
  const emitPresence = async (canvasId: string) => {
    try {
      const users = await presenceOf(canvasId);
      const list = users
        .map((user) => `${user.userId}:${user.name}`)
        .sort()
        .join('\n');
      if (sent.get(canvasId) === list) return;
      sent.set(canvasId, list);
      nsp.to(rooms.canvas(canvasId)).emit('presence', { canvasId, users });
    } catch (error) {
      log.warn({ err: error, canvasId }, 'presence update failed');
    }
  };
  const settled = async (canvasId: string) => {
    announcing.delete(canvasId);
    await emitPresence(canvasId);
    if (!nsp.adapter.rooms.has(rooms.canvas(canvasId))) sent.delete(canvasId);
  };
  const announcePresence = (canvasId: string): void => {
    let state = announcing.get(canvasId);
    if (!state) announcing.set(canvasId, (state = { running: false, again: false }));
    clearTimeout(state.settle);
    state.again = true;
    if (state.running) return;
    const current = state;
    void (async () => {
      current.running = true;
      while (current.again) {
        current.again = false;
        await emitPresence(canvasId);
      }
      current.running = false;
      current.settle = setTimeout(() => void settled(canvasId), PRESENCE_SETTLE_MS).unref();
    })();
  };

  const rejoinRecoveredRooms = async (socket: CanvasSocket) => {
    for (const room of [...socket.rooms]) {
      if (!room.startsWith('canvas:')) continue;
      const canvasId = room.slice('canvas:'.length);
      try {
        if (!(await deps.canvases.roleOf(canvasId, socket.data.user.id))) {
          await socket.leave(room);
          continue;
        }
      } catch (error) {
        // The check failed (database down): the room stays, as it was admitted at its join.
        log.warn({ err: error, canvasId }, 'membership of a recovered room not checked');
      }
      announcePresence(canvasId);
    }
  };

  nsp.on('connection', (socket: CanvasSocket) => {
    authGuard.guard(socket, sessionOf.get(socket));
    sessionOf.delete(socket);
    guardSocketText(socket);
    deps.metrics?.sockets.inc({ namespace: CANVAS_NAMESPACE });
    socket.on('disconnect', () => deps.metrics?.sockets.dec({ namespace: CANVAS_NAMESPACE }));
    // The user's own room: approval requests reach every tab of theirs, in a canvas or not.
    void socket.join(rooms.user(socket.data.user.id));
    // A recovered connection is back in its canvas rooms without a join, and its drop was announced
    // to them (and replayed to it): say that it is here again. Membership is checked again first: a
    // member removed while the socket was away is not let back into the room by the recovery.
    // Catch-ups wait for that check, so none is answered from a room the socket is about to leave.
    const recovering = socket.recovered ? rejoinRecoveredRooms(socket) : Promise.resolve();
    const limits = new SocketRateLimits(CANVAS_SOCKET_LIMITS);
    socket.on('canvas:join', async (canvasId, ack) => {
      const reply = typeof ack === 'function' ? ack : () => undefined;
      if (!limits.take('rooms')) return reply(rateLimited);
      const parsed = canvasIdSchema.safeParse(canvasId);
      if (!parsed.success) return reply({ ok: false, error: { code: 'validation_failed', message: 'canvasId must be a UUID' } });
      try {
        const role = await deps.canvases.roleOf(parsed.data, socket.data.user.id);
        // Not a member and no such canvas look the same: nothing to learn by probing ids.
        if (!role) return reply({ ok: false, error: { code: 'not_found', message: 'Canvas not found' } });
        // The seq is read after joining: every later event reaches this socket live or by canvas:sync.
        await socket.join(rooms.canvas(parsed.data));
        const seq = await deps.canvasLog.lastSeq(parsed.data);
        reply({ ok: true, presence: await presenceOf(parsed.data), seq });
        announcePresence(parsed.data);
      } catch (error) {
        log.error({ err: error }, 'canvas:join failed');
        reply({ ok: false, error: { code: 'internal_error', message: 'Could not join the canvas' } });
      }
    });

    // Catch-up by cursor: what a member missed after `afterSeq`, or `resync`.
    socket.on('canvas:sync', async (payload, ack) => {
      const reply = typeof ack === 'function' ? ack : () => undefined;
      if (!limits.take('sync')) return reply(rateLimited);
      const parsed = syncSchema.safeParse(payload);
      if (!parsed.success)
        return reply({ ok: false, error: { code: 'validation_failed', message: 'expected {canvasId: UUID, afterSeq: integer ≥ 0}' } });
      const { canvasId, afterSeq } = parsed.data;
      try {
        await recovering;
        // A socket in the room was checked when it joined; anyone else is checked now.
        if (!socket.rooms.has(rooms.canvas(canvasId)) && !(await deps.canvases.roleOf(canvasId, socket.data.user.id))) {
          return reply({ ok: false, error: { code: 'not_found', message: 'Canvas not found' } });
        }
        const caughtUp = await deps.canvasLog.since(canvasId, afterSeq);
        reply(
          caughtUp.resync
            ? { ok: true, resync: true, lastSeq: caughtUp.lastSeq }
            : { ok: true, resync: false, events: caughtUp.events as never, lastSeq: caughtUp.lastSeq },
        );
      } catch (error) {
        log.error({ err: error }, 'canvas:sync failed');
        reply({ ok: false, error: { code: 'internal_error', message: 'Could not read the canvas events' } });
      }
    });

    socket.on('canvas:leave', async (canvasId, ack) => {
      const reply = typeof ack === 'function' ? ack : () => undefined;
      if (!limits.take('rooms')) return reply(rateLimited);
      const parsed = canvasIdSchema.safeParse(canvasId);
      if (!parsed.success || !socket.rooms.has(rooms.canvas(parsed.data))) return reply({ ok: false });
      await socket.leave(rooms.canvas(parsed.data));
      reply({ ok: true });
      announcePresence(parsed.data);
    });

    socket.on('canvas:cursor', (payload) => {
      if (!limits.take('cursor')) return;
      const parsed = cursorSchema.safeParse(payload);
      if (!parsed.success) return;
      const room = rooms.canvas(parsed.data.canvasId);
      if (!socket.rooms.has(room)) return;
      const cursor = { userId: socket.data.user.id, x: parsed.data.x, y: parsed.data.y };
      // Never through the adapter (its stream is everyone's recovery history): pub/sub, or this node only.
      if (deps.cursors) deps.cursors.publish({ canvasId: parsed.data.canvasId, from: socket.id, ...cursor });
      else socket.volatile.local.to(room).emit('cursor', cursor);
    });

    // Typing in a room thread: relayed like a cursor, only for a thread of a joined canvas the member may post to
    // (checked once per thread per socket; a member removed from the canvas is out of its room, so relays nothing more).
    const mayType = new Map<string, Promise<boolean>>();
    socket.on('thread:typing', (payload) => {
      if (!limits.take('typing')) return;
      const parsed = typingSchema.safeParse(payload);
      if (!parsed.success || !deps.threadPoster) return;
      const { canvasId, threadId } = parsed.data;
      if (!socket.rooms.has(rooms.canvas(canvasId))) return;
      const key = `${canvasId}:${threadId}`;
      if (!mayType.has(key)) {
        if (mayType.size >= 50) mayType.clear();
        mayType.set(
          key,
          deps.threadPoster(canvasId, threadId, socket.data.user.id).catch(() => false),
        );
      }
      void mayType.get(key)!.then((allowed) => {
        if (!allowed || !socket.rooms.has(rooms.canvas(canvasId))) return;
        const { id: userId, name } = socket.data.user;
        if (deps.cursors) deps.cursors.publishTyping({ canvasId, from: socket.id, threadId, userId, name });
        else socket.volatile.local.to(rooms.canvas(canvasId)).emit('thread_typing', { canvasId, threadId, userId, name });
      });
    });

    socket.on('disconnecting', () => {
      const canvasIds = [...socket.rooms].filter((room) => room.startsWith('canvas:')).map((room) => room.slice('canvas:'.length));
      // After the socket has left its rooms, tell the others who remains.
      setImmediate(() => canvasIds.forEach(announcePresence));
    });
  });

  return nsp;
}
