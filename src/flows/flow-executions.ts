import { randomUUID } from 'node:crypto';
import type { QueueConsumers } from '../producers/worker-presence';
import type { Tier } from '../../config';
import type { CancelSignals } from '../lib/cancel-signals';
import { AppError, conflict, notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { decodeCursor, pageOf, timeIdKey } from '../lib/pagination';
import type { UsageLimiter } from '../lib/usage-limiter';
import type { Repositories } from '../models';
import type { FlowExecutionNodeRow, FlowExecutionRow, FlowRow } from '../models/schema';
import type { Metrics } from '../observability/metrics';
import type { QueueRegistry } from '../producers/registry';
import {
  inputKeys,
  MAX_DEFINITION_DEPTH,
  MAX_INPUT_CHARS,
  MAX_RENDERED_PROMPT_CHARS,
  FLOW_NODE_SYSTEM,
  nodeSystemPrompt,
  renderPrompt,
  tooDeep,
  unsafeStoredSchema,
  type AgentflowDefinition,
} from './definition';
import { flowError, type FlowEventLog } from './flow-events';
import type { FlowRuns } from './flow-run';
import type { BudgetDoor, PromptPart } from '../budget/budget-door';
import type { McpTools } from '../mcp/mcp-tools';
import { isMcpToolName } from '../mcp/mcp-tool-names';
import { nodeToolsPart } from './node-prompt';
import { effectiveDeps, hasPrompt, isPromptNode, MAX_FOREACH_ITEMS, type FlowNode, type ForeachNode } from './node-kinds';
import { itemsPath } from './control-checks';
import { valueAt } from './expression';
import { admitPrompt, textsOf } from '../ai/prompt-admission';
import type { PromptGuardMode } from '../ai/prompt-guard';

export interface FlowExecutionsDeps {
  repos: Repositories;
  events: FlowEventLog;
  queues: QueueRegistry;
  signals: CancelSignals;
  /** The tier's executions per minute (the API's; a worker starting a subflow's child has none). */
  usage?: UsageLimiter;
  logger: Logger;
  metrics?: Metrics;
  /** The executions' runs: every end and cancel goes through them. */
  runs: FlowRuns;
  /** Reserves an execution's first model call against its user's budget before anything is written. */
  budget?: Pick<BudgetDoor, 'admitPrompt' | 'releaseUnused'>;
  /** The recorded sizes of the owner's MCP tools a first node names, counted into its reservation. */
  mcp?: Pick<McpTools, 'recordedSizes'>;
  /** Refuses (503 `queue_unconsumed`) an execution no worker would run, before anything is written. */
  consumers?: QueueConsumers;
  /** The prompt guard's mode: inputs it blocks are refused (422 `prompt_rejected`) before anything is written. */
  promptGuard?: PromptGuardMode;
}

/** How an execution is started: an evaluation's row, a trigger's fire, a subflow node's child, or a replay. */
interface LaunchOptions {
  executionId?: string;
  lane?: 'evaluation';
  trigger?: ExecutionTrigger;
  parent?: { executionId: string; nodeId: string; depth: number };
  replay?: ReplayLaunch;
}

/**
 * A replay's start: the nodes queued first (instead of the roots; the first with a prompt takes the
 * reservation), the reused outputs their prompts read, and the writing of its rows and first events.
 */
export interface ReplayLaunch {
  starts: readonly FlowNode[];
  outputs: ReadonlyMap<string, unknown>;
  write(executionId: string, tier: Tier): Promise<void>;
}

/** Which trigger fire starts an execution, and the concurrency key it computed. */
export interface ExecutionTrigger {
  triggerId: string;
  fire: string;
  concurrencyKey: string;
  /** The trigger's concurrency limit: the execution is not written while that many are open under the key. */
  limit?: number;
}

/**
 * Agentflow executions on the API side (and the workers' trigger fires): start one (checks, rows, `execution_started`,
 * the root nodes queued), read them, cancel them. The worker side is `FlowRunner`.
 */
export class FlowExecutions {
  private readonly log: Logger;

  constructor(private readonly deps: FlowExecutionsDeps) {
    this.log = deps.logger.child({ component: 'flow-executions' });
  }

  /**
   * Starts an execution of the owner's agentflow: 409 `not_an_agentflow` for a chatflow, 400
   * `missing_input` naming the `{{input.<key>}}` keys the input lacks, 429 over the tier's limit.
   * `execution_started` is event 1; the nodes without dependencies are queued at once. It runs
   * `flow.definition`, recorded as version `flow.publishedVersion`: the execution keeps both, so a
   * later publish never changes it.
   */
  async start(
    user: { id: string; tier?: Tier },
    flow: FlowRow,
    input: Record<string, unknown>,
    /**
     * An evaluation's execution: started under the id its result row was claimed with, its nodes
     * queued in the `evaluation` lane (behind everyone's own executions), and not counted against
     * `flowExecutionsPerMinute` (the evaluation is limited by its own concurrency). A trigger's:
     * the fire that starts it (one execution per fire: a second start of the same fire fails on its row).
     * A replay's: the nodes it queues first and the writing of its rows (`FlowReplays`).
     */
    options: { executionId?: string; lane?: 'evaluation'; trigger?: ExecutionTrigger; replay?: ReplayLaunch } = {},
  ): Promise<{ executionId: string }> {
    if (flow.type !== 'agentflow')
      throw conflict('not_an_agentflow', 'Only an agentflow can be executed; chat with a chatflow at POST /flows/:id/chat');
    const definition = flow.definition as unknown as AgentflowDefinition;
    this.checkInput(definition, input);
    // The inputs are copied into the nodes' prompts: every string in them passes the prompt guard.
    admitPrompt(this.deps.promptGuard ?? 'off', 'flow_inputs', textsOf(input, 'input'), { logger: this.log, userId: user.id });
    await this.deps.consumers?.require('flows');
    if (!options.lane) await this.deps.usage?.take('flowExecutionsPerMinute', user);
    return this.launch(user, flow, input, options);
  }

  /**
   * A subflow node's child execution: the same checks as a request's (a problem is thrown as the
   * request's 4xx would be), its own budget reservation, and its parent named on its row. The tier
   * limit of executions per minute counts the request that started the parent only.
   */
  async startChild(
    user: { id: string; tier?: Tier },
    flow: FlowRow,
    input: Record<string, unknown>,
    parent: { executionId: string; nodeId: string; depth: number; lane?: 'evaluation' | null },
  ): Promise<{ executionId: string }> {
    if (flow.type !== 'agentflow') throw conflict('not_an_agentflow', 'A subflow must be an agentflow');
    this.checkInput(flow.definition as unknown as AgentflowDefinition, input);
    // The child of an evaluation's execution waits in its lane too.
    const { lane, ...at } = parent;
    return this.launch(user, flow, input, { parent: at, ...(lane ? { lane } : {}) });
  }

  /** 400 `missing_input`, too deep, too large, a foreach over a non-list input. */
  private checkInput(definition: AgentflowDefinition, input: Record<string, unknown>): void {
    const missing = inputKeys(definition).filter((key) => !(key in input) || input[key] === undefined);
    if (missing.length) {
      throw new AppError(
        400,
        'missing_input',
        `The input lacks ${missing.map((key) => `"${key}"`).join(', ')}, read by the flow's prompts`,
        { missing },
      );
    }
    const deep = tooDeep(input, MAX_DEFINITION_DEPTH);
    if (deep)
      throw new AppError(400, 'validation_failed', 'Invalid request body', [
        { path: ['input', ...deep].map(String).join('.'), message: `nested more than ${MAX_DEFINITION_DEPTH} levels deep` },
      ]);
    this.checkBounds(definition, input);
  }

  /** Reserves the first call, writes the rows and queues the roots. */
  private async launch(
    user: { id: string; tier?: Tier },
    flow: FlowRow,
    input: Record<string, unknown>,
    options: LaunchOptions = {},
  ): Promise<{ executionId: string }> {
    const definition = flow.definition as unknown as AgentflowDefinition;
    const deps = effectiveDeps(definition.nodes);
    const roots = options.replay?.starts ?? definition.nodes.filter((node) => !deps.get(node.id)?.length);
    // The first root's call is reserved before any row is written: over the budget, nothing starts
    // (429). It is counted as its worker sends it: without tools, the node system prompt (with the
    // JSON instruction and schema for an `outputSchema`) and the rendered prompt; with tools, the
    // plain node system prompt, the rendered prompt and the tools it is offered (device and HTTP
    // tools by their definitions, MCP tools at the sizes their servers' last listing recorded, read
    // only for a user with budget limits).
    // A root without a prompt of its own (a condition, a subflow) reserves nothing here.
    const first = roots.find(hasPrompt);
    const rendered = first ? renderPrompt(first.prompt, input, options.replay?.outputs ?? new Map()) : '';
    let mcpTools: PromptPart | undefined;
    const toolsOf = async (): Promise<PromptPart> => {
      if (!first || !isPromptNode(first)) return { bytes: 0, texts: 0 };
      const mcpNames = (first.tools ?? []).filter(isMcpToolName);
      const recorded = mcpNames.length && this.deps.mcp ? await this.deps.mcp.recordedSizes(user.id, mcpNames) : new Map<string, number>();
      const part = nodeToolsPart(definition, first, recorded);
      mcpTools = part.mcp;
      return part.tools;
    };
    const budget =
      first &&
      (await (isPromptNode(first) && first.tools?.length
        ? this.deps.budget?.admitPrompt(user.id, [FLOW_NODE_SYSTEM, rendered], first.model?.model, toolsOf)
        : this.deps.budget?.admitPrompt(
            user.id,
            [first.type === 'router' ? FLOW_NODE_SYSTEM : nodeSystemPrompt(first), rendered],
            first.model?.model,
            { bytes: 0, texts: 0 },
          )));
    const executionId = options.executionId ?? randomUUID();
    const tier = user.tier ?? 'free';
    try {
      await (options.replay
        ? options.replay.write(executionId, tier)
        : this.write(executionId, user, flow, definition, input, tier, options));
      // The execution holds the reservation from now on: whoever ends it gives back what no call took.
      await this.deps.runs.hold(executionId, { userId: user.id, reservationId: budget }, { beforeQueued: true });
    } catch (error) {
      await this.release(user.id, budget);
      throw error;
    }
    try {
      await this.deps.queues.enqueueBulk(
        'flows',
        'node',
        roots.map((node) => ({
          executionId,
          nodeId: node.id,
          userId: user.id,
          tier,
          ...(options.lane ? { lane: options.lane } : {}),
          ...(node === first && budget ? { budget, ...(mcpTools ? { mcpTools } : {}) } : {}),
        })),
      );
    } catch (error) {
      await this.release(user.id, budget);
      const failure = flowError('queue_unavailable');
      try {
        await this.deps.runs.end(executionId, { status: 'failed', ...failure });
      } catch (endError) {
        this.log.warn({ err: endError, executionId }, 'execution of a failed enqueue not ended; the reaper resumes it');
      }
      this.log.error({ err: error, executionId }, 'flow execution could not be queued');
      throw new AppError(503, 'queue_unavailable', failure.message, undefined, { 'Retry-After': '2' });
    }
    this.log.info({ executionId, flowId: flow.id, userId: user.id, nodes: definition.nodes.length }, 'flow execution started');
    return { executionId };
  }

  /** The execution's rows and its first event. */
  private async write(
    executionId: string,
    user: { id: string },
    flow: FlowRow,
    definition: AgentflowDefinition,
    input: Record<string, unknown>,
    tier: Tier,
    origin: LaunchOptions,
  ): Promise<void> {
    await this.deps.repos.flowExecutions.create({
      ...(origin.trigger ? { trigger: origin.trigger } : {}),
      parent: origin.parent,
      ...(origin.lane ? { lane: origin.lane } : {}),
      id: executionId,
      flowId: flow.id,
      userId: user.id,
      tier,
      definition: flow.definition,
      flowVersion: flow.publishedVersion,
      input,
      nodeIds: definition.nodes.map((node) => node.id),
    });
    await this.deps.events.appendNext(executionId, { type: 'execution_started', executionId, flowId: flow.id });
  }

  /** Gives back a reservation no job will take (the execution was not queued). */
  private async release(userId: string, reservationId: string | undefined): Promise<void> {
    if (!reservationId) return;
    try {
      await this.deps.budget?.releaseUnused({ userId, reservationId });
    } catch (error) {
      this.log.warn({ err: error, userId }, 'budget reservation of an unqueued execution not released; it expires');
    }
  }

  /**
   * What is refused before anything is queued or any model called: an input over
   * {@link MAX_INPUT_CHARS} (400 `input_too_large`), a stored `outputSchema` with a regular
   * expression (400 `validation_failed`: flows saved before those were refused), and a prompt that
   * the input alone already fills past {@link MAX_RENDERED_PROMPT_CHARS} (400 `prompt_too_large`).
   */
  private checkBounds(definition: AgentflowDefinition, input: Record<string, unknown>): void {
    const inputChars = JSON.stringify(input).length;
    if (inputChars > MAX_INPUT_CHARS)
      throw new AppError(400, 'input_too_large', `The input is ${inputChars} characters of JSON; at most ${MAX_INPUT_CHARS}`);
    const unsafe = unsafeStoredSchema(definition);
    if (unsafe)
      throw new AppError(400, 'validation_failed', `Invalid flow definition: ${unsafe.path}: ${unsafe.message}; update the flow`, [unsafe]);
    for (const node of definition.nodes) {
      if (node.type === 'foreach') this.checkItems(node, input);
      if (!hasPrompt(node)) continue;
      const chars = renderPrompt(node.prompt, input, new Map()).length;
      if (chars > MAX_RENDERED_PROMPT_CHARS) {
        throw new AppError(
          400,
          'prompt_too_large',
          `The prompt of node "${node.id}" would be ${chars} characters with this input; at most ${MAX_RENDERED_PROMPT_CHARS}`,
          { nodeId: node.id, chars, max: MAX_RENDERED_PROMPT_CHARS },
        );
      }
    }
  }

  /** A foreach over the input: a list of at most {@link MAX_FOREACH_ITEMS} (400 `validation_failed` naming the input). */
  private checkItems(node: ForeachNode, input: Record<string, unknown>): void {
    const path = itemsPath(node);
    if (!path || path.parts[0] !== 'input') return;
    const value = valueAt(input, path.parts.slice(1));
    const problem = !Array.isArray(value)
      ? `foreach node "${node.id}" runs over it: it must be a list, not ${value === null ? 'missing or null' : typeof value}`
      : value.length > MAX_FOREACH_ITEMS
        ? `foreach node "${node.id}" runs over it: at most ${MAX_FOREACH_ITEMS} elements`
        : null;
    if (problem)
      throw new AppError(400, 'validation_failed', `Invalid input: ${path.text}: ${problem}`, [{ path: path.text, message: problem }]);
  }

  /** The execution of the flow, else 404. */
  async get(flowId: string, executionId: string): Promise<FlowExecutionRow> {
    const execution = await this.deps.repos.flowExecutions.findOfFlow(flowId, executionId);
    if (!execution) throw notFound('Execution');
    return execution;
  }

  /** The execution with its nodes, as of one moment (404 when it is not an execution of this flow). */
  async getWithNodes(flowId: string, executionId: string): Promise<{ execution: FlowExecutionRow; nodes: FlowExecutionNodeRow[] }> {
    const found = await this.deps.repos.flowExecutions.findOfFlowWithNodes(flowId, executionId);
    if (!found) throw notFound('Execution');
    return found;
  }

  /** One page of the flow's executions, newest first. */
  async list(flowId: string, query: { limit: number; cursor?: string }): Promise<{ items: FlowExecutionRow[]; nextCursor: string | null }> {
    const after = query.cursor ? decodeCursor(query.cursor, timeIdKey) : undefined;
    const rows = await this.deps.repos.flowExecutions.listPage(flowId, { limit: query.limit + 1, after });
    return pageOf(rows, query.limit, (row) => [row.createdAt.toISOString(), row.id]);
  }

  /**
   * `POST /flows/:id/executions/:executionId/cancel`: 202 while queued or running, 409
   * `not_running` once ended. The request is recorded on the row and signalled to every worker (the
   * node streaming the model aborts it at once); the execution ends `cancelled` here, in one
   * conditional UPDATE, so a node finishing at the same moment cannot complete it any more; jobs
   * still waiting are taken off the queue.
   */
  async cancel(flowId: string, executionId: string, userId: string): Promise<{ executionId: string; status: 'cancelling' }> {
    const execution = await this.get(flowId, executionId);
    await this.deps.runs.cancel(execution.id, { userId });
    return { executionId: execution.id, status: 'cancelling' };
  }
}
