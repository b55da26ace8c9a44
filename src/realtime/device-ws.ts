import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { TURN_IN_PROGRESS } from '../assistant/chat-lane';
import { verifyAccessToken, type TokenSettings } from '../auth/tokens';
import type { DeviceChannel } from '../devices/device-channel';
import type { DeviceRegistry } from '../devices/device-registry';
import { describeIssues, deviceHelloSchema } from '../schemas/device-protocol';
import { camelPayload, cleanText, toWsFrame, WS_CLIENT_TYPES, type WsClientType } from '../devices/ws-frames';
import type { RelayMessage } from '../devices/ws-relay';
import { exceedsJsonDepth, TOO_DEEP_MESSAGE } from '../lib/json-depth';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../observability/metrics';
import type { DeviceNamespaceDeps } from './device-namespace';
import type { SocketQuota } from './socket-quota';
import type { Tier } from '../../config';

/** Where desktop apps that speak plain WebSocket connect. */
export const DEVICE_WS_PATH = '/api/v1/ws/device';
/**
 * Close codes: 1008 for ten bad frames in a row, 4000 replaced, 4001 no pong,
 * 4002 token expired or its sign-in session revoked.
 */
export const WS_CLOSE = { badFrames: 1008, replaced: 4000, heartbeat: 4001, tokenExpired: 4002, shutdown: 1001 } as const;

/** The same handlers the Socket.IO `/device` namespace uses, so both transports behave alike. */
export type DeviceFrameHandlers = Pick<
  DeviceNamespaceDeps,
  'onDeviceHello' | 'onChatRequest' | 'onToolApproval' | 'onAgentFrame' | 'onChatCancel'
>;

export interface DeviceWsOptions {
  /** `ping` every this often (default 30 s). */
  pingIntervalMs?: number;
  /** No `pong` this long after a `ping` closes the connection (default 10 s). */
  pongTimeoutMs?: number;
  /** Frames larger than this get `error too_large` (default 1 MB, like Socket.IO's limit). */
  maxFrameBytes?: number;
}

/**
 * The user of a connection. `person`: the connection was opened with a session token, so its
 * decisions on approvals are a signed-in person's (a connection opened with an API key serves
 * tools but cannot decide).
 */
export type WsUser = { id: string; name: string; email: string; tier?: Tier; person: boolean };

/**
 * Another plain-WebSocket endpoint served behind the same upgrade: the same token check, sign-in
 * session watch, socket quota and expiry close; `connect` takes the open socket from there.
 */
export interface AuthenticatedWsEndpoint {
  path: string;
  connect(ws: WebSocket, user: WsUser, connId: string): { finished: Promise<void> };
}

export interface DeviceWsDeps extends DeviceFrameHandlers, DeviceWsOptions {
  /** Further endpoints on the same authenticated upgrade (the device protocol stays on its own path). */
  endpoints?: AuthenticatedWsEndpoint[];
  tokens: TokenSettings;
  registry: DeviceRegistry;
  /** Carries presence signals, replacements and relayed traffic; must have a relay. */
  channel: DeviceChannel;
  logger: Logger;
  metrics?: Metrics;
  /** MAX_SOCKETS_PER_USER, shared with the Socket.IO namespaces: over it the upgrade is 429. */
  quota?: Pick<SocketQuota, 'hold' | 'release'>;
}

/** Bad frames in a row that close the connection. */
const MAX_BAD_FRAMES = 10;
/** Frames (and their bytes) waiting to be handled; a client that floods past either is closed. */
const MAX_QUEUED_FRAMES = 256;
const MAX_QUEUED_BYTES = 8 * 1024 * 1024;
const HARD_MAX_BYTES = 4 * 1024 * 1024;
/** Turns a connection is known to have started: enough for every turn it can have running at once. */
const MAX_OWN_TURNS = 64;

/**
 * `GET /api/v1/ws/device?token=<jwt>`: the desktop apps' plain-WebSocket device protocol on the API
 * port, beside Socket.IO `/device` and behind the same device channel: presence in the registry
 * and signals, tool calls from any process (relayed through Redis to this node), one-way messages,
 * agent runs, approvals and chat through the namespace's own handlers. A bad token is refused at
 * the upgrade with 401; bad frames get `error` frames (10 in a row close with 1008).
 */
/** Frames carrying the device's data rather than a command (see `guardSocketText` for Socket.IO). */
const DEVICE_DATA = new Set<unknown>(['agent_data', 'agent_complete', 'tool_result']);

export function attachDeviceWebSocket(httpServer: HttpServer, deps: DeviceWsDeps): { close(): Promise<void>; connections(): number } {
  if (!deps.channel.relay) throw new Error('the plain-WebSocket device endpoint needs a device channel with a relay');
  const log = deps.logger.child({ component: 'device-ws' });
  const relay = deps.channel.relay;
  // skipUTF8Validation: invalid UTF-8 would close with 1007; we answer it with an error frame instead.
  const wss = new WebSocketServer({ noServer: true, maxPayload: HARD_MAX_BYTES, skipUTF8Validation: true, perMessageDeflate: false });
  const open = new Set<WebSocket>();
  /** Connections whose close is still being handled: a stop waits for them (gone signals written). */
  const finishing = new Set<Promise<void>>();

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const endpoint = deps.endpoints?.find((candidate) => candidate.path === url.pathname);
    if (url.pathname !== DEVICE_WS_PATH && !endpoint) return; // Socket.IO's own upgrade listener handles the rest
    void (async () => {
      const token = url.searchParams.get('token');
      let claims: Awaited<ReturnType<typeof verifyAccessToken>>;
      try {
        claims = token && token.length <= 4096 ? await verifyAccessToken(deps.tokens, token) : null;
      } catch (error) {
        log.warn({ err: error }, 'device websocket token check failed');
        return refuseUpgrade(socket, 503, 'Service Unavailable', 'unavailable', 'Could not check the token; try again');
      }
      if (!claims) return refuseUpgrade(socket, 401, 'Unauthorized', 'unauthorized', 'A valid access token is required (?token=)');
      // tier: its chat_request counts in the user's tier limits. Only an access token opens this
      // upgrade (an API key is 401 above), so the connection is a signed-in person's.
      const user: WsUser = { id: claims.sub, name: claims.name, email: claims.email, tier: claims.tier, person: true };
      const connId = `ws-${randomUUID()}`;
      const member = `${url.pathname}#${connId}`;
      if (deps.quota && !(await deps.quota.hold(user.id, member)))
        return refuseUpgrade(socket, 429, 'Too Many Requests', 'too_many_sockets', 'Too many open sockets for this user');
      const releaseQuota = () =>
        void deps.quota?.release(user.id, member).catch((error: unknown) => log.warn({ err: error }, 'socket lease release failed'));
      // A logout (or refresh-token reuse) ends the connection on whichever node holds it.
      // Listen first, then ask again whether the session stands, so a logout in between is not missed.
      let opened: WebSocket | undefined;
      let revokedEarly = false;
      const closeRevoked = () => {
        if (!opened) return void (revokedEarly = true);
        if (opened.readyState === opened.OPEN)
          opened.send(
            JSON.stringify({ type: 'error', code: 'session_revoked', message: 'This sign-in session was revoked; sign in again' }),
          );
        opened.close(WS_CLOSE.tokenExpired, 'session revoked');
      };
      let unwatch: () => Promise<void> = async () => undefined;
      let released = false;
      const done = () => {
        if (released) return;
        released = true;
        void unwatch().catch((error: unknown) => log.warn({ err: error }, 'device revocation watch not removed'));
        releaseQuota();
      };
      let stands: boolean;
      try {
        if (claims.sid) unwatch = await relay.watchSession(claims.sid, closeRevoked);
        stands = claims.sid && deps.tokens.accept ? await deps.tokens.accept(claims) : true;
      } catch (error) {
        done();
        log.warn({ err: error }, 'device websocket session check failed');
        return refuseUpgrade(socket, 503, 'Service Unavailable', 'unavailable', 'Could not check the token; try again');
      }
      if (!stands || revokedEarly)
        return (done(), refuseUpgrade(socket, 401, 'Unauthorized', 'unauthorized', 'A valid access token is required (?token=)'));
      if (socket.destroyed) return done();
      const expiresAt = (claims.exp ?? 0) * 1000;
      // ws answers a malformed upgrade (bad key, version, method) itself and never calls back: the
      // socket's close is then the only moment the lease and the session watch can be released.
      socket.once('close', done);
      wss.handleUpgrade(req, socket, head, (ws) => {
        open.add(ws);
        opened = ws;
        // An expired access token ends the connection (as on Socket.IO); the app reconnects with a new one.
        const expiry = setTimeout(
          () => ws.close(WS_CLOSE.tokenExpired, 'access token expired'),
          Math.min(Math.max(expiresAt - Date.now(), 0), 2 ** 31 - 1),
        );
        expiry.unref();
        ws.once('close', () => (open.delete(ws), clearTimeout(expiry), done()));
        if (endpoint) {
          const { finished } = endpoint.connect(ws, user, connId);
          finishing.add(finished);
          void finished.then(() => finishing.delete(finished));
          return;
        }
        const connection = new DeviceWsConnection(ws, user, connId, deps, log);
        finishing.add(connection.finished);
        void connection.finished.then(() => finishing.delete(connection.finished));
        connection.start();
      });
    })().catch((error: unknown) => {
      log.error({ err: error }, 'device websocket upgrade failed');
      socket.destroy();
    });
  };
  httpServer.on('upgrade', onUpgrade);

  return {
    connections: () => open.size,
    close: async () => {
      httpServer.off('upgrade', onUpgrade);
      // Upgraded sockets keep the HTTP server open: close them (1001), and cut those whose peer
      // does not finish the closing handshake within a second.
      const closing = [...open].map(
        (ws) => new Promise<void>((resolve) => (ws.once('close', () => resolve()), ws.close(WS_CLOSE.shutdown, 'server shutting down'))),
      );
      const grace = setTimeout(() => open.forEach((ws) => ws.terminate()), 1_000);
      await Promise.all(closing);
      clearTimeout(grace);
      // Their 'gone' signals were written at once; the rest (relay release, registry) may wait on
      // a Redis that is away: give it the same second, not the whole shutdown deadline.
      await Promise.race([Promise.all(finishing), new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

function refuseUpgrade(socket: Duplex, status: number, text: string, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** One device's connection: its state machine (hello first), heartbeat, frames and relayed traffic. */
class DeviceWsConnection {
  private readonly connectedAt = new Date().toISOString();
  private deviceId?: string;
  private badInARow = 0;
  private queued = 0;
  private queuedBytes = 0;
  private chain: Promise<void> = Promise.resolve();
  /** The chat turns this connection started (their frames are written to it), oldest first. */
  private readonly ownTurns = new Set<string>();
  /** `device_hello {all_turns: true}`: the frames of every turn on the device are written too. */
  private allTurns = false;
  /** Tool calls sent to the device: id → the reply channel of the process that asked. */
  private readonly calls = new Map<string, string>();
  private release?: () => Promise<void>;
  private pingTimer?: NodeJS.Timeout;
  private pongTimer?: NodeJS.Timeout;
  private closed = false;
  private readonly log: Logger;
  private settle: () => void = () => undefined;
  /** Settles when the close is fully handled: gone published, relay released, registry updated. */
  readonly finished: Promise<void> = new Promise((resolve) => (this.settle = resolve));

  constructor(
    private readonly ws: WebSocket,
    private readonly user: WsUser,
    private readonly connId: string,
    private readonly deps: DeviceWsDeps,
    log: Logger,
  ) {
    this.log = log.child({ userId: user.id, connId: this.connId });
  }

  start(): void {
    const { ws } = this;
    ws.on('message', (data, isBinary) => this.enqueue(data, isBinary));
    ws.on('error', (error) => this.log.debug({ err: error }, 'device websocket error'));
    ws.once('close', (code) => void this.onClose(code).finally(this.settle));
    const pingEvery = this.deps.pingIntervalMs ?? 30_000;
    this.pingTimer = setInterval(() => this.ping(), pingEvery);
    this.pingTimer.unref();
    this.deps.metrics?.sockets.inc({ namespace: DEVICE_WS_PATH });
    this.log.info('device websocket connected');
  }

  private ping(): void {
    if (this.pongTimer) return; // still waiting for the last pong
    this.write({ type: 'ping' });
    this.pongTimer = setTimeout(() => this.ws.close(WS_CLOSE.heartbeat, 'no pong within the timeout'), this.deps.pongTimeoutMs ?? 10_000);
    this.pongTimer.unref();
  }

  private write(frame: Record<string, unknown>): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify(frame));
  }

  /**
   * An error frame; a bad frame also counts toward closing the connection. A busy session's refusal
   * does not: the chat_request was well-formed, and closing would also end the tools of the turn
   * running on this device.
   */
  private refuse(code: string, message: string): void {
    this.write({ type: 'error', code, message });
    if (code === TURN_IN_PROGRESS) return;
    this.badInARow += 1;
    if (this.badInARow >= MAX_BAD_FRAMES) this.ws.close(WS_CLOSE.badFrames, `${MAX_BAD_FRAMES} bad frames in a row`);
  }

  /** Frames are handled one at a time, in order (agent_data before agent_complete, hello before chat). */
  private enqueue(data: RawData, isBinary: boolean): void {
    const size = Array.isArray(data) ? data.reduce((sum, part) => sum + part.length, 0) : (data as ArrayBuffer).byteLength;
    this.queued += 1;
    this.queuedBytes += size;
    if (this.queued > MAX_QUEUED_FRAMES || this.queuedBytes > MAX_QUEUED_BYTES)
      return void this.ws.close(WS_CLOSE.badFrames, 'too many frames waiting');
    this.chain = this.chain
      .then(() => this.handle(data, isBinary))
      .catch((error: unknown) => {
        this.log.error({ err: error }, 'device frame failed');
        this.write({ type: 'error', code: 'internal', message: 'The frame could not be handled' });
      })
      .finally(() => {
        this.queued -= 1;
        this.queuedBytes -= size;
      });
  }

  private async handle(data: RawData, isBinary: boolean): Promise<void> {
    if (this.closed) return;
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    if (isBinary) return this.refuse('invalid_frame', 'Frames are JSON text, not binary');
    if (bytes.length > (this.deps.maxFrameBytes ?? 1_000_000))
      return this.refuse('too_large', `Frames are limited to ${this.deps.maxFrameBytes ?? 1_000_000} bytes`);
    let frame: unknown;
    try {
      frame = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    } catch {
      return this.refuse('invalid_json', 'The frame is not valid UTF-8 JSON');
    }
    if (exceedsJsonDepth(frame)) return this.refuse('validation_failed', TOO_DEEP_MESSAGE);
    if (!frame || typeof frame !== 'object' || Array.isArray(frame))
      return this.refuse('invalid_frame', 'A frame is a JSON object with a "type"');
    const type = (frame as { type?: unknown }).type;
    // The device's own data (files, their errors, tool results) is cleaned where it enters, like on
    // Socket.IO: refusing it would lose the user's files or leave a run open. Commands are refused.
    if (!DEVICE_DATA.has(type) && !cleanText(frame))
      return this.refuse('invalid_text', 'Text must be well-formed Unicode without NUL characters');
    if (typeof type !== 'string' || !(WS_CLIENT_TYPES as readonly string[]).includes(type)) {
      return this.refuse(
        'unknown_type',
        `Unknown frame type ${JSON.stringify(type)?.slice(0, 60) ?? 'none'}; expected one of ${WS_CLIENT_TYPES.join(', ')}`,
      );
    }
    const body = frame as Record<string, unknown>;
    if (type === 'pong') {
      clearTimeout(this.pongTimer);
      this.pongTimer = undefined;
      this.badInARow = 0;
      return;
    }
    // The app's own heartbeat, at any time (before device_hello too), whatever else it carries: answered, never a bad frame.
    if (type === 'ping') {
      this.badInARow = 0;
      return this.write({ type: 'pong' });
    }
    if (type === 'tool_result') return this.toolResult(body);
    const converted = camelPayload(type as Exclude<WsClientType, 'tool_result'>, body);
    if ('unknownField' in converted)
      return this.refuse('validation_failed', `${type} has no field ${JSON.stringify(converted.unknownField).slice(0, 80)}`);
    if (type === 'device_hello') return this.hello(converted.payload);
    if (!this.deviceId) return this.refuse('hello_required', 'Send device_hello first');
    await this.dispatch(type as Exclude<WsClientType, 'tool_result' | 'pong' | 'ping' | 'device_hello'>, converted.payload, this.deviceId);
  }

  private async hello(payload: Record<string, unknown>): Promise<void> {
    const parsed = deviceHelloSchema.safeParse(payload);
    if (!parsed.success) return this.refuse('validation_failed', describeIssues(parsed.error));
    const { deviceId, agentIds, project, tables, allTurns } = parsed.data;
    if (this.deviceId && this.deviceId !== deviceId)
      return this.refuse('invalid_device', `This connection is device ${this.deviceId}; open another for ${deviceId}`);
    this.allTurns = allTurns === true;
    const { channel, registry } = this.deps;
    const userId = this.user.id;
    const presence = {
      deviceId,
      socketId: this.connId,
      connectedAt: this.connectedAt,
      agentIds,
      ...(project ? { project } : {}),
      ...(tables === false ? { tables } : {}),
    };
    if (!this.deviceId) {
      this.deviceId = deviceId;
      try {
        // Listen first, so that what is sent to the device from now on reaches this connection.
        this.release = await channel.relay!.hold(userId, deviceId, (message) => this.onRelay(message));
        if (this.closed) return void this.release();
        await channel.replaceOthers(userId, deviceId, this.connId);
        await registry.register(userId, presence);
      } catch (error) {
        // A hello that failed half way (Redis blip) must not leave a device that looks online but
        // receives nothing: the app's retried hello starts over.
        const release = this.release;
        this.deviceId = undefined;
        this.release = undefined;
        await release?.().catch((error: unknown) => this.log.warn({ err: error }, 'device slot not released after a failed hello'));
        throw error;
      }
      // Closed meanwhile: onClose may have run before the entry existed.
      if (this.closed) return void (await registry.unregister(userId, deviceId, this.connId));
      this.log.info({ deviceId }, 'device said hello');
    } else {
      await registry.setAgentIds(userId, presence);
    }
    this.badInARow = 0;
    channel.signals.publishOnline({ userId, deviceId, socketId: this.connId, agentIds });
    try {
      await this.deps.onDeviceHello?.(userId, deviceId, agentIds);
    } catch (error) {
      this.log.error({ err: error, deviceId }, 'onDeviceHello hook failed');
    }
  }

  private async dispatch(
    type: 'chat_request' | 'agent_data' | 'agent_complete' | 'tool_approval' | 'chat_cancel',
    payload: Record<string, unknown>,
    deviceId: string,
  ): Promise<void> {
    const { deps, user } = this;
    let failure: { code: string; message?: string } | undefined;
    if (type === 'chat_request') {
      // The turn's id is chosen here and known before the turn starts: its frames are this connection's from the first.
      const turnId = randomUUID();
      this.ownTurns.add(turnId);
      if (this.ownTurns.size > MAX_OWN_TURNS) this.ownTurns.delete(this.ownTurns.values().next().value!);
      const ack = deps.onChatRequest
        ? await deps.onChatRequest(user, deviceId, payload, turnId).catch((error: unknown) => {
            this.ownTurns.delete(turnId);
            throw error;
          })
        : { error: { code: 'unavailable', message: 'The assistant is not available on this server' } };
      if ('error' in ack) {
        this.ownTurns.delete(turnId);
        failure = ack.error;
      }
    } else if (type === 'tool_approval') {
      const ack = deps.onToolApproval
        ? await deps.onToolApproval(user, deviceId, payload)
        : { error: { code: 'unavailable', message: 'Approvals are not available on this server' } };
      if ('error' in ack) failure = ack.error;
    } else if (type === 'chat_cancel') {
      const ack = deps.onChatCancel
        ? await deps.onChatCancel(user, deviceId, payload)
        : { ok: false as const, error: { code: 'not_supported', message: 'chat_cancel is not supported by this server yet' } };
      if (!ack.ok) failure = ack.error;
    } else {
      const ack = deps.onAgentFrame
        ? await deps.onAgentFrame(user, deviceId, type, payload)
        : { ok: false as const, error: { code: 'unavailable', message: 'Agent runs are not available on this server' } };
      if (!ack.ok) failure = ack.error;
    }
    if (failure) return this.refuse(failure.code, failure.message ?? failure.code);
    this.badInARow = 0;
  }

  /** A `tool_result` goes back to the process that asked; an id this connection did not send is refused. */
  private async toolResult(frame: Record<string, unknown>): Promise<void> {
    const id = frame.id;
    const replyTo = typeof id === 'string' ? this.calls.get(id) : undefined;
    if (!replyTo)
      return this.refuse(
        'unknown_call',
        `No tool_call ${JSON.stringify(id)?.slice(0, 80) ?? ''} is waiting for a result on this connection`,
      );
    this.calls.delete(id as string);
    const { type: _type, ...reply } = frame;
    this.badInARow = 0;
    await this.deps.channel.relay!.reply(replyTo, reply);
  }

  private onRelay(message: RelayMessage): void {
    if (message.k === 'revoked') return; // arrives on the session's channel, handled at the upgrade
    if (message.k === 'replace') {
      if (message.connId !== this.connId) this.ws.close(WS_CLOSE.replaced, 'replaced by a newer connection of this device');
      return;
    }
    if (message.k === 'call') {
      const { id } = message.call;
      this.calls.set(id, message.replyTo);
      // Past the caller's timeout nobody waits for the result: a late one is an unknown id.
      setTimeout(() => this.calls.delete(id), message.timeoutMs).unref();
      return this.write({ type: 'tool_call', ...message.call });
    }
    // A chat turn's frame: only the connection that started the turn writes it, or one that asked for every turn's.
    if (message.turn && !this.allTurns && !this.ownTurns.has(message.turn)) return;
    const frame = toWsFrame(message.event, message.payload);
    if (frame) this.write(frame);
  }

  private async onClose(code: number): Promise<void> {
    this.closed = true;
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    this.deps.metrics?.sockets.dec({ namespace: DEVICE_WS_PATH });
    const { deviceId } = this;
    this.log.info({ deviceId, code }, 'device websocket closed');
    // Published first, before any await: calls waiting on this device end at once, and a graceful
    // stop cannot close the adapter's connection before the signal is written (CI saw 'timeout').
    if (deviceId)
      this.deps.channel.signals.publishGone({ userId: this.user.id, deviceId, socketId: this.connId, reason: `websocket close ${code}` });
    await this.release?.().catch((error: unknown) => this.log.warn({ err: error, deviceId }, 'device slot not released on close'));
    if (!deviceId) return;
    await this.deps.registry
      .unregister(this.user.id, deviceId, this.connId)
      .catch((error: unknown) => this.log.warn({ err: error }, 'device unregistration failed'));
  }
}
