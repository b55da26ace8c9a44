import { UnrecoverableError, type Job } from 'bullmq';
import { ModelCallCancelled, type ModelGateway, type ModelTurnRequest, type ModelUsage } from '../ai/model-gateway';
import { jsonInAnswer } from '../ai/answer-json';
import { assistantMessage, systemMessage, userMessage } from '../ai/model-messages';
import type { BudgetTicket } from '../budget/budget-door';
import type { CancelSignals } from '../lib/cancel-signals';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { NodeCost } from '../models/flow-executions-repository';
import type { HitlStatus } from '../models/schema';
import type { FlowNodeJob } from '../producers/flows';
import type { ApprovalService } from '../turns/approvals';
import { argsObject } from '../turns/tool-args';
import { TOOLS_BY_NAME } from '../turns/device-tools';
import { claimRound, decidedResults, parkRound, refusalGoesOn, type StoredContinuation } from '../turns/parking';
import { tracedToolCall, waitingCalls, type ParkedLoop } from '../turns/tool-loop';
import { TurnEngine } from '../turns/turn-engine';
import {
  boundedText,
  FLOW_NODE_SYSTEM,
  MAX_NODE_OUTPUT_CHARS,
  nodeSystemPrompt,
  outputValidator,
  type AgentflowDefinition,
  type AgentflowNode,
} from './definition';
import type { FlowEventLog } from './flow-events';
import { executionIsActive, type FlowRuns } from './flow-run';
import { approvalTarget, nodeApprovalKey } from './node-approvals';
import { InvalidOutputError, RefusedNodeError } from './node-errors';
import { flowNodeTurnSpec, type NodeTools } from './node-tools';

/** A parked node's state in `hitl_requests.continuation`: the tool loop's, and where it belongs. */
export interface FlowContinuation extends StoredContinuation {
  kind: 'flow';
  executionId: string;
  nodeId: string;
  /** What the node's model calls cost before it parked. */
  cost: NodeCost;
}

export const isFlowContinuation = (value: unknown): value is FlowContinuation =>
  typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'flow';

/** A parked node's round, every call decided: each waiting call's outcome by position, and the round's verdict. */
export interface NodeResume {
  state: ParkedLoop;
  results: ReadonlyMap<number, string>;
  cost: NodeCost;
  /** `approved` when every call was; else the first refusal's status, in call order. */
  status: HitlStatus;
}

/** The node parked for an approval: it stays running and its job ends. */
export const PARKED = Symbol('parked');

/** What a prompt node's turns need: the flow runner's parts they use. */
export interface PromptNodeDeps {
  repos: Repositories;
  models: ModelGateway;
  events: FlowEventLog;
  signals: CancelSignals;
  logger: Logger;
  /** The executions' runs: an execution ends only through them. */
  runs: FlowRuns;
  /** Runs the tools of nodes that list some; without it such nodes fail. */
  tools?: NodeTools;
  /** With it, a node's dangerous device tool call parks the node until its owner decides. */
  approvals?: Pick<ApprovalService, 'request' | 'cancelPending' | 'allow'>;
}

/**
 * A prompt node's model turns on the worker: one turn (asked once more when its answer does not
 * match the node's `outputSchema`), or the tool loop on the turn engine with the node's tools,
 * where a dangerous call parks the node for its owner and the decision resumes it.
 */
export class PromptNodeTurns {
  private readonly log: Logger;
  /** The agentflow node's turns run on the turn engine, with the node's spec registered. */
  private readonly engine = new TurnEngine().register(flowNodeTurnSpec);

  constructor(private readonly deps: PromptNodeDeps) {
    this.log = deps.logger.child({ component: 'flow-prompt-node' });
  }

  /**
   * The continuation of a node whose parked round was decided: the approved calls run (concurrently),
   * a refused one is not run. Undefined when there is nothing to continue yet or any more: a call of
   * the round still waits (the last decision continues it), or another resume did (one per round,
   * unless this very job is re-run after its worker died).
   */
  async resume(
    data: FlowNodeJob,
    node: AgentflowNode,
    job: Pick<Job, 'attemptsMade' | 'opts'> & Partial<Pick<Job, 'stalledCounter' | 'attemptsStarted'>>,
  ): Promise<NodeResume | undefined> {
    const { repos } = this.deps;
    const row = await repos.hitl.find(data.resume!);
    const stored = row?.continuation;
    if (!row || row.status === 'pending' || row.userId !== data.userId || !isFlowContinuation(stored)) return undefined;
    if (stored.executionId !== data.executionId || stored.nodeId !== data.nodeId) return undefined;
    const round = await claimRound(
      repos.hitl,
      row,
      job.attemptsMade > 0 || (job.stalledCounter ?? 0) > 0 || (job.attemptsStarted ?? 1) > job.attemptsMade + 1,
    );
    if (!round) return undefined;
    const { parked } = round;
    const execution = await repos.flowExecutions.find(data.executionId);
    const definition = execution!.definition as unknown as AgentflowDefinition;
    // A cancel of the execution abandons the approved calls still running.
    const watch = this.deps.signals.watch('flow', data.executionId);
    const signal = watch.signal;
    // Only an approved call runs; a rejected or timed-out one never reaches the device (and fails the node).
    const results = await decidedResults(
      round,
      (call, decision, position) =>
        this.deps.tools
          ? tracedToolCall(call, () =>
              this.deps.tools!.execute(
                { definition, node, data, signal, approvalId: decision.id },
                call.name,
                call.args,
                `${parked.iteration}.${call.index ?? position}`,
              ),
            )
          : Promise.resolve(`Error: ${call.name} was NOT run: the owner did not approve it.`),
      (call) => Promise.resolve(`Error: ${call.name} was NOT run: the owner did not approve it.`),
      (call) => `Error: ${call.name} was NOT run: the execution was cancelled.`,
      signal,
    ).finally(() => watch.release());
    // A rejection with a reply does not fail the node: the model reads the reply and the node goes on.
    const refused = round.waiting
      .map(({ decision }) => decision)
      .find((decision) => decision.status !== 'approved' && !refusalGoesOn(decision));
    return {
      state: parked,
      results,
      cost: (round.stored as unknown as FlowContinuation).cost,
      status: refused ? (refused.status === 'rejected' ? 'rejected' : 'timeout') : 'approved',
    };
  }

  /**
   * A node with tools: the assistant's tool loop with the node's tools, each call logged as a
   * `tool_called` event. A dangerous device tool call parks the node: an approval request holds
   * the loop's state and the job ends; the decision queues the node again with `resume`.
   */
  async runWithTools(
    definition: AgentflowDefinition,
    node: AgentflowNode,
    prompt: string,
    signal: AbortSignal,
    data: FlowNodeJob,
    budget: BudgetTicket,
    resume?: { state: ParkedLoop; results: ReadonlyMap<number, string>; cost: NodeCost },
  ): Promise<{ output: unknown; cost: NodeCost } | typeof PARKED> {
    const { tools, approvals } = this.deps;
    if (!tools) throw new UnrecoverableError('This worker cannot run flow node tools');
    let cost: NodeCost = resume?.cost ?? { ...this.deps.models.defaultModel, inputTokens: 0, outputTokens: 0, costUsd: 0 };
    const context = { definition, node, data, signal };
    // The agentflow node's turn: its tools, parking and taint are the node's (NodeTools); the loop is the engine's.
    const outcome = await this.engine.run(this.engine.open(flowNodeTurnSpec.kind, context), {
      // A node streams nothing: its output is its whole answer.
      publish: () => undefined,
      // A round that needs its owner stops the loop; without approvals the node fails below.
      canPark: true,
      loop: {
        models: this.deps.models,
        model: node.model,
        purpose: 'flow',
        account: { userId: data.userId, tier: data.tier },
        budget,
        messages: resume ? [] : [systemMessage(FLOW_NODE_SYSTEM), userMessage(prompt)],
        resume: resume && { state: resume.state, results: resume.results },
        tools: await tools.offered(
          definition,
          node,
          data.userId,
          signal,
          resume ? undefined : { ticket: budget, reserved: data.mcpTools, hold: (ticket) => this.deps.runs.hold(data.executionId, ticket) },
        ),
        signal,
        executeTool: (name, args, step) => tools.execute(context, name, args, step),
        mustPark: (name, args, taint) => tools.mustPark(definition, node, name, args, taint),
        taintOf: (name, args) => tools.taintOf(definition, node, name, args),
        onModelCall: (usage) => void (cost = addCost(cost, costOf(usage))),
      },
    });
    // Cancelled while the model answered or a call ran: the catch ends the node as cancelled (and records a cut call's cost).
    if (outcome.type === 'cancelled') throw outcome.usage ? new ModelCallCancelled(outcome.usage, signal.reason) : signal.reason;
    const { result } = outcome;
    if (!result.parked) return { output: boundedText(result.response).text, cost };
    // A device call's approval names the flow's device; an MCP call's its server (`mcp:<server>`), an HTTP tool's its host (`http:<host>`).
    const approvalDevice = (name: string) => approvalTarget(definition, name);
    const waiting = waitingCalls(result.parked);
    if (!approvals || waiting.some(({ call }) => !approvalDevice(call.name))) throw new RefusedNodeError('approval_not_possible');
    const usage = { ...cost };
    // Cancelled while the model answered: nothing is asked (the catch ends the node as cancelled).
    if (signal.aborted) throw signal.reason ?? new Error('The execution was cancelled');
    // One request per waiting call, in call order, each holding the round's state.
    // The plan's hourly limit of approval requests: refused (429 rate_limited), the node fails before any is asked.
    await parkRound(
      approvals,
      { userId: data.userId, executionId: data.executionId, messageId: nodeApprovalKey(data.executionId, node.id) },
      result.parked,
      { toolsets: [], usage, extra: { kind: 'flow', executionId: data.executionId, nodeId: node.id, cost } },
      (call) => ({
        deviceId: approvalDevice(call.name)!,
        parameters: (TOOLS_BY_NAME.get(call.name)?.schema.parse(call.args ?? {}) ?? argsObject(call.args)) as Record<string, unknown>,
      }),
      async (request, call) => {
        await this.deps.events.appendNext(data.executionId, {
          type: 'approval_requested',
          executionId: data.executionId,
          nodeId: node.id,
          approvalId: request.id,
          tool: call.name,
          expiresAt: request.expiresAt.toISOString(),
        });
        this.log.info(
          { executionId: data.executionId, nodeId: node.id, approvalId: request.id, tool: call.name },
          'flow node parked for approval',
        );
      },
    );
    // The execution ended while the request was being written (its end rejected what it found then):
    // the request is rejected too, so no approval stays open for an execution that is over.
    const now = await this.deps.repos.flowExecutions.find(data.executionId);
    if (!now || !executionIsActive(now.status)) await approvals.cancelPending(nodeApprovalKey(data.executionId, node.id), data.userId);
    return PARKED;
  }

  /**
   * One model turn for the node (its model, else the default), through the gateway. A node with an
   * `outputSchema` must answer JSON that validates: it is asked once more with the problems, then
   * it fails.
   */
  async run(
    node: Pick<AgentflowNode, 'id' | 'model' | 'outputSchema'>,
    prompt: string,
    signal: AbortSignal,
    data: FlowNodeJob,
    budget: BudgetTicket,
  ): Promise<{ output: unknown; cost: NodeCost }> {
    const request = {
      purpose: 'flow' as const,
      messages: [systemMessage(nodeSystemPrompt(node)), userMessage(prompt)],
      model: node.model,
      signal,
      account: { userId: data.userId, tier: data.tier },
      budget,
    };
    if (!node.outputSchema) {
      const turn = await this.deps.models.streamTurn(request);
      return { output: boundedText(turn.text).text, cost: costOf(turn.usage) };
    }
    const validator = outputValidator(node.outputSchema);
    return checkedAnswer(this.deps.models, request, (text) => checkJson(text, validator), {
      again: (problem) => `That answer is not valid: ${problem}. Reply again with only the JSON value, matching the schema.`,
      onRetry: () => this.log.info({ nodeId: node.id }, 'flow node answer did not match its outputSchema; asking once more'),
    });
  }
}

/**
 * A model turn whose answer must pass `check`: once it does not, the model is asked once more
 * with the problem (`again`), its answer after its first; a second answer that fails too fails
 * the node, with what both calls cost.
 */
export async function checkedAnswer<T>(
  models: Pick<ModelGateway, 'streamTurn'>,
  request: ModelTurnRequest,
  check: (text: string) => { ok: true; value: T } | { ok: false; problem: string },
  retry: { again: (problem: string) => string; onRetry?: () => void },
): Promise<{ output: T; cost: NodeCost }> {
  const turn = await models.streamTurn(request);
  let cost = costOf(turn.usage);
  const first = check(turn.text);
  if (first.ok) return { output: first.value, cost };
  retry.onRetry?.();
  const repair = await models.streamTurn({
    ...request,
    messages: [...request.messages, assistantMessage(turn.text), userMessage(retry.again(first.problem))],
  });
  cost = addCost(cost, costOf(repair.usage));
  const second = check(repair.text);
  if (second.ok) return { output: second.value, cost };
  throw new InvalidOutputError(cost);
}

/** The JSON value of a model's answer (a code fence around it is tolerated) when it validates. */
function checkJson(
  text: string,
  validator: { safeParse(value: unknown): { success: boolean; error?: { issues: Array<{ path: PropertyKey[]; message: string }> } } },
): { ok: true; value: unknown } | { ok: false; problem: string } {
  // Bounded before parsing: the validator's work grows with the answer.
  if (text.length > MAX_NODE_OUTPUT_CHARS) return { ok: false, problem: `it is longer than ${MAX_NODE_OUTPUT_CHARS} characters` };
  const parsed = jsonInAnswer(text);
  if (!parsed.ok) return { ok: false, problem: 'it is not JSON' };
  const { value } = parsed;
  const result = validator.safeParse(value);
  if (result.success) return { ok: true, value };
  const issues = (result.error?.issues ?? [])
    .slice(0, 5)
    .map((issue) => `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`);
  return { ok: false, problem: `it does not match the schema (${issues.join('; ')})` };
}

export const costOf = (usage: ModelUsage): NodeCost => ({
  provider: usage.provider,
  model: usage.model,
  inputTokens: usage.inputTokens,
  outputTokens: usage.outputTokens,
  costUsd: usage.costUsd,
});
const addCost = (a: NodeCost, b: NodeCost): NodeCost => ({
  provider: b.provider,
  model: b.model,
  inputTokens: a.inputTokens + b.inputTokens,
  outputTokens: a.outputTokens + b.outputTokens,
  costUsd: a.costUsd + b.costUsd,
});
