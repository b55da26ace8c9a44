import type { Namespace, Server } from 'socket.io';
import type { Logger } from '../lib/logger';
import type { CanvasLog, LoggedCanvasEvent } from './canvas-log';
import { CANVAS_NAMESPACE, rooms, type CanvasClientEvents, type CanvasRoomEventName, type CanvasServerEvents, type CanvasSocketData, type CanvasUserEventName } from './events';

export type CanvasNamespace = Namespace<CanvasClientEvents, CanvasServerEvents, Record<string, never>, CanvasSocketData>;

/** A room event's payload as callers give it: the emitter adds `seq`. */
export type RoomPayload<E extends CanvasRoomEventName> = Omit<Parameters<CanvasServerEvents[E]>[0], 'seq'>;

/**
 * Emits canvas room events from any process (API or worker): each is first given the canvas's next
 * `seq` and kept in the canvas's replay log (one Redis round trip, canvas-log.ts), then sent to the
 * room through the adapter, which carries it to whichever node holds the sockets. A client that
 * notices a gap in `seq`, or reconnects, asks `canvas:sync` for what it missed (issue 16).
 */
export class CanvasEmitter {
  private readonly nsp: CanvasNamespace;

  constructor(
    io: Server,
    private readonly log: CanvasLog,
    private readonly logger?: Logger,
  ) {
    this.nsp = io.of(CANVAS_NAMESPACE) as CanvasNamespace;
  }

  /** Resolves with the event's seq once it is logged and sent; rejects when Redis refused it (nothing sent). */
  async emit<E extends CanvasRoomEventName>(canvasId: string, event: E, payload: RoomPayload<E>): Promise<number> {
    const seq = await this.log.append(canvasId, event, payload);
    const emit = this.nsp.to(rooms.canvas(canvasId)).emit as (event: E, payload: unknown) => boolean;
    emit.call(this.nsp.to(rooms.canvas(canvasId)), event, { ...payload, seq });
    return seq;
  }

  /** The room events named `event` still in the canvas's replay log (what clients got or can catch up on). */
  logged(canvasId: string, event: CanvasRoomEventName): Promise<LoggedCanvasEvent[]> {
    return this.log.eventsNamed(canvasId, event);
  }

  /** Forgets a deleted canvas's sequence and replay log; a failure is logged (the keys then only cost memory). */
  async forget(canvasId: string): Promise<void> {
    await this.log.forget(canvasId).catch((error: unknown) => this.logger?.warn({ err: error, canvasId }, 'canvas log not removed'));
  }

  /**
   * `emit` for callers whose change is already stored and must not fail on the event: a failure is
   * logged and resolves undefined. Awaiting it orders the event before the HTTP response.
   */
  notify<E extends CanvasRoomEventName>(canvasId: string, event: E, payload: RoomPayload<E>): Promise<number | undefined> {
    return this.emit(canvasId, event, payload).catch((error: unknown) => {
      this.logger?.warn({ err: error, canvasId, event }, 'room event not sent');
      return undefined;
    });
  }

  /**
   * Sends an event to every `/canvas` socket of `userId` on any node (room `user:<id>`, joined on
   * connection), whether or not it joined a canvas. Not sequenced: these are not room events.
   */
  toUser<E extends CanvasUserEventName>(userId: string, event: E, payload: Parameters<CanvasServerEvents[E]>[0]): void {
    const room = this.nsp.to(rooms.user(userId));
    (room.emit as (event: E, payload: unknown) => boolean).call(room, event, payload);
  }
}
