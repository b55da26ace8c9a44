import { and, desc, eq, isNotNull, isNull, lt, or, sql } from 'drizzle-orm';
import { alias } from 'drizzle-orm/pg-core';
import type { Db, DbOrTx } from './database';
import { rowsOf } from './migrate';
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

/** The assistant's answers, joined to the messages they answer. */
const answers = alias(chatMessages, 'answer');

/** A new chat session: a chatflow's carries `flowId`, and `embedId` when a public widget started it. */
export interface NewChatSession {
  userId: string;
  deviceId: string | null;
  title: string;
  mode: ChatSessionRow['mode'];
  flowId?: string;
  embedId?: string;
  context?: Record<string, unknown> | null;
}

/** Assistant sessions and their messages. Every read by id is scoped to the owner. */
export class ChatRepository {
  constructor(private readonly db: Db) {}

  /** A new session. */
  async createSession(input: NewChatSession): Promise<ChatSessionRow> {
    const [row] = await this.db.insert(chatSessions).values(input).returning();
    return row;
  }

  /**
   * A new session and its first (user) message, in one statement: `createSession` then `addMessage`
   * without a second round trip and commit. Returns both ids.
   */
  async openSession(input: NewChatSession, content: string): Promise<{ sessionId: string; messageId: string }> {
    const context = input.context === undefined || input.context === null ? null : JSON.stringify(input.context);
    const result = await this.db.execute(sql`
      with session as (
        insert into chat_sessions (user_id, device_id, title, mode, flow_id, embed_id, context)
        values (${input.userId}::uuid, ${input.deviceId}, ${input.title}, ${input.mode}, ${input.flowId ?? null}::uuid,
          ${input.embedId ?? null}::uuid, ${context}::jsonb)
        returning id
      )
      insert into chat_messages (session_id, role, content)
      select session.id, 'user', ${content} from session
      returning id as message_id, session_id`);
    const [row] = rowsOf<{ message_id: string; session_id: string }>(result);
    return { sessionId: row.session_id, messageId: row.message_id };
  }

  /**
   * The user's sessions, most recently active first, `limit` after the (updatedAt, id) cursor.
   * `kind: 'assistant'` keeps the assistant's own conversations (no flow), `'flow'` only those of
   * chatflows (the owner's and their embeds' visitors').
   */
  async listOwned(
    userId: string,
    options: { limit: number; after?: { updatedAt: Date; id: string }; kind?: 'assistant' | 'flow' },
  ): Promise<ChatSessionRow[]> {
    const { after, kind } = options;
    const page = after
      ? or(lt(chatSessions.updatedAt, after.updatedAt), and(eq(chatSessions.updatedAt, after.updatedAt), lt(chatSessions.id, after.id)))
      : undefined;
    const ofKind = kind === 'assistant' ? isNull(chatSessions.flowId) : kind === 'flow' ? isNotNull(chatSessions.flowId) : undefined;
    return this.db
      .select()
      .from(chatSessions)
      .where(and(eq(chatSessions.userId, userId), ofKind, page))
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

  /**
   * What a worker needs to start a turn, in one statement: the session if `userId` owns it, the
   * user message `messageId` in it, and the assistant's answer to that message if one was stored
   * (a retried turn must not answer twice). `earlier`: whether the session holds a message before
   * it (else the turn has no history to read). Null when the session or the message is gone.
   */
  async turnStart(
    userId: string,
    sessionId: string,
    messageId: string,
  ): Promise<{ session: ChatSessionRow; message: ChatMessageRow; reply: ChatMessageRow | null; earlier: boolean } | null> {
    const rows = await this.db
      .select({
        session: chatSessions,
        message: chatMessages,
        reply: answers,
        earlier: sql<boolean>`exists(select 1 from ${chatMessages} before where before.session_id = ${chatMessages.sessionId} and before.seq < ${chatMessages.seq})`,
      })
      .from(chatMessages)
      .innerJoin(chatSessions, and(eq(chatSessions.id, chatMessages.sessionId), eq(chatSessions.userId, userId)))
      .leftJoin(
        answers,
        and(eq(answers.sessionId, chatMessages.sessionId), eq(answers.replyTo, chatMessages.id), eq(answers.role, 'assistant')),
      )
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
   * Stores the answer of a turn unless one exists (a retried end: the unique answer index makes the
   * insert a no-op), and marks the session active now (with the device that answered, when given),
   * in one statement. In the transaction that ends the turn's run, so the answer and the run's end
   * commit together.
   */
  async storeAnswer(reply: NewChatMessage & { replyTo: string }, db: DbOrTx, answeredBy?: { deviceId?: string }): Promise<void> {
    await db.execute(sql`
      with touched as (
        update chat_sessions set updated_at = now(), device_id = coalesce(${answeredBy?.deviceId ?? null}::text, device_id)
        where id = ${reply.sessionId}::uuid
      )
      insert into chat_messages (session_id, role, content, reply_to, tool_name, provider, model, input_tokens, output_tokens, cost_usd, status)
      values (${reply.sessionId}::uuid, ${reply.role}, ${reply.content}, ${reply.replyTo}::uuid, ${reply.toolName ?? null},
        ${reply.provider ?? null}, ${reply.model ?? null}, ${reply.inputTokens ?? 0}::int, ${reply.outputTokens ?? 0}::int,
        ${reply.costUsd ?? 0}::float8, ${reply.status ?? 'completed'})
      on conflict (reply_to) where role = 'assistant' do nothing`);
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
