import { checkedAnswer, costOf } from './prompt-node';
import { UnrecoverableError, type Job } from 'bullmq';
import { ModelCallCancelled, type ModelGateway } from '../ai/model-gateway';
import { systemMessage, userMessage } from '../ai/model-messages';
import type { BudgetTicket } from '../budget/budget-door';
import { AppError } from '../lib/errors';
import type { CancelSignals } from '../lib/cancel-signals';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { NodeCost } from '../models/flow-executions-repository';
import type { FlowExecutionRow, FlowRow } from '../models/schema';
import type { FlowNodeJob } from '../producers/flows';
import type { EnqueueBulk } from '../producers/registry';
import { FLOW_NODE_SYSTEM, MAX_RENDERED_PROMPT_CHARS, renderPrompt, type AgentflowDefinition, type PromptLocals } from './definition';
import { itemsPath } from './control-checks';
import { evaluate, parseExpression, truthy, valueAt } from './expression';
import type { FlowEventLog } from './flow-events';
import type { FlowExecutions } from './flow-executions';
import type { FlowRuns } from './flow-run';
import {
  ELSE_BRANCH,
  MAX_FOREACH_ITEMS,
  MAX_SUBFLOW_DEPTH,
  type ConditionNode,
  type ForeachNode,
  type LoopNode,
  type RouterNode,
  type SubflowNode,
} from './node-kinds';
import { ControlError, failureOf } from './node-errors';

/** The node goes on without a worker: its items or its child execution finish it. */
export const WAITING = Symbol('waiting');

/** The first words of a router's instruction; the demo model recognises a router by them. */
export const ROUTER_INSTRUCTION = 'Choose the branch the flow takes.';

/** What the runner lends the control-flow nodes. */
export interface ControlHooks {
  /** One model turn of a prompt (with the node's model and `outputSchema`, repaired once). */
  ask(
    node: { id: string; model?: { provider: string; model: string }; outputSchema?: Record<string, unknown> },
    prompt: string,
    signal: AbortSignal,
    data: FlowNodeJob,
    budget: BudgetTicket,
  ): Promise<{ output: unknown; cost: NodeCost }>;
  /** Completes the node with this output (its cost was counted with its items) and moves the execution on. */
  complete(execution: FlowExecutionRow, data: FlowNodeJob, output: unknown): Promise<void>;
  /** Fails the node with this code and ends the execution. */
  fail(execution: FlowExecutionRow, data: FlowNodeJob, code: string): Promise<void>;
}

export interface NodeControlDeps {
  repos: Repositories;
  models: ModelGateway;
  events: FlowEventLog;
  enqueueBulk: EnqueueBulk;
  signals: CancelSignals;
  logger: Logger;
  runs: FlowRuns;
  /** Starts a subflow's child execution; without it subflow nodes fail. */
  children?: Pick<FlowExecutions, 'startChild'>;
}

type Outputs = ReadonlyMap<string, unknown>;

/**
 * The control-flow nodes on the worker. A condition evaluates its branches; a router asks the
 * model. A foreach writes one item row per element and queues up to its concurrency; each item
 * job commits its answer, then queues the next pending items in the same transaction, and the
 * one that finds all items completed joins them (in order) into the node's output. A loop queues
 * one iteration at a time until its `until` holds or its bound is reached. A subflow starts a
 * child execution and ends when the child does (the child's end queues the node again).
 */
export class NodeControl {
  private readonly log: Logger;

  constructor(
    private readonly deps: NodeControlDeps,
    private readonly hooks: ControlHooks,
  ) {
    this.log = deps.logger.child({ component: 'flow-control' });
  }

  /** A condition: the first branch whose `when` holds, else `else`; no model call. */
  condition(execution: FlowExecutionRow, node: ConditionNode, outputs: Outputs): { output: { branch: string | null } } {
    const resolve = resolver(execution.input, outputs);
    for (const branch of node.branches)
      if (truthy(evaluate(parseExpression(branch.when), resolve))) return { output: { branch: branch.name } };
    return { output: { branch: node.else ? ELSE_BRANCH : null } };
  }

  /** A router: the model names one branch (asked once more when it names none), else the node fails `invalid_output`. */
  async router(
    node: RouterNode,
    prompt: string,
    signal: AbortSignal,
    data: FlowNodeJob,
    budget: BudgetTicket,
  ): Promise<{ output: { branch: string }; cost: NodeCost }> {
    const names = node.branches.map((branch) => branch.name);
    const system = `${FLOW_NODE_SYSTEM}\n\n${ROUTER_INSTRUCTION} Answer with the name of exactly one branch and nothing else. The branches:\n${node.branches
      .map((branch) => `- ${branch.name}${branch.description ? `: ${branch.description}` : ''}`)
      .join('\n')}`;
    const request = {
      purpose: 'flow' as const,
      messages: [systemMessage(system), userMessage(prompt)],
      model: node.model,
      signal,
      account: { userId: data.userId, tier: data.tier },
      budget,
    };
    const branch = (text: string) => {
      const picked = pickBranch(text, names);
      return picked ? { ok: true as const, value: { branch: picked } } : { ok: false as const, problem: 'no branch named' };
    };
    return checkedAnswer(this.deps.models, request, branch, { again: () => `Answer with one of these names only: ${names.join(', ')}.` });
  }

  /** A foreach starts (or is picked up again): its items are written and the first ones queued. */
  async foreach(
    execution: FlowExecutionRow,
    node: ForeachNode,
    outputs: Outputs,
    data: FlowNodeJob,
  ): Promise<{ output: unknown } | typeof WAITING> {
    const path = itemsPath(node);
    const list = path ? resolver(execution.input, outputs)(path.parts) : null;
    if (!Array.isArray(list)) throw new ControlError('not_a_list');
    if (list.length > MAX_FOREACH_ITEMS) throw new ControlError('too_many_items');
    if (!list.length) return { output: [] };
    await this.deps.repos.flowItems.open(execution.id, node.id, list, node.concurrency);
    return this.advance(execution, node, data);
  }

  /** A loop starts (or is picked up again): its first iteration is queued. */
  async loop(execution: FlowExecutionRow, node: LoopNode, data: FlowNodeJob): Promise<{ output: unknown } | typeof WAITING> {
    await this.deps.repos.flowItems.addIteration(execution.id, node.id, 0);
    return this.advance(execution, node, data, execution.input);
  }

  /**
   * Where a foreach or loop stands: every queued item's job is (re)queued (idempotent: job ids by
   * item), and a finished node's output is returned — a foreach's answers in order once all are
   * in; a loop's last answer once `until` holds or the bound is reached (else the next iteration).
   */
  private async advance(
    execution: FlowExecutionRow,
    node: ForeachNode | LoopNode,
    data: FlowNodeJob,
    input: Record<string, unknown> = execution.input,
  ): Promise<{ output: unknown } | typeof WAITING> {
    const { flowItems } = this.deps.repos;
    let items = await flowItems.list(execution.id, node.id);
    if (node.type === 'foreach') {
      if (items.length && items.every((item) => item.status === 'completed')) return { output: items.map((item) => item.output ?? null) };
    } else {
      const last = items.at(-1);
      if (last?.status === 'completed') {
        const outputs = await this.outputs(execution.id);
        const resolve = resolver(input, outputs, { output: last.output ?? null, iteration: last.index + 1 });
        const done =
          last.index + 1 >= node.maxIterations || (node.until !== undefined && truthy(evaluate(parseExpression(node.until), resolve)));
        if (done) return { output: last.output ?? null };
        await flowItems.addIteration(execution.id, node.id, last.index + 1);
        items = await flowItems.list(execution.id, node.id);
      }
    }
    const queued = items.filter((item) => item.status === 'queued').map((item) => item.index);
    await this.queueItems(data, node.id, queued);
    return WAITING;
  }

  private async queueItems(data: FlowNodeJob, nodeId: string, indexes: readonly number[]): Promise<void> {
    if (!indexes.length) return;
    await this.deps.enqueueBulk(
      'flows',
      'node',
      indexes.map((item) => ({
        executionId: data.executionId,
        nodeId,
        userId: data.userId,
        tier: data.tier,
        item,
        // An evaluation's items wait in its lane, as its nodes do.
        ...(data.lane ? { lane: data.lane } : {}),
      })),
    );
  }

  private async outputs(executionId: string): Promise<Map<string, unknown>> {
    const nodes = await this.deps.repos.flowExecutions.nodes(executionId);
    return new Map(nodes.filter((n) => n.status === 'completed').map((n) => [n.nodeId, n.output]));
  }

  /**
   * One item job: a foreach element or a loop iteration. Its answer is committed before the next
   * items are queued; a job that finds its item already completed (its worker died after the
   * commit) never calls the model again, it only does what followed the commit.
   */
  async processItem(data: FlowNodeJob & { item: number }, job: Pick<Job, 'attemptsMade' | 'opts'>): Promise<void> {
    const { repos } = this.deps;
    const execution = await repos.flowExecutions.find(data.executionId);
    if (!execution || (execution.status !== 'running' && execution.status !== 'queued')) return;
    const definition = execution.definition as unknown as AgentflowDefinition;
    const node = definition.nodes.find((candidate) => candidate.id === data.nodeId);
    if (!node || (node.type !== 'foreach' && node.type !== 'loop'))
      throw new UnrecoverableError(`Execution ${data.executionId} has no foreach or loop ${data.nodeId}`);
    const [row, item] = await Promise.all([
      repos.flowExecutions.node(data.executionId, node.id),
      repos.flowItems.find(data.executionId, node.id, data.item),
    ]);
    if (row?.status !== 'running' || !item) return;
    if (item.status === 'completed') return this.afterItem(execution, node, data);
    if (item.status === 'failed') return this.hooks.fail(execution, data, item.errorCode ?? 'node_failed');

    const watch = this.deps.signals.watch('flow', data.executionId);
    try {
      const started = await repos.flowItems.start(data.executionId, node.id, data.item);
      if (!started) return;
      this.log.info(
        { executionId: data.executionId, nodeId: node.id, item: started.index, attempt: started.attempts },
        'flow item started',
      );
      const outputs = await this.outputs(data.executionId);
      let locals: PromptLocals;
      if (node.type === 'foreach') locals = { item: started.input ?? null, index: started.index };
      else {
        const previous = started.index > 0 ? await repos.flowItems.find(data.executionId, node.id, started.index - 1) : null;
        locals = { 'loop.previous': previous?.output ?? null, 'loop.iteration': started.index + 1 };
      }
      const prompt = renderPrompt(node.prompt, execution.input, outputs, locals);
      if (prompt.length > MAX_RENDERED_PROMPT_CHARS) throw new ControlError('prompt_too_large');
      const ticket: BudgetTicket = { userId: data.userId, reservationId: data.budget };
      const result = await this.hooks.ask(node, prompt, watch.signal, data, ticket);
      const cap = node.type === 'foreach' ? node.concurrency : 1;
      const committed = await repos.flowItems.complete(data.executionId, node.id, started.index, result.output, result.cost, cap);
      if (!committed.won) return;
      await this.queueItems(data, node.id, committed.queued);
      await this.afterItem(execution, node, data);
    } catch (error) {
      if (error instanceof ModelCallCancelled || watch.signal.aborted) {
        // The cancel ended the execution; what the cut call cost is still the owner's.
        if (error instanceof ModelCallCancelled)
          await repos.flowExecutions
            .addNodeCost(data.executionId, node.id, costOf(error.usage))
            .catch((cause: unknown) =>
              this.log.warn({ err: cause, executionId: data.executionId }, 'cost of a cancelled item not recorded'),
            );
        return;
      }
      const failure = failureOf(error);
      if (!failure.permanent && job.attemptsMade + 1 < (job.opts.attempts ?? 1)) {
        this.log.warn({ executionId: data.executionId, nodeId: node.id, item: data.item }, 'flow item attempt failed; retrying');
        throw error;
      }
      if (await repos.flowItems.fail(data.executionId, node.id, data.item, failure.code, failure.cost))
        await this.hooks.fail(execution, data, failure.code);
      throw new UnrecoverableError(`flow item ${node.id}[${data.item}] failed: ${failure.code}`);
    } finally {
      watch.release();
    }
  }

  /** After an item's commit: its event (once), then the node's join or next iteration. */
  private async afterItem(execution: FlowExecutionRow, node: ForeachNode | LoopNode, data: FlowNodeJob & { item: number }): Promise<void> {
    const item = await this.deps.repos.flowItems.find(execution.id, node.id, data.item);
    if (item?.status === 'completed')
      await this.deps.events.appendNextOnce(execution.id, `item:${node.id}:${item.index}`, {
        type: 'item_completed',
        executionId: execution.id,
        nodeId: node.id,
        index: item.index,
        output: item.output ?? null,
      });
    const { item: _item, budget: _budget, ...nodeJob } = data;
    const outcome = await this.advance(execution, node, nodeJob);
    if (outcome !== WAITING) await this.hooks.complete(execution, nodeJob, outcome.output);
  }

  /**
   * A subflow: starts its child execution once (a re-run finds it), and finishes with it — its
   * output when it completed, `subflow_failed` when it failed or was cancelled.
   */
  async subflow(execution: FlowExecutionRow, node: SubflowNode, outputs: Outputs): Promise<{ output: unknown } | typeof WAITING> {
    const { repos } = this.deps;
    let child = await repos.flowExecutions.childOf(execution.id, node.id);
    if (!child) {
      if (execution.depth + 1 > MAX_SUBFLOW_DEPTH) throw new ControlError('subflow_too_deep');
      if (!this.deps.children) throw new UnrecoverableError('This worker cannot start subflows');
      const flow = await this.childFlow(execution.userId, node);
      const input = Object.fromEntries(
        Object.entries(node.input).map(([key, template]) => [key, renderPrompt(template, execution.input, outputs)]),
      );
      try {
        const started = await this.deps.children.startChild({ id: execution.userId, tier: execution.tier }, flow, input, {
          executionId: execution.id,
          nodeId: node.id,
          depth: execution.depth + 1,
          lane: execution.lane,
        });
        await this.deps.events.appendNextOnce(execution.id, `child:${node.id}`, {
          type: 'subflow_started',
          executionId: execution.id,
          nodeId: node.id,
          childExecutionId: started.executionId,
        });
        this.log.info({ executionId: execution.id, nodeId: node.id, childExecutionId: started.executionId }, 'subflow started');
      } catch (error) {
        if (!isUniqueViolation(error)) {
          if (error instanceof AppError) {
            this.log.info({ executionId: execution.id, nodeId: node.id, code: error.code }, 'subflow refused');
            throw new ControlError(error.code === 'budget_exceeded' ? 'budget_exceeded' : 'subflow_refused');
          }
          throw error;
        }
      }
      // The parent ended while its child was being started: the child goes too.
      const now = await repos.flowExecutions.find(execution.id);
      child = await repos.flowExecutions.childOf(execution.id, node.id);
      if (child && (!now || (now.status !== 'running' && now.status !== 'queued'))) {
        await this.cancelChild(child);
        return WAITING;
      }
    }
    if (!child || child.status === 'queued' || child.status === 'running') return WAITING;
    if (child.status === 'completed') return { output: child.output ?? null };
    throw new ControlError('subflow_failed');
  }

  /** The flow a subflow runs, at its version (the published one by default); `subflow_not_found` when gone. */
  private async childFlow(userId: string, node: SubflowNode): Promise<FlowRow> {
    const flow = await this.deps.repos.flows.get(userId, node.flowId);
    if (!flow || flow.type !== 'agentflow') throw new ControlError('subflow_not_found');
    if (node.version === undefined) return flow;
    const version = await this.deps.repos.flows.version(flow.id, node.version);
    if (!version) throw new ControlError('subflow_not_found');
    return { ...flow, definition: version.definition, publishedVersion: version.version };
  }

  /** Cancels a child execution for its owner (a parent that ended); one already over is left. */
  async cancelChild(child: FlowExecutionRow): Promise<void> {
    try {
      await this.deps.runs.cancel(child.id, { userId: child.userId });
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
    }
  }
}

/** Resolves expression paths over the input, the completed outputs and a node's locals. */
function resolver(input: Record<string, unknown>, outputs: Outputs, locals: Record<string, unknown> = {}) {
  return (parts: ReadonlyArray<string | number>): unknown => {
    const [root, second, , ...rest] = parts;
    if (root === 'input') return valueAt(input, parts.slice(1));
    if (root === 'nodes' && typeof second === 'string') return valueAt(outputs.get(second) ?? null, rest);
    if (typeof root === 'string' && Object.hasOwn(locals, root)) return valueAt(locals[root], parts.slice(1));
    return null;
  };
}

/** The branch an answer names: the whole answer (quotes, a final period, case aside) or `{"branch": …}`. */
export function pickBranch(text: string, names: readonly string[]): string | null {
  const plain = text
    .trim()
    .replace(/^["'`]+|["'`.]+$/g, '')
    .trim()
    .toLowerCase();
  const exact = names.find((name) => name.toLowerCase() === plain);
  if (exact) return exact;
  try {
    const value = JSON.parse(text.trim()) as { branch?: unknown };
    const named = names.find((name) => typeof value?.branch === 'string' && name.toLowerCase() === value.branch.toLowerCase());
    if (named) return named;
  } catch {
    // Not JSON: the answer named no branch.
  }
  return null;
}

function isUniqueViolation(error: unknown): boolean {
  for (let at: unknown = error; at && typeof at === 'object'; at = (at as { cause?: unknown }).cause)
    if ((at as { code?: unknown }).code === '23505') return true;
  return false;
}
