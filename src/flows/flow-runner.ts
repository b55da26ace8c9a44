import { UnrecoverableError, type Job } from 'bullmq';
import { ModelCallCancelled, type ModelGateway, type ModelUsage } from '../ai/model-gateway';
import { assistantMessage, systemMessage, userMessage, type ModelMessage } from '../ai/model-messages';
import type { CancelSignals } from '../lib/cancel-signals';
import type { Logger } from '../lib/logger';
import { describeRedacted } from '../lib/redact-error';
import type { Repositories } from '../models';
import type { NodeCost } from '../models/flow-executions-repository';
import type { FlowExecutionNodeRow, FlowExecutionRow, HitlStatus } from '../models/schema';
import type { Metrics } from '../observability/metrics';
import type { FlowNodeJob } from '../producers/flows';
import type { EnqueueBulk } from '../producers/registry';
import {
  boundedText,
  FLOW_NODE_SYSTEM,
  MAX_NODE_OUTPUT_CHARS,
  MAX_RENDERED_PROMPT_CHARS,
  nodeSystemPrompt,
  outputValidator,
  regexKeyword,
  renderPrompt,
  wasTruncated,
  type AgentflowDefinition,
  type AgentflowNode,
} from './definition';
import { flowError, type FlowEventLog } from './flow-events';
import type { FlowRuns } from './flow-run';
import type { BudgetTicket } from '../budget/budget-door';
import type { ApprovalService } from '../turns/approvals';
import { claimRound, decidedResults, parkRound, refusalGoesOn, type StoredContinuation } from '../turns/parking';
import { tracedToolCall, waitingCalls, type ParkedLoop } from '../turns/tool-loop';
import { TurnEngine } from '../turns/turn-engine';
import { flowNodeTurnSpec } from './node-tools';
import { TOOLS_BY_NAME } from '../turns/device-tools';
import { approvalTarget, nodeApprovalKey } from './node-approvals';
import { argsObject } from '../turns/tool-args';
import type { NodeTools } from './node-tools';
import { invokeAgentAttributes } from '../observability/genai';
import { withSpan } from '../observability/tracing';
import { failureOf, InvalidOutputError, RefusedNodeError } from './node-errors';
import { NodeControl, WAITING } from './node-control';
import { isPromptNode, kindOf, type FlowNode, type NodeKind } from './node-kinds';
import { nextSteps } from './flow-graph';
import type { FlowExecutions } from './flow-executions';
import { humanInputStep, type HumanInputDeps } from './node-input';

export interface FlowRunnerDeps {
  repos: Repositories;
  models: ModelGateway;
  events: FlowEventLog;
  /** The catalog's bulk enqueue: the nodes a finished node unblocks go out in one round trip. */
  enqueueBulk: EnqueueBulk;
  signals: CancelSignals;
  logger: Logger;
  metrics?: Metrics;
  /** The executions' runs: an execution ends only through them. */
  runs: FlowRuns;
  /** Runs the tools of nodes that list some; without it such nodes fail. */
  tools?: NodeTools;
  /** With it, a node's dangerous device tool call parks the node until its owner decides. */
  approvals?: Pick<ApprovalService, 'request' | 'cancelPending' | 'allow'>;
  /** Starts subflows' child executions; without it subflow nodes fail. */
  children?: Pick<FlowExecutions, 'startChild'>;
  /** Sends human_input nodes' forms; without it such nodes fail. */
  inputs?: HumanInputDeps['inputs'];
}

/** Node kinds that stay `running` while their items, child execution or form's answer go on. */
const WAITS = new Set<NodeKind>(['foreach', 'loop', 'subflow', 'human_input']);

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
interface NodeResume {
  state: ParkedLoop;
  results: ReadonlyMap<number, string>;
  cost: NodeCost;
  /** `approved` when every call was; else the first refusal's status, in call order. */
  status: HitlStatus;
}

/** The node parked for an approval: it stays running and its job ends. */
const PARKED = Symbol('parked');

const isActive = (status: FlowExecutionRow['status']) => status === 'queued' || status === 'running';

/**
 * The worker side of an agentflow execution: each job runs ONE node. The node's
 * output is committed in PostgreSQL before its event is written and before the nodes it unblocks
 * are queued (with job ids from the execution and node, so a double dispatch queues one job). A job
 * that finds its node already finished (its worker died after the commit) only writes what is
 * missing and dispatches again: a finished node never calls the model twice.
 */
export class FlowRunner {
  private readonly log: Logger;
  /** The agentflow node's turns run on the turn engine, with the node's spec registered. */
  private readonly engine = new TurnEngine().register(flowNodeTurnSpec);

  /** Conditions, routers, foreach, loops and subflows. */
  private readonly control: NodeControl;

  constructor(private readonly deps: FlowRunnerDeps) {
    this.log = deps.logger.child({ component: 'flow-runner' });
    this.control = new NodeControl(deps, {
      ask: (node, prompt, signal, data, budget) => this.runNode(node, prompt, signal, data, budget),
      complete: async (execution, data, output) => {
        if (!(await deps.repos.flowExecutions.completeNode(execution.id, data.nodeId, output, null))) return;
        this.log.info({ executionId: execution.id, nodeId: data.nodeId }, 'flow node completed');
        await this.settle(execution, data, (await deps.repos.flowExecutions.node(execution.id, data.nodeId)) ?? undefined);
      },
      fail: async (execution, data, code) => {
        if (!(await deps.repos.flowExecutions.failNode(execution.id, data.nodeId, flowError(code)))) return;
        await this.settle(execution, data, (await deps.repos.flowExecutions.node(execution.id, data.nodeId)) ?? undefined);
      },
    });
  }

  /** A control-flow node's step: its output (and what its model call cost), or WAITING on its items, child or form. */
  private async runControl(
    execution: FlowExecutionRow,
    node: Exclude<FlowNode, AgentflowNode>,
    outputs: ReadonlyMap<string, unknown>,
    signal: AbortSignal,
    data: FlowNodeJob,
    ticket: BudgetTicket,
  ): Promise<{ output: unknown; cost?: NodeCost } | typeof WAITING> {
    switch (node.type) {
      case 'condition':
        return this.control.condition(execution, node, outputs);
      case 'router': {
        const prompt = renderPrompt(node.prompt, execution.input, outputs);
        if (prompt.length > MAX_RENDERED_PROMPT_CHARS) throw new RefusedNodeError('prompt_too_large');
        return this.control.router(node, prompt, signal, data, ticket);
      }
      case 'foreach':
        return this.control.foreach(execution, node, outputs, data);
      case 'loop':
        return this.control.loop(execution, node, data);
      case 'subflow':
        return this.control.subflow(execution, node, outputs);
      case 'human_input':
        return humanInputStep(this.deps, execution, node, outputs, data.lane);
    }
  }

  /** One node of an execution (the payload was parsed against the catalog's schema). */
  async process(data: FlowNodeJob, job: Pick<Job, 'attemptsMade' | 'opts'>): Promise<void> {
    // One ticket for the node's calls: the first takes over the reservation the execution's request took.
    const ticket: BudgetTicket = { userId: data.userId, reservationId: data.budget };
    // What no model call takes the kernel gives back when the execution ends.
    await this.deps.runs.hold(data.executionId, ticket);
    // One `invoke_agent` span per node run: the node is an agent of its flow, the execution its conversation.
    await withSpan(
      `invoke_agent ${data.nodeId}`,
      'internal',
      {
        ...invokeAgentAttributes({ name: data.nodeId, conversationId: data.executionId }),
        'switchboard.flow.execution_id': data.executionId,
      },
      () => this.processNode(data, job, ticket),
    );
  }

  private async processNode(data: FlowNodeJob, job: Pick<Job, 'attemptsMade' | 'opts'>, ticket: BudgetTicket): Promise<void> {
    const { repos } = this.deps;
    const execution = await repos.flowExecutions.find(data.executionId);
    if (!execution || !isActive(execution.status)) return;
    if (data.item !== undefined) return this.control.processItem({ ...data, item: data.item }, job);
    const definition = execution.definition as unknown as AgentflowDefinition;
    const node = definition.nodes.find((candidate) => candidate.id === data.nodeId);
    const row = node && (await repos.flowExecutions.node(data.executionId, data.nodeId));
    if (!node || !row) throw new UnrecoverableError(`Execution ${data.executionId} has no node ${data.nodeId}`);
    if (row.status === 'completed' || row.status === 'failed' || row.status === 'skipped')
      return this.settle(execution, data, row.announcedAt ? undefined : row);
    if (row.status !== 'pending' && row.status !== 'running') return;
    let resume: NodeResume | undefined;
    if (data.resume && isPromptNode(node)) {
      resume = await this.resumeState(data, node, job);
      if (!resume) return;
    } else if (
      isPromptNode(node) &&
      node.tools?.length &&
      (await repos.hitl.pendingForMessage(nodeApprovalKey(data.executionId, data.nodeId))).length
    ) {
      // Parked for an approval: its decision continues the node, a re-dispatch does not restart it.
      return;
    }

    // Watch BEFORE starting: a cancel is either on the row `startNode` reads or heard by the watch.
    const watch = this.deps.signals.watch('flow', data.executionId);
    const began = performance.now();
    try {
      // The first node to start also starts the execution's run (later nodes find it running).
      // A foreach, loop or subflow already running waits on its items or child: it is picked up, not started again.
      const waiting = row.status === 'running' && row.attempts > 0 && WAITS.has(kindOf(node));
      if (!waiting) {
        const [started] = await Promise.all([
          repos.flowExecutions.startNode(data.executionId, data.nodeId),
          execution.status === 'queued' ? this.deps.runs.start(data.executionId) : undefined,
        ]);
        if (!started) return;
        await this.deps.events.appendNext(data.executionId, {
          type: 'node_started',
          executionId: data.executionId,
          nodeId: data.nodeId,
          attempt: started.attempts,
        });
        this.log.info({ executionId: data.executionId, nodeId: data.nodeId, attempt: started.attempts }, 'flow node started');
      }
      const outputs = new Map(
        (await repos.flowExecutions.nodes(data.executionId)).filter((n) => n.status === 'completed').map((n) => [n.nodeId, n.output]),
      );
      if (!isPromptNode(node)) {
        const outcome = await this.runControl(execution, node, outputs, watch.signal, data, ticket);
        if (outcome === WAITING) return;
        const won = await repos.flowExecutions.completeNode(data.executionId, data.nodeId, outcome.output, outcome.cost ?? null);
        if (!won) return;
        const completed = await repos.flowExecutions.node(data.executionId, data.nodeId);
        await this.settle(execution, data, completed ?? undefined);
        return;
      }
      const prompt = renderPrompt(node.prompt, execution.input, outputs);
      if (prompt.length > MAX_RENDERED_PROMPT_CHARS) throw new RefusedNodeError('prompt_too_large');
      // Flows saved before regular expressions were refused: never compiled, the node fails.
      if (node.outputSchema && regexKeyword(node.outputSchema)) throw new RefusedNodeError('unsupported_schema');
      // The owner said no (or never answered): the call did not run and the node fails, its flow with it.
      if (resume && resume.status !== 'approved')
        throw new RefusedNodeError(resume.status === 'rejected' ? 'approval_rejected' : 'approval_expired', resume.cost);
      const result = node.tools?.length
        ? await this.runWithTools(definition, node, prompt, watch.signal, data, ticket, resume)
        : await this.runNode(node, prompt, watch.signal, data, ticket);
      if (result === PARKED) return;
      const won = await repos.flowExecutions.completeNode(data.executionId, data.nodeId, result.output, result.cost);
      if (!won) return;
      this.log.info({ executionId: data.executionId, nodeId: data.nodeId }, 'flow node completed');
      const completed = await repos.flowExecutions.node(data.executionId, data.nodeId);
      await this.settle(execution, data, completed ?? undefined);
    } catch (error) {
      if (error instanceof ModelCallCancelled || watch.signal.aborted) {
        // The cancel ended the execution; what the cut call cost is still the owner's.
        if (error instanceof ModelCallCancelled)
          await repos.flowExecutions
            .addNodeCost(data.executionId, data.nodeId, costOf(error.usage))
            .catch((error: unknown) =>
              this.log.warn({ err: error, executionId: data.executionId, nodeId: data.nodeId }, 'cost of a cancelled node not recorded'),
            );
        this.deps.metrics?.observeFlowNode(
          { flowId: execution.flowId, nodeId: data.nodeId, status: 'cancelled' },
          (performance.now() - began) / 1000,
        );
        return;
      }
      // A spent budget is not retried: the node, and with it the execution, fails with `budget_exceeded`.
      // Nor a refused key: no retry mends it (`llm_auth_failed`).
      const { permanent, code, cost } = failureOf(error);
      if (!permanent && job.attemptsMade + 1 < (job.opts.attempts ?? 1)) {
        // Thrown: BullMQ retries this node alone, with backoff; finished nodes are untouched.
        this.log.warn(
          { executionId: data.executionId, nodeId: data.nodeId, attempt: job.attemptsMade + 1, err: describeRedacted(error) },
          'flow node attempt failed; retrying',
        );
        throw error;
      }
      const failed = await repos.flowExecutions.failNode(data.executionId, data.nodeId, flowError(code), cost);
      if (failed) {
        const row = await repos.flowExecutions.node(data.executionId, data.nodeId);
        await this.settle(execution, data, row ?? undefined);
      }
      throw new UnrecoverableError(`flow node ${data.nodeId} failed: ${code}`);
    } finally {
      watch.release();
    }
  }

  /**
   * The continuation of a node whose parked round was decided: the approved calls run (concurrently),
   * a refused one is not run. Undefined when there is nothing to continue yet or any more: a call of
   * the round still waits (the last decision continues it), or another resume did (one per round,
   * unless this very job is re-run after its worker died).
   */
  private async resumeState(
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
  private async runWithTools(
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
    if (!now || !isActive(now.status)) await approvals.cancelPending(nodeApprovalKey(data.executionId, node.id), data.userId);
    return PARKED;
  }

  /**
   * One model turn for the node (its model, else the default), through the gateway. A node with an
   * `outputSchema` must answer JSON that validates: it is asked once more with the problems, then
   * it fails.
   */
  private async runNode(
    node: Pick<AgentflowNode, 'id' | 'model' | 'outputSchema'>,
    prompt: string,
    signal: AbortSignal,
    data: FlowNodeJob,
    budget: BudgetTicket,
  ): Promise<{ output: unknown; cost: NodeCost }> {
    const account = { userId: data.userId, tier: data.tier };
    const messages: ModelMessage[] = [systemMessage(nodeSystemPrompt(node)), userMessage(prompt)];
    const turn = await this.deps.models.streamTurn({ purpose: 'flow', messages, model: node.model, signal, account, budget });
    let cost = costOf(turn.usage);
    if (!node.outputSchema) return { output: boundedText(turn.text).text, cost };
    const validator = outputValidator(node.outputSchema);
    const first = checkJson(turn.text, validator);
    if (first.ok) return { output: first.value, cost };
    this.log.info({ nodeId: node.id }, 'flow node answer did not match its outputSchema; asking once more');
    const repair = await this.deps.models.streamTurn({
      purpose: 'flow',
      messages: [
        ...messages,
        assistantMessage(turn.text),
        userMessage(`That answer is not valid: ${first.problem}. Reply again with only the JSON value, matching the schema.`),
      ],
      model: node.model,
      signal,
      account,
      budget,
    });
    cost = addCost(cost, costOf(repair.usage));
    const second = checkJson(repair.text, validator);
    if (second.ok) return { output: second.value, cost };
    throw new InvalidOutputError(cost);
  }

  /**
   * After a node finished: writes its event if it is still unwritten (`own`; once per node even when
   * a worker died between the append and `markAnnounced`), then ends the
   * execution (a failed node fails it; all nodes completed and announced completes it) or queues
   * the nodes it unblocked. Each worker reads the rows after its own commit, so whichever of two
   * concurrent parents commits last sees both and dispatches the child.
   */
  private async settle(execution: FlowExecutionRow, data: FlowNodeJob, own?: FlowExecutionNodeRow): Promise<void> {
    const { repos, events } = this.deps;
    const executionId = execution.id;
    if (own) await this.announce(execution, own);
    const nodes = await repos.flowExecutions.nodes(executionId);
    const failed = nodes.find((node) => node.status === 'failed');
    if (failed) {
      // A spent budget is named as the execution's reason too; any other node failure is `node_failed`.
      const code = failed.errorCode === 'budget_exceeded' ? 'budget_exceeded' : 'node_failed';
      await this.deps.runs.end(executionId, { status: 'failed', ...flowError(code) }, { nodeId: failed.nodeId });
      return;
    }
    const definition = execution.definition as unknown as AgentflowDefinition;
    // Nodes no taken branch leads to are skipped (and what only they lead to), each announced once.
    const { ready, skip } = nextSteps(definition.nodes, nodes);
    const skipped = new Set(await repos.flowExecutions.skipNodes(executionId, skip));
    for (const node of nodes) {
      if (skipped.has(node.nodeId)) node.status = 'skipped';
      if (node.status !== 'skipped' || node.announcedAt) continue;
      await events.appendNextOnce(executionId, `node:${node.nodeId}`, { type: 'node_skipped', executionId, nodeId: node.nodeId });
      await repos.flowExecutions.markAnnounced(executionId, node.nodeId);
      node.announcedAt = new Date();
    }
    if (nodes.every((node) => (node.status === 'completed' || node.status === 'skipped') && node.announcedAt)) {
      const last = nodes.find((node) => node.nodeId === definition.output);
      const output = last?.status === 'completed' ? (last.output ?? null) : null;
      await this.deps.runs.end(executionId, { status: 'succeeded', result: { output } });
      return;
    }
    await this.deps.enqueueBulk(
      'flows',
      'node',
      ready.map((nodeId) => ({ executionId, nodeId, userId: data.userId, tier: data.tier, ...(data.lane ? { lane: data.lane } : {}) })),
    );
  }

  /**
   * A finished node's event, once even when a worker died between the append and `markAnnounced`;
   * its time (first start to end, from its row) goes to the node histogram as it is announced.
   */
  private async announce(execution: FlowExecutionRow, own: FlowExecutionNodeRow): Promise<void> {
    const { repos, events } = this.deps;
    const executionId = execution.id;
    if (own.startedAt && own.completedAt && (own.status === 'completed' || own.status === 'failed'))
      this.deps.metrics?.observeFlowNode(
        { flowId: execution.flowId, nodeId: own.nodeId, status: own.status },
        Math.max(0, own.completedAt.getTime() - own.startedAt.getTime()) / 1000,
      );
    if (own.status === 'completed') {
      const truncated = wasTruncated(own.output) ? ({ truncated: true } as const) : {};
      await events.appendNextOnce(executionId, `node:${own.nodeId}`, {
        type: 'node_completed',
        executionId,
        nodeId: own.nodeId,
        output: own.output ?? null,
        usage: nodeUsage(own),
        ...truncated,
      });
    } else if (own.status === 'failed') {
      await events.appendNextOnce(executionId, `node:${own.nodeId}`, {
        type: 'node_failed',
        executionId,
        nodeId: own.nodeId,
        error: { code: own.errorCode ?? 'node_failed', message: own.errorMessage ?? '' },
      });
    } else if (own.status === 'skipped') {
      await events.appendNextOnce(executionId, `node:${own.nodeId}`, { type: 'node_skipped', executionId, nodeId: own.nodeId });
    } else return;
    await repos.flowExecutions.markAnnounced(executionId, own.nodeId);
  }

  /**
   * Picks up an execution a dead process left open (the reaper): writes missing node events and
   * queues what is ready, pending or running again; finished nodes are never queued again.
   */
  async resume(execution: FlowExecutionRow): Promise<void> {
    const nodes = await this.deps.repos.flowExecutions.nodes(execution.id);
    const data = {
      executionId: execution.id,
      nodeId: nodes[0]?.nodeId ?? 'x',
      userId: execution.userId,
      tier: execution.tier,
      // Its lane is on its row: an evaluation's execution is picked up behind everyone's own again.
      ...(execution.lane ? { lane: execution.lane } : {}),
    };
    for (const node of nodes.filter(
      (n) => (n.status === 'completed' || n.status === 'failed' || n.status === 'skipped') && !n.announcedAt,
    )) {
      await this.settle(execution, { ...data, nodeId: node.nodeId }, node);
    }
    await this.settle(execution, data);
    const running = nodes.filter((node) => node.status === 'running');
    const items = await this.deps.repos.flowItems.openItems(execution.id);
    await this.deps.enqueueBulk('flows', 'node', [
      ...running.map((node) => ({ ...data, nodeId: node.nodeId })),
      ...items.map((item) => ({ ...data, nodeId: item.nodeId, item: item.index })),
    ]);
  }
}

/** The JSON value of a model's answer (a code fence around it is tolerated) when it validates. */
function checkJson(
  text: string,
  validator: { safeParse(value: unknown): { success: boolean; error?: { issues: Array<{ path: PropertyKey[]; message: string }> } } },
): { ok: true; value: unknown } | { ok: false; problem: string } {
  // Bounded before parsing: the validator's work grows with the answer.
  if (text.length > MAX_NODE_OUTPUT_CHARS) return { ok: false, problem: `it is longer than ${MAX_NODE_OUTPUT_CHARS} characters` };
  const body = text
    .trim()
    .replace(/^```(?:json)?\s*/i, '')
    .replace(/\s*```$/, '');
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return { ok: false, problem: 'it is not JSON' };
  }
  const result = validator.safeParse(value);
  if (result.success) return { ok: true, value };
  const issues = (result.error?.issues ?? [])
    .slice(0, 5)
    .map((issue) => `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`);
  return { ok: false, problem: `it does not match the schema (${issues.join('; ')})` };
}

const costOf = (usage: ModelUsage): NodeCost => ({
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
const nodeUsage = (row: FlowExecutionNodeRow) => ({
  provider: row.provider,
  model: row.model,
  inputTokens: row.inputTokens,
  outputTokens: row.outputTokens,
  costUsd: row.costUsd,
});
