import type { Logger } from '../lib/logger';
import type { ChatRepository } from '../models/chat-repository';
import type { CanvasRoom } from '../schemas/canvas-room';
import type { ThreadAssistantState, ThreadEventBody } from '../schemas/socket-events';
import type { ChatEvent } from '../turns/turn-events';

/** Sessions whose canvas (or none) this process remembers; the binding never changes, so none is read twice. */
const KNOWN_SESSIONS = 10_000;

/** A turn's event without its session id (the thread names it), as a room thread carries it. */
type Relayed = { type: string } & Record<string, unknown>;

/**
 * A room thread's turns are room events of its canvas: every batch of a turn's events that its
 * event log stores goes to the canvas's room as `thread_event`s, in one call to Redis per batch
 * (never one per chunk): consecutive text chunks of a batch are joined into one, and each change
 * of what the assistant does (`thinking`, `running_tool <name>`, `waiting_for_approval`, `idle`)
 * follows the event that caused it as an `assistant_state`. The room gives each its `seq`, keeps
 * it for `canvas:sync` and the room's SSE feeds, and sends it to every member's socket on every
 * node; a member removed from the canvas is out of the room, so nothing more reaches them.
 *
 * The canvas of a session is read at most once per process, and a worker reads none: the start of
 * each turn reads its session's row and tells the relay its canvas, or that it has none.
 */
export class ThreadRelay {
  private readonly canvases = new Map<string, string | null>();
  private readonly log: Logger;

  constructor(
    private readonly deps: {
      room: Pick<CanvasRoom, 'emitAll' | 'emit'>;
      chat: Pick<ChatRepository, 'canvasOf'>;
      logger: Logger;
    },
  ) {
    this.log = deps.logger.child({ component: 'thread-relay' });
  }

  /** Remembers a session's canvas (null: not a room thread), as a job or a request already knows it. */
  know(sessionId: string, canvasId: string | null): void {
    if (this.canvases.has(sessionId)) return;
    if (this.canvases.size >= KNOWN_SESSIONS) this.canvases.delete(this.canvases.keys().next().value!);
    this.canvases.set(sessionId, canvasId);
  }

  /** `ChatEventLog.mirrorTo`: a stored batch of turn `turnId`'s events, to its thread's room when it has one. */
  readonly mirror = async (turnId: string, events: ChatEvent[]): Promise<void> => {
    const sessionId = events[0]?.sessionId;
    if (!sessionId) return;
    try {
      const canvasId = await this.canvasOf(sessionId);
      if (!canvasId) return;
      const payloads = roomEvents(events).map((event) => ({ canvasId, threadId: sessionId, turnId, event }));
      await this.deps.room.emitAll(canvasId, 'thread_event', payloads);
    } catch (error) {
      // The turn goes on for its own stream; the room's members miss these events (a seq gap they cannot fill).
      this.log.warn({ err: error, sessionId, turnId }, 'thread events not sent to the room');
    }
  };

  /** The assistant's state for a turn of a thread, as a room event (`queued` when posted, `thinking` when a worker starts it). */
  async state(canvasId: string, threadId: string, turnId: string, state: ThreadAssistantState): Promise<void> {
    await this.deps.room
      .emit(canvasId, 'thread_event', { canvasId, threadId, turnId, event: { type: 'assistant_state', state } })
      .catch((error: unknown) => this.log.warn({ err: error, threadId, turnId }, 'assistant state not sent to the room'));
  }

  /** A member's message, as the room's first event of its turn; resolves with its seq (0: the canvas is gone). */
  message(canvasId: string, threadId: string, body: Extract<ThreadEventBody, { type: 'message' }>): Promise<number> {
    this.know(threadId, canvasId);
    return this.deps.room.emit(canvasId, 'thread_event', { canvasId, threadId, turnId: body.messageId, event: body });
  }

  /** The canvas of a session's room thread (null: a private session, or gone); read once per process. */
  canvasFor(sessionId: string): Promise<string | null> {
    return this.canvasOf(sessionId);
  }

  private async canvasOf(sessionId: string): Promise<string | null> {
    if (this.canvases.has(sessionId)) return this.canvases.get(sessionId)!;
    const canvasId = await this.deps.chat.canvasOf(sessionId);
    // A deleted session is not remembered: its events go nowhere this time, and the id is never reused.
    if (canvasId === undefined) return null;
    this.know(sessionId, canvasId);
    return canvasId;
  }
}

/**
 * A batch of a turn's events as the room gets them: without their session id, consecutive text
 * chunks joined, and the assistant's state after each event that changes it.
 */
export function roomEvents(events: readonly ChatEvent[]): Relayed[] {
  const out: Relayed[] = [];
  for (const event of events) {
    const { sessionId: _session, ...rest } = event;
    const last = out.at(-1);
    if (rest.type === 'text_chunk' && last?.type === 'text_chunk') {
      last.text = `${last.text as string}${rest.text}`;
      continue;
    }
    out.push({ ...rest });
    const state = stateAfter(event);
    if (state) out.push({ type: 'assistant_state', ...state });
  }
  return out;
}

/** What the assistant does after `event`, when the event changes it. */
function stateAfter(event: ChatEvent): { state: ThreadAssistantState; tool?: string } | undefined {
  switch (event.type) {
    case 'tool_call':
      return { state: 'running_tool', tool: event.name };
    case 'tool_result':
    case 'approval_resolved':
      return { state: 'thinking' };
    case 'approval_requested':
      return { state: 'waiting_for_approval', tool: event.toolName };
    case 'final':
    case 'error':
    case 'cancelled':
      return { state: 'idle' };
    default:
      return undefined;
  }
}
