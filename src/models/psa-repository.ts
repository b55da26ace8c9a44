import { and, eq, sql } from 'drizzle-orm';
import type { Db } from './database';
import { chatSessions, psaConnections, type PsaConnectionRow } from './schema';

export type PsaPushStatus = 'sent' | 'pending_retry' | 'no_psa' | 'failed';

/** A connection as stored, its credentials still sealed. */
export type NewPsaConnection = Omit<PsaConnectionRow, 'createdAt' | 'updatedAt'>;

/** `psa_connections` and the PSA columns of `chat_sessions`. */
export class PsaRepository {
  constructor(private readonly db: Db) {}

  /** Creates or replaces the user's one connection. */
  async upsert(connection: NewPsaConnection): Promise<PsaConnectionRow> {
    const { userId, ...rest } = connection;
    const [row] = await this.db
      .insert(psaConnections)
      .values(connection)
      .onConflictDoUpdate({ target: psaConnections.userId, set: { ...rest, updatedAt: sql`now()` } })
      .returning();
    void userId;
    return row;
  }

  async get(userId: string): Promise<PsaConnectionRow | null> {
    const [row] = await this.db.select().from(psaConnections).where(eq(psaConnections.userId, userId));
    return row ?? null;
  }

  async remove(userId: string): Promise<boolean> {
    const rows = await this.db.delete(psaConnections).where(eq(psaConnections.userId, userId)).returning({ userId: psaConnections.userId });
    return rows.length > 0;
  }

  /** Sets a session's ticket id (its owner's session only); false when there is no such session. */
  async setTicket(userId: string, sessionId: string, ticketId: string): Promise<boolean> {
    const rows = await this.db
      .update(chatSessions)
      .set({ psaTicketId: ticketId })
      .where(and(eq(chatSessions.id, sessionId), eq(chatSessions.userId, userId)))
      .returning({ id: chatSessions.id });
    return rows.length > 0;
  }

  /**
   * Claims the push of a session's notes: `pending_retry` unless they were already sent (or a push
   * is already pending). True when this call claimed it, so exactly one caller queues the push.
   */
  async claimPush(sessionId: string): Promise<boolean> {
    const rows = await this.db
      .update(chatSessions)
      .set({ psaPushStatus: 'pending_retry', psaPushError: null })
      .where(
        and(
          eq(chatSessions.id, sessionId),
          sql`${chatSessions.psaPushStatus} is distinct from 'sent' and ${chatSessions.psaPushStatus} is distinct from 'pending_retry'`,
        ),
      )
      .returning({ id: chatSessions.id });
    return rows.length > 0;
  }

  /** Records how a push went. */
  async setPush(
    sessionId: string,
    push: { status: PsaPushStatus; error?: string | null; memberMappingWarning?: string | null },
  ): Promise<void> {
    await this.db
      .update(chatSessions)
      .set({
        psaPushStatus: push.status,
        psaPushError: push.error ?? null,
        ...(push.memberMappingWarning !== undefined ? { memberMappingWarning: push.memberMappingWarning } : {}),
      })
      .where(eq(chatSessions.id, sessionId));
  }
}
