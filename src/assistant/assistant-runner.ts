import { createHash, randomUUID } from 'node:crypto';
import { MODEL_FAILURE_TEXT } from '../ai/llm';
import { describeRedacted } from '../lib/redact-error';
import { AppError } from '../lib/errors';
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
import { usageOf, type ChatEvent, type ChatEventLog, type TurnUsage } from './chat-events';
import { toolsFor } from './orchestrator';
import { codingSystemPrompt, codingToolsFor, isCodingAgent, routeCodingAgent, toolNamed, type CodingAgentName } from './coding-agents';
import { DeviceRpcError } from '../devices/device-rpc';
import type { CodeTool, ChangePreview } from './code-tools';
import { joinAnswers, parsePlan, PLAN_TOOL, planSteps, planText, stepPrompt, type PlanState, type PlanStep } from './coding-plan';
import { withChatContext } from './chat-context';
import { HISTORY_LIMIT, turnSystemPrompt, turnToolsets } from './turn-prompt';
import type { ToolsetName } from './tools';
import { auditMcpToolCall, auditToolCall, runAuditedToolCall, type ToolCallOutcome } from './tool-audit';
import type { McpOffer, McpTools } from '../mcp/mcp-tools';
import { parseMcpToolName } from '../mcp/tool-names';
import { allowAllPolicy, type ToolPolicy } from './tool-policy';
import { type DeviceCall, type ToolContext } from './tools';
import { MAX_EMBED_TEXT_CHARS } from '../schemas/api';
import { BudgetExceededError, type BudgetDoor, type BudgetTicket } from '../budget/budget-door';
import { toolDefinitionBytes } from '../ai/model-tools';
import { fitMcpOffer } from './mcp-fit';
import { restartedAfterCrash } from '../lib/job-restart';
import { invokeAgentAttributes } from '../observability/genai';
import { withSpan } from '../observability/tracing';
import type { UsageLimiter, UsageKind } from '../lib/usage-limiter';
import { CODE_TOOL_RISK, isRiskyCodeTool } from './tool-names';

/** A command without its own limit runs up to the device's (60 s unless the device says otherwise). */
const DEFAULT_COMMAND_TIMEOUT_MS = 60_000;
/** How long after a command's limit the device has to answer. */
const COMMAND_ANSWER_MARGIN_MS = 5_000;

/** Tool arguments for the stream: strings over 500 characters cut, so a 1 MB write_file does not travel twice. */
function bounded(args: Record<string, unknown>): Record<string, unknown> {
  const cutText = (value: unknown): unknown =>
    typeof value === 'string'
      ? value.length > 500
        ? `${value.slice(0, 500)}… (${value.length} characters)`
        : value
      : Array.isArray(value)
        ? value.slice(0, 50).map(cutText)
        : value && typeof value === 'object'
          ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, cutText(v)]))
          : value;
  return cutText(args) as Record<string, unknown>;
}

export { HISTORY_LIMIT } from './turn-prompt';
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
  /** With it, a dangerous call parks the turn until the user decides instead of asking `policy.check`. */
  approvals?: ApprovalService;
  /** Cancel requests: heard through `signals`; every start and end of a turn goes through `chatCancels`. */
  signals?: CancelSignals;
  chatCancels?: ChatCancels;
  /** The per-user hourly limits: device operations (`deviceOperationsPerHour`) and the coding agents' file operations and approval requests; without it, none. */
  usage?: Pick<UsageLimiter, 'take'>;
  /** The tools of the user's registered MCP servers, offered on every turn that may use tools. */
  mcp?: Pick<McpTools, 'offerAll' | 'call'>;
  /** Widens a turn's reservation when its MCP servers list more than its request counted; without it, nothing is widened. */
  budget?: Pick<BudgetDoor, 'widen'>;
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
    // What no model call takes (the turn parked, failed or was cancelled first) the kernel gives back when the turn ends.
    await this.deps.chatCancels?.hold(data.messageId, ticket);
    // One `invoke_agent` span per turn: its model calls and tool calls are its children.
    return await withSpan(
      'invoke_agent assistant',
      'internal',
      invokeAgentAttributes({ name: 'assistant', conversationId: data.sessionId }),
      () => this.watching(data.messageId, (signal) => this.start(job, data, signal, ticket)),
    );
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
    // A coding turn: the named agent (or the one the Orchestrator hands it to) with its own tools and prompt.
    const agent = data.agent && data.deviceId && data.tools !== 'none' ? routeCodingAgent(data.agent, message.content) : undefined;
    // Without a device the assistant has no tools and says it cannot reach local data. A turn that
    // is not a coding turn was reserved as this very call (turn-prompt.ts builds both).
    const toolsets: string[] = agent
      ? this.deps.config.codingAgents[agent].toolsets
      : turnToolsets(message.content, data.tools !== 'none' && Boolean(data.deviceId));
    log.info(
      { toolsets, agent, mode: data.tools, historyLength: history.length, withContext: !!session.context },
      'assistant turn started',
    );
    const prompt = agent
      ? withChatContext(codingSystemPrompt(this.deps.config.codingAgents[agent]), session.context)
      : turnSystemPrompt(toolsets as ToolsetName[], session.context);
    return this.runTurn(
      data,
      log,
      toolsets,
      newUsage(this.deps.models),
      signal,
      ticket,
      {
        messages: [
          // The session's context (from the user's app) rides in the system prompt of every turn.
          systemMessage(prompt),
          ...historyMessages(history),
          userMessage(message.content),
        ],
      },
      { agent, request: message.content },
    );
  }

  /** `hitl-timeout`: the request was not decided in time; its resume job tells the model. */
  async expire({ approvalId }: HitlJob): Promise<{ approvalId: string; status: string }> {
    if (!this.deps.approvals) throw new UnrecoverableError('Approvals are not enabled on this worker');
    const row = await this.deps.approvals.expire(approvalId);
    return { approvalId, status: row ? 'timeout' : 'already_decided' };
  }

  /**
   * `hitl-resume`: continues a parked turn from its stored continuation, on any worker, once every
   * request of its parked round is decided: the approved calls run (concurrently) and the
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
      // The turn's device, if it had one: an MCP call's request names its server instead (`mcp:<server>`).
      deviceId: group.map((request) => request.deviceId).find((id) => !id.startsWith('mcp:')),
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
    const { parked, toolsets, usage, codingAgent, plan: storedPlan } = loadContinuation(group[0].continuation as StoredContinuation);
    const agent = isCodingAgent(codingAgent) ? codingAgent : undefined;
    const plan = storedPlan as PlanState | undefined;
    // Cancelled while parked or before this resume ran: the turn ends with what it had said.
    const begun = await this.turns().begin(turnOf(data));
    if (begun === 'cancel_requested') return this.cancelled(data, log, parked.response, usage);
    if (begun === 'ended') return { toolCalls: 0, toolIterations: 0 };
    const mcp = await this.mcpOffer(data, signal);
    const offered = new Set([...this.turnTools(toolsets, agent).map((t) => t.name), ...mcp.specs.map((t) => t.name)]);
    if (agent) await this.event(data, { type: 'agent', sessionId: data.sessionId, agent, state: 'processing' });
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
          return this.announced(data, log, call.name, call.args, agent, () =>
            tracedToolCall(call, () =>
              this.executeTool(data, offered, call.name, call.args, log, {
                approved: true,
                approvalId: row.id,
                approvedParameters: row.parameters,
                mcp,
                signal,
                step: `${plan ? `p${plan.index}.` : ''}${parked.iteration}.${call.index ?? position}`,
                agent,
              }),
            ),
          );
        return this.announced(data, log, call.name, call.args, agent, () => this.refused(data, log, call.name, row));
      },
      ({ call }) => `Error: ${call.name} was NOT run: the turn was cancelled.`,
      signal,
    );
    const results = new Map(waiting.map(({ position }, i) => [position, outcomes[i]]));
    // A resumed turn was admitted by its first job: its calls reserve their own.
    return this.runTurn(
      data,
      log,
      toolsets,
      usage,
      signal,
      { userId: data.userId },
      { resume: { state: parked, results } },
      { agent, plan },
    );
  }

  /** Runs (or resumes) the tool loop of a turn and finishes it: stored answer and `final`, or parked. */
  private async runTurn(
    data: ChatTurnJob,
    log: Logger,
    toolsets: string[],
    usage: TurnUsage,
    signal: AbortSignal,
    budget: BudgetTicket,
    start: { messages: ModelMessage[] } | { resume: { state: ParkedLoop; results: ReadonlyMap<number, string> } },
    coding: { agent?: CodingAgentName; plan?: PlanState; request?: string } = {},
  ): Promise<{ toolCalls: number; toolIterations: number; parked?: string }> {
    const { chat } = this.deps.repos;
    const { agent, plan } = coding;
    // The Orchestrator (not yet in a plan) may propose one: it gets the plan tool besides its own.
    const planning = agent === 'orchestrator' && !plan && coding.request !== undefined;
    let proposed: PlanStep[] | undefined;
    const mcp = await this.mcpOffer(data, signal, { ticket: budget, log });
    const tools = [...this.turnTools(toolsets, agent), ...mcp.specs];
    const agentConfig = agent ? this.deps.config.codingAgents[agent] : undefined;
    if (agent && 'messages' in start) await this.event(data, { type: 'agent', sessionId: data.sessionId, agent, state: 'processing' });
    const offered = new Set(tools.map((t) => t.name));
    // Carried by the job from the request's session check; read only for a job that has none.
    const tier = data.tier ?? (await this.deps.repos.users.findById(data.userId))?.tier ?? 'free';
    const pending: Array<Promise<void>> = [];
    const approvals = this.deps.approvals;
    // What the user has seen so far: the answer a cancel keeps (in a plan: the earlier steps' too).
    const prior = plan ? planText(plan) : '';
    let streamed = 'resume' in start ? start.resume.state.response : '';
    // A plan step's text follows the earlier answers after a blank line (the chunks still concatenate to the answer).
    let separate = Boolean(prior) && !streamed;

    try {
      const loop: Parameters<typeof runToolLoop>[0] = {
        models: this.deps.models,
        // The request's model, else the coding agent's own (when the deployment serves it), else the default.
        model: data.model ?? this.agentModel(agentConfig, log),
        maxToolIterations: agentConfig?.maxToolIterations,
        account: { userId: data.userId, tier, sessionId: data.sessionId },
        // The answering call's usage line is written by the turn's end, in its transaction.
        leaveAnswerLine: true,
        budget,
        messages: 'messages' in start ? start.messages : [],
        resume: 'resume' in start ? start.resume : undefined,
        tools: planning ? [...tools, PLAN_TOOL] : tools,
        signal,
        executeTool: async (name, args, step) => {
          // A plan's steps number their calls apart, so two steps' calls never share an idempotency key.
          const key = plan ? `p${plan.index}.${step}` : step;
          if (!planning || name !== PLAN_TOOL.name)
            return this.announced(data, log, name, args, agent, () =>
              this.executeTool(data, offered, name, args, log, { signal, step: key, agent, mcp }),
            );
          const parsed = parsePlan(args);
          if ('error' in parsed) return parsed.error;
          proposed = parsed.steps;
          return `Plan accepted: ${parsed.steps.length} steps run after your answer. Say in one or two sentences what the plan is, then stop.`;
        },
        // Only a call that would really run parks: an unknown tool or bad arguments is an error at once.
        mustPark: approvals
          ? (name, args) =>
              offered.has(name) &&
              (parseMcpToolName(name)
                ? mcp.dangerous.has(name)
                : this.policy.isDangerous(name) && toolNamed(name)!.schema.safeParse(args ?? {}).success)
          : undefined,
        onText: (text) => {
          streamed += text;
          const piece = separate ? `\n\n${text}` : text;
          separate = false;
          pending.push(this.publish(data, { type: 'text_chunk', sessionId: data.sessionId, text: piece }));
        },
        onModelCall: (call) => void addUsage(usage, call),
        onToolResult: async (name, _args, content) => {
          await chat.addMessage({ sessionId: data.sessionId, role: 'tool', toolName: name, content, replyTo: data.messageId });
        },
      };
      let result: ToolLoopResult = await runToolLoop(loop);
      // A change waits for approval with its diff, computed by the device from the file as it is now.
      // A change that cannot be made (no such text, a path refused) is answered at once instead.
      let previews = new Map<number, ChangePreview>();
      while (result.parked && approvals && data.deviceId) {
        const failed = new Map<number, string>();
        previews = await this.previewChanges(data, result.parked, signal, failed, log);
        if (!failed.size) break;
        result = await runToolLoop({ ...loop, messages: [], resume: { state: result.parked, results: failed } });
      }
      // A device call's approval names the turn's device; an MCP call's names its server (`mcp:<server>`).
      const approvalDevice = (name: string) => {
        const mcpTool = parseMcpToolName(name);
        return mcpTool ? `mcp:${mcpTool.server}` : data.deviceId;
      };
      if (result.parked && approvals && waitingCalls(result.parked).every(({ call }) => approvalDevice(call.name))) {
        // Parked: the state goes to PostgreSQL and the job ends, so no worker slot waits on a human.
        // One request per waiting call, in call order, each holding the same state.
        await Promise.allSettled(pending);
        const parkId = randomUUID();
        const requested: string[] = [];
        // The plan's hourly limit of approval requests: refused (429 rate_limited), the turn ends before any is asked.
        await approvals.allow(data.userId, waitingCalls(result.parked).length);
        for (const { call, position } of waitingCalls(result.parked)) {
          const request = await approvals.request({
            userId: data.userId,
            sessionId: data.sessionId,
            messageId: data.messageId,
            deviceId: approvalDevice(call.name)!,
            toolName: call.name,
            parameters: {
              ...((toolNamed(call.name)?.schema.parse(call.args ?? {}) ?? argsObject(call.args)) as Record<string, unknown>),
              ...(previews.has(position) ? previews.get(position) : {}),
            },
            continuation: storeContinuation(result.parked, toolsets, usage, { parkId, position }, agent, plan),
          });
          requested.push(request.id);
          log.info({ approvalId: request.id, tool: call.name }, 'assistant turn parked for approval');
        }
        // A cancel that came while parking found no approval to reject (or not all of them): end the turn here.
        if (signal.aborted || (await this.turns().cancelRequested(data.messageId))) {
          await approvals.cancelPending(data.messageId, data.userId);
          return this.cancelled(data, log, joinAnswers(prior, result.response), usage);
        }
        if (agent) {
          await this.event(data, { type: 'agent', sessionId: data.sessionId, agent, state: 'waiting' });
          this.deps.metrics?.codingTurns.inc({ agent, outcome: 'parked' });
        }
        return { toolCalls: result.toolCalls, toolIterations: result.toolIterations, parked: requested.join(',') };
      }
      await Promise.allSettled(pending);
      const lines = result.unrecorded ? [result.unrecorded] : [];
      if (agent) await this.event(data, { type: 'agent', sessionId: data.sessionId, agent, state: 'idle' });
      // A plan made now, or one going on: the next step runs, or the plan's whole answer ends the turn.
      let response = result.response;
      if (proposed || plan) {
        // The step that just ended keeps its answer; a new plan starts before its first step.
        const answers = plan ? Object.assign([...plan.answers], { [plan.index]: result.response }) : [];
        const current: PlanState = plan
          ? { ...plan, answers }
          : { request: coding.request!, preface: result.response, steps: proposed!, index: -1, answers };
        if (current.index + 1 < current.steps.length) {
          // Not the turn's last model call: its usage line is written now.
          await this.deps.repos.usage.recordMany(lines);
          return this.nextPlanStep(data, log, usage, signal, { ...current, index: current.index + 1 });
        }
        response = planText(current);
        await this.event(data, { type: 'plan', sessionId: data.sessionId, steps: planSteps(current, 'done') });
      }
      // The run's end stores the answer and its usage line and emits `final`; a cancel accepted before this wins (no answer stored).
      const stored = await this.turns().finish(turnOf(data), response, usage, lines);
      if (agent && stored !== 'answered')
        this.deps.metrics?.codingTurns.inc({ agent, outcome: stored === 'cancel_requested' ? 'cancelled' : 'completed' });
      if (stored === 'cancel_requested') return this.cancelled(data, log, response, usage, lines);
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
        if (plan)
          await this.event(data, { type: 'plan', sessionId: data.sessionId, steps: planSteps(plan, 'cancelled') }).catch((error: unknown) =>
            log.warn({ err: error }, 'plan state not logged for the turn'),
          );
        if (agent) this.deps.metrics?.codingTurns.inc({ agent, outcome: 'cancelled' });
        return this.cancelled(data, log, joinAnswers(prior, streamed), usage);
      }
      log.warn({ err: error }, 'assistant turn failed');
      if (agent)
        await this.event(data, { type: 'agent', sessionId: data.sessionId, agent, state: 'error' }).catch((error: unknown) =>
          log.warn({ err: error }, 'agent state not logged for the turn'),
        );
      if (agent) this.deps.metrics?.codingTurns.inc({ agent, outcome: 'failed' });
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
    options: {
      approved?: boolean;
      approvalId?: string;
      approvedParameters?: Record<string, unknown>;
      signal?: AbortSignal;
      step?: string;
      agent?: CodingAgentName;
      mcp?: McpOffer;
    } = {},
  ): Promise<string> {
    if (parseMcpToolName(name)) return this.executeMcpTool(data, offered, name, rawArgs, log, options);
    const { deviceId } = data;
    if (!deviceId) return `Error: no device is connected, so ${name} cannot run.`;
    const tool = toolNamed(name);
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
    // the tool give the same key, so the device answers a repeated write from memory.
    let nth = 0;
    const device = ((call) => {
      const idempotencyKey =
        options.step === undefined ? undefined : toolCallKey(data.messageId, options.step, name, args.data, (nth += 1));
      return this.deps.devices.callDevice(data.userId, deviceId, call as never, {
        signal: options.signal,
        idempotencyKey,
        timeoutMs: this.commandTimeout(call),
      });
    }) as DeviceCall;
    // A coding tool counts against the user's file operations of the hour, any other device tool
    // against the plan's device operations: past it the call is not run, and the model says so.
    if (Object.hasOwn(CODE_TOOL_RISK, name)) {
      const limited = await this.overLimit(data, 'codeFileOpsPerHour');
      if (limited) {
        await audited('rate_limited');
        return `Error: ${name} was NOT run: ${limited}`;
      }
    } else {
      const limited = await this.overLimit(data, 'deviceOperationsPerHour');
      if (limited) {
        await audited('not_allowed');
        return `Error: ${name} was NOT run: ${limited}. Tell the user it was not done and when they can try again.`;
      }
    }
    const context = { ...this.toolContext(data), ...(options.approvedParameters ? { approved: options.approvedParameters } : {}) };
    const { agent } = options;
    if (agent) await this.event(data, { type: 'agent', sessionId: data.sessionId, agent, state: 'executing' });
    const started = performance.now();
    const result = await runAuditedToolCall(name, () => tool.run(args.data, device, context), audited, log, 'assistant tool failed');
    if (agent)
      this.deps.metrics?.codeToolSeconds.observe(
        { tool: name, agent, outcome: result.startsWith('Error:') ? 'error' : 'ok' },
        (performance.now() - started) / 1000,
      );
    return result;
  }

  /** A coding agent's configured model; one the deployment does not serve is skipped (with a warning) for the default. */
  private agentModel(agent: { model: { provider: string; model: string } | null } | undefined, log: Logger) {
    if (!agent?.model) return undefined;
    if (this.deps.models.knows(agent.model)) return agent.model;
    log.warn({ model: agent.model }, 'the coding agent names a model this deployment does not serve; the default model answers');
    return undefined;
  }

  /** Runs step `plan.index` of the Orchestrator's plan with its agent: the stream hears the plan, then the agent. */
  private async nextPlanStep(data: ChatTurnJob, log: Logger, usage: TurnUsage, signal: AbortSignal, plan: PlanState) {
    const agent = plan.steps[plan.index].agent;
    const config = this.deps.config.codingAgents[agent];
    await this.event(data, { type: 'plan', sessionId: data.sessionId, steps: planSteps(plan) });
    log.info({ step: plan.index + 1, of: plan.steps.length, agent }, 'plan step started');
    const prompt = stepPrompt(plan, config, agent);
    // The turn was admitted by its first job: each step's calls reserve their own.
    return this.runTurn(
      data,
      log,
      config.toolsets,
      usage,
      signal,
      { userId: data.userId },
      { messages: [systemMessage(codingSystemPrompt({ ...config, prompt: prompt.system })), userMessage(prompt.user)] },
      { agent, plan },
    );
  }

  /** The tools of a turn: a coding agent's, or the data toolsets'. */
  private turnTools(toolsets: string[], agent?: CodingAgentName) {
    return agent ? codingToolsFor(this.deps.config.codingAgents[agent]) : toolsFor(toolsets as ToolsetName[]);
  }

  /** A command may run longer than a data call: the device stops it at its limit, then answers. */
  private commandTimeout(call: { action: string; timeoutMs?: number }): number | undefined {
    if (call.action !== 'execute_command') return undefined;
    return Math.max(this.deps.config.device.rpcTimeoutMs, (call.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS) + COMMAND_ANSWER_MARGIN_MS);
  }

  /**
   * The diff of each waiting change of a parked round (write_file, edit_file, delete_file), by
   * position; a change the device cannot make goes to `failed` as the model's error text.
   */
  private async previewChanges(
    data: ChatTurnJob,
    parked: ParkedLoop,
    signal: AbortSignal,
    failed: Map<number, string>,
    log: Logger,
  ): Promise<Map<number, ChangePreview>> {
    const previews = new Map<number, ChangePreview>();
    const device = ((call) => this.deps.devices.callDevice(data.userId, data.deviceId!, call as never, { signal })) as DeviceCall;
    for (const { call, position } of waitingCalls(parked)) {
      // A coding tool's approval request counts against the user's approvals of the hour.
      const limited = isRiskyCodeTool(call.name) ? await this.overLimit(data, 'codeApprovalsPerHour') : null;
      if (limited) {
        failed.set(position, `Error: ${call.name} was NOT run and no approval was asked: ${limited}`);
        continue;
      }
      const tool = toolNamed(call.name) as CodeTool | undefined;
      if (!tool?.preview) continue;
      try {
        previews.set(position, await tool.preview(tool.schema.parse(call.args ?? {}) as Record<string, unknown>, device));
      } catch (error) {
        if (!(error instanceof DeviceRpcError)) log.warn({ err: error, tool: call.name }, 'change preview failed');
        failed.set(
          position,
          `Error: ${call.name} was NOT run: ${error instanceof DeviceRpcError ? error.message : 'the change could not be prepared'}`,
        );
      }
    }
    return previews;
  }

  /**
   * Counts one unit of `kind` for the turn's user: null when it is within the tier's limit, else
   * the refusal for the model ("Too many … (limit N per 3600 s); retry in S s").
   */
  private async overLimit(data: ChatTurnJob, kind: UsageKind): Promise<string | null> {
    if (!this.deps.usage) return null;
    try {
      const tier = data.tier ?? (await this.deps.repos.users.findById(data.userId))?.tier ?? 'free';
      await this.deps.usage.take(kind, { id: data.userId, tier });
      return null;
    } catch (error) {
      if (error instanceof AppError && error.status === 429) return error.message;
      throw error;
    }
  }

  /** To the turn's event log only (HTTP listeners): what a coding agent is doing. */
  private async event(
    data: ChatTurnJob,
    event: Extract<ChatEvent, { type: 'agent' | 'plan' | 'tool_call' | 'tool_result' }>,
  ): Promise<void> {
    await this.deps.chatEvents.append(data.messageId, event);
  }

  /**
   * A tool call and what it gave the model, on the turn's event log: streams that show tool use
   * read them (devices run the call themselves and get no copy). A log that cannot be written
   * loses the two events, never the call.
   */
  private async announced(
    data: ChatTurnJob,
    log: Logger,
    name: string,
    rawArgs: unknown,
    agent: CodingAgentName | undefined,
    run: () => Promise<string>,
  ): Promise<string> {
    const callId = randomUUID();
    const { sessionId, messageId } = data;
    const args = rawArgs && typeof rawArgs === 'object' && !Array.isArray(rawArgs) ? (rawArgs as Record<string, unknown>) : {};
    const append = (event: ChatEvent) =>
      this.deps.chatEvents
        .append(messageId, event)
        .catch((error: unknown) => log.warn({ err: error, tool: name }, 'tool event not logged'));
    const who = agent ? { agent } : {};
    await append({ type: 'tool_call', sessionId, callId, name, arguments: bounded(args), ...who });
    const content = await run();
    const ok = !content.startsWith('Error:');
    const changeId = /Change id (\S+?):/.exec(content)?.[1];
    await append({
      type: 'tool_result',
      sessionId,
      callId,
      name,
      ok,
      content: content.length > MAX_TOOL_EVENT_CHARS ? `${content.slice(0, MAX_TOOL_EVENT_CHARS)}…` : content,
      ...who,
      ...(changeId ? { changeId } : {}),
    });
    return content;
  }

  /**
   * The tools of the user's MCP servers for this turn, with or without a device: none when the
   * request asked for no tools (or there is no MCP client).
   */
  private async mcpOffer(data: ChatTurnJob, signal: AbortSignal, first?: { ticket: BudgetTicket; log: Logger }): Promise<McpOffer> {
    if (!this.deps.mcp || data.noTools) return { specs: [], dangerous: new Set() };
    // Each listing records the tools' sizes, so the next request counts them into its reservation.
    const offer = await this.deps.mcp.offerAll(data.userId, { signal, measure: toolDefinitionBytes });
    if (!first) return offer;
    // The turn's first call sends no more than its request reserved, unless the reservation could grow.
    return fitMcpOffer(offer, data.mcpTools, first.ticket, {
      budget: this.deps.budget,
      hold: (ticket) => this.deps.chatCancels?.hold(data.messageId, ticket) ?? Promise.resolve(),
      log: first.log,
      model: data.model?.model,
    });
  }

  /**
   * Runs one MCP tool call, audited. A dangerous one that was not approved (only without an
   * approval service: with one it parked before) asks the policy, as a device call does.
   */
  private async executeMcpTool(
    data: ChatTurnJob,
    offered: Set<string>,
    name: string,
    args: unknown,
    log: Logger,
    options: { approved?: boolean; approvalId?: string; signal?: AbortSignal; mcp?: McpOffer },
  ): Promise<string> {
    if (!this.deps.mcp || !offered.has(name))
      return `Error: there is no tool called "${name}" here; use one of: ${[...offered].join(', ')}.`;
    const audited = (outcome: string) =>
      auditMcpToolCall(this.deps.repos.audit, log, {
        userId: data.userId,
        sessionId: data.sessionId,
        tool: name,
        outcome,
        approvalId: options.approvalId,
      });
    if (!options.approved && options.mcp?.dangerous.has(name)) {
      const decision = await this.policy.check({
        userId: data.userId,
        sessionId: data.sessionId,
        deviceId: `mcp:${parseMcpToolName(name)!.server}`,
        toolName: name,
        args: argsObject(args),
      });
      if (!decision.allowed) {
        await audited('not_allowed');
        return `Error: ${name} was not allowed: ${decision.reason}`;
      }
    }
    const { text, outcome } = await this.deps.mcp.call(data.userId, name, args, options.signal);
    await audited(outcome);
    return text;
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

  /** Note tools embed through the `embeddings` queue (micro-batched, usage recorded). */
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

/** A tool result on the event log is cut here: the model got it whole, a stream shows its start. */
const MAX_TOOL_EVENT_CHARS = 4_000;

const turnOf = (data: ChatTurnJob): TurnRef => ({
  userId: data.userId,
  sessionId: data.sessionId,
  messageId: data.messageId,
  deviceId: data.deviceId,
});

/** The code and words a failed turn ends with: the model unreachable, filtered or cut at its output limit, the budget spent (its numbers), or anything else. */
function failureOf(error: unknown): { code: string; message: string } {
  if (error instanceof ModelUnavailableError) return { code: error.code, message: MODEL_FAILURE_TEXT[error.code] };
  if (error instanceof ModelStoppedEarly) return { code: error.code, message: error.message };
  if (error instanceof BudgetExceededError) return { code: 'budget_exceeded', message: error.message };
  // A plan's limit reached during the turn (its approval requests per hour).
  if (error instanceof AppError && error.status === 429) return { code: error.code, message: error.message };
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

/**
 * The idempotency key of one device call of a turn: a hash of the turn (its user message id), the
 * step (model round and place in it), the tool, its arguments and which of the tool's device calls
 * it is. Deterministic, so a re-run of the turn sends the same keys.
 */
export function toolCallKey(messageId: string, step: string, tool: string, args: unknown, nth: number): string {
  return createHash('sha256')
    .update(JSON.stringify([messageId, step, tool, args, nth]))
    .digest('base64url')
    .slice(0, 32);
}

/** A tool call's arguments as the object an approval request shows (anything else as none). */
const argsObject = (args: unknown): Record<string, unknown> =>
  args !== null && typeof args === 'object' && !Array.isArray(args) ? (args as Record<string, unknown>) : {};
