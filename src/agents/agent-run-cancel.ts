import { z } from 'zod';
import type { CancelSignals } from '../lib/cancel-signals';
import { AppError, conflict, notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { AgentRunRow, AgentRunStatus } from '../models/schema';
import type { Metrics } from '../observability/metrics';
import { agentRunJobId, agentRunJobSchema, type AgentRunJob } from '../queues/agent-runs';
import type { QueueName } from '../../config';
import type { QueueRegistry } from '../queues/registry';
import type { AgentCancelAck } from '../realtime/events';
import { agentRunErrorsOf, agentRunStatusOf, type AgentRunOutcome } from './run-outcome';

/** `agent_cancel` from a device: the run to stop. */
export const agentCancelSchema = z.strictObject({ runId: z.uuid() });

export interface AgentRunCancelsDeps {
  repos: Repositories;
  queues: Pick<QueueRegistry, 'job' | 'remove'>;
  signals: Pick<CancelSignals, 'request'>;
  logger: Logger;
  metrics?: Metrics;
}

/** What a cancel finds: a run with its row, or a manual run still waiting on its first queue (no row yet). */
export type AgentRunTarget = { kind: 'row'; run: AgentRunRow } | { kind: 'queued'; queue: QueueName; jobId: string; job: AgentRunJob };

/** The part of a run that ending it needs. */
export type EndableRun = Pick<AgentRunRow, 'id' | 'agentId' | 'agentType'>;

/**
 * Cancelling an agent run (decision 0206), and ending one with its outcome, once.
 *
 * A run moves queued → running (or waiting_device) → success | partial | error | cancelled. The
 * terminal status is written by one conditional UPDATE ({@link end}), so of a cancel and the run's
 * natural end racing, one wins and the other changes nothing. A run no worker holds (still queued,
 * or waiting for its device) is ended here; a running one gets `cancel_requested_at` and a signal
 * through Redis, and the worker holding it (any process) aborts the model call and any device call
 * within milliseconds and ends it `cancelled`, keeping the counts of what it delivered so far.
 */
export class AgentRunCancels {
  private readonly log: Logger;

  constructor(private readonly deps: AgentRunCancelsDeps) {
    this.log = deps.logger.child({ component: 'agent-run-cancel' });
  }

  /** `POST /agents/runs/:runId/cancel` (owner): 202 while queued, waiting or running; 404 not yours; 409 `not_running`. */
  async cancel(userId: string, runId: string): Promise<{ runId: string; status: 'cancelling' }> {
    let target = await this.authorize(userId, runId);
    if (target.kind === 'queued') {
      if (await this.cancelQueued(target)) return { runId, status: 'cancelling' };
      // A worker started it meanwhile: it has a row now.
      target = await this.authorize(userId, runId);
    }
    if (target.kind === 'row' && target.run.status === 'waiting_device') {
      if (await this.end(target.run, { status: 'cancelled', ...countsOf(target.run) }, ['waiting_device'])) {
        await this.removeJob('agent-runs', `resume-${runId}`);
        this.log.info({ userId, runId }, 'agent run cancelled while waiting for its device');
        return { runId, status: 'cancelling' };
      }
      // Claimed by a worker meanwhile: it runs now.
      target = await this.authorize(userId, runId);
    }
    if (target.kind !== 'row' || !(await this.markCancelRequested(target.run))) throw conflict('not_running', 'This agent run has ended');
    // A cloud run between its fetch and its run waits on `agent-runs` with no worker holding it.
    const job = jobOfRow(target.run);
    if (await this.removeJob('agent-runs', agentRunJobId(job, 'run')))
      await this.end(target.run, { status: 'cancelled', ...countsOf(target.run) });
    this.log.info({ userId, runId }, 'agent run cancel requested');
    return { runId, status: 'cancelling' };
  }

  /**
   * `agent_cancel {runId}` on `/device`: the same cancel for the socket's user. The ack is
   * `{ok:true}` or `{ok:false, error}` (`validation_failed`, `not_found`, `not_running`).
   */
  async cancelFromDevice(userId: string, payload: unknown): Promise<AgentCancelAck> {
    const parsed = agentCancelSchema.safeParse(payload ?? {});
    if (!parsed.success)
      return { ok: false, error: { code: 'validation_failed', message: parsed.error.issues.map((i) => i.message).join('; ') } };
    try {
      await this.cancel(userId, parsed.data.runId);
      return { ok: true };
    } catch (error) {
      if (error instanceof AppError && error.status < 500) return { ok: false, error: { code: error.code, message: error.message } };
      throw error;
    }
  }

  /** The user's run by id: its row, or its manual job still queued. 404 for a missing run or another user's. */
  async authorize(userId: string, runId: string): Promise<AgentRunTarget> {
    const run = await this.deps.repos.agents.getOwnedRun(userId, runId);
    if (run) return { kind: 'row', run };
    // A manual run gets its row when a worker starts it; until then it is only a job.
    for (const [queue, jobId] of [
      ['agent-runs', `run-${runId}`],
      ['connectors', `fetch-${runId}`],
    ] as const) {
      const parsed = agentRunJobSchema.safeParse((await this.deps.queues.job(queue, jobId))?.data);
      if (parsed.success && parsed.data.userId === userId && parsed.data.runId === runId)
        return { kind: 'queued', queue, jobId, job: parsed.data };
    }
    throw notFound('Agent run');
  }

  /** Records the request on a running run and signals the worker holding it. False when it is not running. */
  async markCancelRequested(run: Pick<AgentRunRow, 'id'>): Promise<boolean> {
    if (!(await this.deps.repos.agents.requestRunCancel(run.id))) return false;
    await this.deps.signals.request('agent-run', run.id);
    return true;
  }

  /** Writes the run's terminal status from its outcome, once. True for the call that ended it. */
  end(run: EndableRun, outcome: AgentRunOutcome, from?: AgentRunStatus[]): Promise<boolean> {
    return endAgentRun({ ...this.deps, logger: this.log }, run, outcome, from);
  }

  /** Ends runs left `running` past `before` (see {@link endStaleAgentRuns}); returns how many it ended. */
  endStaleRuns(before: Date, reason: string): Promise<number> {
    return endStaleAgentRuns({ ...this.deps, logger: this.log }, before, reason);
  }

  /**
   * A manual run still waiting on its first queue: its row is written `cancelled` first (a worker
   * that takes the job meanwhile finds the row ended and stops), then the job is taken off the
   * queue. False when a worker wrote the row first.
   */
  private async cancelQueued(target: Extract<AgentRunTarget, { kind: 'queued' }>): Promise<boolean> {
    const { job } = target;
    const inserted = await this.deps.repos.agents.insertRun({
      id: job.runId,
      agentId: job.agentId,
      agentType: job.agentType,
      userId: job.userId,
      trigger: job.trigger,
      slot: job.slot ? new Date(job.slot) : null,
      deviceId: job.deviceId ?? null,
      status: 'cancelled',
      completedAt: new Date(),
    });
    if (!inserted) return false;
    this.deps.metrics?.agentRuns.inc({ type: job.agentType, status: 'cancelled' });
    await this.removeJob(target.queue, target.jobId);
    this.log.info({ userId: job.userId, runId: job.runId }, 'queued agent run cancelled');
    return true;
  }

  /** Takes a job off its queue; false when it is gone or a worker holds it (that worker then sees the run ended). */
  private async removeJob(queue: QueueName, jobId: string): Promise<boolean> {
    try {
      return await this.deps.queues.remove(queue, jobId);
    } catch (error) {
      this.log.warn({ err: error, queue, jobId }, 'agent run job not taken off its queue; its worker finds the run ended');
      return false;
    }
  }
}

/** What a run has done so far, as its row records it. */
export function countsOf(run: Pick<AgentRunRow, 'itemsProcessed' | 'itemsCreated' | 'errors'>) {
  return { itemsProcessed: run.itemsProcessed, itemsCreated: run.itemsCreated, errors: [...run.errors] };
}

/** The `agent-runs` job a run row was queued as (its job id follows from it). */
function jobOfRow(run: AgentRunRow): AgentRunJob {
  return {
    runId: run.id,
    agentId: run.agentId,
    agentType: run.agentType,
    userId: run.userId,
    trigger: run.trigger,
    ...(run.slot ? { slot: run.slot.toISOString() } : {}),
  };
}

/**
 * Writes a run's terminal status from its outcome with one conditional UPDATE (only a run that has
 * not ended, narrowed by `from`), counts it and logs it, once: of a cancel and the run's natural end
 * racing, exactly one returns true.
 */
export async function endAgentRun(
  deps: { repos: Repositories; logger: Logger; metrics?: Metrics },
  run: EndableRun,
  outcome: AgentRunOutcome,
  from?: AgentRunStatus[],
): Promise<boolean> {
  const status = agentRunStatusOf(outcome);
  const errors = agentRunErrorsOf(outcome);
  const ended = await deps.repos.agents.endRun(
    run.id,
    { status, errors, itemsProcessed: outcome.itemsProcessed, itemsCreated: outcome.itemsCreated },
    from,
  );
  if (!ended) return false;
  deps.metrics?.agentRuns.inc({ type: run.agentType, status });
  deps.logger.info(
    { runId: run.id, agentId: run.agentId, outcome: outcome.status, status, created: outcome.itemsCreated, errors: errors.length },
    'agent run ended',
  );
  return true;
}

/**
 * Ends runs still `running` that started before `before` (their worker stopped): `cancelled` when
 * their owner had asked to cancel, else `error` with `reason`, each through the one conditional end.
 * For the periodic sweep of work a stopped process left behind; returns how many it ended.
 */
export async function endStaleAgentRuns(
  deps: { repos: Repositories; logger: Logger; metrics?: Metrics },
  before: Date,
  reason: string,
): Promise<number> {
  let ended = 0;
  for (const run of await deps.repos.agents.runningStartedBefore(before)) {
    const counts = countsOf(run);
    const outcome: AgentRunOutcome = run.cancelRequestedAt
      ? { status: 'cancelled', ...counts }
      : { status: 'failed', code: 'interrupted', message: reason, ...counts };
    if (await endAgentRun(deps, run, outcome)) ended += 1;
  }
  return ended;
}
