import { notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { ApprovalService } from '../turns/approvals';
import type { Repositories } from '../models';
import type { FlowExecutionRow } from '../models/schema';
import type { Metrics } from '../observability/metrics';
import { flowItemJobId, flowNodeJobId } from '../producers/flows';
import type { QueueRegistry } from '../producers/registry';
import type { RunOutcome } from '../runs/outcome';
import type { RunHandle, RunKernel } from '../runs/run-kernel';
import type { AgentflowDefinition } from './definition';
import { isPromptNode } from './node-kinds';
import type { FlowEventLog } from './flow-events';
import { nodeApprovalKey } from './node-approvals';
import type { FlowInputs } from './flow-inputs';
import { publicStatus, type PUBLIC_STATUS, type TerminalRunStatus } from '../schemas/public-status';

/** What a completed execution carries: the output node's output. */
export interface FlowResult {
  output: unknown;
}

/** What an end may add: the node whose failure ended the execution. */
export interface FlowEndContext {
  nodeId?: string;
}

/** An execution still going: queued or running (waiting ones are running). */
export const executionIsActive = (status: FlowExecutionRow['status']) => status === 'queued' || status === 'running';

export type FlowOutcome = RunOutcome<FlowResult, never>;
export type FlowRuns = RunHandle<FlowResult, never, FlowEndContext, FlowExecutionRow | null>;

export interface FlowRunDeps {
  repos: Repositories;
  events: FlowEventLog;
  queues: Pick<QueueRegistry, 'remove' | 'fairShare' | 'enqueue'>;
  logger: Logger;
  metrics?: Metrics;
  /** Rejects the pending approvals of an execution's parked nodes when it ends. */
  approvals?: Pick<ApprovalService, 'cancelPending'>;
  /** Cancels the forms of an execution's waiting human_input nodes when it ends. */
  inputs?: Pick<FlowInputs, 'cancelOpen'>;
}

/**
 * An agentflow execution as a kind of run. Its row in `flow_executions` follows
 * the run's end in the same transaction (succeeded → `completed` with its output; open nodes become
 * `skipped`, or `cancelled` on a cancel); its terminal event is `execution_completed`,
 * `execution_failed` or `cancelled`. Its owner may cancel it, which ends it at once: running nodes
 * hear the signal and find it ended. Carried by one job per node, it is resumed, not ended, after
 * a crash (its steps are idempotent), so the reaper resumes it and it ends through here.
 */
export function registerFlowRuns(kernel: RunKernel, deps: FlowRunDeps): FlowRuns {
  const { repos, events } = deps;
  const log = deps.logger.child({ component: 'flow-executions' });
  /** An ended execution in the metrics: counted, and its time (accepted to ended, from its row) under its flow. */
  const counted = (status: (typeof PUBLIC_STATUS)['flow'][TerminalRunStatus], ended: FlowExecutionRow | null | undefined) => {
    deps.metrics?.flowExecutions.inc({ type: 'agentflow', status });
    if (ended?.completedAt)
      deps.metrics?.observeFlowExecution(
        { flowId: ended.flowId, status },
        Math.max(0, ended.completedAt.getTime() - ended.createdAt.getTime()) / 1000,
      );
  };

  const handle: FlowRuns = kernel.register<FlowResult, never, FlowEndContext, FlowExecutionRow | null>({
    kind: 'flow',
    queue: 'flows',
    jobId: () => null,
    signal: 'flow',
    recoversItself: true,
    cancelEndsAtOnce: true,
    // A parked node waits on its approvals' waitpoints while the other nodes run.
    jobsWait: true,
    interrupted: { code: 'interrupted', message: 'The execution was interrupted' },
    releases: [],

    /** A decided (or expired) approval of a parked node: the node's resume job takes it on; an answered (or expired) form: its node's. */
    async continue(run, waitpoints) {
      for (const waitpoint of waitpoints) {
        if (waitpoint.kind === 'input') {
          const form = waitpoint.ref ? await repos.inputRequests.find(waitpoint.ref) : null;
          if (!form || form.executionId !== run.id) continue;
          const tier = (await repos.flowExecutions.find(run.id))?.tier ?? 'free';
          await deps.queues.enqueue('flows', 'node', {
            executionId: run.id,
            nodeId: form.nodeId,
            userId: form.userId,
            tier,
            input: form.id,
          });
          continue;
        }
        const row = waitpoint.kind === 'approval' && waitpoint.ref ? await repos.hitl.find(waitpoint.ref) : null;
        const at = row?.continuation as { executionId?: string; nodeId?: string } | null | undefined;
        if (!row || at?.executionId !== run.id || !at.nodeId) continue;
        const tier = (await repos.users.findById(row.userId))?.tier ?? 'free';
        const lane = (await repos.flowExecutions.find(run.id))?.lane;
        await deps.queues.enqueue('flows', 'node', {
          executionId: run.id,
          nodeId: at.nodeId,
          userId: row.userId,
          tier,
          resume: row.id,
          ...(lane ? { lane } : {}),
        });
      }
    },

    async authorizeCancel(id, actor) {
      const execution = await repos.flowExecutions.find(id);
      if (!execution || execution.userId !== actor.userId) throw notFound('Execution');
      return { status: execution.status };
    },

    persist(tx, run, outcome) {
      if (outcome.status === 'succeeded')
        return repos.flowExecutions.end(run.id, { status: publicStatus('flow', outcome.status), output: outcome.result.output }, tx);
      if (outcome.status === 'cancelled') return repos.flowExecutions.end(run.id, { status: publicStatus('flow', outcome.status) }, tx);
      const code = outcome.status === 'failed' ? outcome.code : 'timed_out';
      return repos.flowExecutions.end(
        run.id,
        { status: publicStatus('flow', outcome.status), errorCode: code, errorMessage: outcome.message },
        tx,
      );
    },

    async announce(run, outcome, context, ended) {
      const executionId = run.id;
      // A subflow's child: its parent's node finishes with it (its output, or `subflow_failed`).
      if (ended) await notifyParent(ended);
      if (outcome.status === 'succeeded') {
        const usage = ended
          ? { inputTokens: ended.inputTokens, outputTokens: ended.outputTokens, costUsd: ended.costUsd }
          : { inputTokens: 0, outputTokens: 0, costUsd: 0 };
        await events.appendNext(executionId, { type: 'execution_completed', executionId, output: outcome.result.output ?? null, usage });
        counted(publicStatus('flow', outcome.status), ended);
        log.info({ executionId }, 'flow execution completed');
        return;
      }
      if (ended) await rejectApprovals(ended);
      await deps.inputs
        ?.cancelOpen(executionId)
        .catch((error: unknown) => log.warn({ err: error, executionId }, 'open forms of an ended execution not cancelled'));
      // A parent that ends otherwise than completed takes its running subflows with it.
      await cancelChildren(executionId);
      if (outcome.status === 'cancelled') {
        await events.appendNext(executionId, { type: 'cancelled', executionId });
        counted(publicStatus('flow', outcome.status), ended);
        if (ended) await dropJobs(ended);
        log.info({ executionId }, 'flow execution cancelled');
        return;
      }
      const code = outcome.status === 'failed' ? outcome.code : 'timed_out';
      const nodeId = context?.nodeId;
      await events.appendNext(executionId, {
        type: 'execution_failed',
        executionId,
        error: { code, message: outcome.message, ...(nodeId ? { nodeId } : {}) },
      });
      counted(publicStatus('flow', outcome.status), ended);
      log.info({ executionId, nodeId }, 'flow execution failed');
    },
  });

  return handle;

  async function notifyParent(child: FlowExecutionRow): Promise<void> {
    if (!child.parentExecutionId || !child.parentNodeId) return;
    try {
      await deps.queues.enqueue('flows', 'node', {
        executionId: child.parentExecutionId,
        nodeId: child.parentNodeId,
        userId: child.userId,
        tier: child.tier,
        child: child.id,
        // A child runs in its parent's lane: the parent's notice waits there too.
        ...(child.lane ? { lane: child.lane } : {}),
      });
    } catch (error) {
      log.warn({ err: error, executionId: child.id }, 'parent of an ended subflow not told; the reaper resumes it');
    }
  }

  /** Cancels the open child executions of an execution that ended (each as its owner would). */
  async function cancelChildren(executionId: string): Promise<void> {
    for (const child of await repos.flowExecutions.openChildren(executionId)) {
      try {
        await handle.cancel(child.id, { userId: child.userId });
        log.info({ executionId, childExecutionId: child.id }, 'subflow cancelled with its parent');
      } catch (error) {
        log.warn({ err: error, executionId, childExecutionId: child.id }, 'subflow of an ended execution not cancelled');
      }
    }
  }

  /**
   * An execution that ended (cancelled, or failed by another node) while nodes waited for their
   * owner: their pending approval requests become `rejected` (`decisionReason: "cancelled"`) and
   * nothing resumes them.
   */
  async function rejectApprovals(execution: FlowExecutionRow): Promise<void> {
    if (!deps.approvals) return;
    const definition = execution.definition as unknown as AgentflowDefinition;
    for (const node of definition.nodes.filter((candidate) => isPromptNode(candidate) && candidate.tools?.length)) {
      try {
        await deps.approvals.cancelPending(nodeApprovalKey(execution.id, node.id), execution.userId);
      } catch (error) {
        log.warn({ err: error, executionId: execution.id, nodeId: node.id }, 'pending approval of an ended execution not rejected');
      }
    }
  }

  /**
   * Waiting or delayed node jobs of a cancelled execution go; a job a worker holds is locked (not
   * removed) and returns on its own. None of them counts against the owner's fair share any more.
   */
  async function dropJobs(execution: FlowExecutionRow): Promise<void> {
    const definition = execution.definition as unknown as AgentflowDefinition;
    const items = await repos.flowItems.openItems(execution.id);
    const jobIds = [
      ...definition.nodes.map((node) => flowNodeJobId(execution.id, node.id)),
      ...items.map((item) => flowItemJobId(execution.id, item.nodeId, item.index)),
    ];
    const removals = await Promise.allSettled(jobIds.map((jobId) => deps.queues.remove('flows', jobId)));
    for (const removal of removals)
      if (removal.status === 'rejected')
        log.warn(
          { err: removal.reason, executionId: execution.id },
          'node job of a cancelled execution not removed; it finds the execution ended',
        );
    try {
      await deps.queues.fairShare.release('flows', execution.userId, jobIds);
    } catch (error) {
      log.warn({ err: error, executionId: execution.id }, 'fair share not released; its entries expire on their own');
    }
  }
}
