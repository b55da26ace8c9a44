import { z } from 'zod';
import { AppError, conflict, notFound } from '../lib/errors';
import type { Repositories } from '../models';
import type { TurnRows } from '../models/chat-repository';
import type { UsageRecord } from '../models/usage-repository';
import type { ChatCancelAck } from '../schemas/socket-events';
import { isOpen } from '../runs/run-kernel';
import type { ChatEventLog, TurnUsage } from '../turns/turn-events';
import { streamedText, type ChatRuns, type TurnRef } from './chat-run';
import type { ThreadRelay } from './thread-relay';

export type { TurnRef } from './chat-run';

export interface ChatTurnLifeDeps {
  repos: Repositories;
  /** The chat kind of the run kernel: every start, end and cancel of a turn goes through it. */
  runs: ChatRuns;
  chatEvents: ChatEventLog;
  /** Told each started turn's session canvas (or none), so mirroring its events to a room reads nothing. */
  relay?: Pick<ThreadRelay, 'know'>;
}

/**
 * A chat turn's life on the run kernel, for the HTTP route, the `/device`
 * socket, the plain-WebSocket `chat_cancel` frame and the workers alike. A cancel is recorded on
 * the turn's run and signalled through Redis; the worker streaming the turn aborts the model and
 * any device call it waits on and ends the run `cancelled`. A turn no worker holds (still queued,
 * or parked for an approval) is ended by the cancel itself. Whoever ends the run first wins; its
 * end alone stores the answer and emits the terminal event.
 */
export class ChatTurnLife {
  constructor(private readonly deps: ChatTurnLifeDeps) {}

  /** Registers the budget reservation a turn holds; the run kernel gives back what no call took when the turn ends. */
  hold(messageId: string, ticket: { userId: string; reservationId?: string }): Promise<void> {
    return this.deps.runs.hold(messageId, ticket);
  }

  /** `POST /chat/sessions/:id/cancel` (owner): 202 while a turn runs, 404 not yours, 409 `not_running`. */
  async cancel(userId: string, sessionId: string): Promise<{ sessionId: string; status: 'cancelling' }> {
    const { chat } = this.deps.repos;
    const access = await chat.findAccessible(userId, sessionId);
    if (!access) throw notFound('Chat session');
    // In a room thread a member stops their own turn (the latest of theirs still open), never another's.
    const turnId = access.session.canvasId
      ? (await chat.openThreadTurns(sessionId)).filter((turn) => turn.authorId === userId).at(-1)?.id
      : (await chat.runningTurn(sessionId))?.id;
    if (!turnId) throw conflict('not_running', 'No turn of this session is running');
    await this.deps.runs.cancel(turnId, { userId });
    return { sessionId, status: 'cancelling' };
  }

  /**
   * `chat_cancel {sessionId?}` from a device (Socket.IO or plain WebSocket): the named session of
   * the socket's user, or the device's running turn. The ack is `{ok:true}` or `{ok:false, error}`
   * (`validation_failed`, `not_found`, `not_running`).
   */
  async cancelFromDevice(userId: string, deviceId: string, payload: unknown): Promise<ChatCancelAck> {
    const parsed = chatCancelSchema.safeParse(payload ?? {});
    if (!parsed.success)
      return { ok: false, error: { code: 'validation_failed', message: parsed.error.issues.map((i) => i.message).join('; ') } };
    try {
      const sessionId = parsed.data.sessionId ?? (await this.deps.repos.chat.runningSessionOnDevice(userId, deviceId));
      if (!sessionId) return { ok: false, error: { code: 'not_running', message: 'No turn of this device is running' } };
      await this.cancel(userId, sessionId);
      return { ok: true };
    } catch (error) {
      if (error instanceof AppError && error.status < 500) return { ok: false, error: { code: error.code, message: error.message } };
      throw error;
    }
  }

  /**
   * A worker begins (or, after an approval, continues) the turn: `started`; `cancel_requested` when
   * it was asked to stop first (the worker ends it `cancelled`); `ended` when it is over already.
   */
  async begin(turn: TurnRef): Promise<'started' | 'cancel_requested' | 'ended'> {
    const { begun } = await this.open(turn);
    // Only a queued turn waits in its session's lane; a continued one has started already.
    return begun === 'blocked' ? 'cancel_requested' : begun;
  }

  /**
   * `begin`, and the turn's rows read by the same statement (`TurnRows`): null when its session or
   * message is gone, or is not the turn's (another user's session, another session's message). A
   * turn whose answer is stored is never started: it has ended. `blocked`: an earlier turn of its
   * session is still open, so it stays queued (the session's lane runs one turn at a time).
   */
  async open(turn: TurnRef): Promise<{ begun: 'started' | 'cancel_requested' | 'ended' | 'blocked'; rows: TurnRows | null }> {
    const { runs } = this.deps;
    const own = (found: TurnRows | null | undefined) =>
      // A room thread's message is its sender's turn; any other message is its session owner's.
      found && (found.message.authorId ?? found.session.userId) === turn.userId && found.message.sessionId === turn.sessionId
        ? found
        : null;
    let start = await runs.start(turn.messageId);
    if (!start.run && own(start.row)) {
      // Stored before turns had runs: it gets one now.
      await runs.create({ id: turn.messageId, userId: turn.userId });
      start = await runs.start(turn.messageId);
    }
    const rows = own(start.row);
    if (rows) this.deps.relay?.know(turn.sessionId, rows.session.canvasId);
    if (start.started) return { begun: 'started', rows };
    // Parked on its waitpoints: the completion of the last one queues the job that continues it.
    if (start.run?.status === 'waiting') return { begun: 'ended', rows };
    if (start.run?.status === 'queued' && !start.run.cancelRequestedAt && rows?.blocked && !rows.reply) return { begun: 'blocked', rows };
    return { begun: start.run && isOpen(start.run) ? 'cancel_requested' : 'ended', rows };
  }

  /**
   * Parks the turn on its approvals' waitpoints (`running → waiting`): no worker holds it until the
   * last is decided, then the kernel queues its resume. `refused` once its cancel was requested.
   */
  async wait(messageId: string): Promise<'waiting' | 'continued' | 'refused'> {
    return (await this.deps.runs.wait(messageId)).state;
  }

  /** Whether the turn was asked to stop (read by a worker about to park it). */
  async cancelRequested(messageId: string): Promise<boolean> {
    return Boolean((await this.deps.repos.runs.find('chat', messageId))?.cancelRequestedAt);
  }

  /**
   * Ends the turn with its answer: stored and `final` emitted (`stored`); `cancel_requested` when a
   * cancel came first (nothing stored, `usage` neither: the caller ends it `cancelled` with those
   * lines); `answered` when it had ended. `usage`: the lines of its model calls not recorded yet,
   * written with the answer (or on their own when the turn had ended).
   */
  async finish(
    turn: TurnRef,
    response: string,
    usage: TurnUsage,
    lines: readonly UsageRecord[] = [],
  ): Promise<'stored' | 'cancel_requested' | 'answered'> {
    const ended = await this.deps.runs.end(turn.messageId, { status: 'succeeded', result: { response, usage } }, { turn, usage: lines });
    if (ended.won) return 'stored';
    if (ended.run && isOpen(ended.run)) return 'cancel_requested';
    await this.deps.repos.usage.recordMany(lines);
    return 'answered';
  }

  /**
   * Ends the turn as failed: `error {code, message}` to its listener and device. False when it had
   * ended. `lines` as for `finish`.
   */
  async fail(turn: TurnRef, code: string, message: string, lines: readonly UsageRecord[] = []): Promise<boolean> {
    const won = (await this.deps.runs.end(turn.messageId, { status: 'failed', code, message }, { turn, usage: lines })).won;
    if (!won) await this.deps.repos.usage.recordMany(lines);
    return won;
  }

  /**
   * Ends the turn as cancelled, once: stores `partial.response` as its answer (status `cancelled`,
   * with the usage so far), rejects its pending approvals, and ends the turn's stream and the
   * device's with `cancelled`. False when the turn had ended. `lines` as for `finish`.
   */
  async end(turn: TurnRef, partial: { response: string; usage: TurnUsage | null }, lines: readonly UsageRecord[] = []): Promise<boolean> {
    const won = (
      await this.deps.runs.end(
        turn.messageId,
        { status: 'cancelled', usage: partial.usage },
        { turn, response: partial.response, usage: lines },
      )
    ).won;
    if (!won) await this.deps.repos.usage.recordMany(lines);
    return won;
  }

  /** The answer text a turn's listeners have seen so far (its `text_chunk`s), for a turn no worker can finish. */
  streamedText(messageId: string): Promise<string> {
    return streamedText(this.deps.chatEvents, messageId);
  }
}

/** `chat_cancel` from a device: `sessionId` optional (the device's running turn). */
export const chatCancelSchema = z.strictObject({ sessionId: z.uuid().optional() });
