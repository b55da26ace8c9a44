import { UnrecoverableError, type Job } from 'bullmq';
import { historyMessages, systemMessage, userMessage } from '../ai/model-messages';
import type { BudgetTicket } from '../budget/budget-door';
import { codingSystemPrompt, routeCoding } from '../coding/coding-agents';
import { codingTurnSpec } from '../coding/coding-turn';
import { restartedAfterCrash } from '../lib/job-restart';
import type { HitlRequestRow } from '../models/schema';
import { approvalSessionId } from '../models/hitl-repository';
import type { ChatTurnJob, HitlJob } from '../producers/assistant';
import type { ToolsetName } from '../turns/device-tools';
import { claimRound, type ClaimedRound } from '../turns/parking';
import { allowAllPolicy } from '../turns/tool-policy';
import { TurnEngine } from '../turns/turn-engine';
import { usageOf, type TurnUsage } from '../turns/turn-events';
import { withChatContext } from './chat-context';
import { waitInLane } from './chat-lane';
import { ChatToolCalls } from './chat-tool-calls';
import { ChatTurn, NOTHING_RUN, type ChatTurnDeps, type ChatTurnResult } from './chat-turn';
import { authoredText, HISTORY_LIMIT, threadSystemPrompt, turnSystemPrompt, turnToolsets } from './turn-prompt';
import { attachmentsNote, awaitAttachments } from '../knowledge/chat-files';

export { HISTORY_LIMIT } from './turn-prompt';

export interface AssistantRunnerDeps extends ChatTurnDeps {
  /** Queues the continuation of an agentflow node that parked for this approval (its decision came here). */
  resumeFlowNode?: (row: HitlRequestRow) => Promise<void>;
}

/**
 * The worker side of an assistant turn, as BullMQ jobs: `chat-turn` opens the turn on the run
 * kernel (or leaves it queued in its session's lane) and hands it to the turn engine with its first
 * leg; `hitl-resume` claims a decided round and hands the engine the leg that goes on from it. The
 * turn itself (its tools, parking, a coding plan's steps, its end) is the `ChatTurn` the engine drives.
 */
export class AssistantRunner {
  /** The chat turn's engine, with the coding turn's spec registered. */
  private readonly engine = new TurnEngine().register(codingTurnSpec);

  /** Each tool call of a turn, through the one tool-call pipeline: device, MCP, and the announcements on the turn's log. */
  private readonly tools: ChatToolCalls;

  constructor(private readonly deps: AssistantRunnerDeps) {
    this.tools = new ChatToolCalls(deps, deps.policy ?? allowAllPolicy);
  }

  /** `chat-turn`: answers one user message (payload parsed by the worker pool). */
  async chatTurn(data: ChatTurnJob, job: Job): Promise<ChatTurnResult> {
    // One ticket for the whole turn: its first model call takes over the request's reservation.
    const ticket: BudgetTicket = { userId: data.userId, reservationId: data.budget };
    // What no model call takes (the turn parked, failed or was cancelled first) the kernel gives back when the turn ends.
    await this.deps.chatTurnLife?.hold(data.messageId, ticket);
    return this.watching(job, data, {}, (turn) => this.start(job, turn, ticket));
  }

  /**
   * Runs `work` on the turn of `data`, with an AbortSignal that a cancel of the turn (from any
   * node) aborts; watched before any read. A cancel requested before the watch began is seen by the
   * turn's start (`begin`), which reads the run's cancel mark: the signal's key is not read again.
   */
  private async watching<T>(
    job: Job,
    data: ChatTurnJob,
    parked: { usage?: TurnUsage; approvalIds?: string[] },
    work: (turn: ChatTurn) => Promise<T>,
  ): Promise<T> {
    const { sessionId, messageId } = data;
    const watch = this.deps.signals?.watch('chat', messageId, { startReadsRequest: true });
    try {
      const { approvalIds } = parked;
      const log = this.deps.logger.child({
        component: 'assistant',
        jobId: job.id,
        sessionId,
        messageId,
        ...(approvalIds ? { approvalIds } : {}),
      });
      const signal = watch?.signal ?? new AbortController().signal;
      return await work(new ChatTurn(this.deps, this.tools, data, log, signal, parked.usage));
    } finally {
      watch?.release();
    }
  }

  private async start(job: Job, turn: ChatTurn, ticket: BudgetTicket): Promise<ChatTurnResult> {
    const { data, log, life } = turn;
    // The run's start, and the session (its owner's), the message and an answer already stored, in one statement.
    const { begun, rows: start } = await life.open(turn.ref);
    if (!start) {
      await life.fail(turn.ref, 'session_not_found', 'The chat session no longer exists');
      throw new UnrecoverableError(`Chat message ${data.messageId} of session ${data.sessionId} does not exist`);
    }
    const { session, message, reply: answered } = start;
    if (answered) {
      // A cancelled turn's stream already ended with `cancelled`.
      if (answered.status !== 'cancelled')
        await turn.publish({ type: 'final', sessionId: data.sessionId, response: answered.content, usage: usageOf(answered) });
      return NOTHING_RUN;
    }
    // An earlier turn of the session is still open: this one waits its turn, holding no worker.
    if (begun === 'blocked') return waitInLane(job);
    // Cancelled while queued: it never starts.
    if (begun === 'cancel_requested') return turn.endCancelled('', null);
    if (begun === 'ended') return NOTHING_RUN;
    // Re-run after its worker died between asking for approvals and parking: the round it asked for
    // stands (a person may have decided it already), so the run waits on it instead of asking again.
    if (restartedAfterCrash(job)) {
      const asked = (await this.deps.repos.hitl.listForMessage(data.messageId)).filter((request) => !request.resumedAt);
      if (asked.length) {
        log.info({ approvals: asked.length }, 'assistant turn re-run after a crash finds its approvals asked: it waits on them');
        if ((await life.wait(data.messageId)) === 'refused') {
          await this.deps.approvals?.cancelPending(data.messageId, data.userId);
          return turn.endCancelled('', null);
        }
        return { ...NOTHING_RUN, parked: asked.map((request) => request.id).join(',') };
      }
    }

    // A room thread's turn: its room hears that the assistant is at work on it.
    const canvasId = session.canvasId;
    if (canvasId && this.deps.threads) await this.deps.threads.relay.state(canvasId, data.sessionId, data.messageId, 'thinking');
    // The first message of a session has no history: nothing to read.
    const history = start.earlier ? await this.deps.repos.chat.context(data.sessionId, message.seq, HISTORY_LIMIT) : [];
    // A coding turn: the named agent (or the one the Orchestrator hands it to) with its own tools and prompt.
    const { codingAgents } = this.deps.config;
    const route = data.agent && data.deviceId && data.tools !== 'none' ? routeCoding(data.agent, message.content, codingAgents) : undefined;
    const agent = route?.agent;
    // Without a device the assistant has no tools and says it cannot reach local data. A turn that
    // is not a coding turn was reserved as this very call (turn-prompt.ts builds both).
    const toolsets: string[] = agent
      ? codingAgents[agent].toolsets
      : turnToolsets(message.content, data.tools !== 'none' && Boolean(data.deviceId));
    log.info(
      { toolsets, agent, mode: data.tools, historyLength: history.length, withContext: !!session.context },
      'assistant turn started',
    );
    const prompt = agent
      ? withChatContext(codingSystemPrompt(codingAgents[agent]), session.context)
      : canvasId
        ? threadSystemPrompt(session.context)
        : turnSystemPrompt(toolsets as ToolsetName[], session.context);
    // Sent with files: the turn waits for their ingestion (bounded), then is told where each stands.
    const attached = this.deps.knowledge?.attachments;
    const files =
      data.attachments?.length && attached ? await awaitAttachments(attached.statuses, data.attachments, attached.waitMs, turn.signal) : [];
    if (files.length) log.info({ files: files.map((file) => file.status) }, 'assistant turn read its files');
    // The session's context (from the user's app) rides in the system prompt of every turn; in a
    // room thread each message names its sender, so the model sees who said what.
    const messages = [
      systemMessage(files.length ? `${prompt}\n\n${attachmentsNote(files)}` : prompt),
      ...historyMessages(history.map((earlier) => ({ role: earlier.role, content: authoredText(earlier) }))),
      userMessage(authoredText(message)),
    ];
    return this.engine.drive(turn, { start: { messages }, toolsets, agent, request: message.content, kept: route?.kept, budget: ticket });
  }

  /**
   * `hitl-resume`: continues a parked turn from its stored continuation, on any worker, once every
   * request of its parked round is decided: the approved calls run (concurrently) and the
   * model is told of each refused one (rejected, timeout); then the turn goes on as usual and ends
   * with `final`. The resume of a decision whose siblings still wait does nothing: the last
   * decision's resume continues the turn.
   */
  async resume({ approvalId }: HitlJob, job: Job): Promise<ChatTurnResult> {
    const row = await this.deps.repos.hitl.find(approvalId);
    if (!row) throw new UnrecoverableError(`Approval request ${approvalId} does not exist`);
    if (row.status === 'pending') throw new UnrecoverableError(`Approval request ${row.id} is not decided yet`);
    // An agentflow node's call: its own queue continues it (and marks the request resumed).
    if ((row.continuation as { kind?: unknown } | null)?.kind === 'flow') {
      if (!this.deps.resumeFlowNode) throw new UnrecoverableError('This worker cannot resume flow nodes');
      await this.deps.resumeFlowNode(row);
      return NOTHING_RUN;
    }
    // One resume per parked round: a second one (a sibling's decision, or the reaper re-queued it after
    // a lost job) stops here, unless this very job is being re-run after its worker died (its device
    // calls carry the same ids).
    const round = await claimRound(this.deps.repos.hitl, row, restartedAfterCrash(job));
    if (!round) return NOTHING_RUN;
    const data: ChatTurnJob = {
      userId: row.userId,
      sessionId: approvalSessionId(row),
      messageId: row.messageId,
      // The turn's device, if it had one: an MCP call's request names its server instead (`mcp:<server>`).
      deviceId: round.group.map((request) => request.deviceId).find((id) => !id.startsWith('mcp:')),
      ...(round.stored.fromDevice === true ? { fromDevice: true as const } : {}),
      tools: 'device',
    };
    const parked = { usage: round.usage, approvalIds: round.group.map((request) => request.id) };
    // A room thread's turn keeps its canvas (and its tools) across the park.
    const resumed = await this.tools.withThread(data);
    return this.watching(job, resumed, parked, (turn) => this.continueParked(turn, round));
  }

  private async continueParked(turn: ChatTurn, round: ClaimedRound): Promise<ChatTurnResult> {
    const { data, life } = turn;
    const answered = await this.deps.repos.chat.findReply(data.sessionId, data.messageId);
    if (answered) {
      if (answered.status !== 'cancelled')
        await turn.publish({ type: 'final', sessionId: data.sessionId, response: answered.content, usage: usageOf(answered) });
      return NOTHING_RUN;
    }
    // Cancelled while parked or before this resume ran: the turn ends with what it had said.
    const begun = await life.begin(turn.ref);
    if (begun === 'cancel_requested') return turn.endCancelled(round.parked.response, round.usage);
    if (begun === 'ended') return NOTHING_RUN;
    return this.engine.drive(turn, await turn.resumed(round));
  }
}
