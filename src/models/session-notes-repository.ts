import { and, desc, eq, isNull, or, sql } from 'drizzle-orm';
import type { Db, DbOrTx } from './database';
import { chatSessionEmbeddings, chatSessions, type ChatSessionRow, type DiagnosticStep } from './schema';
import { publicStatus } from '../schemas/public-status';

/** What resolving leaves besides the notes; the resolution is kept only where the user gave none. */
export interface StoredOutputs {
  problemSummary: string;
  diagnosticSteps: DiagnosticStep[];
  resolutionSummary: string;
}

/** How a session is closed: resolved (with the engineer's summary) or escalated (with the reason). */
export type SessionClose = { status: 'resolved'; resolutionSummary?: string } | { status: 'escalated'; escalationReason: string | null };

/** A resolved session's embedding with what a lookup shows of the session. */
export interface EmbeddedSession {
  sessionId: string;
  title: string | null;
  problemSummary: string | null;
  resolutionSummary: string | null;
  updatedAt: Date;
  vector: number[];
}

/** How many of a user's embedded sessions a similarity lookup compares, most recent first. */
export const SIMILAR_SCAN_LIMIT = 2_000;

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
   * Closes the session (resolved, or escalated with its reason) and claims its notes: `queue` is
   * true for exactly one caller while no notes exist or the last attempt failed, so concurrent
   * closes queue one job between them.
   */
  async close(
    userId: string,
    sessionId: string,
    close: SessionClose,
  ): Promise<{ session: ChatSessionRow; queue: boolean; retry: boolean } | null> {
    const change =
      close.status === 'resolved'
        ? { status: close.status, ...(close.resolutionSummary !== undefined ? { resolutionSummary: close.resolutionSummary } : {}) }
        : { status: close.status, escalationReason: close.escalationReason };
    return this.db.transaction(async (tx) => {
      const [session] = await tx
        .update(chatSessions)
        .set({ ...change, updatedAt: sql`now()` })
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

  /**
   * Keeps the final notes and their resolution outputs. The resolution summary the user gave when
   * resolving stays; the notes' Resolution fills it only when there is none.
   */
  async storeDocumentation(sessionId: string, documentation: string, outputs: StoredOutputs, db: DbOrTx = this.db): Promise<void> {
    await db
      .update(chatSessions)
      .set({
        documentation,
        documentationStatus: publicStatus('notes', 'succeeded'),
        problemSummary: outputs.problemSummary,
        diagnosticSteps: outputs.diagnosticSteps,
        resolutionSummary: sql`coalesce(nullif(btrim(${chatSessions.resolutionSummary}), ''), ${outputs.resolutionSummary})`,
      })
      .where(eq(chatSessions.id, sessionId));
  }

  /** Keeps (or replaces) the session's embedding. */
  async storeEmbedding(input: { sessionId: string; userId: string; model: string; vector: number[] }): Promise<void> {
    const { sessionId, userId, model, vector } = input;
    await this.db
      .insert(chatSessionEmbeddings)
      .values({ sessionId, userId, model, vector })
      .onConflictDoUpdate({ target: chatSessionEmbeddings.sessionId, set: { model, vector, updatedAt: sql`now()` } });
  }

  /** The embedding of one session, if it has one. */
  async embeddingOf(sessionId: string): Promise<{ model: string; vector: number[] } | null> {
    const [row] = await this.db
      .select({ model: chatSessionEmbeddings.model, vector: chatSessionEmbeddings.vector })
      .from(chatSessionEmbeddings)
      .where(eq(chatSessionEmbeddings.sessionId, sessionId));
    return row ?? null;
  }

  /** The user's resolved sessions embedded by `model`, most recently embedded first (at most {@link SIMILAR_SCAN_LIMIT}). */
  async embeddedResolved(userId: string, model: string): Promise<EmbeddedSession[]> {
    return this.db
      .select({
        sessionId: chatSessions.id,
        title: chatSessions.title,
        problemSummary: chatSessions.problemSummary,
        resolutionSummary: chatSessions.resolutionSummary,
        updatedAt: chatSessions.updatedAt,
        vector: chatSessionEmbeddings.vector,
      })
      .from(chatSessionEmbeddings)
      .innerJoin(chatSessions, eq(chatSessions.id, chatSessionEmbeddings.sessionId))
      .where(
        and(
          eq(chatSessionEmbeddings.userId, userId),
          eq(chatSessions.userId, userId),
          eq(chatSessionEmbeddings.model, model),
          eq(chatSessions.status, 'resolved'),
        ),
      )
      .orderBy(desc(chatSessionEmbeddings.updatedAt))
      .limit(SIMILAR_SCAN_LIMIT);
  }
}
