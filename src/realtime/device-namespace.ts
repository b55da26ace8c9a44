import { randomUUID } from 'node:crypto';
import type { Socket } from 'socket.io';
import { guardSocketText } from './socket-text';
import type { TokenSettings } from '../auth/tokens';
import type { DeviceRegistry } from '../devices/device-registry';
import type { DeviceChannel } from '../devices/device-channel';
import type { DeviceNamespace, DeviceSignals } from '../devices/device-signals';
import { describeIssues, deviceHelloSchema, deviceIdSchema, type AgentFrameAck, type DeviceHelloAck } from '../schemas/device-protocol';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../observability/metrics';
import { handshakeClaims, SocketAuthGuard, type HandshakeClaims } from './socket-auth';
import {
  DEVICE_NAMESPACE,
  rooms,
  type AgentCancelAck,
  type ChatCancelAck,
  type ChatRequestAck,
  type ToolApprovalAck,
  type DeviceClientEvents,
  type DeviceServerEvents,
  type DeviceServerSideEvents,
  type DeviceSocketData,
} from '../schemas/socket-events';

type DeviceSocket = Socket<DeviceClientEvents, DeviceServerEvents, DeviceServerSideEvents, DeviceSocketData>;

/** Turns a socket is known to have started: enough for every turn it can have running at once. */
const MAX_TURN_ROOMS = 64;

export interface DeviceNamespaceDeps {
  tokens: TokenSettings;
  registry: DeviceRegistry;
  logger: Logger;
  /** Counts open sockets (`switchboard_socket_connections{namespace="/device"}`). */
  metrics?: Metrics;
  /**
   * Called on this node after a device's `device_hello` is acknowledged. Other nodes hear the same
   * through `signals.on('online')`. Errors are logged, never sent to the device.
   */
  onDeviceHello?: (userId: string, deviceId: string, agentIds: string[]) => void | Promise<void>;
  /**
   * Handles `chat_request` (the assistant). The payload is unvalidated; the returned value is the
   * ack. Without a handler the device is told the assistant is unavailable.
   */
  onChatRequest?: (user: DeviceSocketData['user'], deviceId: string, payload: unknown, turnId?: string) => Promise<ChatRequestAck>;
  /** Handles `chat_cancel`: stop the named or this device's running turn; unvalidated payload. */
  onChatCancel?: (user: DeviceSocketData['user'], deviceId: string, payload: unknown) => Promise<ChatCancelAck>;
  /** Handles `agent_cancel`: stop an agent run of the socket's user; unvalidated payload. */
  onAgentCancel?: (user: DeviceSocketData['user'], deviceId: string, payload: unknown) => Promise<AgentCancelAck>;
  /**
   * Handles `tool_approval` (the user's decision on an approval request); unvalidated payload.
   * `person` is false on a connection opened with an API key, whose decisions are refused.
   */
  onToolApproval?: (user: DeviceSocketData['user'] & { person: boolean }, deviceId: string, payload: unknown) => Promise<ToolApprovalAck>;
  /** Handles `agent_data` / `agent_complete` of a local agent run (unvalidated payload); the result is the ack. */
  onAgentFrame?: (
    user: DeviceSocketData['user'],
    deviceId: string,
    type: 'agent_data' | 'agent_complete',
    payload: unknown,
  ) => Promise<AgentFrameAck>;
}

export interface DeviceNamespaceHandle {
  nsp: DeviceNamespace;
  registry: DeviceRegistry;
  /** Presence changes from every node (`online`, `gone`). */
  signals: DeviceSignals;
  /** Stops the registry heartbeat (this node's devices then count as offline at once). */
  close(): Promise<void>;
}

/**
 * `/device`: desktop apps that hold the user's local data. Authenticated in `io.use` with
 * `auth: {token, deviceId}`; a socket is bound to the user of its token and joins only that user's
 * rooms, so a call for user A's device can never reach user B's device of the same name.
 *
 * One socket per device and user: a new connection replaces the old one (as the seed's connection
 * manager did), so a tool call is never run twice by two copies of the app.
 */
export function registerDeviceNamespace(channel: DeviceChannel, deps: DeviceNamespaceDeps): DeviceNamespaceHandle {
  const nsp = channel.namespace;
  const signals = channel.signals;
  const log = deps.logger.child({ component: 'device-namespace' });
  /** A socket's session id, from its handshake's middleware to its `connection`. */
  const sessionOf = new WeakMap<object, string | undefined>();
  const authGuard = new SocketAuthGuard(deps.tokens, log);
  const { registry } = deps;
  registry.startHeartbeat();

  // Runs on recovered connections too: a restored session still needs a valid token.
  nsp.use(
    (socket, next) =>
      void (async () => {
        const auth = (socket.handshake.auth ?? {}) as { deviceId?: unknown };
        let claims: HandshakeClaims | null;
        try {
          claims = await handshakeClaims(deps.tokens, socket.handshake);
        } catch (error) {
          log.warn({ err: error }, 'device handshake check failed');
          return next(new Error('unavailable'));
        }
        if (!claims) return next(new Error('unauthorized'));
        const deviceId = deviceIdSchema.safeParse(auth.deviceId);
        if (!deviceId.success) return next(new Error('invalid_device'));
        socket.data.user = { id: claims.sub, name: claims.name, email: claims.email, tier: claims.tier };
        socket.data.deviceId = deviceId.data;
        socket.data.exp = claims.exp!;
        socket.data.person = claims.person;
        sessionOf.set(socket, claims.sid);
        next();
      })(),
  );

  nsp.on('connection', (socket: DeviceSocket) => {
    authGuard.guard(socket, sessionOf.get(socket));
    sessionOf.delete(socket);
    guardSocketText(socket, { deviceData: ['agent_data', 'agent_complete'] });
    const { user, deviceId } = socket.data;
    const context = { userId: user.id, deviceId, socketId: socket.id };
    const room = rooms.userDevice(user.id, deviceId);
    const connectedAt = new Date().toISOString();
    /** The rooms of the turns this socket started, oldest first (the oldest is left past the bound). */
    const ownTurns: string[] = [];

    void channel
      .replaceOthers(user.id, deviceId, socket.id)
      .catch((error: unknown) => log.warn({ err: error, ...context }, 'older connections not told to close'));
    void socket.join([room, rooms.user(user.id)]);
    const registered = registry.register(user.id, { deviceId, socketId: socket.id, connectedAt, agentIds: [] }).catch((error: unknown) => {
      log.warn({ err: error, ...context }, 'device registration failed');
    });
    log.info({ ...context, recovered: socket.recovered }, 'device connected');
    deps.metrics?.sockets.inc({ namespace: DEVICE_NAMESPACE });

    socket.on('device_hello', async (payload, ack) => {
      const reply = typeof ack === 'function' ? ack : (_: DeviceHelloAck) => undefined;
      const parsed = deviceHelloSchema.safeParse(payload);
      if (!parsed.success) return reply({ ok: false, error: { code: 'validation_failed', message: describeIssues(parsed.error) } });
      if (parsed.data.deviceId !== deviceId) {
        return reply({ ok: false, error: { code: 'invalid_device', message: 'deviceId differs from the one given in the handshake' } });
      }
      const { agentIds, project, tables, allTurns } = parsed.data;
      // Other turns' messages only when asked for; a later hello without it goes back to its own.
      const everyTurn = rooms.userDeviceTurns(user.id, deviceId);
      if (allTurns) void socket.join(everyTurn);
      else void socket.leave(everyTurn);
      await registered;
      try {
        await registry.setAgentIds(user.id, {
          deviceId,
          socketId: socket.id,
          connectedAt,
          agentIds,
          ...(project ? { project } : {}),
          ...(tables === false ? { tables } : {}),
        });
      } catch (error) {
        log.warn({ err: error, ...context }, 'device registry update failed');
      }
      reply({ ok: true });
      signals.publishOnline({ ...context, agentIds });
      try {
        await deps.onDeviceHello?.(user.id, deviceId, agentIds);
      } catch (error) {
        log.error({ err: error, ...context }, 'onDeviceHello hook failed');
      }
    });

    socket.on('chat_request', async (payload, ack) => {
      const reply = typeof ack === 'function' ? ack : (_: ChatRequestAck) => undefined;
      if (!deps.onChatRequest) return reply({ error: { code: 'unavailable', message: 'The assistant is not available on this server' } });
      // The turn's id is chosen here and the socket joins its room first: its messages reach this
      // socket (and no other of the device, unless it asked for every turn's) from the first one.
      const turnId = randomUUID();
      const turnRoom = rooms.chatTurn(turnId);
      await socket.join(turnRoom);
      ownTurns.push(turnRoom);
      if (ownTurns.length > MAX_TURN_ROOMS) void socket.leave(ownTurns.shift()!);
      try {
        const answer = await deps.onChatRequest(user, deviceId, payload, turnId);
        if ('error' in answer) void socket.leave(turnRoom);
        reply(answer);
      } catch (error) {
        void socket.leave(turnRoom);
        log.error({ err: error, ...context }, 'chat_request failed');
        reply({ error: { code: 'internal', message: 'The request could not be handled' } });
      }
    });

    socket.on('chat_cancel', async (payload, ack) => {
      const reply = typeof ack === 'function' ? ack : (_: ChatCancelAck) => undefined;
      if (!deps.onChatCancel)
        return reply({ ok: false, error: { code: 'unavailable', message: 'The assistant is not available on this server' } });
      try {
        reply(await deps.onChatCancel(user, deviceId, payload));
      } catch (error) {
        log.error({ err: error, ...context }, 'chat_cancel failed');
        reply({ ok: false, error: { code: 'internal', message: 'The request could not be handled' } });
      }
    });

    socket.on('agent_cancel', async (payload, ack) => {
      const reply = typeof ack === 'function' ? ack : (_: AgentCancelAck) => undefined;
      if (!deps.onAgentCancel)
        return reply({ ok: false, error: { code: 'unavailable', message: 'Agent runs are not available on this server' } });
      try {
        reply(await deps.onAgentCancel(user, deviceId, payload));
      } catch (error) {
        log.error({ err: error, ...context }, 'agent_cancel failed');
        reply({ ok: false, error: { code: 'internal', message: 'The request could not be handled' } });
      }
    });

    socket.on('tool_approval', async (payload, ack) => {
      const reply = typeof ack === 'function' ? ack : (_: ToolApprovalAck) => undefined;
      if (!deps.onToolApproval) return reply({ error: { code: 'unavailable', message: 'Approvals are not available on this server' } });
      try {
        reply(await deps.onToolApproval({ ...user, person: socket.data.person }, deviceId, payload));
      } catch (error) {
        log.error({ err: error, ...context }, 'tool_approval failed');
        reply({ error: { code: 'internal', message: 'The decision could not be handled' } });
      }
    });

    for (const type of ['agent_data', 'agent_complete'] as const) {
      socket.on(type, async (payload: unknown, ack?: (reply: AgentFrameAck) => void) => {
        const reply = typeof ack === 'function' ? ack : (_: AgentFrameAck) => undefined;
        if (!deps.onAgentFrame)
          return reply({ ok: false, error: { code: 'unavailable', message: 'Agent runs are not available on this server' } });
        try {
          reply(await deps.onAgentFrame(user, deviceId, type, payload));
        } catch (error) {
          log.error({ err: error, ...context }, `${type} failed`);
          reply({ ok: false, error: { code: 'internal', message: 'The frame could not be handled' } });
        }
      });
    }

    socket.on('disconnect', (reason) => {
      deps.metrics?.sockets.dec({ namespace: DEVICE_NAMESPACE });
      // Published before the registry write so that calls waiting on this device end at once.
      signals.publishGone({ ...context, reason });
      void registered
        .then(() => registry.unregister(user.id, deviceId, socket.id))
        .catch((error: unknown) => log.warn({ err: error, ...context }, 'device unregistration failed'));
      log.info({ ...context, reason }, 'device disconnected');
    });
  });

  return { nsp, registry, signals, close: () => registry.stop() };
}
