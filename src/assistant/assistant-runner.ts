import { createHash, randomUUID } from 'node:crypto';
import { describeRedacted } from '../lib/redact-error';
import { UnrecoverableError, type Job } from 'bullmq';
import type { Config } from '../../config';
import { ModelCallCancelled, ModelStoppedEarly, ModelUnavailableError, type ModelGateway, type UsageLine } from '../ai/model-gateway';
import { historyMessages, systemMessage, userMessage, type ModelMessage } from '../ai/model-messages';
import type { CancelSignals } from '../lib/cancel-signals';
import type { DevicePort } from '../devices/device-channel';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { HitlRequestRow } from '../models/schema';
import { approvalSessionId } from '../models/hitl-repository';
import type { Metrics } from '../observability/metrics';
import { describeIssues } from '../schemas/device-protocol';
import type { ChatTurnJob, HitlJob } from '../producers/assistant';
import type { EmbeddingJob, EmbeddingResult } from '../producers/embeddings';
import {
  inOrderLimited,
  MAX_PARALLEL_TOOL_CALLS,
  runToolLoop,
  tracedToolCall,
  waitingCalls,
  type ToolLoopResult,
  type ParkedLoop,
} from './tool-loop';
import type { ApprovalService } from './approvals';
import type { ChatCancels, TurnRef } from './chat-cancel';
import { claimParkedRound, loadContinuation, parkSiblings, positionOf, storeContinuation, type StoredContinuation } from './continuation';
import type { ChatEvent, ChatEventLog, TurnUsage } from './chat-events';
import { classifyIntent, plainSystemPrompt, systemPrompt, toolsFor } from './orchestrator';
import { withChatContext } from './chat-context';
import type { ToolsetName } from './tools';
import { auditToolCall, runAuditedToolCall, type ToolCallOutcome } from './tool-audit';
import { allowAllPolicy, type ToolPolicy } from './tool-policy';
import { TOOLS_BY_NAME, type DeviceCall, type ToolContext } from './tools';
import { MAX_EMBED_TEXT_CHARS } from '../schemas/api';
import { BudgetExceededError, type BudgetDoor, type BudgetTicket } from '../budget/budget-door';
import { restartedAfterCrash } from '../lib/job-restart';
import { invokeAgentAttributes } from '../observability/genai';
import { withSpan } from '../observability/tracing';

/** Earlier user and assistant messages fed back as context. */
export const HISTORY_LIMIT = 20;
/** How long a note tool waits for its embedding (the device call has its own deadline). */
const EMBED_WAIT_MS = 15_000;

export interface AssistantRunnerDeps {
  config: Config;
  repos: Repositories;
  models: ModelGateway;
  /** The user's devices, wherever they are connected: tool calls, streamed text, `final`. */
  devices: DevicePort;
  chatEvents: ChatEventLog;
  logger: Logger;
  metrics?: Metrics;
  /** Which tools are dangerous; defaults to every delete_*, allowed. */
  policy?: ToolPolicy;
  /** Embeds note content for the note tools (the `embeddings` queue, waited on); without it notes are not indexed. */
  embed?: (job: EmbeddingJob, timeoutMs: number) => Promise<EmbeddingResult>;
  /** With it, a dangerous call parks the turn until the user decides (0021) instead of asking `policy.check`. */
  approvals?: ApprovalService;
  /** Cancel requests: heard through `signals`; every start and end of a turn goes through `chatCancels`. */
  signals?: CancelSignals;
  chatCancels?: ChatCancels;
  /** Gives back the reservation a turn's request took when no model call of the turn took it over. */
  budget?: Pick<BudgetDoor, 'releaseUnused'>;
  /** Queues the continuation of an agentflow node that parked for this approval (its decision came here). */
  resumeFlowNode?: (row: HitlRequestRow) => Promise<void>;
}

/**
 * The worker side of an assistant turn: route the message to toolsets (task / project / checkpoint / note), run the tool loop with
 * its tools executing on the user's device, stream the answer to the device and to the turn's
 * event log, and keep the messages and the usage in PostgreSQL.
 */
export class AssistantRunner {
  private readonly policy: ToolPolicy;

  constructor(private readonly deps: AssistantRunnerDeps) {
    this.policy = deps.policy ?? allowAllPolicy;
  }

  /** `chat-turn`: answers one user message (payload parsed by the worker pool). */
  async chatTurn(data: ChatTurnJob, job: Job): Promise<{ toolCalls: number; toolIterations: number; parked?: string }> {
    // One ticket for the whole turn: its first model call takes over the request's reservation.
    const ticket: BudgetTicket = { userId: data.userId, reservationId: data.budget };
    try {
      // One `invoke_agent` span per turn: its model calls and tool calls are its children.
      return await withSpan(
        'invoke_agent assistant',
        'internal',
        invokeAgentAttributes({ name: 'assistant', conversationId: data.sessionId }),
        () => this.watching(data.messageId, (signal) => this.start(job, data, signal, ticket)),
      );
    } finally {
      await this.deps.budget?.releaseUnused(ticket);
    }
  }

  /**
   * Runs `work` with an AbortSignal that a cancel of the turn (from any node) aborts; watched before
   * any read. A cancel requested before the watch began is seen by the turn's start (`begin`), which
   * reads the run's cancel mark: the signal's key is not read again.
   */
  private async watching<T>(messageId: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const watch = this.deps.signals?.watch('chat', messageId, { startReadsRequest: true });
    try {
      return await work(watch?.signal ?? new AbortController().signal);
    } finally {
      watch?.release();
    }
  }

  private async start(
    job: Job,
    data: ChatTurnJob,
    signal: AbortSignal,
    ticket: BudgetTicket,
  ): Promise<{ toolCalls: number; toolIterations: number; parked?: string }> {
    const log = this.deps.logger.child({ component: 'assistant', jobId: job.id, sessionId: data.sessionId, messageId: data.messageId });
    const { chat } = this.deps.repos;
    // The run's start, and the session (its owner's), the message and an answer already stored, in one statement.
    const { begun, rows: start } = await this.turns().open(turnOf(data));
    if (!start) {
      await this.turns().fail(turnOf(data), 'session_not_found', 'The chat session no longer exists');
      throw new UnrecoverableError(`Chat message ${data.messageId} of session ${data.sessionId} does not exist`);
    }
    const { session, message, reply: answered } = start;
    if (answered) {
      // A cancelled turn's stream already ended with `cancelled`.
      if (answered.status !== 'cancelled')
        await this.publish(data, { type: 'final', sessionId: data.sessionId, response: answered.content, usage: usageOf(answered) });
      return { toolCalls: 0, toolIterations: 0 };
    }
    // Cancelled while queued: it never starts.
    if (begun === 'cancel_requested') return this.cancelled(data, log, '', null);
    if (begun === 'ended') return { toolCalls: 0, toolIterations: 0 };

    // The first message of a session has no history: nothing to read.
    const history = start.earlier ? await chat.context(data.sessionId, message.seq, HISTORY_LIMIT) : [];
    // Without a device the assistant has no tools and says it cannot reach local data.
    const toolsets = data.tools === 'none' || !data.deviceId ? [] : classifyIntent(message.content).toolsets;
    log.info({ toolsets, mode: data.tools, historyLength: history.length, withContext: !!session.context }, 'assistant turn started');
    return this.runTurn(data, log, toolsets, newUsage(this.deps.models), signal, ticket, {
      messages: [
        // The session's context (from the user's app) rides in the system prompt of every turn.
        systemMessage(withChatContext(toolsets.length ? systemPrompt(toolsets) : plainSystemPrompt(), session.context)),
        ...historyMessages(history),
        userMessage(message.content),
      ],
    });
  }

  /** `hitl-timeout`: the request was not decided in time; its resume job tells the model. */
  async expire({ approvalId }: HitlJob): Promise<{ approvalId: string; status: string }> {
    if (!this.deps.approvals) throw new UnrecoverableError('Approvals are not enabled on this worker');
    const row = await this.deps.approvals.expire(approvalId);
    return { approvalId, status: row ? 'timeout' : 'already_decided' };
  }

  /**
   * `hitl-resume`: continues a parked turn from its stored continuation, on any worker, once every
   * request of its parked round is decided (0251): the approved calls run (concurrently) and the
   * model is told of each refused one (rejected, timeout); then the turn goes on as usual and ends
   * with `final`. The resume of a decision whose siblings still wait does nothing: the last
   * decision's resume continues the turn.
   */
  async resume({ approvalId }: HitlJob, job: Job): Promise<{ toolCalls: number; toolIterations: number; parked?: string }> {
    const row = await this.deps.repos.hitl.find(approvalId);
    if (!row) throw new UnrecoverableError(`Approval request ${approvalId} does not exist`);
    if (row.status === 'pending') throw new UnrecoverableError(`Approval request ${row.id} is not decided yet`);
    // An agentflow node's call: its own queue continues it (and marks the request resumed).
    if ((row.continuation as { kind?: unknown } | null)?.kind === 'flow') {
      if (!this.deps.resumeFlowNode) throw new UnrecoverableError('This worker cannot resume flow nodes');
      await this.deps.resumeFlowNode(row);
      return { toolCalls: 0, toolIterations: 0 };
    }
    // One resume per parked round: a second one (a sibling's decision, or the reaper re-queued it after
    // a lost job) stops here, unless this very job is being re-run after its worker died (its device
    // calls carry the same ids).
    const group = await parkSiblings(this.deps.repos.hitl, row);
    if (!(await claimParkedRound(this.deps.repos.hitl, group, restartedAfterCrash(job)))) return { toolCalls: 0, toolIterations: 0 };
    const data: ChatTurnJob = {
      userId: row.userId,
      sessionId: approvalSessionId(row),
      messageId: row.messageId,
      deviceId: row.deviceId,
      tools: 'device',
    };
    return this.watching(data.messageId, (signal) => this.continueParked(job, group, data, signal));
  }

  private async continueParked(
    job: Job,
    group: HitlRequestRow[],
    data: ChatTurnJob,
    signal: AbortSignal,
  ): Promise<{ toolCalls: number; toolIterations: number; parked?: string }> {
    const log = this.deps.logger.child({
      component: 'assistant',
      jobId: job.id,
      sessionId: data.sessionId,
      messageId: data.messageId,
      approvalIds: group.map((row) => row.id),
    });
    const answered = await this.deps.repos.chat.findReply(data.sessionId, data.messageId);
    if (answered) {
      if (answered.status !== 'cancelled')
        await this.publish(data, { type: 'final', sessionId: data.sessionId, response: answered.content, usage: usageOf(answered) });
      return { toolCalls: 0, toolIterations: 0 };
    }
    const { parked, toolsets, usage } = loadContinuation(group[0].continuation as StoredContinuation);
    // Cancelled while parked or before this resume ran: the turn ends with what it had said.
    const begun = await this.turns().begin(turnOf(data));
    if (begun === 'cancel_requested') return this.cancelled(data, log, parked.response, usage);
    if (begun === 'ended') return { toolCalls: 0, toolIterations: 0 };
    const offered = new Set(toolsFor(toolsets as ToolsetName[]).map((t) => t.name));
    // Each waiting call with its own decision: approved ones run (as a round's calls do, at once),
    // refused ones become the refusal the model reads.
    const decisions = new Map(group.map((row) => [positionOf(row), row]));
    // A turn parked before 0251 holds calls that never ran and have no request: the loop runs (or parks) them.
    const waiting = waitingCalls(parked).filter(({ position }) => decisions.has(position));
    log.info({ decisions: group.map((row) => ({ status: row.status, tool: row.toolName })) }, 'assistant turn resumed');
    const outcomes = await inOrderLimited(
      waiting,
      MAX_PARALLEL_TOOL_CALLS,
      ({ call, position }) => {
        const row = decisions.get(position)!;
        if (row.status === 'approved')
          return tracedToolCall(call, () =>
            this.executeTool(data, offered, call.name, call.args, log, {
              approved: true,
              approvalId: row.id,
              signal,
              step: `${parked.iteration}.${call.index ?? position}`,
            }),
          );
        return this.refused(data, log, call.name, row);
      },
      ({ call }) => `Error: ${call.name} was NOT run: the turn was cancelled.`,
      signal,
    );
    const results = new Map(waiting.map(({ position }, i) => [position, outcomes[i]]));
    // A resumed turn was admitted by its first job: its calls reserve their own.
    return this.runTurn(
      data,
      log,
      toolsets as ToolsetName[],
      usage,
      signal,
      { userId: data.userId },
      { resume: { state: parked, results } },
    );
  }

  /** Runs (or resumes) the tool loop of a turn and finishes it: stored answer and `final`, or parked. */
  private async runTurn(
    data: ChatTurnJob,
    log: Logger,
    toolsets: ToolsetName[],
    usage: TurnUsage,
    signal: AbortSignal,
    budget: BudgetTicket,
    start: { messages: ModelMessage[] } | { resume: { state: ParkedLoop; results: ReadonlyMap<number, string> } },
  ): Promise<{ toolCalls: number; toolIterations: number; parked?: string }> {
    const { chat } = this.deps.repos;
    const tools = toolsFor(toolsets);
    const offered = new Set(tools.map((t) => t.name));
    // Carried by the job from the request's session check; read only for a job that has none.
    const tier = data.tier ?? (await this.deps.repos.users.findById(data.userId))?.tier ?? 'free';
    const pending: Array<Promise<void>> = [];
    const approvals = this.deps.approvals;
    // What the user has seen so far: the answer a cancel keeps.
    let streamed = 'resume' in start ? start.resume.state.response : '';

    try {
      const result: ToolLoopResult = await runToolLoop({
        models: this.deps.models,
        model: data.model,
        account: { userId: data.userId, tier, sessionId: data.sessionId },
        // The answering call's usage line is written by the turn's end, in its transaction.
        leaveAnswerLine: true,
        budget,
        messages: 'messages' in start ? start.messages : [],
        resume: 'resume' in start ? start.resume : undefined,
        tools,
        signal,
        executeTool: (name, args, step) => this.executeTool(data, offered, name, args, log, { signal, step }),
        // Only a call that would really run parks: an unknown tool or bad arguments is an error at once.
        mustPark: approvals
          ? (name, args) =>
              offered.has(name) && this.policy.isDangerous(name) && TOOLS_BY_NAME.get(name)!.schema.safeParse(args ?? {}).success
          : undefined,
        onText: (text) => {
          streamed += text;
          pending.push(this.publish(data, { type: 'text_chunk', sessionId: data.sessionId, text }));
        },
        onModelCall: (call) => void addUsage(usage, call),
        onToolResult: async (name, _args, content) => {
          await chat.addMessage({ sessionId: data.sessionId, role: 'tool', toolName: name, content, replyTo: data.messageId });
        },
      });
      if (result.parked && approvals && data.deviceId) {
        // Parked: the state goes to PostgreSQL and the job ends, so no worker slot waits on a human.
        // One request per waiting call, in call order, each holding the same state (0251).
        await Promise.allSettled(pending);
        const parkId = randomUUID();
        const requested: string[] = [];
        for (const { call, position } of waitingCalls(result.parked)) {
          const request = await approvals.request({
            userId: data.userId,
            sessionId: data.sessionId,
            messageId: data.messageId,
            deviceId: data.deviceId,
            toolName: call.name,
            parameters: TOOLS_BY_NAME.get(call.name)!.schema.parse(call.args ?? {}) as Record<string, unknown>,
            continuation: storeContinuation(result.parked, toolsets, usage, { parkId, position }),
          });
          requested.push(request.id);
          log.info({ approvalId: request.id, tool: call.name }, 'assistant turn parked for approval');
        }
        // A cancel that came while parking found no approval to reject (or not all of them): end the turn here.
        if (signal.aborted || (await this.turns().cancelRequested(data.messageId))) {
          await approvals.cancelPending(data.messageId, data.userId);
          return this.cancelled(data, log, result.response, usage);
        }
        return { toolCalls: result.toolCalls, toolIterations: result.toolIterations, parked: requested.join(',') };
      }
      await Promise.allSettled(pending);
      const lines = result.unrecorded ? [result.unrecorded] : [];
      // The run's end stores the answer and its usage line and emits `final`; a cancel accepted before this wins (no answer stored).
      const stored = await this.turns().finish(turnOf(data), result.response, usage, lines);
      if (stored === 'cancel_requested') return this.cancelled(data, log, result.response, usage, lines);
      if (stored === 'answered') return { toolCalls: result.toolCalls, toolIterations: result.toolIterations };
      log.info(
        {
          toolCalls: result.toolCalls,
          toolIterations: result.toolIterations,
          inputTokens: usage.inputTokens,
          outputTokens: usage.outputTokens,
        },
        'assistant turn completed',
      );
      return { toolCalls: result.toolCalls, toolIterations: result.toolIterations };
    } catch (error) {
      await Promise.allSettled(pending);
      if (error instanceof ModelCallCancelled || signal.aborted) {
        // The gateway recorded the cut-short call's usage already; the turn's total includes it.
        if (error instanceof ModelCallCancelled) addUsage(usage, error.usage);
        return this.cancelled(data, log, streamed, usage);
      }
      log.warn({ err: error }, 'assistant turn failed');
      const { code, message } = failureOf(error);
      await this.turns()
        .fail(turnOf(data), code, message)
        .catch((error: unknown) => log.warn({ err: error }, 'assistant turn not ended as failed; the reaper ends it'));
      throw new UnrecoverableError(`assistant turn failed: ${describeRedacted(error)}`);
    }
  }

  /**
   * Runs one tool call on the turn's device. Every failure (bad arguments, policy refusal, device
   * offline, timeout, device error) becomes "Error: …" text for the model: the turn goes on.
   */
  private async executeTool(
    data: ChatTurnJob,
    offered: Set<string>,
    name: string,
    rawArgs: unknown,
    log: Logger,
    options: { approved?: boolean; approvalId?: string; signal?: AbortSignal; step?: string } = {},
  ): Promise<string> {
    const { deviceId } = data;
    if (!deviceId) return `Error: no device is connected, so ${name} cannot run.`;
    const tool = TOOLS_BY_NAME.get(name);
    // Only the routed agent's tools: a model cannot reach a tool it was not offered this turn.
    if (!tool || !offered.has(name)) return `Error: there is no tool called "${name}" here; use one of: ${[...offered].join(', ')}.`;
    const args = tool.schema.safeParse(rawArgs ?? {});
    if (!args.success) return `Error: invalid arguments for ${name}: ${describeIssues(args.error)}. Fix them and call the tool again.`;
    // From here the call is meant for the device: who, which device, which tool, how it ended.
    const audited = (outcome: ToolCallOutcome) =>
      auditToolCall(this.deps.repos.audit, log, {
        userId: data.userId,
        deviceId,
        sessionId: data.sessionId,
        tool: name,
        outcome,
        approvalId: options.approvalId,
      });
    if (!options.approved && this.policy.isDangerous(name)) {
      const decision = await this.policy.check({
        userId: data.userId,
        sessionId: data.sessionId,
        deviceId,
        toolName: name,
        args: args.data,
      });
      if (!decision.allowed) {
        await audited('not_allowed');
        return `Error: ${name} was not allowed: ${decision.reason}`;
      }
    }
    // A cancel abandons the call: the wait ends at once and a late answer is ignored.
    // Every device call carries an idempotency key stable across re-runs of this turn (a worker died
    // and BullMQ ran the job again): the same turn, step, tool, arguments and n-th device call of
    // the tool give the same key, so the device answers a repeated write from memory (0078).
    let nth = 0;
    const device = ((call) => {
      const idempotencyKey =
        options.step === undefined ? undefined : toolCallKey(data.messageId, options.step, name, args.data, (nth += 1));
      return this.deps.devices.callDevice(data.userId, deviceId, call as never, { signal: options.signal, idempotencyKey });
    }) as DeviceCall;
    return runAuditedToolCall(name, () => tool.run(args.data, device, this.toolContext(data)), audited, log, 'assistant tool failed');
  }

  /** The result a refused call gives the model (rejected, or not decided in time), audited. */
  private async refused(data: ChatTurnJob, log: Logger, name: string, row: HitlRequestRow): Promise<string> {
    const status = row.status === 'rejected' ? 'rejected' : 'timeout';
    await auditToolCall(this.deps.repos.audit, log, {
      userId: data.userId,
      deviceId: row.deviceId,
      sessionId: data.sessionId,
      tool: name,
      outcome: status,
      approvalId: row.id,
    });
    return status === 'rejected'
      ? `Error: the user rejected ${name}; it was NOT run. Do not try it again; tell the user it was not done.`
      : `Error: ${name} was NOT run: the user did not approve it in time. Tell the user it was not done and that they can ask again.`;
  }

  /** Ends a cancelled turn (partial answer kept, marked cancelled; streams end with `cancelled`). */
  private async cancelled(
    data: ChatTurnJob,
    log: Logger,
    response: string,
    usage: TurnUsage | null,
    lines: readonly UsageLine[] = [],
  ): Promise<{ toolCalls: number; toolIterations: number; cancelled: true }> {
    await this.turns().end(turnOf(data), { response, usage }, lines);
    log.info({ chars: response.length, usage }, 'assistant turn cancelled');
    return { toolCalls: 0, toolIterations: 0, cancelled: true };
  }

  /** Every start and end of a turn goes through the run kernel's chat kind. */
  private turns(): ChatCancels {
    if (!this.deps.chatCancels) throw new UnrecoverableError('This worker cannot start or end chat turns (no run kernel)');
    return this.deps.chatCancels;
  }

  /** Note tools embed through the `embeddings` queue (micro-batched, usage recorded, 0020). */
  private toolContext(data: ChatTurnJob): ToolContext {
    const { embed } = this.deps;
    if (!embed) return {};
    return {
      embed: async (text) => {
        const tier = (await this.deps.repos.users.findById(data.userId))?.tier ?? 'free';
        const { vector } = await embed({ text: text.slice(0, MAX_EMBED_TEXT_CHARS), userId: data.userId, tier }, EMBED_WAIT_MS);
        return vector;
      },
    };
  }

  /** To the requesting device's sockets (any node) and to the turn's event log (HTTP listeners). */
  private async publish(data: ChatTurnJob, event: Extract<ChatEvent, { type: 'text_chunk' | 'final' | 'error' }>): Promise<void> {
    if (data.deviceId) {
      const { devices } = this.deps;
      if (event.type === 'text_chunk')
        devices.send(data.userId, data.deviceId, 'text_chunk', { sessionId: event.sessionId, text: event.text });
      else if (event.type === 'final')
        devices.send(data.userId, data.deviceId, 'final', { sessionId: event.sessionId, response: event.response });
      else devices.send(data.userId, data.deviceId, 'chat_error', { sessionId: event.sessionId, code: event.code, message: event.message });
    }
    await this.deps.chatEvents.append(data.messageId, event);
  }
}

const turnOf = (data: ChatTurnJob): TurnRef => ({
  userId: data.userId,
  sessionId: data.sessionId,
  messageId: data.messageId,
  deviceId: data.deviceId,
});

/** The code and words a failed turn ends with: the model unreachable, filtered or cut at its output limit, the budget spent (its numbers), or anything else. */
function failureOf(error: unknown): { code: string; message: string } {
  if (error instanceof ModelUnavailableError)
    return { code: 'llm_unavailable', message: 'The language model could not be reached; please try again later' };
  if (error instanceof ModelStoppedEarly) return { code: error.code, message: error.message };
  if (error instanceof BudgetExceededError) return { code: 'budget_exceeded', message: error.message };
  return { code: 'assistant_failed', message: 'The assistant could not answer; please try again' };
}

/** Adds one model call's tokens and cost to the turn's total. */
const addUsage = (
  usage: TurnUsage,
  call: { provider: string; model: string; inputTokens: number; outputTokens: number; costUsd: number },
) =>
  Object.assign(usage, {
    provider: call.provider,
    model: call.model,
    inputTokens: usage.inputTokens + call.inputTokens,
    outputTokens: usage.outputTokens + call.outputTokens,
    costUsd: usage.costUsd + call.costUsd,
  });

const newUsage = (models: ModelGateway): TurnUsage => ({ ...models.defaultModel, inputTokens: 0, outputTokens: 0, costUsd: 0 });

const usageOf = (row: {
  provider: string | null;
  model: string | null;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}): TurnUsage => ({
  provider: row.provider ?? 'unknown',
  model: row.model ?? 'unknown',
  inputTokens: row.inputTokens,
  outputTokens: row.outputTokens,
  costUsd: row.costUsd,
});

/**
 * The idempotency key of one device call of a turn: a hash of the turn (its user message id), the
 * step (model round and place in it), the tool, its arguments and which of the tool's device calls
 * it is. Deterministic, so a re-run of the turn sends the same keys (decision 0078).
 */
export function toolCallKey(messageId: string, step: string, tool: string, args: unknown, nth: number): string {
  return createHash('sha256')
    .update(JSON.stringify([messageId, step, tool, args, nth]))
    .digest('base64url')
    .slice(0, 32);
}
