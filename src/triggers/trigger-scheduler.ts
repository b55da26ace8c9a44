import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from '../lib/logger';
import { settled } from '../lib/settled';
import type { Repositories } from '../models';
import type { FlowTriggers } from './flow-triggers';
import { latestSlot, nextSlot, scheduleOf, shortestInterval } from './trigger-definition';

/**
 * The scheduler role's part for flow schedules: each tick reads the enabled schedules whose next
 * slot has come and fires each once.
 *
 * Exactly once per slot, however many schedulers tick: the fire's id is the slot (`slot-<ms>`), so
 * two schedulers queue one job (its id is built from the trigger and the fire) and the execution
 * row is unique per (trigger, fire). The job is queued BEFORE the slot moves on (a conditional
 * UPDATE only one scheduler wins), so a crash between the two leaves the slot due and the next
 * tick queues the same job id again: a slot is never lost, and never run twice.
 *
 * Catch-up: a slot is late once more than {@link graceMs} passed since it (the scheduler was down,
 * not merely between ticks). A late slot runs only under `catchUp: 'run_once'` (once, for the
 * latest missed slot); under `skip`, the default, it passes. Either way the schedule moves to its
 * next future slot: downtime never causes a burst.
 */
export class TriggerScheduler {
  private task?: ScheduledTask;
  private ticking?: Promise<number>;
  private readonly log: Logger;
  /** How late a slot may be fired and still count as on time: one tick interval and a minute. */
  readonly graceMs: number;

  constructor(
    private readonly deps: {
      repos: Pick<Repositories, 'flowTriggers'>;
      triggers: Pick<FlowTriggers, 'fire'>;
      logger: Logger;
      /** The node-cron expression of the tick (5 or 6 fields). */
      tick: string;
    },
  ) {
    this.log = deps.logger.child({ component: 'trigger-scheduler' });
    let interval = 60;
    try {
      interval = Math.max(60, shortestInterval(deps.tick, 'UTC'));
    } catch {
      // node-cron accepts what cron-parser may not: a minute's grace then.
    }
    this.graceMs = (interval + 60) * 1000;
  }

  start(): void {
    this.task = cron.schedule(
      this.deps.tick,
      () => void this.tick().catch((error: unknown) => this.log.error({ err: error }, 'trigger scheduler tick failed')),
      { noOverlap: true, name: 'flow-trigger-scheduler' },
    );
    void this.tick().catch((error: unknown) => this.log.error({ err: error }, 'trigger scheduler tick failed'));
  }

  /** Fires the schedules due at `now`; returns how many slots this scheduler claimed. One tick at a time per process. */
  tick(now = new Date()): Promise<number> {
    this.ticking ??= this.schedule(now).finally(() => (this.ticking = undefined));
    return this.ticking;
  }

  private async schedule(now: Date): Promise<number> {
    const due = await this.deps.repos.flowTriggers.dueSchedules(now);
    let claimed = 0;
    for (const trigger of due) {
      const schedule = scheduleOf(trigger);
      if (!schedule || !trigger.nextRunAt) continue;
      try {
        const slot = latestSlot(schedule.cron, schedule.timezone, now);
        const next = nextSlot(schedule.cron, schedule.timezone, now);
        const late = now.getTime() - slot.getTime() > this.graceMs;
        if (!late || schedule.catchUp === 'run_once') {
          await this.deps.triggers.fire(trigger, `slot-${slot.getTime()}`, schedule.input);
        } else {
          this.log.info({ triggerId: trigger.id, slot: slot.toISOString() }, 'missed schedule slot skipped (catchUp: skip)');
        }
        if (await this.deps.repos.flowTriggers.advanceSchedule(trigger.id, trigger.nextRunAt, next, trigger.config)) claimed++;
      } catch (error) {
        this.log.error({ err: error, triggerId: trigger.id }, 'could not fire flow schedule');
      }
    }
    if (claimed) this.log.info({ claimed }, 'flow schedules fired');
    return claimed;
  }

  async stop(): Promise<void> {
    await this.task?.destroy();
    if (this.ticking) await settled(this.ticking);
  }
}
