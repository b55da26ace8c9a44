import { DelayedError, type Job } from 'bullmq';
import type { LimitsResolver } from '../auth/limits';
import type { FlowExecutions } from '../flows/flow-executions';
import { AppError } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import { TriggerConcurrencyFull } from '../models/flow-executions-repository';
import type { TriggerFireJob } from '../producers/flows';
import { concurrencyKeyOf } from './trigger-definition';

/** How long a fire waits before it looks again for a place under its concurrency limit. */
export const CONCURRENCY_RECHECK_MS = 2_000;

export type TriggerFireOutcome =
  { executionId: string; again?: true } | { skipped: 'trigger_gone' | 'trigger_disabled' | 'owner_gone' } | { failed: string };

const isUniqueViolation = (error: unknown) =>
  (error as { code?: string })?.code === '23505' || (error as { cause?: { code?: string } })?.cause?.code === '23505';

/**
 * The worker side of a trigger fire (`flows` queue, job `trigger`): the owner's plan and the
 * flow's published version are read now, the concurrency limit is checked (full: the job waits
 * and looks again), and the execution is started with the fire's id on its row, so a retried or
 * duplicated fire never starts a second one. A refusal a person must act on (no flows on the plan,
 * a spent budget, an input the prompts cannot read) is recorded on the trigger, not retried.
 */
export class TriggerFirer {
  private readonly log: Logger;

  constructor(
    private readonly deps: {
      repos: Pick<Repositories, 'flowTriggers' | 'flows'>;
      executions: Pick<FlowExecutions, 'start'>;
      limits: Pick<LimitsResolver, 'forUser' | 'requireFeature' | 'requireFlowModels'>;
      logger: Logger;
    },
  ) {
    this.log = deps.logger.child({ component: 'trigger-firer' });
  }

  async process(payload: TriggerFireJob, job: Pick<Job, 'moveToDelayed' | 'token' | 'id'>): Promise<TriggerFireOutcome> {
    const { repos } = this.deps;
    const trigger = await repos.flowTriggers.find(payload.triggerId);
    if (!trigger) return { skipped: 'trigger_gone' };
    if (!trigger.enabled) return { skipped: 'trigger_disabled' };
    const existing = await repos.flowTriggers.executionOfFire(trigger.id, payload.fire);
    if (existing) return { executionId: existing, again: true };
    const flow = await repos.flows.find(trigger.flowId);
    const plan = await this.deps.limits.forUser(trigger.userId);
    if (!flow || !plan) return { skipped: 'owner_gone' };
    const concurrencyKey = concurrencyKeyOf(trigger.settings, payload.input);
    const limit = trigger.settings.concurrency?.limit;
    // A look before any work: a full key waits without taking a rate-limit hit or a budget reservation.
    if (limit !== undefined && (await repos.flowTriggers.openExecutions(trigger.id, concurrencyKey)) >= limit)
      return this.waitFor(job, CONCURRENCY_RECHECK_MS);
    try {
      await this.deps.limits.requireFeature(trigger.userId, 'flows');
      await this.deps.limits.requireFlowModels(trigger.userId, flow.definition);
      const { executionId } = await this.deps.executions.start({ id: trigger.userId, tier: plan.tier }, flow, payload.input, {
        trigger: { triggerId: trigger.id, fire: payload.fire, concurrencyKey, ...(limit === undefined ? {} : { limit }) },
      });
      await repos.flowTriggers.recordFire(trigger.id, { executionId });
      this.log.info({ triggerId: trigger.id, executionId, jobId: job.id }, 'trigger fired');
      return { executionId };
    } catch (error) {
      if (error instanceof TriggerConcurrencyFull) return this.waitFor(job, CONCURRENCY_RECHECK_MS);
      if (isUniqueViolation(error)) {
        // Another worker started this very fire a moment ago.
        const started = await repos.flowTriggers.executionOfFire(trigger.id, payload.fire);
        if (started) return { executionId: started, again: true };
        throw error;
      }
      if (!(error instanceof AppError)) throw error;
      // The owner's per-minute execution limit: the fire waits for the window, it is not lost.
      if (error.code === 'rate_limited') return this.waitFor(job, 1000 * Number(error.headers?.['Retry-After'] ?? 5));
      // A store or the queue away for a moment: BullMQ retries the job.
      if (error.status >= 500) throw error;
      await repos.flowTriggers.recordFire(trigger.id, { code: error.code, message: error.message });
      this.log.info({ triggerId: trigger.id, code: error.code }, 'trigger fire refused');
      return { failed: error.code };
    }
  }

  /** Puts the job back for `ms`; BullMQ then treats it as delayed, neither failed nor completed. */
  private async waitFor(job: Pick<Job, 'moveToDelayed' | 'token'>, ms: number): Promise<never> {
    await job.moveToDelayed(Date.now() + ms, job.token);
    throw new DelayedError();
  }
}
