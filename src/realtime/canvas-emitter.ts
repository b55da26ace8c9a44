import type { Namespace, Server } from 'socket.io';
import type { Logger } from '../lib/logger';
import { startSpan, tracingOn, withSpan } from '../observability/tracing';
import type { CanvasLog } from './canvas-log';
import type { CanvasRoom, LoggedCanvasEvent, RoomPayload, StagedCanvasEvent } from '../schemas/canvas-room';
import type { JsonText } from './socket-parser';
import { roomBroadcasts, type RoomBroadcastRecord } from './socket-server';
import {
  CANVAS_NAMESPACE,
  rooms,
  type CanvasClientEvents,
  type CanvasRoomEventName,
  type CanvasServerEvents,
  type CanvasServerSideEvents,
  type CanvasSocketData,
  type CanvasUserEventName,
} from '../schemas/socket-events';

export type CanvasNamespace = Namespace<CanvasClientEvents, CanvasServerEvents, CanvasServerSideEvents, CanvasSocketData>;

/**
 * Emits canvas room events from any process (API or worker). One Redis call per event
 * (canvas-log.ts) gives it the canvas's next `seq`, keeps it in the canvas's replay log and adds
 * it to the Socket.IO adapter's stream, from which every node holding sockets of the room sends
 * it, in seq order. A client that notices a gap in `seq`, or reconnects, asks
 * `canvas:sync` for what it missed.
 */
export class CanvasEmitter implements CanvasRoom {
  private readonly nsp: CanvasNamespace;
  private readonly broadcast: (room: string, event: string) => RoomBroadcastRecord;

  constructor(
    io: Server,
    private readonly log: CanvasLog,
    private readonly logger?: Logger,
  ) {
    this.nsp = io.of(CANVAS_NAMESPACE) as CanvasNamespace;
    this.broadcast = roomBroadcasts(io, this.nsp);
  }

  /**
   * Resolves with the event's seq once it is logged and sent, or 0 when the canvas was deleted
   * (neither); rejects when Redis refused it (neither).
   */
  emit<E extends CanvasRoomEventName>(canvasId: string, event: E, payload: RoomPayload<E>): Promise<number> {
    if (!tracingOn()) return this.log.append(canvasId, event, payload, this.broadcast(rooms.canvas(canvasId), event));
    return withSpan(`emit ${event}`, 'producer', emitAttributes(canvasId, event, 1), async (span) => {
      const seq = await this.log.append(canvasId, event, payload, this.broadcast(rooms.canvas(canvasId), event));
      span?.setAttributes({ 'switchboard.canvas.seq': seq });
      return seq;
    });
  }

  /**
   * `emit` in two steps, for a change stored in a database transaction. Call `stage` inside the
   * transaction: the event gets its seq and is logged, so a Redis that refuses it rolls the change
   * back, and seqs follow the order in which changes to the canvas commit. Call the result's `send`
   * once the transaction has committed: a client that reads the stored state as soon as the event
   * reaches it reads the change. An event logged but never sent (a crash between the steps, a
   * failed send, which `send` logs and never rejects with) reaches clients as a seq gap, filled
   * from the log by `canvas:sync`.
   */
  async stage<E extends CanvasRoomEventName>(canvasId: string, event: E, payload: RoomPayload<E>): Promise<StagedCanvasEvent> {
    const staged = await this.log.stage(canvasId, event, payload, this.broadcast(rooms.canvas(canvasId), event));
    const send = tracingOn()
      ? () =>
          withSpan(
            `emit ${event}`,
            'producer',
            { ...emitAttributes(canvasId, event, 1), 'switchboard.canvas.seq': staged.seq },
            staged.send,
          )
      : staged.send;
    return {
      seq: staged.seq,
      send: () =>
        send().catch((error: unknown) =>
          this.logger?.warn(
            { err: error, canvasId, event, seq: staged.seq },
            'room event logged but not sent; clients catch up on it by seq',
          ),
        ),
    };
  }

  /**
   * `emit` for several events of one kind to one canvas, in order, in one call to Redis (a
   * broadcast's chunks). A payload may come serialized already (`JsonText`), in the event's shape.
   */
  emitAll<E extends CanvasRoomEventName>(canvasId: string, event: E, payloads: Array<RoomPayload<E> | JsonText>): Promise<number[]> {
    if (!tracingOn()) return this.log.appendAll(canvasId, event, payloads, this.broadcast(rooms.canvas(canvasId), event));
    return withSpan(`emit ${event}`, 'producer', emitAttributes(canvasId, event, payloads.length), () =>
      this.log.appendAll(canvasId, event, payloads, this.broadcast(rooms.canvas(canvasId), event)),
    );
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
   * logged and resolves undefined. Awaiting it puts the event in the log and on its way before the
   * HTTP response; a client may still see the response first (it listens before it asks).
   */
  notify<E extends CanvasRoomEventName>(canvasId: string, event: E, payload: RoomPayload<E>): Promise<number | undefined> {
    return this.emit(canvasId, event, payload).catch((error: unknown) => {
      this.logger?.warn({ err: error, canvasId, event }, 'room event not sent');
      return undefined;
    });
  }

  /**
   * Takes every `/canvas` socket of `userId`, on any node, out of the canvas's room (a removed
   * member): they receive none of its events from now on, and must join again (which checks
   * membership) to follow it.
   */
  leaveRoom(canvasId: string, userId: string): void {
    this.nsp.in(rooms.user(userId)).socketsLeave(rooms.canvas(canvasId));
  }

  /**
   * Sends an event to every `/canvas` socket of `userId` on any node (room `user:<id>`, joined on
   * connection), whether or not it joined a canvas. Not sequenced: these are not room events.
   */
  toUser<E extends CanvasUserEventName>(userId: string, event: E, payload: Parameters<CanvasServerEvents[E]>[0]): void {
    const span = tracingOn()
      ? startSpan(`emit ${event}`, 'producer', { 'messaging.system': 'socket.io', 'switchboard.event': event, 'switchboard.room': 'user' })
      : undefined;
    const room = this.nsp.to(rooms.user(userId));
    (room.emit as (event: E, payload: unknown) => boolean).call(room, event, payload);
    span?.end();
  }
}

/** A room emit's span: the canvas, the event and how many events it carried (never their payloads). */
function emitAttributes(canvasId: string, event: string, count: number) {
  return {
    'messaging.system': 'socket.io',
    'messaging.destination.name': CANVAS_NAMESPACE,
    'messaging.batch.message_count': count,
    'switchboard.event': event,
    'switchboard.canvas.id': canvasId,
  };
}
