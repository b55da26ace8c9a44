import { z } from 'zod';
import type { Tier } from '../../config';
import { AppError, conflict, notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { ReusedNode } from '../models/flow-executions-repository';
import type { FlowExecutionNodeRow, FlowExecutionRow, FlowRow } from '../models/schema';
import { modelRefSchema } from '../schemas/model-ref';
import { ancestorsOf, INPUT_KEY_PATTERN, inputKeys, type AgentflowDefinition } from './definition';
import type { FlowEventLog } from './flow-events';
import type { FlowExecutions } from './flow-executions';
import { nextSteps } from './flow-graph';
import type { FlowService } from './flow-service';
import { effectiveDeps, kindOf, type FlowNode } from './node-kinds';

/**
 * `POST /flows/:id/executions/:executionId/replay`: the node to start from and what changes. The
 * node's own fields (`prompt`, `model`, a subflow's `nodeInput`) are checked with the whole
 * definition, so a problem names the node; `input` is laid over the execution's input, key by key.
 */
export const replayFlowSchema = z.strictObject({
  fromNode: z.string().min(1).max(64),
  changes: z
    .strictObject({
      /** The node's new prompt (a prompt, router, foreach or loop node). */
      prompt: z.string().max(100_000).optional(),
      /** The node's new model (a prompt, router, foreach or loop node). */
      model: modelRefSchema.optional(),
      /** A subflow node's new input templates (replacing its `input` whole). */
      nodeInput: z.record(z.string().max(64), z.string().max(100_000)).optional(),
      /** Values laid over the execution's input: a key given replaces the original's. */
      input: z.record(z.string().regex(INPUT_KEY_PATTERN, 'letters, digits, _ and - only (1-64)'), z.unknown()).optional(),
    })
    .default({}),
});
export type ReplayRequest = z.output<typeof replayFlowSchema>;

/** What a replay will run, checked and not yet written (the route checks its models against the plan in between). */
export interface ReplayPlan {
  flow: FlowRow;
  source: FlowExecutionRow;
  fromNode: string;
  /** The definition it runs: the execution's, with the changes (checked as a save would). */
  definition: Record<string, unknown>;
  input: Record<string, unknown>;
  /** An existing version with that very definition; null: a new draft version is saved. */
  version: number | null;
  reused: ReusedNode[];
  /** The nodes queued first. */
  starts: FlowNode[];
  /** The reused outputs, by node. */
  outputs: Map<string, unknown>;
}

export interface ReplayStarted {
  executionId: string;
  flowVersion: number;
  /** Whether `flowVersion` is a draft (not the flow's published version) when the replay started. */
  draft: boolean;
  reusedNodes: string[];
}

export interface FlowReplaysDeps {
  repos: Repositories;
  flows: Pick<FlowService, 'get' | 'checkDraft'>;
  executions: Pick<FlowExecutions, 'start'>;
  events: FlowEventLog;
  logger: Logger;
}

const ENDED = new Set<FlowExecutionRow['status']>(['completed', 'failed', 'cancelled']);

/**
 * Replays an ended agentflow execution from one of its nodes: a NEW execution of the flow whose
 * other nodes (its upstream, and every node that does not depend on it) are taken over as they
 * ended — their committed outputs, no model call, no cost — and whose node and everything
 * downstream of it run again with the changes. A changed definition is saved as a draft version of
 * the flow (in the transaction that writes the execution), never published: publishing it is the
 * versions' publish. It runs like any execution (its budget reservation, queue, events, cancel and
 * the reaper), so a reviewer follows it on its event stream.
 */
export class FlowReplays {
  private readonly log: Logger;

  constructor(private readonly deps: FlowReplaysDeps) {
    this.log = deps.logger.child({ component: 'flow-replays' });
  }

  /**
   * Everything checked, nothing written (the body is read after the access checks): 404 for a flow
   * or an execution the caller cannot see, 409 `execution_running` while it runs, 400 naming the
   * node for a node it lacks, a change the node cannot take or that makes the definition invalid,
   * 409 `node_not_reached` for a node its run never reached, and 400 for an input change a reused
   * node reads.
   */
  async plan(userId: string, flowId: string, executionId: string, request: () => ReplayRequest): Promise<ReplayPlan> {
    const flow = await this.deps.flows.get(userId, flowId);
    const found = await this.deps.repos.flowExecutions.findOfFlowWithNodes(flow.id, executionId);
    if (!found) throw notFound('Execution');
    // Read once the caller is known to see the execution: another user learns nothing from a 400.
    const body = request();
    const { execution: source, nodes: rows } = found;
    if (!ENDED.has(source.status))
      throw conflict('execution_running', 'The execution is still running: replay it once it has ended (or cancel it first)');
    const original = source.definition as unknown as AgentflowDefinition;
    const index = original.nodes.findIndex((node) => node.id === body.fromNode);
    if (index < 0) throw this.unknownNode(flow, source, body.fromNode);
    const fromNode = original.nodes[index];

    const edited = withChanges(original, index, body.changes);
    const definition = await this.checked(userId, flow, edited, fromNode.id);
    const input = { ...source.input, ...body.changes.input };
    const byId = new Map(rows.map((row) => [row.nodeId, row]));
    const { reused, starts } = this.reuse(original, byId, fromNode.id, changedKeys(source.input, input));
    const outputs = new Map(reused.filter((node) => node.status === 'completed').map((node) => [node.nodeId, node.output]));
    return {
      flow,
      source,
      fromNode: fromNode.id,
      definition,
      input,
      version: await this.sameVersion(flow, source, definition),
      reused,
      starts,
      outputs,
    };
  }

  /**
   * Starts the planned replay as an execution (the flow's executions per minute, its budget
   * reservation for the first node it runs, its prompt guard and input checks): the draft version
   * (when the definition changed) and the rows in one transaction, then `execution_started` naming
   * its source, and a `node_completed` (`reused: true`) or `node_skipped` for each reused node.
   */
  async start(user: { id: string; tier?: Tier }, plan: ReplayPlan): Promise<ReplayStarted> {
    const { repos, events } = this.deps;
    const nodeIds = (plan.definition as unknown as AgentflowDefinition).nodes.map((node) => node.id);
    let version = plan.version ?? 0;
    const write = async (executionId: string, tier: Tier): Promise<void> => {
      const written = await repos.flowReplays.create(
        {
          id: executionId,
          flowId: plan.flow.id,
          userId: user.id,
          tier,
          definition: plan.definition,
          input: plan.input,
          nodeIds,
          replay: { executionId: plan.source.id, nodeId: plan.fromNode, reused: plan.reused },
        },
        plan.version ?? { draft: true },
      );
      if (written === null) throw notFound('Flow');
      version = written;
      await events.appendNext(executionId, {
        type: 'execution_started',
        executionId,
        flowId: plan.flow.id,
        replayOf: { executionId: plan.source.id, fromNode: plan.fromNode },
      });
      // Each reused node's event, once (the runner writes a missing one the same way after a crash).
      for (const node of plan.reused) {
        await events.appendNextOnce(
          executionId,
          `node:${node.nodeId}`,
          node.status === 'completed'
            ? { type: 'node_completed', executionId, nodeId: node.nodeId, output: node.output ?? null, usage: NO_USAGE, reused: true }
            : { type: 'node_skipped', executionId, nodeId: node.nodeId },
        );
        await repos.flowExecutions.markAnnounced(executionId, node.nodeId);
      }
    };
    const flow = { ...plan.flow, definition: plan.definition };
    const { executionId } = await this.deps.executions.start(user, flow, plan.input, {
      replay: { starts: plan.starts, outputs: plan.outputs, write },
    });
    this.log.info(
      { executionId, sourceExecutionId: plan.source.id, fromNode: plan.fromNode, flowVersion: version, reused: plan.reused.length },
      'flow replay started',
    );
    const published = (await repos.flows.find(plan.flow.id))?.publishedVersion;
    return { executionId, flowVersion: version, draft: published !== version, reusedNodes: plan.reused.map((node) => node.nodeId) };
  }

  /** 400 naming the node; when the flow's published version has it, the message says the execution ran another. */
  private unknownNode(flow: FlowRow, source: FlowExecutionRow, nodeId: string): AppError {
    const published = (flow.definition as unknown as AgentflowDefinition).nodes?.some((node) => node.id === nodeId);
    const message = published
      ? `node "${nodeId}" is in the flow's published version, not in version ${source.flowVersion ?? '(unversioned)'} that this execution ran`
      : `this execution has no node "${nodeId}"`;
    return new AppError(400, 'validation_failed', `Invalid replay: ${message}`, [{ path: 'fromNode', message, nodeId }]);
  }

  /** The changed definition as a save checks it; a problem is rethrown naming its node (and `changes.<field>` for the changed one). */
  private async checked(userId: string, flow: FlowRow, edited: AgentflowDefinition, fromNode: string): Promise<Record<string, unknown>> {
    try {
      return await this.deps.flows.checkDraft(userId, flow, edited as unknown as Record<string, unknown>);
    } catch (error) {
      if (error instanceof AppError && error.status < 500) throw namingNodes(error, edited, fromNode);
      throw error;
    }
  }

  /**
   * Which nodes the replay takes over and which it queues first. Run again: the node and everything
   * downstream of it, and any other node that did not complete in the source. Its upstream must
   * have completed (or been skipped) and it must not have been skipped (409 `node_not_reached`); a
   * reused node reading an input key the changes give another value is a 400 naming both.
   */
  private reuse(
    definition: AgentflowDefinition,
    rows: ReadonlyMap<string, FlowExecutionNodeRow>,
    fromNode: string,
    changed: ReadonlySet<string>,
  ): { reused: ReusedNode[]; starts: FlowNode[] } {
    const status = (id: string) => rows.get(id)?.status ?? 'pending';
    const ancestors = ancestorsOf(definition);
    const blocked = [...(ancestors.get(fromNode) ?? [])].filter((id) => status(id) !== 'completed' && status(id) !== 'skipped');
    // The node to replay from instead: the first of them whose own upstream all completed.
    const above = blocked.find((id) => ![...(ancestors.get(id) ?? [])].some((up) => blocked.includes(up)));
    if (above)
      throw conflict(
        'node_not_reached',
        `Node "${fromNode}" cannot be replayed: node "${above}" upstream of it did not complete in this execution (${status(above)}); replay from "${above}"`,
      );
    if (status(fromNode) === 'skipped')
      throw conflict(
        'node_not_reached',
        `Node "${fromNode}" was skipped in this execution (no branch taken led to it): replay from the branch`,
      );
    const again = downstream(definition.nodes, fromNode);
    const reused: ReusedNode[] = [];
    for (const node of definition.nodes) {
      const row = rows.get(node.id);
      if (again.has(node.id) || !row || (row.status !== 'completed' && row.status !== 'skipped')) continue;
      if (row.status === 'completed') {
        const reads = inputKeys({ nodes: [node], output: node.id }).filter((key) => changed.has(key));
        if (reads.length)
          throw new AppError(
            400,
            'validation_failed',
            `Invalid replay: node "${node.id}" reads input.${reads[0]}, which the changes give another value, and would be reused: replay from "${node.id}"`,
            reads.map((key) => ({
              path: `changes.input.${key}`,
              message: `read by node "${node.id}", which this replay reuses`,
              nodeId: node.id,
            })),
          );
      }
      reused.push({ nodeId: node.id, status: row.status, output: row.status === 'completed' ? (row.output ?? null) : null });
    }
    const kept = new Map(reused.map((node) => [node.nodeId, node]));
    const { ready } = nextSteps(
      definition.nodes,
      definition.nodes.map((node) => ({
        nodeId: node.id,
        status: kept.get(node.id)?.status ?? 'pending',
        output: kept.get(node.id)?.output ?? null,
      })),
    );
    if (!ready.includes(fromNode))
      throw conflict('node_not_reached', `Node "${fromNode}" would not run: no branch taken in this execution leads to it`);
    return { reused, starts: definition.nodes.filter((node) => ready.includes(node.id)) };
  }

  /** The version that already holds this definition: the execution's, else the flow's newest; null when none does. */
  private async sameVersion(flow: FlowRow, source: FlowExecutionRow, definition: Record<string, unknown>): Promise<number | null> {
    const wanted = canonical(definition);
    for (const number of new Set([source.flowVersion, flow.latestVersion])) {
      if (number === null) continue;
      const version = await this.deps.repos.flows.version(flow.id, number);
      if (version && canonical(version.definition) === wanted) return number;
    }
    return null;
  }
}

const NO_USAGE = { provider: null, model: null, inputTokens: 0, outputTokens: 0, costUsd: 0 };

/** The execution's definition with the node's changes; a change the node's kind cannot take is a 400 naming it. */
function withChanges(definition: AgentflowDefinition, index: number, changes: ReplayRequest['changes']): AgentflowDefinition {
  const node = definition.nodes[index];
  const kind = kindOf(node);
  const refuse = (field: string, message: string) =>
    new AppError(400, 'validation_failed', `Invalid replay: node "${node.id}": ${message}`, [
      { path: `changes.${field}`, message, nodeId: node.id },
    ]);
  const changed: Record<string, unknown> = { ...node };
  if (changes.prompt !== undefined) {
    if (!('prompt' in node)) throw refuse('prompt', `a ${kind} node has no prompt`);
    changed.prompt = changes.prompt;
  }
  if (changes.model !== undefined) {
    if (kind === 'condition' || kind === 'subflow') throw refuse('model', `a ${kind} node calls no model`);
    changed.model = changes.model;
  }
  if (changes.nodeInput !== undefined) {
    if (kind !== 'subflow')
      throw refuse('nodeInput', `a ${kind} node has no input of its own (change the execution's input with \`input\`)`);
    changed.input = changes.nodeInput;
  }
  const nodes = definition.nodes.map((candidate, at) => (at === index ? (changed as FlowNode) : candidate));
  return { ...definition, nodes };
}

/** A check's problem restated for a replay: its node named, the changed node's fields as `changes.<field>`. */
function namingNodes(error: AppError, definition: AgentflowDefinition, fromNode: string): AppError {
  const field: Record<string, string> = { prompt: 'prompt', model: 'model', input: 'nodeInput' };
  const locate = (path: string) => {
    const match = /^definition\.nodes\.(\d+)(?:\.([^.]+))?(.*)$/.exec(path);
    const nodeId = match ? definition.nodes[Number(match[1])]?.id : undefined;
    if (!match || !nodeId) return { path };
    const renamed = nodeId === fromNode && match[2] && field[match[2]] ? `changes.${field[match[2]]}${match[3]}` : path;
    return { path: renamed, nodeId };
  };
  let named: string | undefined;
  let details = error.details;
  if (Array.isArray(details)) {
    details = details.map((detail: { path?: unknown; message?: unknown }) => {
      if (typeof detail?.path !== 'string') return detail;
      const at = locate(detail.path);
      named ??= at.nodeId;
      return { ...detail, ...at };
    });
  } else if (details && typeof details === 'object' && Array.isArray((details as { paths?: unknown }).paths)) {
    const paths = (details as { paths: string[] }).paths.map(locate);
    named = paths.find((at) => at.nodeId)?.nodeId;
    details = {
      ...details,
      paths: paths.map((at) => at.path),
      nodeIds: [...new Set(paths.flatMap((at) => (at.nodeId ? [at.nodeId] : [])))],
    };
  }
  const message = `Invalid replay: ${named ? `node "${named}": ` : ''}${error.message}`;
  return new AppError(error.status, error.code, message, details, error.headers);
}

/** The node and every node that depends on it, directly or not (branches included). */
function downstream(nodes: readonly FlowNode[], fromNode: string): Set<string> {
  const deps = effectiveDeps(nodes);
  const found = new Set([fromNode]);
  for (let grew = true; grew;) {
    grew = false;
    for (const node of nodes)
      if (!found.has(node.id) && (deps.get(node.id) ?? []).some((parent) => found.has(parent))) {
        found.add(node.id);
        grew = true;
      }
  }
  return found;
}

/** The input keys whose value the changes replaced with another. */
function changedKeys(before: Record<string, unknown>, after: Record<string, unknown>): Set<string> {
  return new Set(Object.keys(after).filter((key) => canonical(before[key] ?? null) !== canonical(after[key] ?? null)));
}

/** JSON with every object's keys sorted: two values print the same exactly when they are equal. */
function canonical(value: unknown): string {
  const sorted = (at: unknown): unknown =>
    Array.isArray(at)
      ? at.map(sorted)
      : at && typeof at === 'object'
        ? Object.fromEntries(
            Object.keys(at)
              .sort()
              .map((key) => [key, sorted((at as Record<string, unknown>)[key])]),
          )
        : at;
  return JSON.stringify(sorted(value) ?? null);
}
