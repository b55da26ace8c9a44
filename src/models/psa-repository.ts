import { and, eq, sql } from 'drizzle-orm';
import type { Db } from './database';
import { chatSessions, psaConnections, type PsaConnectionRow } from './schema';

export type PsaPushStatus = 'sent' | 'pending_retry' | 'no_psa' | 'failed';

/** One claim of a session's push: its id names the push job. */
export interface PushClaim {
  claim: string;
  notesReady: boolean;
}

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
   * is already pending), under a new claim id. Null when nothing was claimed. `notesReady` is read
   * from the claimed row itself: notes stored before the claim are seen by it, notes stored after
   * it see the claim.
   */
  async claimPush(sessionId: string): Promise<PushClaim | null> {
    const [row] = await this.db
      .update(chatSessions)
      .set({ psaPushStatus: 'pending_retry', psaPushError: null, psaPushClaim: sql`gen_random_uuid()` })
      .where(
        and(
          eq(chatSessions.id, sessionId),
          sql`${chatSessions.psaPushStatus} is distinct from 'sent' and ${chatSessions.psaPushStatus} is distinct from 'pending_retry'`,
        ),
      )
      .returning({ claim: chatSessions.psaPushClaim, documentationStatus: chatSessions.documentationStatus });
    return row ? { claim: row.claim!, notesReady: row.documentationStatus === 'ready' } : null;
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
