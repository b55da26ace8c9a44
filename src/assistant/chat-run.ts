import type { DevicePort } from '../devices/device-channel';
import { notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { TurnRows } from '../models/chat-repository';
import type { DbOrTx } from '../models/database';
import type { RunRow } from '../models/schema';
import { approvalSessionId } from '../models/hitl-repository';
import { hitlResumeJobId } from '../producers/assistant';
import type { QueueRegistry } from '../producers/registry';
import type { UsageRecord } from '../models/usage-repository';
import type { RunOutcome } from '../runs/outcome';
import type { RunHandle, RunKernel, RunKindSpec } from '../runs/run-kernel';
import type { ApprovalService } from '../turns/approvals';
import type { ChatEventLog, TurnUsage } from '../turns/turn-events';
import type { StoredContinuation } from '../turns/continuation';
import { publicStatus } from '../schemas/public-status';
import { joinAnswers, planText, type PlanState } from '../coding/coding-plan';
import type { ChatLane } from './chat-lane';

/** One chat turn: its user message (the turn's id), session, owner and the device it runs on. */
export interface TurnRef {
  userId: string;
  sessionId: string;
  messageId: string;
  deviceId?: string | null;
  /** The device's own socket asked for it: its messages go to every connection of the device. */
  fromDevice?: boolean;
}

/** What an answered turn carries. */
export interface ChatResult {
  response: string;
  usage: TurnUsage;
}

/**
 * What a worker hands to a turn's end: the turn, for a cancel the answer seen so far, and the usage
 * lines of its model calls that are not recorded yet (the answering call's): the end writes them
 * in its transaction, beside the answer.
 */
export interface ChatEndContext {
  turn: TurnRef;
  response?: string;
  usage?: readonly UsageRecord[];
}

/** What the end stored, for its terminal event; `turn` is null when the session is gone. */
export interface ChatPersisted {
  turn: TurnRef | null;
  response: string;
  usage: TurnUsage | null;
  /** The next open turn of the session's lane, when the end's own statement read it (null: none). */
  nextTurn?: string | null;
}

export type ChatOutcome = RunOutcome<ChatResult, TurnUsage | null>;
export type ChatRuns = RunHandle<ChatResult, TurnUsage | null, ChatEndContext, ChatPersisted, TurnRows | null>;

/** What a turn whose worker stopped tells its listener and device. */
export const CHAT_INTERRUPTED = 'The assistant was interrupted (its worker stopped) before answering; please ask again';

export interface ChatRunDeps {
  repos: Repositories;
  queues: Pick<QueueRegistry, 'isLive' | 'enqueue'>;
  chatEvents: ChatEventLog;
  devices: DevicePort;
  approvals: Pick<ApprovalService, 'cancelPending'>;
  /** The session's lane: when a turn ends, the next turn of its session starts. */
  lane?: Pick<ChatLane, 'advance'>;
  logger: Logger;
}

/**
 * Chat turns (assistant and chatflow) as a kind of run, keyed by the turn's user message; its job
 * on the `assistant` queue has the same id. The answer is stored in the transaction that ends the
 * run (a cancelled turn keeps what it had said, marked `cancelled`; a failed one stores nothing),
 * and the terminal event goes to the turn's event log and device once: `final`, `cancelled` or
 * `error`. A turn parked for an approval, or continued by the approval's resume job, is held
 * elsewhere: recovery leaves it open, and its cancel ends it here from its stored continuation
 * (rejecting its pending approvals). Only the session's owner may cancel a turn.
 */
export function registerChatRuns(kernel: RunKernel, deps: ChatRunDeps): ChatRuns {
  const { repos, chatEvents, devices } = deps;
  const log = deps.logger.child({ component: 'chat-run' });

  const turnOf = async (messageId: string, db?: DbOrTx): Promise<TurnRef | null> => {
    const found = await repos.chat.findTurn(messageId, db);
    return found ? { ...found, messageId } : null;
  };

  const spec: RunKindSpec<ChatResult, TurnUsage | null, ChatEndContext, ChatPersisted, TurnRows | null> = {
    kind: 'chat',
    queue: 'assistant',
    jobId: (messageId) => messageId,
    signal: 'chat',
    interrupted: { code: 'interrupted', message: CHAT_INTERRUPTED },
    releases: [],
    // The run's move and the turn's rows (session, message, stored answer, flow) in one statement.
    start: (messageId, from) => repos.chat.startTurn(messageId, { from, unlessCancelRequested: true }),

    async authorizeCancel(messageId, actor) {
      const turn = await turnOf(messageId);
      if (!turn || turn.userId !== actor.userId) throw notFound('Chat session');
      return { status: (await repos.runs.find('chat', messageId))?.status ?? 'unknown' };
    },

    async heldElsewhere(run) {
      const approvals = await repos.hitl.listForMessage(run.id);
      // Waiting for a person, or decided and about to resume (the reaper queues a lost resume again).
      if (approvals.some((row) => row.status === 'pending' || (row.resumedAt === null && row.decisionReason !== 'cancelled'))) return true;
      const resumes = await Promise.all(approvals.map((row) => deps.queues.isLive('assistant', hitlResumeJobId(row.id))));
      return resumes.some(Boolean);
    },

    // Its approvals' waitpoints are all completed: the resume job goes on from the decisions.
    async continue(run, waitpoints) {
      const approvalId = waitpoints.find((waitpoint) => waitpoint.kind === 'approval')?.ref;
      if (approvalId) await deps.queues.enqueue('assistant', 'hitl-resume', { approvalId });
    },

    async cancelRequested(run) {
      // Parked: no worker holds it. Its partial answer and usage are in the continuation.
      const [approval] = await repos.hitl.pendingForMessage(run.id);
      if (!approval) return;
      const continuation = approval.continuation as StoredContinuation;
      const turn: TurnRef = {
        userId: approval.userId,
        sessionId: approvalSessionId(approval),
        messageId: run.id,
        deviceId: approval.deviceId,
      };
      // In the Orchestrator's plan, the earlier steps' answers come before the waiting step's words.
      const plan = continuation.plan as PlanState | undefined;
      const response = plan ? joinAnswers(planText(plan), continuation.response) : continuation.response;
      await handle.end(run.id, { status: 'cancelled', usage: continuation.usage }, { turn, response });
    },

    // A worker's end (it knows the turn, and for a cancel what was said): the run's move, the answer
    // and its usage lines in one statement. Ends without the worker's word take `persist`.
    endInOne(messageId, move, outcome, context) {
      const turn = context?.turn;
      if (!turn) return undefined;
      const usage = context.usage ?? [];
      const ended = async (end: ReturnType<typeof repos.chat.endTurn>, value: ChatPersisted) => {
        const moved = await end;
        return moved && { run: moved.run, value: { ...value, nextTurn: moved.nextTurn } };
      };
      if (outcome.status === 'succeeded') {
        const { response, usage: spent } = outcome.result;
        const answer = {
          sessionId: turn.sessionId,
          role: 'assistant' as const,
          content: response,
          replyTo: messageId,
          status: publicStatus('chat', outcome.status),
          ...spent,
        };
        const answeredBy = { deviceId: turn.deviceId ?? undefined };
        return ended(repos.chat.endTurn(messageId, move, { answer, answeredBy, usage }), { turn, response, usage: spent });
      }
      if (outcome.status === 'cancelled' && context.response !== undefined) {
        const { response } = context;
        const spent = outcome.usage ?? null;
        const answer = {
          sessionId: turn.sessionId,
          role: 'assistant' as const,
          content: response,
          replyTo: messageId,
          status: publicStatus('chat', outcome.status),
          ...(spent ?? {}),
        };
        return ended(repos.chat.endTurn(messageId, move, { answer, usage }), { turn, response, usage: spent });
      }
      if (outcome.status === 'failed') return ended(repos.chat.endTurn(messageId, move, { usage }), { turn, response: '', usage: null });
      return undefined;
    },

    async persist(tx, run, outcome, context) {
      const turn = context?.turn ?? (await turnOf(run.id, tx));
      const lines = context?.usage ?? [];
      if (!turn) {
        await repos.usage.recordMany(lines, tx);
        return { turn: null, response: '', usage: null };
      }
      if (outcome.status === 'succeeded') {
        const { response, usage } = outcome.result;
        await repos.chat.storeAnswer(
          {
            sessionId: turn.sessionId,
            role: 'assistant',
            content: response,
            replyTo: run.id,
            status: publicStatus('chat', outcome.status),
            ...usage,
          },
          tx,
          { deviceId: turn.deviceId ?? undefined },
          lines,
        );
        return { turn, response, usage };
      }
      if (outcome.status === 'cancelled') {
        // Without a worker's word (a queued turn, a recovered one): what its listeners had seen.
        const response = context?.response ?? (await streamedText(chatEvents, run.id));
        const usage = outcome.usage ?? null;
        await repos.chat.storeAnswer(
          {
            sessionId: turn.sessionId,
            role: 'assistant',
            content: response,
            replyTo: run.id,
            status: publicStatus('chat', outcome.status),
            ...(usage ?? {}),
          },
          tx,
          undefined,
          lines,
        );
        return { turn, response, usage };
      }
      await repos.usage.recordMany(lines, tx);
      return { turn, response: '', usage: null };
    },

    async announce(run, outcome, _context, persisted) {
      await tell(run, outcome, persisted);
      const sessionId = persisted.turn?.sessionId;
      // The next turn of the session's lane starts (read by the end's statement, else now); a lost
      // promotion is caught by its own recheck.
      if (sessionId)
        await deps.lane?.advance(sessionId, persisted.nextTurn).catch((error: unknown) => {
          log.warn({ err: error, sessionId, messageId: run.id }, 'next turn of the session not promoted; it starts at its recheck');
        });
    },
  };

  const tell = async (run: RunRow, outcome: ChatOutcome, persisted: ChatPersisted) => {
    const { turn } = persisted;
    if (!turn) {
      log.warn({ messageId: run.id, status: outcome.status }, 'chat turn ended after its session was deleted; nobody to tell');
      return;
    }
    const { userId, sessionId, deviceId } = turn;
    const told = { id: run.id, fromDevice: turn.fromDevice };
    if (outcome.status === 'succeeded') {
      if (deviceId) devices.sendTurn(userId, deviceId, told, 'final', { sessionId, response: persisted.response });
      await chatEvents.append(run.id, { type: 'final', sessionId, response: persisted.response, usage: outcome.result.usage });
      return;
    }
    if (outcome.status === 'cancelled') {
      await deps.approvals.cancelPending(run.id, userId);
      // Rolled back by a later message: the turn is forgotten, its question and partial answer too.
      const forgotten = await repos.chat.forgetRolledBack(run.id);
      if (forgotten) log.info({ userId, sessionId, messageId: run.id, messages: forgotten }, 'chat turn rolled back');
      if (deviceId) devices.sendTurn(userId, deviceId, told, 'cancelled', { sessionId });
      const zero: TurnUsage = { provider: 'none', model: 'none', inputTokens: 0, outputTokens: 0, costUsd: 0 };
      await chatEvents.append(run.id, { type: 'cancelled', sessionId, response: persisted.response, usage: persisted.usage ?? zero });
      log.info({ userId, sessionId, messageId: run.id, chars: persisted.response.length }, 'chat turn cancelled');
      return;
    }
    const code = outcome.status === 'failed' ? outcome.code : 'timed_out';
    if (deviceId) devices.sendTurn(userId, deviceId, told, 'chat_error', { sessionId, code, message: outcome.message });
    await chatEvents.append(run.id, { type: 'error', sessionId, code, message: outcome.message });
  };
  const handle: ChatRuns = kernel.register(spec);
  return handle;
}

/** The answer text a turn's listeners have seen so far (its `text_chunk`s). */
export async function streamedText(chatEvents: ChatEventLog, messageId: string): Promise<string> {
  const events = await chatEvents.stored(messageId);
  return events.map((event) => (event.type === 'text_chunk' ? event.text : '')).join('');
}
