import type { ManagerOptions, Socket, SocketOptions } from 'socket.io-client';
import {
  CANVAS_ROOM_EVENTS,
  type CanvasClientEvents,
  type CanvasServerEvents,
  type DeviceClientEvents,
  type DeviceServerEvents,
  type JoinAck,
  type SyncAck,
} from './events';
import { CanvasSequencer, type CanvasRoomEvent } from './canvas-sync';
import { tokenExpiry } from './transport';

export type { CanvasRoomEvent } from './canvas-sync';

/** A token, or a function giving the current one (read again on every reconnection). */
export type TokenSource = string | (() => string | undefined | Promise<string | undefined>);

export interface SocketConnectOptions {
  /** Server root, e.g. `http://127.0.0.1:3000`. */
  url: string;
  token: TokenSource;
  /** Reconnect after a dropped connection (default true). */
  reconnection?: boolean;
  /** How long to wait for the first connection (default 10 s). */
  timeoutMs?: number;
  /** Passed through to socket.io-client (e.g. `transports`). WebSocket only by default: no sticky sessions needed. */
  socketOptions?: Partial<ManagerOptions & SocketOptions>;
}

/**
 * Reloads a canvas after `resync`; events wait for the returned promise. Resolve it with the blocks
 * read (`blocks.listAll`'s answer) and events adding any of those blocks are not handed on again.
 */
export type ResyncListener = (canvasId: string, lastSeq: number) => unknown;

/** The typed `/canvas` socket. */
export type CanvasSocket = Socket<CanvasServerEvents, CanvasClientEvents>;
/** The typed `/device` socket. */
export type DeviceSocket = Socket<DeviceServerEvents, DeviceClientEvents>;

type Payload<Map, E extends keyof Map> = Map[E] extends (payload: infer P, ...rest: never[]) => void ? P : never;

/**
 * The `/canvas` socket with helpers; rooms joined through `join` are joined again after a
 * reconnection that lost them. `onEvent` hands the room events of joined canvases to the
 * application in `seq` order, each exactly once, catching up after every reconnect and at every
 * gap; the raw socket events (`on('block_added')`) stay available but may repeat or
 * miss across reconnects.
 */
export interface CanvasConnection extends CanvasSocket {
  /**
   * `canvas:join`; resolves with the ack (`{ok:true, presence, seq}` or `{ok:false, error}`). Give
   * `load` (e.g. `() => sb.blocks.listAll(id).then((blocks) => (show(blocks), blocks))`) to load the
   * canvas after the join as docs/protocol.md's catch-up rules say: room events wait until it
   * settles, then follow it; when it resolves with the blocks, events adding them are not handed on.
   */
  join(canvasId: string, timeoutMs?: number, load?: () => unknown): Promise<JoinAck>;
  /** Room events of joined canvases, in order, exactly once. Returns the unsubscribe function. */
  onEvent(listener: (event: CanvasRoomEvent) => void): () => void;
  /**
   * The server no longer keeps what this client missed, or the canvas's ranks were rewritten
   * (`blocks_reranked`): reload the canvas (`blocks.listAll`). Return the reload's promise: events
   * after `lastSeq` are held back until it settles, then handed on, without the blocks it resolved with.
   */
  onResync(listener: ResyncListener): () => void;
  /** The last seq handed to `onEvent` listeners for a joined canvas. */
  lastSeq(canvasId: string): number | undefined;
  /** Asks the server for anything missed now (done by itself after reconnects and gaps). */
  catchUp(canvasId: string): Promise<void>;
  /** `canvas:leave`. */
  leave(canvasId: string, timeoutMs?: number): Promise<{ ok: boolean }>;
  /** `canvas:cursor` (volatile: dropped rather than queued when the connection is busy). */
  cursor(canvasId: string, x: number, y: number): void;
  /** Resolves with the next `event` payload that satisfies `predicate`; rejects after `timeoutMs` (default 10 s). */
  waitFor<E extends keyof CanvasServerEvents>(
    event: E,
    predicate?: (payload: Payload<CanvasServerEvents, E>) => boolean,
    timeoutMs?: number,
  ): Promise<Payload<CanvasServerEvents, E>>;
}

/**
 * Connects to `/canvas` (`auth: {token}`) and resolves once connected; rejects with the server's
 * `connect_error` (message `unauthorized` for a bad token).
 */
export async function connectCanvas(options: SocketConnectOptions): Promise<CanvasConnection> {
  const socket = await createSocket<CanvasSocket>(options, '/canvas', {});
  const listeners = new Set<(event: CanvasRoomEvent) => void>();
  const resyncListeners = new Set<ResyncListener>();
  // A catch-up that times out (a busy server, a connection dying) is asked again while the socket
  // stays connected; once it drops, the reconnect asks anyway.
  const sync = async (canvasId: string, afterSeq: number): Promise<SyncAck> => {
    for (let attempt = 0; ; attempt += 1) {
      try {
        const ack = (await socket.timeout(10_000).emitWithAck('canvas:sync', { canvasId, afterSeq })) as SyncAck;
        if (ack.ok || ack.error.code !== 'rate_limited' || attempt >= 5) return ack;
        await new Promise((resolve) => setTimeout(resolve, 500 * (attempt + 1)));
      } catch (error) {
        if (!socket.connected || attempt >= 5) throw error;
      }
    }
  };
  const sequencer = new CanvasSequencer(
    sync,
    (event) => listeners.forEach((listener) => listener(event)),
    // What the listeners read (the blocks, when they resolve with them) tells the sequencer which block events repeat the reload.
    (canvasId, lastSeq) => Promise.all([...resyncListeners].map((listener) => listener(canvasId, lastSeq))),
  );
  for (const name of CANVAS_ROOM_EVENTS) {
    (socket as unknown as { on(event: string, handler: (payload: { canvasId: string; seq?: number }) => void): void }).on(name, (payload) =>
      sequencer.receive(name, payload),
    );
  }
  const connection = Object.assign(socket, {
    async join(canvasId: string, timeoutMs = 10_000, load?: () => unknown) {
      const ack = (await socket.timeout(timeoutMs).emitWithAck('canvas:join', canvasId)) as JoinAck;
      if (ack.ok) sequencer.track(canvasId, ack.seq);
      if (ack.ok && load) await sequencer.load(canvasId, load);
      return ack;
    },
    async leave(canvasId: string, timeoutMs = 10_000) {
      sequencer.untrack(canvasId);
      return socket.timeout(timeoutMs).emitWithAck('canvas:leave', canvasId) as Promise<{ ok: boolean }>;
    },
    onEvent(listener: (event: CanvasRoomEvent) => void) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    onResync(listener: ResyncListener) {
      resyncListeners.add(listener);
      return () => void resyncListeners.delete(listener);
    },
    lastSeq: (canvasId: string) => sequencer.lastSeq(canvasId),
    catchUp: (canvasId: string) => sequencer.catchUp(canvasId),
    cursor(canvasId: string, x: number, y: number) {
      socket.volatile.emit('canvas:cursor', { canvasId, x, y });
    },
    waitFor<E extends keyof CanvasServerEvents>(
      event: E,
      predicate: (payload: Payload<CanvasServerEvents, E>) => boolean = () => true,
      timeoutMs = 10_000,
    ) {
      return waitForEvent(socket, event, predicate, timeoutMs);
    },
  }) as CanvasConnection;
  // After EVERY reconnect: rejoin the rooms the server forgot (a reconnect it did not recover), then
  // catch up by seq whether or not Socket.IO says it recovered (its recovery can miss a packet).
  let first = true;
  socket.on('connect', () => {
    if (first) return void (first = false);
    for (const canvasId of sequencer.tracked()) {
      const rejoin = socket.recovered
        ? Promise.resolve(true)
        : socket
            .timeout(10_000)
            .emitWithAck('canvas:join', canvasId)
            .then((ack: JoinAck) => ack.ok || (sequencer.untrack(canvasId), false));
      // eslint-disable-next-line no-restricted-syntax -- a rejoin that fails leaves the canvas untracked or behind; the next reconnect or event catches it up
      void rejoin.then((ok) => (ok ? sequencer.catchUp(canvasId) : undefined)).catch(() => undefined);
    }
  });
  await connected(socket, options.timeoutMs ?? 10_000);
  return connection;
}

/**
 * Builds a socket for `namespace` with `auth` read on every (re)connection. Not connected yet.
 * socket.io-client is imported on first use, so an app that only uses the HTTP client never bundles it.
 */
export async function createSocket<S extends Socket>(
  options: SocketConnectOptions,
  namespace: string,
  extraAuth: Record<string, unknown>,
): Promise<S> {
  const { io } = await import('socket.io-client');
  const state: { token?: string } = {};
  const auth = (callback: (data: object) => void) => {
    currentToken(options.token).then(
      (token) => ((state.token = token), callback({ ...extraAuth, token })),
      () => callback({ ...extraAuth }),
    );
  };
  const socket = io(`${options.url.replace(/\/+$/, '')}${namespace}`, {
    transports: ['websocket'],
    forceNew: true,
    reconnection: options.reconnection ?? true,
    ...options.socketOptions,
    autoConnect: false,
    auth,
  }) as unknown as S;
  keepAuthenticated(socket, options.token, state);
  return socket;
}

const currentToken = (source: TokenSource) => Promise.resolve(typeof source === 'function' ? source() : source);

/**
 * Re-authenticates a connected socket before its access token expires (`auth:refresh`):
 * shortly before expiry it asks the token source for a token that lasts longer and sends it. A
 * source that cannot give one (a fixed string) lets the server disconnect the socket at expiry;
 * the next reconnection reads the source again.
 */
function keepAuthenticated(socket: Socket, source: TokenSource, state: { token?: string }) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const schedule = (attempt = 0) => {
    clearTimeout(timer);
    const expiresAt = state.token ? tokenExpiry(state.token) : undefined;
    if (expiresAt === undefined || typeof source !== 'function') return;
    // Renew when a fifth of the lifetime is left (at least 2 s, at most 60 s before expiry), and
    // retry every few seconds if the source had nothing newer yet.
    const lead = Math.min(60_000, Math.max(2_000, (expiresAt - Date.now()) / 5));
    const delay = attempt === 0 ? expiresAt - Date.now() - lead : Math.min(5_000, Math.max(0, (expiresAt - Date.now()) / 2));
    if (expiresAt <= Date.now()) return;
    timer = setTimeout(() => void renew(attempt), Math.max(0, Math.min(delay, 2 ** 31 - 1)));
    (timer as { unref?: () => void }).unref?.();
  };
  const renew = async (attempt: number) => {
    try {
      const token = await currentToken(source);
      const previous = state.token ? (tokenExpiry(state.token) ?? 0) : 0;
      if (!token || (tokenExpiry(token) ?? 0) <= previous) return schedule(attempt + 1);
      const ack = (await socket.timeout(10_000).emitWithAck('auth:refresh', { token })) as { ok: boolean };
      if (ack.ok) state.token = token;
      schedule(ack.ok ? 0 : attempt + 1);
    } catch {
      if (socket.connected) schedule(attempt + 1);
    }
  };
  socket.on('connect', () => schedule());
  socket.on('disconnect', () => clearTimeout(timer));
}

/** Connects `socket` and resolves on `connect`; rejects on `connect_error` or after `timeoutMs` (and closes it). */
export function connected(socket: Socket, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`could not connect within ${timeoutMs} ms`)), timeoutMs);
    const fail = (error: Error) => {
      clearTimeout(timer);
      socket.off('connect', ok);
      socket.close();
      reject(error);
    };
    const ok = () => {
      clearTimeout(timer);
      socket.off('connect_error', fail);
      resolve();
    };
    socket.once('connect', ok);
    socket.once('connect_error', fail);
    socket.connect();
  });
}

/** The next payload of `event` that satisfies `predicate`, or a rejection after `timeoutMs`. */
export function waitForEvent<P>(socket: Socket, event: string, predicate: (payload: P) => boolean, timeoutMs: number): Promise<P> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => (socket.off(event, handler), reject(new Error(`timed out after ${timeoutMs} ms waiting for ${event}`))),
      timeoutMs,
    );
    const handler = (payload: P) => {
      if (!predicate(payload)) return;
      clearTimeout(timer);
      socket.off(event, handler);
      resolve(payload);
    };
    socket.on(event, handler);
  });
}
