import { and, desc, eq, isNull, lt, or, sql } from 'drizzle-orm';
import type { Db, DbOrTx } from './database';
import { chatMessages, chatSessions, type ChatMessageRow, type ChatSessionRow } from './schema';

export type ChatRole = ChatMessageRow['role'];

/** What a stored message may carry besides its text. */
export interface NewChatMessage {
  sessionId: string;
  role: ChatRole;
  content: string;
  replyTo?: string | null;
  toolName?: string | null;
  provider?: string | null;
  model?: string | null;
  inputTokens?: number;
  outputTokens?: number;
  costUsd?: number;
  /** `cancelled`: an answer cut short by a cancel. */
  status?: ChatMessageRow['status'];
}

/** The public view of a message (`GET /chat/sessions/:id/history`). */
export function toChatMessageView(row: ChatMessageRow) {
  return {
    id: row.id,
    role: row.role,
    content: row.content,
    toolName: row.toolName,
    replyTo: row.replyTo,
    /** `completed`, or `cancelled` for an answer cut short by a cancel. */
    status: row.status,
    usage: row.model
      ? { provider: row.provider, model: row.model, inputTokens: row.inputTokens, outputTokens: row.outputTokens, costUsd: row.costUsd }
      : null,
    createdAt: row.createdAt.toISOString(),
  };
}

/** The public view of a session. */
export function toChatSessionView(row: ChatSessionRow) {
  return {
    id: row.id,
    deviceId: row.deviceId,
    status: row.status,
    mode: row.mode,
    flowId: row.flowId,
    /** Set on a session started through a chatflow's public widget (decision 0121). */
    embedId: row.embedId,
    escalationReason: row.escalationReason,
    /** What the user's app sent as the conversation's context (the latest request that carried one); null when none. */
    context: row.context ?? null,
    title: row.title,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

/** A user message that has no assistant answer yet (its turn is running, queued or parked). */
const unanswered = sql`not exists (select 1 from ${chatMessages} answer where answer.reply_to = ${chatMessages.id} and answer.role = 'assistant')`;

/** Assistant sessions and their messages. Every read by id is scoped to the owner. */
export class ChatRepository {
  constructor(private readonly db: Db) {}

  /** A new session; a chatflow's carries `flowId`, and `embedId` when a public widget started it. */
  async createSession(input: {
    userId: string;
    deviceId: string | null;
    title: string;
    mode: ChatSessionRow['mode'];
    flowId?: string;
    embedId?: string;
    context?: Record<string, unknown> | null;
  }): Promise<ChatSessionRow> {
    const [row] = await this.db.insert(chatSessions).values(input).returning();
    return row;
  }

  /** The user's sessions, most recently active first, `limit` after the (updatedAt, id) cursor. */
  async listOwned(userId: string, options: { limit: number; after?: { updatedAt: Date; id: string } }): Promise<ChatSessionRow[]> {
    const { after } = options;
    const page = after
      ? or(lt(chatSessions.updatedAt, after.updatedAt), and(eq(chatSessions.updatedAt, after.updatedAt), lt(chatSessions.id, after.id)))
      : undefined;
    return this.db
      .select()
      .from(chatSessions)
      .where(and(eq(chatSessions.userId, userId), page))
      .orderBy(desc(chatSessions.updatedAt), desc(chatSessions.id))
      .limit(options.limit);
  }

  /** Marks the session escalated, keeping the reason; false when `userId` does not own it. */
  async escalate(userId: string, sessionId: string, reason: string | null): Promise<boolean> {
    const rows = await this.db
      .update(chatSessions)
      .set({ status: 'escalated', escalationReason: reason, updatedAt: new Date() })
      .where(and(eq(chatSessions.id, sessionId), eq(chatSessions.userId, userId)))
      .returning({ id: chatSessions.id });
    return rows.length > 0;
  }

  /** The session if `userId` owns it; null otherwise (callers answer 404 either way). */
  async findOwned(userId: string, sessionId: string): Promise<ChatSessionRow | null> {
    const rows = await this.db
      .select()
      .from(chatSessions)
      .where(and(eq(chatSessions.id, sessionId), eq(chatSessions.userId, userId)))
      .limit(1);
    return rows[0] ?? null;
  }

  /** Replaces the session's context (null clears it); false when `userId` does not own the session. */
  async setContext(userId: string, sessionId: string, context: Record<string, unknown> | null): Promise<boolean> {
    const rows = await this.db
      .update(chatSessions)
      .set({ context, updatedAt: new Date() })
      .where(and(eq(chatSessions.id, sessionId), eq(chatSessions.userId, userId)))
      .returning({ id: chatSessions.id });
    return rows.length > 0;
  }

  /** The session was active now; a device turn also records which device answered. */
  async touch(sessionId: string, deviceId?: string, db: DbOrTx = this.db): Promise<void> {
    await db
      .update(chatSessions)
      .set({ ...(deviceId ? { deviceId } : {}), updatedAt: sql`now()` })
      .where(eq(chatSessions.id, sessionId));
  }

  /** Deletes the session and (cascade) its messages; false when the user owns no such session. */
  async deleteOwned(userId: string, sessionId: string): Promise<boolean> {
    const rows = await this.db
      .delete(chatSessions)
      .where(and(eq(chatSessions.id, sessionId), eq(chatSessions.userId, userId)))
      .returning({ id: chatSessions.id });
    return rows.length > 0;
  }

  async addMessage(message: NewChatMessage): Promise<ChatMessageRow> {
    const [row] = await this.db.insert(chatMessages).values(message).returning();
    return row;
  }

  async findMessage(sessionId: string, messageId: string): Promise<ChatMessageRow | null> {
    const rows = await this.db
      .select()
      .from(chatMessages)
      .where(and(eq(chatMessages.id, messageId), eq(chatMessages.sessionId, sessionId)))
      .limit(1);
    return rows[0] ?? null;
  }

  /** The assistant's answer to a user message, if one was stored (a retried turn must not answer twice). */
  async findReply(sessionId: string, messageId: string, db: DbOrTx = this.db): Promise<ChatMessageRow | null> {
    const rows = await db
      .select()
      .from(chatMessages)
      .where(and(eq(chatMessages.sessionId, sessionId), eq(chatMessages.replyTo, messageId), eq(chatMessages.role, 'assistant')))
      .limit(1);
    return rows[0] ?? null;
  }

  /** The session's latest user message without an answer (its turn is queued, running or parked). */
  async runningTurn(sessionId: string): Promise<ChatMessageRow | null> {
    const rows = await this.db
      .select()
      .from(chatMessages)
      .where(and(eq(chatMessages.sessionId, sessionId), eq(chatMessages.role, 'user'), unanswered))
      .orderBy(desc(chatMessages.seq))
      .limit(1);
    return rows[0] ?? null;
  }

  /** A turn (its user message) with the session's owner and device; null when either is gone. */
  async findTurn(messageId: string, db: DbOrTx = this.db): Promise<{ sessionId: string; userId: string; deviceId: string | null } | null> {
    const rows = await db
      .select({ sessionId: chatMessages.sessionId, userId: chatSessions.userId, deviceId: chatSessions.deviceId })
      .from(chatMessages)
      .innerJoin(chatSessions, eq(chatSessions.id, chatMessages.sessionId))
      .where(eq(chatMessages.id, messageId))
      .limit(1);
    return rows[0] ?? null;
  }

  /** The session of the latest unanswered turn asked from `deviceId` (the device's running turn). */
  async runningSessionOnDevice(userId: string, deviceId: string): Promise<string | null> {
    const rows = await this.db
      .select({ sessionId: chatMessages.sessionId })
      .from(chatMessages)
      .innerJoin(chatSessions, eq(chatSessions.id, chatMessages.sessionId))
      .where(
        and(
          eq(chatSessions.userId, userId),
          eq(chatSessions.deviceId, deviceId),
          eq(chatMessages.role, 'user'),
          isNull(chatMessages.replyTo),
          unanswered,
        ),
      )
      .orderBy(desc(chatMessages.seq))
      .limit(1);
    return rows[0]?.sessionId ?? null;
  }

  /**
   * Stores the answer of a turn unless one exists (a retried end); in the transaction that ended the
   * turn's run, so the answer and the run's end commit together. Returns the answer as stored.
   */
  async storeAnswer(reply: NewChatMessage & { replyTo: string }, db: DbOrTx): Promise<ChatMessageRow> {
    const existing = await this.findReply(reply.sessionId, reply.replyTo, db);
    if (existing) return existing;
    const [row] = await db.insert(chatMessages).values(reply).returning();
    return row;
  }

  /** Every message of a session, oldest first. */
  async history(sessionId: string): Promise<ChatMessageRow[]> {
    return this.db.select().from(chatMessages).where(eq(chatMessages.sessionId, sessionId)).orderBy(chatMessages.seq);
  }

  /**
   * Up to `limit` of the session's latest messages before message `beforeSeq` (all when absent),
   * newest first: a history page walks back from the end of the conversation (0100).
   */
  async historyPage(sessionId: string, options: { limit: number; beforeSeq?: number }): Promise<ChatMessageRow[]> {
    const before = options.beforeSeq === undefined ? undefined : lt(chatMessages.seq, options.beforeSeq);
    return this.db
      .select()
      .from(chatMessages)
      .where(and(eq(chatMessages.sessionId, sessionId), before))
      .orderBy(desc(chatMessages.seq))
      .limit(options.limit);
  }

  /**
   * The last `limit` user and assistant messages before message `beforeSeq`, oldest first: the
   * context of a turn. Tool results are left out: they belong to the turn that made them.
   */
  async context(sessionId: string, beforeSeq: number, limit: number): Promise<ChatMessageRow[]> {
    const rows = await this.db
      .select()
      .from(chatMessages)
      .where(
        and(eq(chatMessages.sessionId, sessionId), lt(chatMessages.seq, beforeSeq), sql`${chatMessages.role} in ('user', 'assistant')`),
      )
      .orderBy(desc(chatMessages.seq))
      .limit(limit);
    return rows.reverse();
  }
}
