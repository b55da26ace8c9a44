import type { Namespace, Server } from 'socket.io';
import { CANVAS_NAMESPACE, rooms, type CanvasClientEvents, type CanvasServerEvents, type CanvasSocketData } from './events';

export type CanvasNamespace = Namespace<CanvasClientEvents, CanvasServerEvents, Record<string, never>, CanvasSocketData>;

/**
 * Emits canvas events into a canvas room from any process (API or worker). The adapter carries
 * them to whichever node holds the sockets.
 */
export class CanvasEmitter {
  private readonly nsp: CanvasNamespace;

  constructor(io: Server) {
    this.nsp = io.of(CANVAS_NAMESPACE) as CanvasNamespace;
  }

  emit<E extends keyof CanvasServerEvents>(canvasId: string, event: E, ...args: Parameters<CanvasServerEvents[E]>): void {
    this.nsp.to(rooms.canvas(canvasId)).emit(event, ...args);
  }
}
