import { UnrecoverableError, type Job } from 'bullmq';
import { MODEL_FAILURE_TEXT } from '../ai/llm';
import { ModelCallCancelled, ModelStoppedEarly, ModelUnavailableError, type ModelGateway, type UsageLine } from '../ai/model-gateway';
import { historyMessages, systemMessage, userMessage, type ModelMessage } from '../ai/model-messages';
import { waitInLane } from '../assistant/chat-lane';
import type { ChatTurnLife, TurnRef } from '../assistant/chat-turn-life';
import { usageOf, type ChatEvent, type ChatEventLog, type TurnUsage } from '../turns/turn-events';
import type { CancelSignals } from '../lib/cancel-signals';
import type { Logger } from '../lib/logger';
import { describeRedacted } from '../lib/redact-error';
import type { Repositories } from '../models';
import type { Metrics } from '../observability/metrics';
import type { ChatflowTurnJob } from '../producers/assistant';
import type { ChatflowDefinition } from './definition';
import { BudgetExceededError, type BudgetTicket } from '../budget/budget-door';
import { DEFAULT_HISTORY_WINDOW, FLOW_BUDGET_SPENT } from './flow-chat';
import { restartedAfterCrash } from '../lib/job-restart';
import { invokeAgentAttributes } from '../observability/genai';
import { withSpan } from '../observability/tracing';
import { citationsOf, framedPassages, GROUNDING_RULE, type KnowledgeSearch } from '../knowledge/retrieval';

export interface ChatflowRunnerDeps {
  repos: Repositories;
  models: ModelGateway;
  chatEvents: ChatEventLog;
  logger: Logger;
  metrics?: Metrics;
  /** Cancel requests: `POST /chat/sessions/:id/cancel` stops a chatflow turn as any chat turn. */
  signals?: CancelSignals;
  chatTurnLife?: ChatTurnLife;
  /** The owner's knowledge search, for a flow with a knowledge setting (without it such a flow answers ungrounded). */
  knowledge?: KnowledgeSearch;
}

type TurnResult = { status: 'completed' | 'cancelled' | 'answered' };

/**
 * The worker side of a chatflow chat turn: the flow's system prompt, the session's
 * last `historyWindow` messages and the user's message go through the model gateway on the flow's
 * model; text streams to the turn's event log (`text_chunk`), the answer is stored once with its
 * usage (billed to the flow's owner, purpose `chatflow`) and `final` ends the stream. Each turn
 * counts once in `switchboard_flow_executions_total{type="chatflow"}`.
 */
export class ChatflowRunner {
  constructor(private readonly deps: ChatflowRunnerDeps) {}

  /** `chatflow-turn` (its payload parsed by the queue's processor). */
  async process(data: ChatflowTurnJob, job: Job): Promise<TurnResult> {
    // A cancel requested before the watch began is seen by the turn's start, which reads the run's cancel mark.
    const watch = this.deps.signals?.watch('chat', data.messageId, { startReadsRequest: true });
    // One ticket for the turn: its model call takes over the request's reservation.
    const ticket: BudgetTicket = { userId: data.userId, reservationId: data.budget };
    try {
      // What no model call takes the kernel gives back when the turn ends.
      await this.deps.chatTurnLife?.hold(data.messageId, ticket);
      // A chatflow is an agent: one `invoke_agent` span per turn, the session its conversation.
      return await withSpan(
        'invoke_agent chatflow',
        'internal',
        invokeAgentAttributes({ name: 'chatflow', id: data.flowId, conversationId: data.sessionId }),
        () => this.turn(job, data, watch?.signal ?? new AbortController().signal, ticket),
      );
    } finally {
      watch?.release();
    }
  }

  private async turn(job: Job, data: ChatflowTurnJob, signal: AbortSignal, budget: BudgetTicket): Promise<TurnResult> {
    const log = this.deps.logger.child({
      component: 'chatflow',
      jobId: job.id,
      flowId: data.flowId,
      sessionId: data.sessionId,
      messageId: data.messageId,
    });
    const { chat, users } = this.deps.repos;
    // The run's start, and the session (the owner's), the message, an answer already stored and the session's flow, in one statement.
    const { begun, rows: start } = await this.turns().open(turnOf(data));
    if (!start) return this.fail(data, 'session_not_found', 'The chat session no longer exists');
    const { message, reply: answered } = start;
    if (answered) {
      if (answered.status !== 'cancelled')
        await this.publish(data, { type: 'final', sessionId: data.sessionId, response: answered.content, usage: usageOf(answered) });
      return { status: 'answered' };
    }
    // An earlier turn of the session is still open: this one waits its turn, holding no worker.
    if (begun === 'blocked') return waitInLane(job);
    if (begun === 'cancel_requested') return this.cancelled(data, log, '', null);
    if (begun === 'ended') return { status: 'answered' };
    if (restartedAfterCrash(job) && (await this.turns().streamedText(data.messageId))) {
      // A worker died mid-answer: its listener has part of it; streaming it again would repeat that text.
      log.warn({ started: job.attemptsStarted }, 'chatflow turn interrupted: the worker streaming it stopped');
      return this.fail(data, 'interrupted', 'The answer was interrupted; please ask again');
    }
    // The session's flow came with the start; a job naming another flow than its session's reads its own.
    const flow = start.flow?.id === data.flowId ? start.flow : await this.deps.repos.flows.find(data.flowId);
    if (!flow || flow.userId !== data.userId || flow.type !== 'chatflow')
      return this.fail(data, 'flow_not_found', 'The chatflow no longer exists');
    // An embed's turn answers with the version the embed is pinned to, the owner's with the published one.
    const pinned =
      data.flowVersion === undefined || data.flowVersion === flow.publishedVersion
        ? flow.definition
        : (await this.deps.repos.flows.version(flow.id, data.flowVersion))?.definition;
    if (!pinned) return this.fail(data, 'flow_not_found', 'The chatflow version no longer exists');
    // Validated when the version was saved (src/flows/definition.ts).
    const settings = pinned as unknown as ChatflowDefinition;

    // The first message of a session has no history: nothing to read.
    const history = start.earlier ? await chat.context(data.sessionId, message.seq, settings.historyWindow ?? DEFAULT_HISTORY_WINDOW) : [];
    // Carried by the job from the owner's request; read only for a job that has none (an embed's turn).
    const tier = data.tier ?? (await users.findById(data.userId))?.tier ?? 'free';
    log.info({ historyLength: history.length, model: settings.model }, 'chatflow turn started');
    const pending: Array<Promise<void>> = [];
    let streamed = '';
    try {
      const system = await this.grounded(data, settings, message.content);
      const messages: ModelMessage[] = [systemMessage(system), ...historyMessages(history), userMessage(message.content)];
      const turn = await this.deps.models.streamTurn({
        purpose: 'chatflow',
        messages,
        model: settings.model,
        temperature: settings.temperature,
        signal,
        // No onRestart: once text went out a model failure is final (the listener saw part of an answer).
        onText: (text) => {
          streamed += text;
          pending.push(this.publish(data, { type: 'text_chunk', sessionId: data.sessionId, text }));
        },
        // The answer's usage line is written by the turn's end, in its transaction.
        account: { userId: data.userId, tier, sessionId: data.sessionId, leaveLine: () => true },
        budget,
      });
      const usage: TurnUsage = {
        provider: turn.usage.provider,
        model: turn.usage.model,
        inputTokens: turn.usage.inputTokens,
        outputTokens: turn.usage.outputTokens,
        costUsd: turn.usage.costUsd,
      };
      await Promise.allSettled(pending);
      const lines = turn.unrecorded ? [turn.unrecorded] : [];
      // The run's end stores the answer and its usage line and emits `final`; a cancel accepted before this wins (no answer stored).
      const stored = await this.turns().finish(turnOf(data), turn.text, usage, lines);
      if (stored === 'cancel_requested') return this.cancelled(data, log, turn.text, usage, lines);
      if (stored === 'answered') return { status: 'answered' };
      this.count('completed');
      log.info(
        { inputTokens: usage.inputTokens, outputTokens: usage.outputTokens, historyLength: history.length },
        'chatflow turn completed',
      );
      return { status: 'completed' };
    } catch (error) {
      await Promise.allSettled(pending);
      if (error instanceof ModelCallCancelled || signal.aborted) {
        const usage =
          error instanceof ModelCallCancelled
            ? {
                provider: error.usage.provider,
                model: error.usage.model,
                inputTokens: error.usage.inputTokens,
                outputTokens: error.usage.outputTokens,
                costUsd: error.usage.costUsd,
              }
            : null;
        return this.cancelled(data, log, streamed, usage);
      }
      log.warn({ err: error }, 'chatflow turn failed');
      // A fixed text: an embed's visitors read it, and the owner's budget figures are not theirs to see.
      if (error instanceof BudgetExceededError) return this.fail(data, 'budget_exceeded', FLOW_BUDGET_SPENT);
      if (error instanceof ModelStoppedEarly) return this.fail(data, error.code, error.message, describeRedacted(error));
      if (error instanceof ModelUnavailableError)
        return this.fail(data, error.code, MODEL_FAILURE_TEXT[error.code], describeRedacted(error));
      return this.fail(data, 'chatflow_failed', 'The chatflow could not answer; please try again', describeRedacted(error));
    }
  }

  /**
   * The flow's system prompt, with the passages of its knowledge bases that match the message (as
   * untrusted data, numbered) when it has a knowledge setting; their sources go to the stream as
   * `citations` before any text. Searched as the flow's owner, in the owner's own bases only: a
   * chatflow answers whoever chats with it (an embed, the public), and a base shared with the
   * owner's canvas was shared with that canvas's members, not with them.
   */
  private async grounded(data: ChatflowTurnJob, settings: ChatflowDefinition, question: string): Promise<string> {
    if (!settings.knowledge || !this.deps.knowledge) return settings.systemPrompt;
    const hits = await this.deps.knowledge(data.userId, {
      query: question,
      baseIds: settings.knowledge.baseIds,
      limit: settings.knowledge.limit,
      ownOnly: true,
    });
    if (hits.length)
      await this.deps.chatEvents.append(data.messageId, { type: 'citations', sessionId: data.sessionId, sources: citationsOf(hits) });
    return `${settings.systemPrompt}\n\n${GROUNDING_RULE}\n\n${framedPassages(hits)}`;
  }

  /** Ends the turn with an `error` event and counts it failed; the job fails without a retry. */
  private async fail(data: ChatflowTurnJob, code: string, message: string, cause = message): Promise<never> {
    this.count('failed');
    await this.turns()
      .fail(turnOf(data), code, message)
      .catch((error: unknown) =>
        this.deps.logger.warn({ err: error, sessionId: data.sessionId, code }, 'chatflow turn not ended as failed; the reaper ends it'),
      );
    throw new UnrecoverableError(`chatflow turn failed (${code}): ${cause}`);
  }

  /** Stopped by a cancel: the partial answer is kept, marked cancelled; the stream ends with `cancelled`. */
  private async cancelled(
    data: ChatflowTurnJob,
    log: Logger,
    response: string,
    usage: TurnUsage | null,
    lines: readonly UsageLine[] = [],
  ): Promise<TurnResult> {
    await this.turns().end(turnOf(data), { response, usage }, lines);
    this.count('cancelled');
    log.info({ chars: response.length }, 'chatflow turn cancelled');
    return { status: 'cancelled' };
  }

  /** Every start and end of a turn goes through the run kernel's chat kind. */
  private turns(): ChatTurnLife {
    if (!this.deps.chatTurnLife) throw new UnrecoverableError('This worker cannot start or end chat turns (no run kernel)');
    return this.deps.chatTurnLife;
  }

  private count(status: 'completed' | 'failed' | 'cancelled'): void {
    this.deps.metrics?.flowExecutions.inc({ type: 'chatflow', status });
  }

  private publish(data: ChatflowTurnJob, event: Extract<ChatEvent, { type: 'text_chunk' | 'final' | 'error' }>): Promise<void> {
    return this.deps.chatEvents.append(data.messageId, event);
  }
}

const turnOf = (data: ChatflowTurnJob): TurnRef => ({ userId: data.userId, sessionId: data.sessionId, messageId: data.messageId });
