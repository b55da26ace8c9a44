import { UnrecoverableError } from 'bullmq';
import type { Config } from '../../config';
import { MODEL_FAILURE_TEXT } from '../ai/llm';
import { ModelCallCancelled, ModelStoppedEarly, ModelUnavailableError, type ModelGateway, type UsageLine } from '../ai/model-gateway';
import type { ModelMessage } from '../ai/model-messages';
import { toolDefinitionBytes, type ToolSpec } from '../ai/model-tools';
import { BudgetExceededError, type BudgetDoor, type BudgetTicket } from '../budget/budget-door';
import { codingToolsFor, isCodingAgent, toolNamed, type CodingAgentName } from '../coding/coding-agents';
import { joinAnswers, PLAN_TOOL, planSteps, planText, type PlanState } from '../coding/coding-plan';
import { codingAnswer, codingTurnSpec, type CodingTurnHooks } from '../coding/coding-turn';
import type { CodingRoute } from '../coding/coding-routing';
import type { DevicePort } from '../devices/device-channel';
import type { CancelSignals } from '../lib/cancel-signals';
import { AppError } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { describeRedacted } from '../lib/redact-error';
import type { UsageLimiter } from '../lib/usage-limiter';
import { SEARCH_KNOWLEDGE_TOOL, type KnowledgeSearch } from '../knowledge/retrieval';
import { parseMcpToolName } from '../mcp/mcp-tool-names';
import type { McpOffer, McpTools } from '../mcp/mcp-tools';
import type { Repositories } from '../models';
import type { Metrics } from '../observability/metrics';
import type { ChatTurnJob } from '../producers/assistant';
import type { EmbeddingJob, EmbeddingResult } from '../producers/embeddings';
import type { ApprovalService } from '../turns/approvals';
import type { DeviceCall, ToolsetName } from '../turns/device-tools';
import { decidedResults, parkRound, type ClaimedRound } from '../turns/parking';
import { argsObject } from '../turns/tool-args';
import { asksByContract } from '../turns/tool-contract';
import { fitMcpOffer } from '../turns/mcp-fit';
import { tracedToolCall, waitingCalls, type ParkedLoop, type ToolLoopResult } from '../turns/tool-loop';
import { allowAllPolicy, type ToolPolicy } from '../turns/tool-policy';
import { taintNeedsApproval, taintSource } from '../turns/tool-risk';
import { startTurnClock, turnTimings } from '../turns/turn-clock';
import type { DrivenTurn, ParkedOutcome, TurnAgent, TurnOutcome, TurnRun } from '../turns/turn-engine';
import type { ChatEvent, ChatEventLog, TurnUsage } from '../turns/turn-events';
import type { ChatToolCalls } from './chat-tool-calls';
import type { ChatTurnLife, TurnRef } from './chat-turn-life';
import type { ThreadRelay } from './thread-relay';
import type { ThreadTools } from './thread-tools';
import type { AttachmentState } from '../knowledge/chat-files';
import { toolsFor } from './orchestrator';

export interface ChatTurnDeps {
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
  /** Cancel requests: heard through `signals`; every start and end of a turn goes through `chatTurnLife`. */
  signals?: CancelSignals;
  chatTurnLife?: ChatTurnLife;
  /** The per-user hourly limits: device operations (`deviceOperationsPerHour`) and the coding agents' file operations and approval requests; without it, none. */
  usage?: Pick<UsageLimiter, 'take'>;
  /** The tools of the user's registered MCP servers, offered on every turn that may use tools. */
  mcp?: Pick<McpTools, 'offerAll' | 'call'>;
  /** Widens a turn's reservation when its MCP servers list more than its request counted; without it, nothing is widened. */
  budget?: Pick<BudgetDoor, 'widen'>;
  /** The user's knowledge search (`search_knowledge`, run here on the server), offered to a user with searchable documents. */
  knowledge?: {
    search: KnowledgeSearch;
    searchable: (userId: string, sessionId?: string) => Promise<boolean>;
    /** Where a turn's files stand, and how long the turn waits for their ingestion. */
    attachments?: { statuses: (ids: readonly string[]) => Promise<AttachmentState[]>; waitMs: number };
  };
  /** Room threads: their turns' canvas tools, and the relay of their events (and the assistant's state) to the canvas room. */
  threads?: { tools: ThreadTools; relay: ThreadRelay };
}

/** What a chat turn's job gives back to the worker pool. */
export interface ChatTurnResult {
  toolCalls: number;
  toolIterations: number;
  /** The approval requests the turn waits on, comma-separated. */
  parked?: string;
  cancelled?: true;
}

/** The tools a leg offers: its own (toolsets or a coding agent's), the user's MCP servers', knowledge search. */
interface LegOffer {
  mcp: McpOffer;
  tools: ToolSpec[];
  offered: Set<string>;
}

/**
 * One leg of a chat turn: a loop from its start (the person's message, a resumed round, a plan
 * step), with the toolsets it offers and, on a coding turn, its agent and the plan step it is.
 */
export interface ChatLeg {
  start: { messages: ModelMessage[] } | { resume: { state: ParkedLoop; results: ReadonlyMap<number, string> } };
  toolsets: string[];
  agent?: CodingAgentName;
  /** The Orchestrator's plan this leg is a step of. */
  plan?: PlanState;
  /** The user's request, on the leg that starts from it. */
  request?: string;
  /** The specialists the Orchestrator kept the request from (its answer says how to name one). */
  kept?: CodingRoute['kept'];
  /** The first leg takes over the request's reservation; a resumed leg or a plan step reserves its own calls. */
  budget: BudgetTicket;
  /** Its offer, when its resume made it already (the decided calls ran with it). */
  offer?: LegOffer;
}

export const NOTHING_RUN: ChatTurnResult = { toolCalls: 0, toolIterations: 0 };

/**
 * One chat turn (a coding turn too), as the turn engine drives it: the job's payload, its cancel
 * signal, its log and its usage so far travel together in this one object, leg after leg. It
 * prepares each leg's loop (tools, the tool-call pipeline, what parks), parks a round on its
 * approvals, runs a plan's next step, and ends the turn on the run kernel (answer stored and
 * `final`, cancelled with what was said, or failed), publishing to the device and the turn's log.
 */
export class ChatTurn implements DrivenTurn<ChatLeg, CodingTurnHooks, ChatTurnResult> {
  readonly ref: TurnRef;
  /** The assistant answers, in its chat session (a coding turn's agents included). */
  readonly agent: TurnAgent;
  readonly clock = startTurnClock();
  private readonly policy: ToolPolicy;
  /** Writes to the device and the event log not settled yet: the turn waits for them before it parks or ends. */
  private pending: Array<Promise<void>> = [];
  /** What the person has seen of the current leg's answer: kept when a cancel ends the turn. */
  private streamed = '';
  private tier?: string;

  constructor(
    private readonly deps: ChatTurnDeps,
    private readonly tools: ChatToolCalls,
    readonly data: ChatTurnJob,
    readonly log: Logger,
    readonly signal: AbortSignal,
    readonly usage: TurnUsage = { ...deps.models.defaultModel, inputTokens: 0, outputTokens: 0, costUsd: 0 },
  ) {
    this.policy = deps.policy ?? allowAllPolicy;
    this.ref = {
      userId: data.userId,
      sessionId: data.sessionId,
      messageId: data.messageId,
      deviceId: data.deviceId,
      fromDevice: data.fromDevice,
    };
    this.agent = { name: 'assistant', conversationId: data.sessionId };
  }

  /** Every start and end of a turn goes through the run kernel's chat kind. */
  get life(): ChatTurnLife {
    if (!this.deps.chatTurnLife) throw new UnrecoverableError('This worker cannot start or end chat turns (no run kernel)');
    return this.deps.chatTurnLife;
  }

  async prepare(leg: ChatLeg): Promise<{ hooks: CodingTurnHooks; run: TurnRun }> {
    const { data, log, signal } = this;
    const { agent, plan } = leg;
    const fresh = 'messages' in leg.start;
    if (agent && fresh) {
      if (plan) {
        await this.event({ type: 'plan', sessionId: data.sessionId, steps: planSteps(plan) });
        log.info({ step: plan.index + 1, of: plan.steps.length, agent }, 'plan step started');
      }
      // The session shows which coding agent works on it (one write per leg, none per chunk).
      await this.deps.repos.chat.setCodingAgent(data.sessionId, agent);
    }
    const offer = leg.offer ?? (await this.offer(leg));
    if (agent && fresh) await this.event({ type: 'agent', sessionId: data.sessionId, agent, state: 'processing' });
    const agentConfig = agent ? this.deps.config.codingAgents[agent] : undefined;
    // Carried by the job from the request's session check; read only for a job that has none.
    this.tier ??= data.tier ?? (await this.deps.repos.users.findById(data.userId))?.tier ?? 'free';
    this.streamed = 'resume' in leg.start ? leg.start.resume.state.response : '';
    const { deviceId } = data;
    const { approvals } = this.deps;
    const { mcp, offered } = offer;
    // A device another member lent to the turn's thread: each of its calls waits for its owner.
    const lent = await this.tools.lentByOther(data);
    // The chat turn has no hooks of its own; a coding turn's offer the plan tool and preview a round's changes.
    const hooks = codingTurnSpec.open({
      agent,
      plan,
      request: leg.request,
      device: deviceId
        ? (((call) => this.deps.devices.callDevice(data.userId, deviceId, call as never, { signal })) as DeviceCall)
        : undefined,
      approvalLimit: () => this.tools.overLimit(data, 'codeApprovalsPerHour'),
      log,
    });
    const run: TurnRun = {
      // What the user has seen so far in a plan: the earlier steps' answers.
      prior: plan ? planText(plan) : '',
      streamed: this.streamed,
      // A round parks when every waiting call has a place to ask: the turn's device, or its MCP server.
      canPark: (parked) => Boolean(approvals) && waitingCalls(parked).every(({ call }) => this.approvalDevice(call.name)),
      publish: (piece) => {
        this.clock.firstTextAt ??= performance.now();
        this.pending.push(this.publish({ type: 'text_chunk', sessionId: data.sessionId, text: piece }));
      },
      loop: {
        models: this.deps.models,
        // The request's model, else the coding agent's own (when the deployment serves it), else the default.
        model: data.model ?? this.agentModel(agentConfig?.model),
        maxToolIterations: agentConfig?.maxToolIterations,
        account: { userId: data.userId, tier: this.tier, sessionId: data.sessionId },
        // The answering call's usage line is written by the turn's end, in its transaction.
        leaveAnswerLine: true,
        budget: leg.budget,
        messages: 'messages' in leg.start ? leg.start.messages : [],
        resume: 'resume' in leg.start ? leg.start.resume : undefined,
        tools: offer.tools,
        signal,
        // A plan's steps number their calls apart, so two steps' calls never share an idempotency key.
        executeTool: (name, args, step) =>
          this.tools.announced(data, log, name, args, agent, () =>
            this.tools.executeTool(data, offered, name, args, log, { signal, step: stepOf(leg, step), agent, mcp }),
          ),
        // Only a call that would really run parks: an unknown tool or bad arguments is an error at once.
        // Once the turn has read untrusted text, every call that is not a read parks too.
        mustPark: approvals
          ? (name, args, taint) =>
              offered.has(name) &&
              (parseMcpToolName(name)
                ? asksByContract(name, { mcpAsks: mcp.dangerous }) || taintNeedsApproval(name, taint, { mcpReadOnly: mcp.readOnly })
                : (lent || this.policy.isDangerous(name) || taintNeedsApproval(name, taint)) &&
                  Boolean(toolNamed(name)?.schema.safeParse(args ?? {}).success))
          : undefined,
        taintOf: (name, args) => taintSource(name, args),
        trustedResults: new Set([PLAN_TOOL.name]),
        onModelCall: (call) => void addUsage(this.usage, call),
        onToolResult: async (name, _args, content) => {
          await this.deps.repos.chat.addMessage({
            sessionId: data.sessionId,
            role: 'tool',
            toolName: name,
            content,
            replyTo: data.messageId,
          });
        },
      },
    };
    return { hooks, run };
  }

  /**
   * A parked round's resume, as the leg that goes on from it: each waiting call with its own
   * decision (approved ones run, as a round's calls do, at once; refused ones become the refusal
   * the model reads). A resumed turn was admitted by its first job: its calls reserve their own.
   */
  async resumed(round: ClaimedRound): Promise<ChatLeg> {
    const { data, log, signal } = this;
    const agent = isCodingAgent(round.codingAgent) ? round.codingAgent : undefined;
    const plan = round.plan as PlanState | undefined;
    const leg = { toolsets: round.toolsets, agent, plan, budget: { userId: data.userId } };
    const offer = await this.offer(leg);
    if (agent) await this.event({ type: 'agent', sessionId: data.sessionId, agent, state: 'processing' });
    log.info({ decisions: round.group.map((row) => ({ status: row.status, tool: row.toolName })) }, 'assistant turn resumed');
    const results = await decidedResults(
      round,
      (call, row, position) =>
        this.tools.announced(data, log, call.name, call.args, agent, () =>
          tracedToolCall(call, () =>
            this.tools.executeTool(data, offer.offered, call.name, call.args, log, {
              approved: true,
              approvalId: row.id,
              approvedParameters: row.parameters,
              mcp: offer.mcp,
              signal,
              step: stepOf(leg, `${round.parked.iteration}.${call.index ?? position}`),
              agent,
            }),
          ),
        ),
      (call, row) => this.tools.announced(data, log, call.name, call.args, agent, () => this.tools.refused(data, log, call.name, row)),
      (call) => `Error: ${call.name} was NOT run: the turn was cancelled.`,
      signal,
    );
    return { ...leg, offer, start: { resume: { state: round.parked, results } } };
  }

  /**
   * Parked: the state goes to PostgreSQL and the job ends, so no worker slot waits on a human. One
   * request per waiting call, in call order, each holding the same state; the plan's hourly limit of
   * approval requests refused (429 `rate_limited`) ends the turn before any is asked.
   */
  async park(leg: ChatLeg, { result, previews }: ParkedOutcome): Promise<ChatTurnResult> {
    const { data, log } = this;
    const { agent } = leg;
    const approvals = this.deps.approvals!;
    this.streamed = result.response;
    await this.settle();
    const requested = await parkRound(
      approvals,
      { userId: data.userId, sessionId: data.sessionId, messageId: data.messageId },
      result.parked,
      // The device's own request: its answer still reaches the device after a reconnect or a restart.
      {
        toolsets: leg.toolsets,
        usage: this.usage,
        codingAgent: agent,
        plan: leg.plan,
        ...(data.fromDevice ? { extra: { fromDevice: true } } : {}),
      },
      (call, position) => ({
        deviceId: this.approvalDevice(call.name)!,
        parameters: {
          ...((toolNamed(call.name)?.schema.parse(call.args ?? {}) ?? argsObject(call.args)) as Record<string, unknown>),
          ...(previews.has(position) ? previews.get(position) : {}),
        },
      }),
      (request, call) =>
        log.info({ approvalId: request.id, tool: call.name, agent, ...turnTimings(this.clock) }, 'assistant turn parked for approval'),
    );
    // A cancel that came while parking found no approval to reject (or not all of them): end the turn here.
    // Else the run waits on its approvals' waitpoints, holding no worker (the kernel queues the resume).
    if (this.signal.aborted || (await this.life.wait(data.messageId)) === 'refused') {
      await approvals.cancelPending(data.messageId, data.userId);
      return this.endCancelled(joinAnswers(prior(leg), result.response), this.usage);
    }
    if (agent) {
      await this.event({ type: 'agent', sessionId: data.sessionId, agent, state: 'waiting' });
      this.deps.metrics?.codingTurns.inc({ agent, outcome: 'parked' });
    }
    return { toolCalls: result.toolCalls, toolIterations: result.toolIterations, parked: requested.map((request) => request.id).join(',') };
  }

  /**
   * What follows a leg's answer: the Orchestrator that kept the request says so; a plan made now,
   * or going on, runs its next step as the next leg, or its whole answer ends the turn.
   */
  async answered(leg: ChatLeg, result: ToolLoopResult, hooks: CodingTurnHooks): Promise<{ response: string } | { next: ChatLeg }> {
    const { sessionId } = this.data;
    this.streamed = result.response;
    let response = result.response;
    const after = codingAnswer(leg, result.response, hooks.proposed(), this.deps.config.codingAgents);
    if (after.note) {
      const piece = response ? `\n\n${after.note}` : after.note;
      response += piece;
      this.pending.push(this.publish({ type: 'text_chunk', sessionId, text: piece }));
    }
    await this.settle();
    if (leg.agent) await this.event({ type: 'agent', sessionId, agent: leg.agent, state: 'idle' });
    if (after.next) {
      // Not the turn's last model call: its usage line is written now.
      await this.deps.repos.usage.recordMany(linesOf(result));
      // The turn was admitted by its first job: each step's calls reserve their own.
      return { next: { ...after.next, start: { messages: after.next.messages }, budget: { userId: this.data.userId } } };
    }
    if (!after.done) return { response };
    await this.event({ type: 'plan', sessionId, steps: after.done.steps });
    return { response: after.done.response };
  }

  /** The run's end stores the answer and its usage line and emits `final`; a cancel accepted before this wins (no answer stored). */
  async finish(leg: ChatLeg, response: string, result: ToolLoopResult): Promise<ChatTurnResult> {
    const { agent } = leg;
    const lines = linesOf(result);
    const stored = await this.life.finish(this.ref, response, this.usage, lines);
    if (agent && stored !== 'answered')
      this.deps.metrics?.codingTurns.inc({ agent, outcome: stored === 'cancel_requested' ? 'cancelled' : 'completed' });
    if (stored === 'cancel_requested') return this.endCancelled(response, this.usage, lines);
    const counts = { toolCalls: result.toolCalls, toolIterations: result.toolIterations };
    if (stored === 'answered') return counts;
    const { inputTokens, outputTokens } = this.usage;
    this.log.info({ agent, ...counts, inputTokens, outputTokens, ...turnTimings(this.clock) }, 'assistant turn completed');
    return counts;
  }

  /**
   * A cancel during a leg: its plan shows as cancelled, and the turn ends with what the person saw
   * (`streamed`) and the usage of the call it cut short (`usage`, when one was).
   */
  async cancelled(
    leg: ChatLeg,
    { streamed, usage: cut }: Omit<Extract<TurnOutcome, { type: 'cancelled' }>, 'type'>,
  ): Promise<ChatTurnResult> {
    const { agent, plan } = leg;
    // The gateway recorded the cut-short call's usage already; the turn's total includes it.
    if (cut) addUsage(this.usage, cut);
    if (plan)
      await this.event({ type: 'plan', sessionId: this.data.sessionId, steps: planSteps(plan, 'cancelled') }).catch((error: unknown) =>
        this.log.warn({ err: error }, 'plan state not logged for the turn'),
      );
    if (agent) this.deps.metrics?.codingTurns.inc({ agent, outcome: 'cancelled' });
    return this.endCancelled(joinAnswers(prior(leg), streamed), this.usage);
  }

  async failed(leg: ChatLeg, error: unknown): Promise<ChatTurnResult> {
    const { log } = this;
    const { agent } = leg;
    await this.settle();
    if (error instanceof ModelCallCancelled || this.signal.aborted)
      return this.cancelled(leg, { streamed: this.streamed, usage: error instanceof ModelCallCancelled ? error.usage : undefined });
    log.warn({ err: error, agent, ...turnTimings(this.clock) }, 'assistant turn failed');
    if (agent) {
      await this.event({ type: 'agent', sessionId: this.data.sessionId, agent, state: 'error' }).catch((error: unknown) =>
        log.warn({ err: error }, 'agent state not logged for the turn'),
      );
      this.deps.metrics?.codingTurns.inc({ agent, outcome: 'failed' });
    }
    const { code, message } = failureOf(error);
    await this.life
      .fail(this.ref, code, message)
      .catch((error: unknown) => log.warn({ err: error }, 'assistant turn not ended as failed; the reaper ends it'));
    throw new UnrecoverableError(`assistant turn failed: ${describeRedacted(error)}`);
  }

  /** Ends a cancelled turn (partial answer kept, marked cancelled; streams end with `cancelled`). */
  async endCancelled(response: string, usage: TurnUsage | null, lines: readonly UsageLine[] = []): Promise<ChatTurnResult> {
    await this.life.end(this.ref, { response, usage }, lines);
    this.log.info({ chars: response.length, usage }, 'assistant turn cancelled');
    return { ...NOTHING_RUN, cancelled: true };
  }

  /** To the device's socket that asked for the turn (any node) and to the turn's event log (HTTP listeners). */
  async publish(event: Extract<ChatEvent, { type: 'text_chunk' | 'final' | 'error' }>): Promise<void> {
    const { userId, deviceId, messageId, fromDevice } = this.data;
    if (deviceId) {
      const { devices } = this.deps;
      const turn = { id: messageId, fromDevice };
      if (event.type === 'text_chunk')
        devices.sendTurn(userId, deviceId, turn, 'text_chunk', { sessionId: event.sessionId, text: event.text });
      else if (event.type === 'final')
        devices.sendTurn(userId, deviceId, turn, 'final', { sessionId: event.sessionId, response: event.response });
      else devices.sendTurn(userId, deviceId, turn, 'chat_error', { sessionId: event.sessionId, code: event.code, message: event.message });
    }
    await this.deps.chatEvents.append(messageId, event);
  }

  /**
   * The tools a leg offers: a coding agent's or the data toolsets', the user's MCP servers' (none
   * when the request asked for no tools), and knowledge search for a user with searchable documents.
   * The MCP listing records the tools' sizes, so the next request counts them into its reservation;
   * the first leg sends no more than its request reserved, unless the reservation could grow.
   */
  private async offer(leg: Pick<ChatLeg, 'toolsets' | 'agent' | 'budget'>): Promise<LegOffer> {
    const { data, deps } = this;
    const own = leg.agent ? codingToolsFor(deps.config.codingAgents[leg.agent]) : toolsFor(leg.toolsets as ToolsetName[]);
    let mcp: McpOffer = { specs: [], dangerous: new Set() };
    if (deps.mcp && !data.noTools)
      mcp = await fitMcpOffer(
        await deps.mcp.offerAll(data.userId, { signal: this.signal, measure: toolDefinitionBytes }),
        data.mcpTools,
        leg.budget,
        {
          budget: deps.budget,
          hold: (ticket) => deps.chatTurnLife?.hold(data.messageId, ticket) ?? Promise.resolve(),
          log: this.log,
          model: data.model?.model,
        },
      );
    // Knowledge search: for a user with searchable documents (theirs, those shared with their
    // canvases, this session's files), and on any turn that was sent files (they are what it asks about).
    const mayUseKnowledge = !data.noTools || Boolean(data.attachments?.length);
    const knowledge =
      deps.knowledge && mayUseKnowledge && (await deps.knowledge.searchable(data.userId, data.sessionId)) ? [SEARCH_KNOWLEDGE_TOOL] : [];
    // A room thread's turn: the canvas's block tools.
    const canvas = data.canvasId && deps.threads ? deps.threads.tools.specs : [];
    const tools = [...own, ...mcp.specs, ...knowledge, ...canvas];
    return { mcp, tools, offered: new Set(tools.map((tool) => tool.name)) };
  }

  /** A device call's approval names the turn's device; an MCP call's names its server (`mcp:<server>`). */
  private approvalDevice(name: string): string | undefined {
    const mcpTool = parseMcpToolName(name);
    return mcpTool ? `mcp:${mcpTool.server}` : this.data.deviceId;
  }

  /** A coding agent's configured model; one the deployment does not serve is skipped (with a warning) for the default. */
  private agentModel(model: { provider: string; model: string } | null | undefined) {
    if (!model) return undefined;
    if (this.deps.models.knows(model)) return model;
    this.log.warn({ model }, 'the coding agent names a model this deployment does not serve; the default model answers');
    return undefined;
  }

  /** To the turn's event log only (HTTP listeners): what a coding agent is doing. */
  private async event(event: Extract<ChatEvent, { type: 'agent' | 'plan' }>): Promise<void> {
    await this.deps.chatEvents.append(this.data.messageId, event);
  }

  private async settle(): Promise<void> {
    await Promise.allSettled(this.pending);
    this.pending = [];
  }
}

/** The text the person saw before this leg: a plan's earlier answers. */
const prior = (leg: ChatLeg): string => (leg.plan ? planText(leg.plan) : '');

/** A leg's call step: a plan's steps number their calls apart. */
const stepOf = (leg: Pick<ChatLeg, 'plan'>, step: string): string => (leg.plan ? `p${leg.plan.index}.${step}` : step);

/** The answering call's usage line, when the loop left it to the turn's end. */
const linesOf = (result: ToolLoopResult): UsageLine[] => (result.unrecorded ? [result.unrecorded] : []);

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
