import { and, asc, count, desc, eq, inArray, isNotNull, lte, sql } from 'drizzle-orm';
import type { Db } from './database';
import { flowExecutions, flowTriggers, type FlowTriggerConfig, type FlowTriggerRow, type FlowTriggerSettings } from './schema';

/** Triggers of agentflows: CRUD by flow, the scheduler's scan and claim, and what a fire records. */
export class FlowTriggersRepository {
  constructor(private readonly db: Db) {}

  async create(input: {
    id?: string;
    flowId: string;
    userId: string;
    type: FlowTriggerRow['type'];
    name: string;
    enabled: boolean;
    config: FlowTriggerConfig;
    settings: FlowTriggerSettings;
    secretSealed?: string | null;
    nextRunAt?: Date | null;
  }): Promise<FlowTriggerRow> {
    const [row] = await this.db.insert(flowTriggers).values(input).returning();
    return row;
  }

  /** A flow's triggers, newest first (a flow holds at most a handful). */
  async listForFlow(flowId: string, limit = 200): Promise<FlowTriggerRow[]> {
    return this.db
      .select()
      .from(flowTriggers)
      .where(eq(flowTriggers.flowId, flowId))
      .orderBy(desc(flowTriggers.createdAt), desc(flowTriggers.id))
      .limit(limit);
  }

  async countForFlow(flowId: string): Promise<number> {
    const [row] = await this.db.select({ n: count() }).from(flowTriggers).where(eq(flowTriggers.flowId, flowId));
    return row?.n ?? 0;
  }

  /** The trigger of this flow, or null. */
  async findOfFlow(flowId: string, id: string): Promise<FlowTriggerRow | null> {
    const rows = await this.db
      .select()
      .from(flowTriggers)
      .where(and(eq(flowTriggers.id, id), eq(flowTriggers.flowId, flowId)))
      .limit(1);
    return rows[0] ?? null;
  }

  async find(id: string): Promise<FlowTriggerRow | null> {
    const rows = await this.db.select().from(flowTriggers).where(eq(flowTriggers.id, id)).limit(1);
    return rows[0] ?? null;
  }

  /** Replaces what a PATCH changed; null when the flow has no such trigger. */
  async update(
    flowId: string,
    id: string,
    patch: Partial<Pick<FlowTriggerRow, 'name' | 'enabled' | 'config' | 'settings' | 'nextRunAt'>>,
  ): Promise<FlowTriggerRow | null> {
    const rows = await this.db
      .update(flowTriggers)
      .set({ ...patch, updatedAt: new Date() })
      .where(and(eq(flowTriggers.id, id), eq(flowTriggers.flowId, flowId)))
      .returning();
    return rows[0] ?? null;
  }

  /** False when the flow has no such trigger. */
  async delete(flowId: string, id: string): Promise<boolean> {
    const rows = await this.db
      .delete(flowTriggers)
      .where(and(eq(flowTriggers.id, id), eq(flowTriggers.flowId, flowId)))
      .returning({ id: flowTriggers.id });
    return rows.length > 0;
  }

  /** Enabled schedules whose next slot has come, earliest first. */
  async dueSchedules(now: Date, limit = 500): Promise<FlowTriggerRow[]> {
    return this.db
      .select()
      .from(flowTriggers)
      .where(
        and(
          eq(flowTriggers.type, 'schedule'),
          eq(flowTriggers.enabled, true),
          isNotNull(flowTriggers.nextRunAt),
          lte(flowTriggers.nextRunAt, now),
        ),
      )
      .orderBy(asc(flowTriggers.nextRunAt))
      .limit(limit);
  }

  /**
   * Moves a schedule from the slot it was read at (`from`) to `next`, only if no one moved it
   * first and its schedule is unchanged: the caller that gets true owns the slot. Every other
   * scheduler that read the same row gets false.
   */
  async advanceSchedule(id: string, from: Date, next: Date, config: FlowTriggerConfig): Promise<boolean> {
    const moved = await this.db
      .update(flowTriggers)
      .set({ nextRunAt: next })
      .where(
        and(
          eq(flowTriggers.id, id),
          eq(flowTriggers.nextRunAt, from),
          eq(flowTriggers.enabled, true),
          sql`${flowTriggers.config} = ${JSON.stringify(config)}::jsonb`,
        ),
      )
      .returning({ id: flowTriggers.id });
    return moved.length > 0;
  }

  /** Enabled connector triggers on a cloud agent. */
  async connectorTriggersOf(agentId: string): Promise<FlowTriggerRow[]> {
    return this.db
      .select()
      .from(flowTriggers)
      .where(
        and(eq(flowTriggers.type, 'connector'), eq(flowTriggers.enabled, true), sql`${flowTriggers.config} ->> 'agentId' = ${agentId}`),
      )
      .limit(50);
  }

  /** What the last fire did: the execution it started, or why it started none. */
  async recordFire(id: string, outcome: { executionId: string } | { code: string; message: string }): Promise<void> {
    await this.db
      .update(flowTriggers)
      .set(
        'executionId' in outcome
          ? { lastFiredAt: new Date(), lastExecutionId: outcome.executionId, lastErrorCode: null, lastErrorMessage: null }
          : { lastFiredAt: new Date(), lastErrorCode: outcome.code, lastErrorMessage: outcome.message },
      )
      .where(eq(flowTriggers.id, id));
  }

  /** The execution a fire started, if it started one. */
  async executionOfFire(triggerId: string, fire: string): Promise<string | null> {
    const rows = await this.db
      .select({ id: flowExecutions.id })
      .from(flowExecutions)
      .where(and(eq(flowExecutions.triggerId, triggerId), eq(flowExecutions.triggerFire, fire)))
      .limit(1);
    return rows[0]?.id ?? null;
  }

  /** How many executions the trigger started under this concurrency key are still queued or running. */
  async openExecutions(triggerId: string, concurrencyKey: string): Promise<number> {
    const [row] = await this.db
      .select({ n: count() })
      .from(flowExecutions)
      .where(
        and(
          eq(flowExecutions.triggerId, triggerId),
          eq(flowExecutions.concurrencyKey, concurrencyKey),
          inArray(flowExecutions.status, ['queued', 'running']),
        ),
      );
    return row?.n ?? 0;
  }
}
