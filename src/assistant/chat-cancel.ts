import { z } from 'zod';
import type { DevicePort } from '../devices/device-channel';
import type { CancelSignals } from '../lib/cancel-signals';
import { AppError, conflict, notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { HitlRequestRow } from '../models/schema';
import { hitlResumeJobId } from '../queues/assistant';
import type { QueueRegistry } from '../queues/registry';
import type { ChatCancelAck } from '../realtime/events';
import type { ApprovalService } from './approvals';
import type { ChatEventLog, TurnUsage } from './chat-events';
import type { StoredContinuation } from './continuation';

/** One chat turn: its user message (the turn's id), session, owner and the device it runs on. */
export interface TurnRef {
  userId: string;
  sessionId: string;
  messageId: string;
  deviceId?: string | null;
}

export interface ChatCancelsDeps {
  repos: Repositories;
  queues: QueueRegistry;
  signals: CancelSignals;
  chatEvents: ChatEventLog;
  devices: DevicePort;
  approvals: ApprovalService;
  logger: Logger;
}

/** Where a turn is, as far as the queue and the approvals tell. */
type TurnState = { kind: 'queued' | 'running' | 'ended' } | { kind: 'parked'; approval: HitlRequestRow };

/**
 * Cancelling a chat turn (decision 0081), for the HTTP route, the `/device` socket and
 * the plain-WebSocket `chat_cancel` frame alike, and ending one for the worker. The request is
 * recorded on the turn's user message under its row lock (the worker stores the answer under the
 * same lock), then signalled through Redis; the worker streaming the turn aborts the model and any
 * device call it waits on. A turn no worker holds (still queued, or parked for an approval) ends
 * here. Ending stores the partial answer once, marked `cancelled`, rejects the turn's pending
 * approvals (`decisionReason: "cancelled"`), and ends the streams with `cancelled {sessionId}`.
 */
export class ChatCancels {
  private readonly log: Logger;

  constructor(private readonly deps: ChatCancelsDeps) {
    this.log = deps.logger.child({ component: 'chat-cancel' });
  }

  /** `POST /chat/sessions/:id/cancel` (owner): 202 while a turn runs, 404 not yours, 409 `not_running`. */
  async cancel(userId: string, sessionId: string): Promise<{ sessionId: string; status: 'cancelling' }> {
    const { chat } = this.deps.repos;
    const session = await chat.findOwned(userId, sessionId);
    if (!session) throw notFound('Chat session');
    const notRunning = () => conflict('not_running', 'No turn of this session is running');
    const candidate = await chat.runningTurn(session.id);
    if (!candidate) throw notRunning();
    const state = await this.stateOf(candidate.id);
    if (state.kind === 'ended') throw notRunning();
    // Under the row lock: an answer committed meanwhile makes it 409 after all.
    const turn = await chat.requestCancel(session.id);
    if (!turn) throw notRunning();
    await this.deps.signals.request('chat', turn.id);
    this.log.info({ userId, sessionId, messageId: turn.id, state: state.kind }, 'chat turn cancel requested');
    const ref: TurnRef = { userId, sessionId, messageId: turn.id, deviceId: session.deviceId };

    if (state.kind === 'parked') {
      // Parked for an approval: no worker holds it. Its partial answer is in the continuation.
      const continuation = state.approval.continuation as StoredContinuation;
      await this.end({ ...ref, deviceId: state.approval.deviceId }, { response: continuation.response, usage: continuation.usage });
    } else if (state.kind === 'queued') {
      // Still waiting: taken off the queue (0 when a worker took it meanwhile: that worker ends it).
      const job = await this.deps.queues.job('assistant', turn.id);
      const removed = await this.deps.queues.remove('assistant', turn.id).catch((error: unknown) => {
        // The request is recorded and signalled: a worker that takes the job ends the turn.
        this.log.warn({ err: error, messageId: turn.id }, 'queued chat turn not removed; its worker ends it');
        return false;
      });
      if (removed)
        await this.end(
          { ...ref, deviceId: (job?.data as { deviceId?: string } | undefined)?.deviceId ?? ref.deviceId },
          { response: '', usage: null },
        );
    }
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
   * Ends the turn as cancelled, once: stores `partial.response` as its answer (status `cancelled`,
   * with the usage so far), rejects its pending approvals, and ends the turn's stream and the
   * device's with `cancelled`. False when the turn already had an answer.
   */
  async end(turn: TurnRef, partial: { response: string; usage: TurnUsage | null }): Promise<boolean> {
    const { repos, devices } = this.deps;
    await this.deps.approvals.cancelPending(turn.messageId, turn.userId);
    const usage = partial.usage;
    const stored = await repos.chat.finishTurn({
      sessionId: turn.sessionId,
      role: 'assistant',
      content: partial.response,
      replyTo: turn.messageId,
      status: 'cancelled',
      ...(usage
        ? {
            provider: usage.provider,
            model: usage.model,
            inputTokens: usage.inputTokens,
            outputTokens: usage.outputTokens,
            costUsd: usage.costUsd,
          }
        : {}),
    });
    if (stored.outcome !== 'stored') return false;
    await repos.chat.touch(turn.sessionId);
    if (turn.deviceId) devices.send(turn.userId, turn.deviceId, 'cancelled', { sessionId: turn.sessionId });
    const zero: TurnUsage = { provider: 'none', model: 'none', inputTokens: 0, outputTokens: 0, costUsd: 0 };
    await this.deps.chatEvents.append(turn.messageId, {
      type: 'cancelled',
      sessionId: turn.sessionId,
      response: partial.response,
      usage: usage ?? zero,
    });
    this.log.info(
      { userId: turn.userId, sessionId: turn.sessionId, messageId: turn.messageId, chars: partial.response.length },
      'chat turn cancelled',
    );
    return true;
  }

  /** The answer text a turn's listeners have seen so far (its `text_chunk`s), for a turn no worker can finish. */
  async streamedText(messageId: string): Promise<string> {
    const events = await this.deps.chatEvents.stored(messageId);
    return events.map((event) => (event.type === 'text_chunk' ? event.text : '')).join('');
  }

  /** Queued, running (a worker holds the job or its resume), parked for an approval, or ended. */
  private async stateOf(messageId: string): Promise<TurnState> {
    const { repos, queues } = this.deps;
    const [approval] = await repos.hitl.pendingForMessage(messageId);
    if (approval) return { kind: 'parked', approval };
    const state = await (await queues.job('assistant', messageId))?.getState();
    if (state === 'active') return { kind: 'running' };
    if (state === 'waiting' || state === 'delayed' || state === 'prioritized' || state === 'waiting-children') return { kind: 'queued' };
    // The turn's own job is over; a decided approval may have resumed it on another job.
    for (const decided of await repos.hitl.forMessage(messageId)) {
      const resume = await (await queues.job('assistant', hitlResumeJobId(decided.id)))?.getState();
      if (resume && resume !== 'completed' && resume !== 'failed') return { kind: 'running' };
    }
    return { kind: 'ended' };
  }
}

/** `chat_cancel` from a device: `sessionId` optional (the device's running turn). */
export const chatCancelSchema = z.strictObject({ sessionId: z.uuid().optional() });
