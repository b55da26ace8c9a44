import { and, eq, gt, lt, sql } from 'drizzle-orm';
import type { Db } from './database';
import { chatMessages, chatSessions } from './schema';

/**
 * The reaper's queries (src/app/reaper.ts) over work that a dead process may have left open: chat
 * turns without an answer (runs the run kernel owns are recovered through it). Every
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
}
