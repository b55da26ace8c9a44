import type { CanvasRoomEventName, CanvasServerEvents, CanvasUserEventName } from './socket-events';

/** One room event of a canvas as kept in its log. */
export interface LoggedCanvasEvent {
  seq: number;
  event: string;
  payload: Record<string, unknown>;
}

/** A room event logged with its seq, not yet sent: `send` sends it. */
export interface StagedCanvasEvent {
  seq: number;
  send: () => Promise<void>;
}

/** A room event's payload as callers give it: the room adds `seq`. */
export type RoomPayload<E extends CanvasRoomEventName> = Omit<Parameters<CanvasServerEvents[E]>[0], 'seq'>;

/**
 * What features may do in a canvas's room, from any process: the door they hold instead of a
 * socket server. The realtime edge's `CanvasEmitter` implements it; each event gets the canvas's
 * next `seq`, is kept in its replay log and reaches every node holding sockets of the room.
 */
export interface CanvasRoom {
  /** Resolves with the event's seq once it is logged and sent, or 0 when the canvas was deleted. */
  emit<E extends CanvasRoomEventName>(canvasId: string, event: E, payload: RoomPayload<E>): Promise<number>;
  /** `emit` for several events of one kind to one canvas, in order, in one call to Redis; their seqs (0 on a deleted canvas). */
  emitAll<E extends CanvasRoomEventName>(canvasId: string, event: E, payloads: Array<RoomPayload<E>>): Promise<number[]>;
  /**
   * `emit` in two steps, for a change stored in a database transaction: `stage` inside it (a Redis
   * that refuses the event rolls the change back), the result's `send` once it has committed.
   */
  stage<E extends CanvasRoomEventName>(canvasId: string, event: E, payload: RoomPayload<E>): Promise<StagedCanvasEvent>;
  /** The room events named `event` still in the canvas's replay log. */
  logged(canvasId: string, event: CanvasRoomEventName): Promise<LoggedCanvasEvent[]>;
  /** Forgets a deleted canvas's sequence and replay log. */
  forget(canvasId: string): Promise<void>;
  /** `emit` for a change already stored: a failure is logged and resolves undefined. */
  notify<E extends CanvasRoomEventName>(canvasId: string, event: E, payload: RoomPayload<E>): Promise<number | undefined>;
  /** Takes every socket of `userId`, on any node, out of the canvas's room. */
  leaveRoom(canvasId: string, userId: string): void;
  /** Sends a user event (not sequenced) to every canvas socket of `userId` on any node. */
  toUser<E extends CanvasUserEventName>(userId: string, event: E, payload: Parameters<CanvasServerEvents[E]>[0]): void;
}
