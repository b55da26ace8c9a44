import { z } from 'zod';
import type { Config } from '../../config';
import { AppError, notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { AgentRunRow, AgentRunStatus, RunRow } from '../models/schema';
import type { Metrics } from '../observability/metrics';
import { agentRunJobId, agentRunJobSchema, type AgentRunJob } from '../producers/agent-runs';
import type { QueueName } from '../../config';
import type { QueueRegistry } from '../producers/registry';
import { startAgentRun } from '../producers/requests';
import type { NewWaitpoint } from '../models/waitpoints-repository';
import type { AgentCancelAck } from '../schemas/socket-events';
import type { RunOutcome } from '../runs/outcome';
import type { RunHandle, RunKernel, RunKindSpec } from '../runs/run-kernel';
import { agentRunErrorsOf, agentRunStatusOf, type AgentRunCounts, type AgentRunOutcome } from './run-outcome';
import { publicStatus } from '../schemas/public-status';

/** `agent_cancel` from a device: the run to stop. */
export const agentCancelSchema = z.strictObject({ runId: z.uuid() });

/** What a worker hands to an end: the run's counts (an end from outside has none), and how it may end. */
export interface AgentEndContext {
  counts?: AgentRunCounts;
  /** The run row's statuses this end may move it from (a waiting run's cancel must not end a claimed one). */
  from?: AgentRunStatus[];
  /** The run was folded into the agent's run already waiting for a device; its row is gone. */
  folded?: boolean;
}

/** The run row as its end wrote it; null when no row was open (folded, or cancelled while queued). */
export type AgentPersisted = AgentRunRow | null;

export type AgentKernelOutcome = RunOutcome<AgentRunCounts, AgentRunCounts>;
export type AgentRuns = RunHandle<AgentRunCounts, AgentRunCounts, AgentEndContext, AgentPersisted>;

/** The interrupted end of a run whose worker stopped. */
export const AGENT_RUN_INTERRUPTED = { code: 'interrupted', message: 'interrupted: the run stopped without finishing' };

/** Thrown in an end's transaction when a waiting run was claimed by a worker meanwhile: the end is undone. */
export class AgentRunClaimed extends Error {
  constructor(readonly runId: string) {
    super(`Agent run ${runId} was claimed by a worker before its cancel`);
    this.name = 'AgentRunClaimed';
  }
}

export interface AgentRunDeps {
  config: Pick<Config, 'agents'>;
  repos: Repositories;
  queues: Pick<QueueRegistry, 'job' | 'remove' | 'isLive' | 'enqueue'>;
  logger: Logger;
  metrics?: Metrics;
}

/** The idempotency key of the waitpoint of a run waiting for its device. */
export const deviceWaitpointKey = (runId: string) => `device:${runId}`;

/**
 * The waitpoint of a run waiting for its device: completed by a `device_hello` of a device that
 * may take it (its output names the device), or at its deadline (`waitMs` from now).
 */
export function deviceWaitpoint(run: Pick<AgentRunRow, 'id' | 'userId' | 'agentType' | 'deviceId'>, waitMs: number): NewWaitpoint {
  return {
    kind: 'device',
    userId: run.userId,
    idempotencyKey: deviceWaitpointKey(run.id),
    ref: run.agentType === 'local' ? run.deviceId : null,
    completeAfter: new Date(Date.now() + waitMs),
  };
}

/** What a cancel finds: a run with its row, or a manual run still waiting on its first queue (no row yet). */
type AgentRunTarget = { kind: 'row'; run: AgentRunRow } | { kind: 'queued'; queue: QueueName; jobId: string; job: AgentRunJob };

/** A runner's outcome (counts on every end) as the kernel records it, and the counts for the end's context. */
export function toKernelOutcome(outcome: AgentRunOutcome): { outcome: AgentKernelOutcome; counts: AgentRunCounts } {
  const counts: AgentRunCounts = {
    itemsProcessed: outcome.itemsProcessed,
    itemsCreated: outcome.itemsCreated,
    errors: outcome.errors,
    ...(outcome.partial ? { partial: true } : {}),
  };
  switch (outcome.status) {
    case 'succeeded':
      return { outcome: { status: 'succeeded', result: counts }, counts };
    case 'cancelled':
      return { outcome: { status: 'cancelled', usage: counts }, counts };
    case 'failed':
      return { outcome: { status: 'failed', code: outcome.code, message: outcome.message }, counts };
    case 'timed_out':
      return { outcome: { status: 'timed_out', message: outcome.message }, counts };
  }
}

/** What a run has done so far, as its row records it. */
export function countsOf(run: Pick<AgentRunRow, 'itemsProcessed' | 'itemsCreated' | 'errors'>): AgentRunCounts {
  return { itemsProcessed: run.itemsProcessed, itemsCreated: run.itemsCreated, errors: [...run.errors] };
}

/** The `agent-runs` job a run row was queued as (its job ids follow from it). */
export function jobOfRow(run: AgentRunRow): AgentRunJob {
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
 * An agent run as a kind of run. Its row in `agent_runs` keeps its published
 * statuses and follows the run's end in the same transaction: succeeded → `success` (`partial`
 * when it met errors along the way), failed → `error`, cancelled → `cancelled`, timed_out →
 * `error` whose last message starts `timed_out:`. A run is carried by several jobs (a cloud
 * run's fetch, then its run; a resume once its device is back), so it names no single job id:
 * its cancel takes a waiting job off the queue itself, and its recovery asks after each of them.
 * A run waiting for its device is not a job's: recovery leaves it open. Only its owner may cancel.
 */
export function registerAgentRuns(kernel: RunKernel, deps: AgentRunDeps): AgentRuns {
  const log = deps.logger.child({ component: 'agent-run' });
  const { repos, queues } = deps;
  let handle: AgentRuns | undefined;
  const runs = (): AgentRuns => {
    if (!handle) throw new Error('Agent runs are not registered yet');
    return handle;
  };

  /** The user's run by id: its row, or its manual job still queued. 404 for a missing run or another user's. */
  async function targetOf(userId: string, runId: string): Promise<AgentRunTarget> {
    const run = await repos.agents.getOwnedRun(userId, runId);
    if (run) return { kind: 'row', run };
    // A manual run gets its row when a worker starts it; until then it is only a job.
    for (const [queue, jobId] of [
      ['agent-runs', `run-${runId}`],
      ['connectors', `fetch-${runId}`],
    ] as const) {
      const parsed = agentRunJobSchema.safeParse((await queues.job(queue, jobId))?.data);
      if (parsed.success && parsed.data.userId === userId && parsed.data.runId === runId)
        return { kind: 'queued', queue, jobId, job: parsed.data };
    }
    throw notFound('Agent run');
  }

  /** Takes a job off its queue; false when it is gone or a worker holds it (that worker then ends the run). */
  async function removeJob(queue: QueueName, jobId: string): Promise<boolean> {
    try {
      return await queues.remove(queue, jobId);
    } catch (error) {
      log.warn({ err: error, queue, jobId }, 'agent run job not taken off its queue; its worker finds the run ended');
      return false;
    }
  }

  /** Whether any job that may carry the run can still run. */
  async function anyJobLive(run: RunRow, row: AgentRunRow | null): Promise<boolean> {
    const jobs: Array<[QueueName, string]> = row
      ? [
          ['connectors', agentRunJobId(jobOfRow(row), 'fetch')],
          ['agent-runs', agentRunJobId(jobOfRow(row), 'run')],
          ['agent-runs', `resume-${run.id}`],
        ]
      : [
          ['connectors', `fetch-${run.id}`],
          ['agent-runs', `run-${run.id}`],
        ];
    for (const [queue, jobId] of jobs) if (await queues.isLive(queue, jobId)) return true;
    return false;
  }

  /**
   * A manual run still waiting on its first queue: its row is written `cancelled` first (a worker
   * that takes the job meanwhile finds the row ended and stops), then the job is taken off the
   * queue and the run ended. False when a worker wrote the row first.
   */
  async function cancelQueued(target: Extract<AgentRunTarget, { kind: 'queued' }>): Promise<boolean> {
    const { job } = target;
    const inserted = await repos.agents.insertRun({
      id: job.runId,
      agentId: job.agentId,
      agentType: job.agentType,
      userId: job.userId,
      trigger: job.trigger,
      slot: job.slot ? new Date(job.slot) : null,
      deviceId: job.deviceId ?? null,
      status: publicStatus('agent', 'cancelled'),
      completedAt: new Date(),
    });
    if (!inserted) return false;
    deps.metrics?.agentRuns.inc({ type: job.agentType, status: 'cancelled' });
    await removeJob(target.queue, target.jobId);
    await runs().end(job.runId, { status: 'cancelled' });
    log.info({ userId: job.userId, runId: job.runId }, 'queued agent run cancelled');
    return true;
  }

  /**
   * A manual run whose row its request wrote `queued`, not yet taken by a worker: the row ends
   * `cancelled` only while it is still queued (a worker's claim and this end are one conditional
   * update each, so exactly one wins), then its first job is taken off the queue. False when a
   * worker took it first: it runs now, and finds the request when it starts.
   */
  async function cancelQueuedRow(row: AgentRunRow): Promise<boolean> {
    try {
      const ended = await runs().end(row.id, { status: 'cancelled', usage: countsOf(row) }, { from: ['queued'] });
      if (!ended.won) return false;
    } catch (error) {
      if (error instanceof AgentRunClaimed) return false;
      throw error;
    }
    const job = jobOfRow(row);
    await removeJob(
      row.agentType === 'cloud' ? 'connectors' : 'agent-runs',
      agentRunJobId(job, row.agentType === 'cloud' ? 'fetch' : 'run'),
    );
    log.info({ userId: row.userId, runId: row.id }, 'queued agent run cancelled');
    return true;
  }

  const spec: RunKindSpec<AgentRunCounts, AgentRunCounts, AgentEndContext, AgentPersisted> = {
    kind: 'agent',
    queue: 'agent-runs',
    jobId: () => null,
    signal: 'agent-run',
    interrupted: AGENT_RUN_INTERRUPTED,
    releases: [],

    /**
     * Its device came online (the waitpoint's output names it): the resume job takes the run on
     * that device. Its deadline came first: no device took it, and it ends `timed_out`.
     */
    async continue(run, waitpoints) {
      const row = await repos.agents.getRun(run.id);
      if (row?.status !== 'waiting_device') return;
      const output = waitpoints.find((waitpoint) => waitpoint.kind === 'device')?.output as { deviceId?: unknown } | null | undefined;
      if (typeof output?.deviceId !== 'string') {
        const message = `no device came online within ${deps.config.agents.deviceWaitMs} ms`;
        await runs().end(run.id, { status: 'timed_out', message }, { from: ['waiting_device'] });
        return;
      }
      await startAgentRun(queues.enqueue, {
        runId: row.id,
        agentId: row.agentId,
        agentType: row.agentType,
        userId: row.userId,
        trigger: row.trigger,
        slot: row.slot?.toISOString(),
        deviceId: output.deviceId,
      });
    },

    async authorizeCancel(id, actor) {
      const target = await targetOf(actor.userId, id);
      return { status: target.kind === 'row' ? target.run.status : 'queued' };
    },

    async cancelRequested(run, actor) {
      let target = await targetOf(actor.userId, run.id);
      if (target.kind === 'queued') {
        if (await cancelQueued(target)) return;
        // A worker started it meanwhile: it has a row now.
        target = await targetOf(actor.userId, run.id);
      }
      if (target.kind !== 'row') return;
      const row = target.run;
      if (row.status === 'queued' && (await cancelQueuedRow(row))) return;
      if (row.status === 'waiting_device') {
        try {
          const ended = await runs().end(run.id, { status: 'cancelled', usage: countsOf(row) }, { from: ['waiting_device'] });
          if (ended.won) {
            await removeJob('agent-runs', `resume-${run.id}`);
            log.info({ userId: actor.userId, runId: run.id }, 'agent run cancelled while waiting for its device');
          }
          return;
        } catch (error) {
          // Claimed by a worker meanwhile: it runs now, and finds the request when it starts.
          if (!(error instanceof AgentRunClaimed)) throw error;
        }
      }
      // Kept on the row too, where the run's own reads see it.
      await repos.agents.requestRunCancel(run.id);
      // A cloud run between its fetch and its run waits on `agent-runs` with no worker holding it.
      if (await removeJob('agent-runs', agentRunJobId(jobOfRow(row), 'run')))
        await runs().end(run.id, { status: 'cancelled', usage: countsOf(row) });
    },

    async recover(run) {
      const row = await repos.agents.getRun(run.id);
      // Waiting for its device: a `device_hello` resumes it, not a job.
      if (row?.status === 'waiting_device') return 'leave';
      const deadline = Date.now() - deps.config.agents.runTimeoutMs;
      if (row?.status === 'running' && row.startedAt.getTime() < deadline)
        return run.cancelRequestedAt
          ? { status: 'cancelled' }
          : { status: 'timed_out', message: `the run did not finish within ${deps.config.agents.runTimeoutMs} ms` };
      return (await anyJobLive(run, row)) ? 'leave' : undefined;
    },

    async persist(tx, run, outcome, context) {
      const counts = context?.counts;
      const runOutcome = { ...outcome, ...(counts ?? { itemsProcessed: 0, itemsCreated: 0, errors: [] }) } as AgentRunOutcome;
      const status = agentRunStatusOf(runOutcome);
      const from = context?.from;
      const values = counts
        ? { status, errors: agentRunErrorsOf(runOutcome), itemsProcessed: counts.itemsProcessed, itemsCreated: counts.itemsCreated }
        : { status, appendErrors: agentRunErrorsOf(runOutcome) };
      const ended = await repos.agents.endRun(run.id, values, from, tx);
      if (!ended && from) throw new AgentRunClaimed(run.id);
      return ended;
    },

    async announce(run, outcome, context, persisted) {
      if (context?.folded) {
        log.info({ runId: run.id }, 'agent run folded into the run waiting for its device');
        return;
      }
      if (!persisted) return;
      deps.metrics?.agentRuns.inc({ type: persisted.agentType, status: persisted.status });
      log.info(
        {
          runId: run.id,
          agentId: persisted.agentId,
          outcome: outcome.status,
          status: persisted.status,
          created: persisted.itemsCreated,
          errors: persisted.errors.length,
        },
        'agent run ended',
      );
    },
  };

  handle = kernel.register(spec);
  return handle;
}

/**
 * `agent_cancel {runId}` on `/device`: the owner's cancel for the socket's user. The ack is
 * `{ok:true}` or `{ok:false, error}` (`validation_failed`, `not_found`, `not_running`).
 */
export async function cancelFromDevice(runs: AgentRuns, userId: string, payload: unknown): Promise<AgentCancelAck> {
  const parsed = agentCancelSchema.safeParse(payload ?? {});
  if (!parsed.success)
    return { ok: false, error: { code: 'validation_failed', message: parsed.error.issues.map((i) => i.message).join('; ') } };
  try {
    await runs.cancel(parsed.data.runId, { userId });
    return { ok: true };
  } catch (error) {
    if (error instanceof AppError && error.status < 500) return { ok: false, error: { code: error.code, message: error.message } };
    throw error;
  }
}
