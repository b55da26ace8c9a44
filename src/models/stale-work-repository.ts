import { and, eq, lt, sql } from 'drizzle-orm';
import type { Db } from './database';
import { agentRuns } from './schema';

/**
 * The reaper's queries (src/app/reaper.ts) over work that a dead process may have left open: agent
 * runs still `running` (runs the run kernel owns, chat turns among them, are recovered through it).
 * Every write is conditional, so any number of processes may reap at once.
 */
export class StaleWorkRepository {
  constructor(private readonly db: Db) {}

  /** Ends runs still `running` that started before `before` (past any run's deadline): `error`. */
  async failRunsStartedBefore(before: Date, reason: string): Promise<string[]> {
    const rows = await this.db
      .update(agentRuns)
      .set({ status: 'error', completedAt: sql`now()`, errors: sql`${agentRuns.errors} || ${JSON.stringify([reason])}::jsonb` })
      .where(and(eq(agentRuns.status, 'running'), lt(agentRuns.startedAt, before)))
      .returning({ id: agentRuns.id });
    return rows.map((row) => row.id);
  }
}
