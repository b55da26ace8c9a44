import { io, type Socket } from 'socket.io-client';
import type { CanvasClientEvents, CanvasServerEvents, JoinAck } from '../../src/schemas/socket-events';

export type CanvasClient = Socket<CanvasServerEvents, CanvasClientEvents>;

/** Connects to `/canvas` over websocket; resolves once connected, rejects on connect_error. */
export function connectCanvas(url: string, token: string | undefined, timeoutMs = 5_000): Promise<CanvasClient> {
  const socket: CanvasClient = io(`${url}/canvas`, {
    auth: token === undefined ? {} : { token },
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('socket connect timed out')), timeoutMs);
    socket.once('connect', () => (clearTimeout(timer), resolve(socket)));
    socket.once('connect_error', (error) => (clearTimeout(timer), socket.close(), reject(error)));
  });
}

export function join(socket: CanvasClient, canvasId: string): Promise<JoinAck> {
  return socket.timeout(5_000).emitWithAck('canvas:join', canvasId);
}

/** Resolves with the first `event` payload that satisfies `predicate`. */
export function waitFor<E extends keyof CanvasServerEvents>(
  socket: CanvasClient,
  event: E,
  predicate: (payload: Parameters<CanvasServerEvents[E]>[0]) => boolean = () => true,
  timeoutMs = 10_000,
): Promise<Parameters<CanvasServerEvents[E]>[0]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (socket.off(event, handler as never), reject(new Error(`timed out waiting for ${event}`))), timeoutMs);
    const handler = (payload: Parameters<CanvasServerEvents[E]>[0]) => {
      if (!predicate(payload)) return;
      clearTimeout(timer);
      socket.off(event, handler as never);
      resolve(payload);
    };
    socket.on(event, handler as never);
  });
}

/** Records every payload of `event` for later assertions. */
export function record<E extends keyof CanvasServerEvents>(socket: CanvasClient, event: E): Array<Parameters<CanvasServerEvents[E]>[0]> {
  const seen: Array<Parameters<CanvasServerEvents[E]>[0]> = [];
  socket.on(event, ((payload: Parameters<CanvasServerEvents[E]>[0]) => seen.push(payload)) as never);
  return seen;
}
