import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../lib/redis';
import type { Config } from '../../config';
import type { ApprovalService } from '../turns/approvals';
import type { FlowRunner } from '../flows/flow-runner';
import type { EvaluationRunner } from '../evals/evaluation-runner';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { QueueRegistry } from '../producers/registry';
import type { BudgetDoor } from '../budget/budget-door';
import type { RunKernel } from '../runs/run-kernel';
import { hitlResumeJobId } from '../producers/assistant';
import { flowChildJobId, flowInputJobId, flowItemJobId, flowNodeJobId, flowNodeResumeJobId } from '../producers/flows';
import { nodeApprovalKey } from '../flows/node-approvals';
import { redisKeys } from '../lib/redis-keys';

/** Rows looked at per kind and sweep: a backlog is worked off over several sweeps. */
const BATCH = 100;
/** Decided approvals are resumed within a day (BullMQ keeps job history that long). */
const RESUME_HORIZON_MS = 23 * 3_600_000;

export interface ReaperDeps {
  config: Config;
  repos: Repositories;
  queues: QueueRegistry;
  redis: RedisClient;
  approvals: ApprovalService;
  /**
   * Runs of every registered kind whose job is gone end through it: `cancelled` when their cancel
   * was requested, else `failed` (`interrupted`), each through the same conditional end as a worker's.
   * A chat turn parked for an approval, or continued by its resume job, is left open.
   */
  kernel: Pick<RunKernel, 'recover'>;
  logger: Logger;
  /** Resumes agentflow executions whose jobs are all gone (its steps are idempotent). */
  flows?: Pick<FlowRunner, 'resume'>;
  /** Takes up evaluations a stopped process left stuck (a row claimed and never started, an execution ended and never scored). */
  evaluations?: Pick<EvaluationRunner, 'recover'>;
  /** Budget reservations open past their deadline (their call's process died, their job never ran) are settled. */
  budget?: Pick<BudgetDoor, 'settleExpired'>;
}

export interface ReapReport {
  generations: number;
  approvalsTimedOut: number;
  approvalsResumed: number;
  turns: number;
  notes: number;
  agentRuns: number;
  flowExecutions: number;
  budgetReservations: number;
  evaluations: number;
}

/**
 * Crash safety: after kill -9 of any process, nothing stays `running` or `pending`
 * forever. Worker processes sweep at start and every REAPER_INTERVAL_MS for work whose job is gone
 * (Redis lost it, or it failed without its processor's bookkeeping, e.g. past the stall limit):
 * - runs (generations, ticket notes, chat turns, agent runs) queued/running with no live job → `failed`
 *   (`interrupted`), or `cancelled` when their cancel was requested, through the run kernel (slot
 *   released, terminal event; a chat turn parked for an approval or continued by its resume job is
 *   not dead, nor is an agent run waiting for its device);
 * - approvals pending past expiresAt → `timeout`, and the turn resumes (the model is told);
 * - approvals decided but never resumed (the resume enqueue failed, or the job was lost) → resumed;
 * - agent runs `running` past AGENT_RUN_TIMEOUT_MS → `timed_out` through the run kernel (their row `error`);
 * - agentflow executions queued/running with no live node job → resumed: missing node events
 *   written, ready nodes queued again (finished nodes never run again).
 * Work younger than REAPER_GRACE_MS is left alone. Every change is a conditional UPDATE, so many
 * processes may sweep at once; a short Redis lock just keeps them from doing the same reads.
 */
export class Reaper {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;
  private readonly log: Logger;
  private readonly owner = randomUUID();

  constructor(private readonly deps: ReaperDeps) {
    this.log = deps.logger.child({ component: 'reaper' });
  }

  start(): void {
    const tick = () => {
      this.running ??= this.sweepLocked()
        .catch((error: unknown) => this.log.warn({ err: error }, 'reaper sweep failed'))
        .finally(() => (this.running = undefined));
    };
    tick();
    this.timer = setInterval(tick, this.deps.config.reaper.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One sweep, unless another process holds the sweep lock for this interval. */
  private async sweepLocked(): Promise<ReapReport | null> {
    const key = redisKeys(this.deps.config.redis.keyPrefix).reaperLock();
    const ttl = Math.max(100, this.deps.config.reaper.intervalMs - 50);
    if ((await this.deps.redis.set(key, this.owner, 'PX', ttl, 'NX')) !== 'OK') return null;
    return this.sweep();
  }

  /** Reaps everything stale now (tests and the timer call it). */
  async sweep(): Promise<ReapReport> {
    const before = new Date(Date.now() - this.deps.config.reaper.graceMs);
    const recovered = await this.deps.kernel.recover(before, BATCH);
    const report: ReapReport = {
      generations: recovered.generation ?? 0,
      approvalsTimedOut: await this.timeOutApprovals(),
      approvalsResumed: await this.resumeDecided(before),
      turns: recovered.chat ?? 0,
      notes: recovered.notes ?? 0,
      agentRuns: recovered.agent ?? 0,
      flowExecutions: await this.resumeFlows(before),
      budgetReservations: (await this.deps.budget?.settleExpired(BATCH)) ?? 0,
      evaluations: (await this.deps.evaluations?.recover(before)) ?? 0,
    };
    if (Object.values(report).some((n) => n > 0)) this.log.warn(report, 'reaped work left behind by a stopped process');
    return report;
  }

  private async timeOutApprovals(): Promise<number> {
    let reaped = 0;
    for (const row of await this.deps.repos.hitl.listOverdue(BATCH)) if (await this.deps.approvals.expire(row.id)) reaped += 1;
    return reaped;
  }

  private async resumeDecided(before: Date): Promise<number> {
    const { queues } = this.deps;
    let resumed = 0;
    for (const row of await this.deps.repos.hitl.listUnresumed(before, new Date(Date.now() - RESUME_HORIZON_MS), BATCH)) {
      // Its waitpoint not completed (the deciding process stopped between the two): completing it
      // continues a waiting turn through the kernel; a turn still `running` is resumed below.
      if (
        (await this.deps.approvals.completeWaitpoint(row)) &&
        (await this.deps.repos.runs.find('chat', row.messageId))?.status !== 'running'
      ) {
        resumed += 1;
        continue;
      }
      const jobId = hitlResumeJobId(row.id);
      if (await queues.isLive('assistant', jobId)) continue;
      // A finished or failed job with this id would make the add a no-op: it never began the resume.
      await queues.remove('assistant', jobId);
      await this.deps.queues.enqueue('assistant', 'hitl-resume', { approvalId: row.id });
      resumed += 1;
    }
    return resumed;
  }

  private async resumeFlows(before: Date): Promise<number> {
    const { flows } = this.deps;
    if (!flows) return 0;
    const { queues } = this.deps;
    let resumed = 0;
    const anyLive = async (ids: string[]) => (await Promise.all(ids.map((jobId) => queues.isLive('flows', jobId)))).some(Boolean);
    for (const execution of await this.deps.repos.flowExecutions.listActiveBefore(before, BATCH)) {
      const nodes = await this.deps.repos.flowExecutions.nodes(execution.id);
      const items = await this.deps.repos.flowItems.openItems(execution.id);
      const jobIds = [
        ...nodes.map((node) => flowNodeJobId(execution.id, node.nodeId)),
        ...items.map((item) => flowItemJobId(execution.id, item.nodeId, item.index)),
      ];
      // While any node, item or notice job can still run, the execution moves on its own (each job dispatches the next);
      // a subflow node waits on its open child execution (whose end queues it again), a human_input
      // node on its pending form (whose answer or deadline queues it again). The notices are read only
      // when no node or item job is live.
      if ((await anyLive(jobIds)) || (await anyLive(await this.noticesOf(execution.id, nodes)))) continue;
      const waitingOn = new Set<string | null>([
        ...(await this.deps.repos.flowExecutions.openChildren(execution.id)).map((child) => child.parentNodeId),
        ...(await this.deps.repos.inputRequests.pendingNodes(execution.id)),
      ]);
      const running = nodes.filter((node) => node.status === 'running');
      if (running.length && running.every((node) => waitingOn.has(node.nodeId))) continue;
      // A failed or finished job with an open node's id would make the new add a no-op.
      for (const node of nodes.filter((n) => n.status === 'pending' || n.status === 'running'))
        await queues.remove('flows', flowNodeJobId(execution.id, node.nodeId));
      for (const item of items) await queues.remove('flows', flowItemJobId(execution.id, item.nodeId, item.index));
      await flows.resume(execution);
      resumed += 1;
    }
    return resumed;
  }

  /**
   * The notices a running node may have queued for it: a subflow node's child that ended, a
   * human_input node's form that was answered or timed out, a decision on one of its approvals.
   * Once queued, the notice moves the node on, as its own job would.
   */
  private async noticesOf(executionId: string, nodes: ReadonlyArray<{ nodeId: string; status: string }>): Promise<string[]> {
    const { flowExecutions, inputRequests, hitl } = this.deps.repos;
    const notices = await Promise.all(
      nodes
        .filter((node) => node.status === 'running')
        .map(async (node) => {
          const [child, form, approvals] = await Promise.all([
            flowExecutions.childOf(executionId, node.nodeId),
            inputRequests.forNode(executionId, node.nodeId),
            hitl.listForMessage(nodeApprovalKey(executionId, node.nodeId)),
          ]);
          return [
            ...(child ? [flowChildJobId(executionId, node.nodeId, child.id)] : []),
            ...(form ? [flowInputJobId(executionId, node.nodeId, form.id)] : []),
            ...approvals.map((approval) => flowNodeResumeJobId(executionId, node.nodeId, approval.id)),
          ];
        }),
    );
    return notices.flat();
  }
}
