import { randomUUID } from 'node:crypto';
import cron, { type ScheduledTask } from 'node-cron';
import type { LimitsResolver } from '../auth/limits';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import { startAgentRun } from '../producers/requests';
import type { Enqueue } from '../producers/registry';
import { cronSlots } from '../schemas/agents';
import { settled } from '../lib/settled';
import { BudgetExceededError, type BudgetDoor } from '../budget/budget-door';
import { extractionFirstCall } from './extraction-prompt';

/**
 * The scheduler role: a node-cron tick (every minute by default) reads the enabled
 * agents whose `next_run_at` has passed and enqueues one run per agent for its latest due slot.
 *
 * Exactly once per slot, however many schedulers tick: the job id is derived from (agent, slot),
 * so concurrent enqueues collapse into one job, and the run row is unique per (agent, slot), so
 * even a job enqueued again later (after the first was removed) does not run twice. The enqueue
 * happens BEFORE `next_run_at` moves (only while it is still due), so a crash between the two leaves the slot
 * due and the next tick enqueues the same job id again: the two can never diverge into a lost run.
 *
 * Catch-up: after downtime only the latest missed slot is due (one run, not a burst), and the
 * schedule moves on to the next future slot.
 */
export class AgentScheduler {
  private task?: ScheduledTask;
  private ticking?: Promise<number>;
  private readonly log: Logger;

  constructor(
    private readonly deps: {
      repos: Repositories;
      enqueue: Enqueue;
      logger: Logger;
      tick: string;
      /** The owners' plans: a cloud agent of a plan without `cloudAgents` skips its slot. */
      limits?: Pick<LimitsResolver, 'forUser'>;
      /** Reserves a scheduled run's first model call before it is queued; a slot over its owner's budget is skipped. */
      budget?: Pick<BudgetDoor, 'admitPrompt'>;
    },
  ) {
    this.log = deps.logger.child({ component: 'scheduler' });
  }

  start(): void {
    this.task = cron.schedule(
      this.deps.tick,
      () => void this.tick().catch((error: unknown) => this.log.error({ err: error }, 'scheduler tick failed')),
      {
        noOverlap: true,
        name: 'agent-scheduler',
      },
    );
    // Catch up at once on start instead of waiting for the first tick.
    void this.tick().catch((error: unknown) => this.log.error({ err: error }, 'scheduler tick failed'));
  }

  /** Enqueues the runs due at `now`; returns how many agents it scheduled. One tick at a time per process. */
  tick(now = new Date()): Promise<number> {
    this.ticking ??= this.schedule(now).finally(() => (this.ticking = undefined));
    return this.ticking;
  }

  private async schedule(now: Date): Promise<number> {
    const due = await this.deps.repos.agents.due(now);
    let scheduled = 0;
    for (const { kind, agent } of due) {
      if (!agent.scheduleCron || !agent.nextRunAt) continue;
      try {
        const { previous: slot, next } = cronSlots(agent.scheduleCron, agent.timezone, now);
        if (kind === 'cloud' && !(await this.cloudAgentsAllowed(agent.userId))) {
          // The slot passes without a run; the schedule moves on, so the next tick does not ask again.
          await this.deps.repos.agents.advanceSchedule(kind, agent.id, now, slot, next, {
            scheduleCron: agent.scheduleCron,
            timezone: agent.timezone,
          });
          this.log.info({ agentId: agent.id, userId: agent.userId }, 'cloud agent slot skipped: the plan has no cloud agents');
          continue;
        }
        const budget = await this.admit(agent);
        if (budget === false) {
          // The owner's budget is spent: the slot passes without a run and the schedule moves on (no retry each tick).
          await this.deps.repos.agents.advanceSchedule(kind, agent.id, now, slot, next, {
            scheduleCron: agent.scheduleCron,
            timezone: agent.timezone,
          });
          this.log.info({ agentId: agent.id, userId: agent.userId }, "agent slot skipped: the owner's budget is spent");
          continue;
        }
        await startAgentRun(this.deps.enqueue, {
          runId: randomUUID(),
          agentId: agent.id,
          agentType: kind,
          userId: agent.userId,
          trigger: 'schedule',
          slot: slot.toISOString(),
          budget,
        });
        if (
          await this.deps.repos.agents.advanceSchedule(kind, agent.id, now, slot, next, {
            scheduleCron: agent.scheduleCron,
            timezone: agent.timezone,
          })
        )
          scheduled++;
      } catch (error) {
        this.log.error({ err: error, agentId: agent.id }, 'could not schedule agent run');
      }
    }
    if (scheduled) this.log.info({ scheduled }, 'agent runs scheduled');
    return scheduled;
  }

  /**
   * The reservation for a scheduled run (undefined: no budget limits), or false when the owner's
   * budget refuses it: its first call counted at the largest size its first document may have.
   */
  private async admit(agent: {
    userId: string;
    promptTemplate: string;
    dataTypes: readonly string[];
    model: { model: string } | null;
  }): Promise<string | undefined | false> {
    if (!this.deps.budget) return undefined;
    try {
      const first = extractionFirstCall(agent);
      return await this.deps.budget.admitPrompt(agent.userId, first.texts, agent.model?.model, first.fixed);
    } catch (error) {
      if (error instanceof BudgetExceededError) return false;
      throw error;
    }
  }

  private async cloudAgentsAllowed(userId: string): Promise<boolean> {
    if (!this.deps.limits) return true;
    return (await this.deps.limits.forUser(userId))?.limits.features.cloudAgents ?? false;
  }

  async stop(): Promise<void> {
    await this.task?.destroy();
    if (this.ticking) await settled(this.ticking); // a failed tick was logged by the tick itself
  }
}
