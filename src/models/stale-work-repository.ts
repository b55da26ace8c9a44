import { and, eq, gt, inArray, lt, sql } from 'drizzle-orm';
import type { Db } from './database';
import { agentRuns, chatMessages, chatSessions } from './schema';

/**
 * The reaper's queries (src/app/reaper.ts) over work that a dead process may have left open: chat
 * turns without an answer, ticket notes still being written, agent runs still `running`. Every
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

  /** Sessions whose notes are pending or being written and were last touched before `before`. */
  async notesInProgress(before: Date, limit: number): Promise<Array<{ sessionId: string; userId: string }>> {
    return this.db
      .select({ sessionId: chatSessions.id, userId: chatSessions.userId })
      .from(chatSessions)
      .where(and(inArray(chatSessions.documentationStatus, ['pending', 'generating']), lt(chatSessions.updatedAt, before)))
      .limit(limit);
  }

  /** Fails notes still in progress (conditional: a job that finished meanwhile keeps its notes). */
  async failNotes(sessionId: string): Promise<boolean> {
    const rows = await this.db
      .update(chatSessions)
      .set({ documentationStatus: 'failed' })
      .where(and(eq(chatSessions.id, sessionId), inArray(chatSessions.documentationStatus, ['pending', 'generating'])))
      .returning({ id: chatSessions.id });
    return rows.length > 0;
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
