import { notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { ApprovalService } from '../assistant/approvals';
import type { Repositories } from '../models';
import type { FlowExecutionRow } from '../models/schema';
import type { Metrics } from '../observability/metrics';
import { flowNodeJobId } from '../producers/flows';
import type { QueueRegistry } from '../producers/registry';
import type { RunOutcome } from '../runs/outcome';
import type { RunHandle, RunKernel } from '../runs/run-kernel';
import type { AgentflowDefinition } from './definition';
import type { FlowEventLog } from './flow-events';
import { nodeApprovalKey } from './node-approvals';
import { publicStatus, type PUBLIC_STATUS, type TerminalRunStatus } from '../schemas/public-status';

/** What a completed execution carries: the output node's output. */
export interface FlowResult {
  output: unknown;
}

/** What an end may add: the node whose failure ended the execution. */
export interface FlowEndContext {
  nodeId?: string;
}

export type FlowOutcome = RunOutcome<FlowResult, never>;
export type FlowRuns = RunHandle<FlowResult, never, FlowEndContext, FlowExecutionRow | null>;

export interface FlowRunDeps {
  repos: Repositories;
  events: FlowEventLog;
  queues: Pick<QueueRegistry, 'remove' | 'fairShare'>;
  logger: Logger;
  metrics?: Metrics;
  /** Rejects the pending approvals of an execution's parked nodes when it ends. */
  approvals?: Pick<ApprovalService, 'cancelPending'>;
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
  const counted = (status: (typeof PUBLIC_STATUS)['flow'][TerminalRunStatus]) =>
    deps.metrics?.flowExecutions.inc({ type: 'agentflow', status });

  return kernel.register<FlowResult, never, FlowEndContext, FlowExecutionRow | null>({
    kind: 'flow',
    queue: 'flows',
    jobId: () => null,
    signal: 'flow',
    recoversItself: true,
    cancelEndsAtOnce: true,
    interrupted: { code: 'interrupted', message: 'The execution was interrupted' },
    releases: [],

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
      if (outcome.status === 'succeeded') {
        const usage = ended
          ? { inputTokens: ended.inputTokens, outputTokens: ended.outputTokens, costUsd: ended.costUsd }
          : { inputTokens: 0, outputTokens: 0, costUsd: 0 };
        await events.appendNext(executionId, { type: 'execution_completed', executionId, output: outcome.result.output ?? null, usage });
        counted(publicStatus('flow', outcome.status));
        log.info({ executionId }, 'flow execution completed');
        return;
      }
      if (ended) await rejectApprovals(ended);
      if (outcome.status === 'cancelled') {
        await events.appendNext(executionId, { type: 'cancelled', executionId });
        counted(publicStatus('flow', outcome.status));
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
      counted(publicStatus('flow', outcome.status));
      log.info({ executionId, nodeId }, 'flow execution failed');
    },
  });

  /**
   * An execution that ended (cancelled, or failed by another node) while nodes waited for their
   * owner: their pending approval requests become `rejected` (`decisionReason: "cancelled"`) and
   * nothing resumes them.
   */
  async function rejectApprovals(execution: FlowExecutionRow): Promise<void> {
    if (!deps.approvals) return;
    const definition = execution.definition as unknown as AgentflowDefinition;
    for (const node of definition.nodes.filter((candidate) => candidate.tools?.length)) {
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
    const jobIds = definition.nodes.map((node) => flowNodeJobId(execution.id, node.id));
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
