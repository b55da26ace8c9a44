import { randomUUID } from 'node:crypto';
import { extractionFirstCall } from './extraction-prompt';
import type { Config } from '../../config';
import type { ModelCatalog, ModelChoice } from '../ai/model-catalog';
import { AppError, notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import { AgentLimitError, type AgentKind, type AgentRef } from '../models/agents-repository';
import type { CloudAgentRow, LocalAgentRow } from '../models/schema';
import { startAgentRun } from '../producers/requests';
import type { Enqueue } from '../producers/registry';
import type { BudgetDoor } from '../budget/budget-door';
import { cancelFromDevice, deviceWaitpointKey, type AgentRuns } from './agent-run';
import type { RunKernel } from '../runs/run-kernel';
import type { AgentCancelAck } from '../schemas/socket-events';
import { cronSlots, type CreateCloudAgent, type CreateLocalAgent, type UpdateCloudAgent, type UpdateLocalAgent } from '../schemas/agents';
import { admitPrompt } from '../ai/prompt-admission';

/** 403 `tier_limit`: the plan's enabled-agent limit (local + cloud together) is reached. */
export const tierLimit = (error: AgentLimitError) => new AppError(403, 'tier_limit', error.message, { limit: error.limit });

/** The next due time of a schedule, or null for an agent without one or disabled. */
export function nextRunAt(schedule: { scheduleCron?: string | null; timezone?: string; enabled?: boolean }, now = new Date()): Date | null {
  if (!schedule.scheduleCron || schedule.enabled === false) return null;
  return cronSlots(schedule.scheduleCron, schedule.timezone ?? 'UTC', now).next;
}

/**
 * Agent configs and manual runs for the HTTP API, and the resumption of runs waiting for a device.
 * Ownership is checked on every call (404 for another user's agent, as for canvases).
 */
export class AgentService {
  constructor(
    private readonly deps: {
      config: Config;
      repos: Repositories;
      enqueue: Enqueue;
      /** Agent runs on the run kernel: a manual run is recorded there when it is queued, and cancelled through it. */
      runs: AgentRuns;
      logger: Logger;
      /** Reserves a manual run's first model call against its user's budget before the run is queued. */
      budget?: Pick<BudgetDoor, 'admitPrompt' | 'releaseUnused'>;
      /** The configured models: an agent's own `model` is checked against them when it is saved. */
      models?: Pick<ModelCatalog, 'knows'>;
      /** The run kernel's waitpoints: a `device_hello` completes the waits of the runs it may take. */
      waits?: Pick<RunKernel, 'completeByKey'>;
    },
  ) {}

  /** 400 `unknown_model` (nothing written) when the agent names a model this deployment does not serve. */
  private checkModel(model: ModelChoice | null | undefined): void {
    if (!model || !this.deps.models || this.deps.models.knows(model)) return;
    const problem = { path: 'model', message: `${model.provider}:${model.model} is not a configured model` };
    throw new AppError(400, 'unknown_model', `${problem.path}: ${problem.message}`, [problem]);
  }

  /** 422 `prompt_rejected` (nothing written) when the prompt template trips the prompt guard. */
  private checkPromptTemplate(userId: string, promptTemplate: string | undefined): void {
    admitPrompt(this.deps.config.generation.promptGuard, 'agent_prompt_template', [{ path: 'promptTemplate', text: promptTemplate }], {
      logger: this.deps.logger,
      userId,
    });
  }

  private async maxEnabled(userId: string): Promise<number> {
    const tier = (await this.deps.repos.users.findById(userId))?.tier ?? 'free';
    return this.deps.config.tiers[tier].maxEnabledAgents;
  }

  /** Creates an agent of either kind (the body is the kind's create schema's output). */
  async create(kind: AgentKind, userId: string, body: CreateLocalAgent | CreateCloudAgent): Promise<AgentRef> {
    return kind === 'local'
      ? { kind, agent: await this.createLocal(userId, body as CreateLocalAgent) }
      : { kind, agent: await this.createCloud(userId, body as CreateCloudAgent) };
  }

  async createLocal(userId: string, body: CreateLocalAgent): Promise<LocalAgentRow> {
    this.checkModel(body.model);
    this.checkPromptTemplate(userId, body.promptTemplate);
    return this.limited(async () =>
      this.deps.repos.agents.createLocal(
        userId,
        { ...body, scheduleCron: body.scheduleCron ?? null, nextRunAt: nextRunAt(body) },
        await this.maxEnabled(userId),
      ),
    );
  }

  async createCloud(userId: string, body: CreateCloudAgent): Promise<CloudAgentRow> {
    this.checkModel(body.model);
    this.checkPromptTemplate(userId, body.promptTemplate);
    return this.limited(async () =>
      this.deps.repos.agents.createCloud(
        userId,
        { ...body, scheduleCron: body.scheduleCron ?? null, nextRunAt: nextRunAt(body) },
        await this.maxEnabled(userId),
      ),
    );
  }

  /** Applies changes; the schedule's next due time follows a changed cron, time zone or enabled flag. */
  async update(kind: AgentKind, userId: string, id: string, changes: UpdateLocalAgent | UpdateCloudAgent): Promise<AgentRef> {
    this.checkModel(changes.model);
    this.checkPromptTemplate(userId, changes.promptTemplate);
    const current =
      kind === 'local' ? await this.deps.repos.agents.get('local', userId, id) : await this.deps.repos.agents.get('cloud', userId, id);
    if (!current) throw notFound('Agent');
    const merged = { scheduleCron: current.scheduleCron, timezone: current.timezone, enabled: current.enabled, ...changes };
    const scheduleChanged = 'scheduleCron' in changes || 'timezone' in changes || 'enabled' in changes;
    const values = { ...changes, ...(scheduleChanged ? { nextRunAt: nextRunAt(merged) } : {}) };
    // The limit counts the user's OTHER enabled agents, so re-enabling an enabled agent is fine.
    const row = await this.limited(async () => this.deps.repos.agents.update(kind, userId, id, values, await this.maxEnabled(userId)));
    if (!row) throw notFound('Agent');
    return { kind, agent: row } as AgentRef;
  }

  async remove(kind: AgentKind, userId: string, id: string): Promise<void> {
    if (!(await this.deps.repos.agents.delete(kind, userId, id))) throw notFound('Agent');
  }

  /** `POST /agents/:id/run`: queues a manual run of the user's agent. */
  async runNow(userId: string, agentId: string): Promise<{ runId: string; agentId: string; agentType: AgentKind; status: 'queued' }> {
    const ref = await this.deps.repos.agents.find(userId, agentId);
    if (!ref) throw notFound('Agent');
    if (ref.kind === 'cloud' && !ref.agent.credentialId) {
      throw new AppError(
        409,
        'not_connected',
        `Connect ${ref.agent.provider} first: GET /api/v1/oauth/${ref.agent.provider}/authorize?agentId=${ref.agent.id}`,
      );
    }
    if (ref.kind === 'cloud' && ref.agent.status === 'reauth_required') {
      throw new AppError(
        409,
        'reauth_required',
        `The ${ref.agent.provider} connection was revoked; reconnect through /api/v1/oauth/${ref.agent.provider}/authorize`,
      );
    }
    // Reserved before anything is written: a run over the user's budget is refused (429) with no run
    // recorded or queued. Its first call (the first document's extraction) is counted at the largest
    // size its document may have, so the worker's call fits what was reserved whatever it reads.
    const first = extractionFirstCall(ref.agent);
    const budget = await this.deps.budget?.admitPrompt(userId, first.texts, ref.agent.model?.model, first.fixed);
    const runId = randomUUID();
    let queuedRow = false;
    try {
      await this.deps.runs.create({ id: runId, userId });
      // Listed from now on (`GET /agents/runs`), `queued` until a worker takes it.
      await this.deps.repos.agents.insertRun({
        id: runId,
        agentId,
        agentType: ref.kind,
        userId,
        trigger: 'manual',
        deviceId: ref.kind === 'local' ? ref.agent.deviceId : null,
        status: 'queued',
      });
      queuedRow = true;
      // The run holds the reservation from now on: whoever ends it gives back what no call took.
      await this.deps.runs.hold(runId, { userId, reservationId: budget }, { beforeQueued: true });
      await startAgentRun(this.deps.enqueue, { runId, agentId, agentType: ref.kind, userId, trigger: 'manual', budget });
    } catch (error) {
      // Nothing was queued to run it: it is not listed.
      if (queuedRow)
        await this.deps.repos.agents
          .deleteRun(runId)
          .catch((deleteError: unknown) => this.deps.logger.warn({ err: deleteError, runId }, 'row of an unqueued agent run not deleted'));
      // Nothing was queued to take the reservation: it is given back now rather than when it expires.
      if (budget)
        await this.deps.budget
          ?.releaseUnused({ userId, reservationId: budget })
          .catch((releaseError: unknown) =>
            this.deps.logger.warn({ err: releaseError, userId }, 'budget reservation of an unqueued run not released; it expires'),
          );
      throw error;
    }
    return { runId, agentId, agentType: ref.kind, status: 'queued' };
  }

  /** `POST /agents/runs/:runId/cancel` (owner): 202 `{runId, status: "cancelling"}`, 404 not yours, 409 `not_running`. */
  async cancelRun(userId: string, runId: string): Promise<{ runId: string; status: 'cancelling' }> {
    await this.deps.runs.cancel(runId, { userId });
    return { runId, status: 'cancelling' };
  }

  /** `agent_cancel {runId}` on `/device`: the same cancel for the socket's user, answered as its ack. */
  cancelFromDevice(userId: string, payload: unknown): Promise<AgentCancelAck> {
    return cancelFromDevice(this.deps.runs, userId, payload);
  }

  /**
   * A device said `device_hello`: queue the runs that wait for it (its own local agents' runs, and
   * the user's cloud runs). Each resume has one job id per run, so hellos from two devices, or two
   * hellos, resume a run once; the worker then claims it atomically.
   */
  async resumeWaitingRuns(userId: string, deviceId: string): Promise<number> {
    const waiting = await this.deps.repos.agents.waitingRunsFor(userId, deviceId);
    for (const run of waiting) {
      // Its wait is a waitpoint: completing it continues the run through the kernel, which queues
      // its resume on this device (a second hello finds it completed). A run that began waiting
      // before waitpoints has none: its resume is queued here.
      const completed = await this.deps.waits?.completeByKey(userId, deviceWaitpointKey(run.id), { deviceId });
      if (completed === true || completed === false) continue;
      await startAgentRun(this.deps.enqueue, {
        runId: run.id,
        agentId: run.agentId,
        agentType: run.agentType,
        userId,
        trigger: run.trigger,
        slot: run.slot?.toISOString(),
        deviceId,
      });
    }
    if (waiting.length) this.deps.logger.info({ userId, deviceId, runs: waiting.length }, 'resuming agent runs waiting for this device');
    return waiting.length;
  }

  private async limited<T>(write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (error) {
      if (error instanceof AgentLimitError) throw tierLimit(error);
      throw error;
    }
  }
}
