import { and, eq, isNull, or, sql } from 'drizzle-orm';
import type { Db, DbOrTx } from './database';
import { chatSessions, type ChatSessionRow } from './schema';

export type SessionStatus = ChatSessionRow['status'];
export type DocumentationStatus = NonNullable<ChatSessionRow['documentationStatus']>;

/** A session's lifecycle (resolve, escalate, pause) and its ticket notes. Writes by id are owner-scoped. */
export class SessionNotesRepository {
  constructor(private readonly db: Db) {}

  /** Sets the status of the user's session; null when the user owns no such session. */
  async setStatus(userId: string, sessionId: string, status: SessionStatus): Promise<ChatSessionRow | null> {
    const rows = await this.db
      .update(chatSessions)
      .set({ status, updatedAt: sql`now()` })
      .where(and(eq(chatSessions.id, sessionId), eq(chatSessions.userId, userId)))
      .returning();
    return rows[0] ?? null;
  }

  /**
   * Marks the session resolved and claims its notes: `queue` is true for exactly one caller while
   * no notes exist or the last attempt failed, so concurrent resolves queue one job between them.
   */
  async resolve(
    userId: string,
    sessionId: string,
    resolutionSummary?: string,
  ): Promise<{ session: ChatSessionRow; queue: boolean; retry: boolean } | null> {
    return this.db.transaction(async (tx) => {
      const [session] = await tx
        .update(chatSessions)
        .set({ status: 'resolved', updatedAt: sql`now()`, ...(resolutionSummary !== undefined ? { resolutionSummary } : {}) })
        .where(and(eq(chatSessions.id, sessionId), eq(chatSessions.userId, userId)))
        .returning();
      if (!session) return null;
      const claimed = await tx
        .update(chatSessions)
        .set({ documentationStatus: 'pending', documentation: null })
        .where(
          and(eq(chatSessions.id, sessionId), or(isNull(chatSessions.documentationStatus), eq(chatSessions.documentationStatus, 'failed'))),
        )
        .returning({ id: chatSessions.id });
      return { session, queue: claimed.length > 0, retry: claimed.length > 0 && session.documentationStatus === 'failed' };
    });
  }

  async setDocumentationStatus(sessionId: string, status: DocumentationStatus, db: DbOrTx = this.db): Promise<void> {
    await db.update(chatSessions).set({ documentationStatus: status }).where(eq(chatSessions.id, sessionId));
  }

  /** Keeps the final notes. */
  async storeDocumentation(sessionId: string, documentation: string, db: DbOrTx = this.db): Promise<void> {
    await db.update(chatSessions).set({ documentation, documentationStatus: 'ready' }).where(eq(chatSessions.id, sessionId));
  }
}
