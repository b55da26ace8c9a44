import { and, eq, gt, lt, sql } from 'drizzle-orm';
import type { Db } from './database';
import { agentRuns, chatMessages, chatSessions } from './schema';

/**
 * The reaper's queries (src/app/reaper.ts) over work that a dead process may have left open: chat
 * turns without an answer and agent runs still `running` (runs the run kernel owns are recovered through it). Every
 * write is conditional, so any number of processes may reap at once.
 */
export class StaleWorkRepository {
  constructor(private readonly db: Db) {}

  /** User messages sent between `after` and `before` that have no assistant answer. */
  async unansweredTurns(
    before: Date,
    after: Date,
    limit: number,
  ): Promise<Array<{ messageId: string; sessionId: string; userId: string; deviceId: string | null; cancelRequestedAt: Date | null }>> {
    return this.db
      .select({
        messageId: chatMessages.id,
        sessionId: chatMessages.sessionId,
        userId: chatSessions.userId,
        deviceId: chatSessions.deviceId,
        cancelRequestedAt: chatMessages.cancelRequestedAt,
      })
      .from(chatMessages)
      .innerJoin(chatSessions, eq(chatSessions.id, chatMessages.sessionId))
      .where(
        and(
          eq(chatMessages.role, 'user'),
          lt(chatMessages.createdAt, before),
          gt(chatMessages.createdAt, after),
          sql`not exists (select 1 from chat_messages reply where reply.reply_to = ${chatMessages.id} and reply.role = 'assistant')`,
        ),
      )
      .orderBy(chatMessages.createdAt)
      .limit(limit);
  }

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
