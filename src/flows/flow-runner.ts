import { UnrecoverableError, type Job } from 'bullmq';
import { ModelCallCancelled } from '../ai/model-gateway';
import type { BudgetTicket } from '../budget/budget-door';
import { describeRedacted } from '../lib/redact-error';
import type { Logger } from '../lib/logger';
import type { FlowExecutionNodeRow, FlowExecutionRow } from '../models/schema';
import type { Metrics } from '../observability/metrics';
import { invokeAgentAttributes } from '../observability/genai';
import { withSpan } from '../observability/tracing';
import type { NodeCost } from '../models/flow-executions-repository';
import type { FlowNodeJob } from '../producers/flows';
import type { EnqueueBulk } from '../producers/registry';
import {
  MAX_RENDERED_PROMPT_CHARS,
  regexKeyword,
  renderPrompt,
  wasTruncated,
  type AgentflowDefinition,
  type AgentflowNode,
} from './definition';
import { flowError } from './flow-events';
import type { FlowExecutions } from './flow-executions';
import { nextSteps } from './flow-graph';
import { executionIsActive } from './flow-run';
import { nodeApprovalKey } from './node-approvals';
import { NodeControl, WAITING } from './node-control';
import { failureOf, RefusedNodeError } from './node-errors';
import { humanInputStep, type HumanInputDeps } from './node-input';
import { isPromptNode, kindOf, type FlowNode, type NodeKind } from './node-kinds';
import { costOf, PARKED, PromptNodeTurns, type NodeResume, type PromptNodeDeps } from './prompt-node';

export interface FlowRunnerDeps extends PromptNodeDeps {
  /** The catalog's bulk enqueue: the nodes a finished node unblocks go out in one round trip. */
  enqueueBulk: EnqueueBulk;
  metrics?: Metrics;
  /** Starts subflows' child executions; without it subflow nodes fail. */
  children?: Pick<FlowExecutions, 'startChild'>;
  /** Sends human_input nodes' forms; without it such nodes fail. */
  inputs?: HumanInputDeps['inputs'];
}

/** Node kinds that stay `running` while their items, child execution or form's answer go on. */
const WAITS = new Set<NodeKind>(['foreach', 'loop', 'subflow', 'human_input']);

/**
 * The worker side of an agentflow execution: each job runs ONE node. The node's
 * output is committed in PostgreSQL before its event is written and before the nodes it unblocks
 * are queued (with job ids from the execution and node, so a double dispatch queues one job). A job
 * that finds its node already finished (its worker died after the commit) only writes what is
 * missing and dispatches again: a finished node never calls the model twice.
 */
export class FlowRunner {
  private readonly log: Logger;
  /** The prompt nodes' model turns: plain, structured or with tools (parked and resumed). */
  private readonly prompts: PromptNodeTurns;

  /** Conditions, routers, foreach, loops and subflows. */
  private readonly control: NodeControl;

  constructor(private readonly deps: FlowRunnerDeps) {
    this.log = deps.logger.child({ component: 'flow-runner' });
    this.prompts = new PromptNodeTurns(deps);
    this.control = new NodeControl(deps, {
      ask: (node, prompt, signal, data, budget) => this.prompts.run(node, prompt, signal, data, budget),
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
    if (!execution || !executionIsActive(execution.status)) return;
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
      resume = await this.prompts.resume(data, node, job);
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
        ? await this.prompts.runWithTools(definition, node, prompt, watch.signal, data, ticket, resume)
        : await this.prompts.run(node, prompt, watch.signal, data, ticket);
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

const nodeUsage = (row: FlowExecutionNodeRow) => ({
  provider: row.provider,
  model: row.model,
  inputTokens: row.inputTokens,
  outputTokens: row.outputTokens,
  costUsd: row.costUsd,
});
