import { and, desc, eq, inArray, isNotNull, isNull, lt, or, sql, type SQL, type SQLWrapper } from 'drizzle-orm';
import { alias } from 'drizzle-orm/pg-core';
import type { Db, DbOrTx, Tx } from './database';
import { rowsOf } from './migrate';
import { preparedOnce } from './prepared';
import { insertRun, moveRun, runAfterStart, runFromRaw, startRun, type NewRun, type RawRun, type RunMove } from './runs-repository';
import {
  canvasMembers,
  chatMessages,
  chatSessions,
  flows,
  runs,
  type ChatMessageRow,
  type ChatSessionRow,
  type FlowRow,
  type RunRow,
  type TaskLane,
} from './schema';
import { usageInsert, withCtes, type UsageRecord } from './usage-repository';

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

/** A user message that has no assistant answer yet (its turn is running, queued or parked). */
const unanswered = sql`not exists (select 1 from ${chatMessages} answer where answer.reply_to = ${chatMessages.id} and answer.role = 'assistant')`;

/**
 * The user messages of session `session` (an SQL expression) whose turns' runs are open (queued,
 * running or parked), as `message` joined to `run`: a session's lane, oldest first by `message.seq`.
 */
const openTurnsOf = (session: SQL) => sql`chat_messages message
      join runs run on run.kind = 'chat' and run.id = message.id and run.status in ('queued', 'running', 'waiting')
      where message.session_id = ${session} and message.role = 'user'`;

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
  /** The canvas whose room thread it is. */
  canvasId?: string;
  multitask?: ChatSessionRow['multitask'];
}

/** Who sent a user message of a room thread (the member who pays for its turn) and the name they sent it under. */
export interface MessageAuthor {
  id: string;
  name: string;
}

/** A session and the caller's standing on it: `owner` of a private session, else their role on the thread's canvas. */
export interface SessionAccess {
  session: ChatSessionRow;
  role: 'owner' | 'editor' | 'viewer';
}

/**
 * What a worker reads when it starts a turn: the turn's session, its user message, the assistant's
 * answer to it if one was stored (a re-run turn must not answer twice), whether the session holds
 * a message before it (else the turn has no history to read), and the session's flow (a chatflow's
 * prompt and model; null for an assistant session).
 */
export interface TurnRows {
  session: ChatSessionRow;
  message: ChatMessageRow;
  reply: ChatMessageRow | null;
  earlier: boolean;
  /** An earlier turn of the session is still open: this one waits its turn in the session's lane. */
  blocked: boolean;
  flow: FlowRow | null;
}

/** Assistant sessions and their messages. Every read by id is scoped to the owner. */
export class ChatRepository {
  constructor(private readonly db: Db) {}

  // On every chat turn's way to its model request: built once and bound per call; building
  // this select (five tables' columns) was the largest part of a worker's CPU per turn.
  private readonly startTurnQuery = preparedOnce((name) => {
    const messageId = sql.placeholder('messageId');
    const moved = this.db.$with('moved', { id: runs.id }).as(
      startRun('chat', messageId, {
        from: sql.placeholder('from'),
        anyway: sql.placeholder('anyway'),
        also: sql`not exists (select 1 from chat_messages answer where answer.reply_to = ${messageId}::uuid and answer.role = 'assistant')
          and (status <> 'queued' or not ${earlierOpenTurn(messageId)})`,
      }),
    );
    return (
      this.db
        .with(moved)
        .select({
          // The moved run, else the run as it was (the statement's snapshot: nothing moved it).
          run: sql<(RawRun & { started: boolean }) | null>`${runAfterStart('chat', messageId)}`,
          session: chatSessions,
          message: chatMessages,
          reply: answers,
          earlier: sql<boolean>`exists(select 1 from ${chatMessages} before where before.session_id = ${chatMessages.sessionId} and before.seq < ${chatMessages.seq})`,
          blocked: sql<boolean>`${earlierOpenTurn(messageId)}`,
          flow: flows,
        })
        // One row whatever is missing: the run's answer does not depend on the message being there.
        .from(sql`(select 1) as turn`)
        .leftJoin(chatMessages, eq(chatMessages.id, sql.placeholder('messageId')))
        .leftJoin(chatSessions, eq(chatSessions.id, chatMessages.sessionId))
        .leftJoin(answers, and(eq(answers.replyTo, chatMessages.id), sql`${answers.role} = 'assistant'`))
        .leftJoin(flows, eq(flows.id, chatSessions.flowId))
        .prepare(name)
    );
  });

  /** A new session. */
  async createSession(input: NewChatSession): Promise<ChatSessionRow> {
    const [row] = await this.db.insert(chatSessions).values(input).returning();
    return row;
  }

  /**
   * A new session and its first (user) message, in one statement: `createSession` then `addMessage`
   * without a second round trip and commit. With `run` (a turn's queued run, keyed by its message),
   * the message takes the run's id and the run is written in the same statement: all three or none.
   * Returns both ids.
   */
  async openSession(input: NewChatSession, content: string, run?: NewRun): Promise<{ sessionId: string; messageId: string }> {
    const context = input.context === undefined || input.context === null ? null : JSON.stringify(input.context);
    const session = sql`session as (
      insert into chat_sessions (user_id, device_id, title, mode, flow_id, embed_id, context)
      values (${input.userId}::uuid, ${input.deviceId}, ${input.title}, ${input.mode}, ${input.flowId ?? null}::uuid,
        ${input.embedId ?? null}::uuid, ${context}::jsonb)
      returning id
    )`;
    const result = await this.db.execute(
      withCtes(
        [runInsert(run), session],
        sql`insert into chat_messages (id, session_id, role, content)
          select coalesce(${run?.id ?? null}::uuid, gen_random_uuid()), session.id, 'user', ${content} from session
          returning id as message_id, session_id`,
      ),
    );
    const [row] = rowsOf<{ message_id: string; session_id: string }>(result);
    return { sessionId: row.session_id, messageId: row.message_id };
  }

  /**
   * A user message that starts a turn in an existing session, under its run's id, and the turn's
   * queued run, in one statement: both or neither. Returns the message's id (the run's).
   */
  async addTurn(sessionId: string, content: string, run: NewRun, author?: MessageAuthor, db: DbOrTx = this.db): Promise<string> {
    await db.execute(
      withCtes(
        [runInsert(run)],
        sql`insert into chat_messages (id, session_id, role, content, author_id, author_name)
          values (${run.id}::uuid, ${sessionId}::uuid, 'user', ${content}, ${author?.id ?? null}::uuid, ${author?.name ?? null})`,
      ),
    );
    return run.id;
  }

  /**
   * Runs `work` in one transaction holding the session's order lock: messages written under it
   * take their session seq in the order they took the lock, so what `work` does for each (a room
   * thread announces it) happens in that same order, and each sees the turns written before it.
   */
  inSessionOrder<T>(sessionId: string, work: (tx: Tx) => Promise<T>): Promise<T> {
    return this.db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`chat-session-order:${sessionId}`}))`);
      return work(tx);
    });
  }

  /**
   * The session and `userId`'s standing on it: the owner of a private session; for a room thread,
   * the member's role on its canvas (the canvas's members, not the session's creator, decide). Null
   * when the user may not read it (callers answer 404 either way).
   */
  async findAccessible(userId: string, sessionId: string): Promise<SessionAccess | null> {
    const rows = await this.db
      .select({ session: chatSessions, memberRole: canvasMembers.role })
      .from(chatSessions)
      .leftJoin(canvasMembers, and(eq(canvasMembers.canvasId, chatSessions.canvasId), eq(canvasMembers.userId, userId)))
      .where(eq(chatSessions.id, sessionId))
      .limit(1);
    const found = rows[0];
    if (!found) return null;
    if (found.session.canvasId) return found.memberRole ? { session: found.session, role: found.memberRole } : null;
    return found.session.userId === userId ? { session: found.session, role: 'owner' } : null;
  }

  /** The threads of a canvas, most recently active first, `limit` after the (updatedAt, id) cursor. */
  async listThreads(canvasId: string, options: { limit: number; after?: { updatedAt: Date; id: string } }): Promise<ChatSessionRow[]> {
    const { after } = options;
    const page = after
      ? or(lt(chatSessions.updatedAt, after.updatedAt), and(eq(chatSessions.updatedAt, after.updatedAt), lt(chatSessions.id, after.id)))
      : undefined;
    return this.db
      .select()
      .from(chatSessions)
      .where(and(eq(chatSessions.canvasId, canvasId), page))
      .orderBy(desc(chatSessions.updatedAt), desc(chatSessions.id))
      .limit(options.limit);
  }

  /** The canvas of a session's room thread (null for a private session); undefined when the session is gone. */
  async canvasOf(sessionId: string): Promise<string | null | undefined> {
    const rows = await this.db
      .select({ canvasId: chatSessions.canvasId })
      .from(chatSessions)
      .where(eq(chatSessions.id, sessionId))
      .limit(1);
    return rows[0] ? rows[0].canvasId : undefined;
  }

  /** Keeps the room seq of a thread message's `message` event (where a late joiner replays its turn from). */
  async setRoomSeq(messageId: string, seq: number, db: DbOrTx = this.db): Promise<void> {
    await db.update(chatMessages).set({ roomSeq: seq }).where(eq(chatMessages.id, messageId));
  }

  /** The thread's open turns (queued, running or parked), oldest first, with their authors and room seqs. */
  async openThreadTurns(
    sessionId: string,
  ): Promise<Array<{ id: string; authorId: string | null; authorName: string | null; roomSeq: number | null }>> {
    const result = await this.db.execute(sql`
      select message.id, message.author_id, message.author_name, message.room_seq from ${openTurnsOf(sql`${sessionId}::uuid`)}
      order by message.seq limit 100`);
    return rowsOf<{ id: string; author_id: string | null; author_name: string | null; room_seq: string | number | null }>(result).map(
      (row) => ({
        id: row.id,
        authorId: row.author_id,
        authorName: row.author_name,
        roomSeq: row.room_seq === null ? null : Number(row.room_seq),
      }),
    );
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

  /** Keeps the session's task lane as the client left it; false when `userId` owns no such session. */
  async setTaskLane(userId: string, sessionId: string, lane: TaskLane | null): Promise<boolean> {
    const rows = await this.db
      .update(chatSessions)
      .set({ pendingTaskLane: lane })
      .where(and(eq(chatSessions.id, sessionId), eq(chatSessions.userId, userId)))
      .returning({ id: chatSessions.id });
    return rows.length > 0;
  }

  /** Records which coding agent works on the session now (a routed turn, or a plan step). */
  async setCodingAgent(sessionId: string, agent: NonNullable<ChatSessionRow['codingAgent']>): Promise<void> {
    await this.db.update(chatSessions).set({ codingAgent: agent }).where(eq(chatSessions.id, sessionId));
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

  /**
   * Rates assistant answer `messageId` of session `sessionId` for the session's owner `userId`,
   * replacing an earlier rating; null when the answer is not one of the owner's (nothing written).
   */
  async rateAnswer(
    userId: string,
    sessionId: string,
    messageId: string,
    rating: { rating: 'up' | 'down'; comment: string | null },
  ): Promise<ChatMessageRow | null> {
    const owned = this.db
      .select({ id: chatSessions.id })
      .from(chatSessions)
      .where(and(eq(chatSessions.id, sessionId), eq(chatSessions.userId, userId)));
    const rows = await this.db
      .update(chatMessages)
      .set({ rating: rating.rating, ratingComment: rating.comment, ratedAt: new Date() })
      .where(
        and(
          eq(chatMessages.id, messageId),
          eq(chatMessages.sessionId, sessionId),
          eq(chatMessages.role, 'assistant'),
          inArray(chatMessages.sessionId, owned),
        ),
      )
      .returning();
    return rows[0] ?? null;
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
   * Starts turn `messageId` in ONE statement: its run moves to `running` (when it is in
   * `move.from`, no cancel was asked for when `move.unlessCancelRequested`, and no answer is stored:
   * an answered turn has ended) and the turn's rows are read (`TurnRows`; null when its message is
   * gone). Returns the run as it now is (null when the turn has none) and whether this call started it.
   */
  async startTurn(
    messageId: string,
    move: Pick<RunMove, 'from' | 'unlessCancelRequested'>,
  ): Promise<{ run: RunRow | null; started: boolean; row: TurnRows | null }> {
    const [found] = await this.startTurnQuery().execute({
      messageId,
      from: move.from.join(','),
      anyway: !move.unlessCancelRequested,
    });
    const row =
      found?.message && found.session
        ? {
            session: found.session,
            message: found.message,
            reply: found.reply ?? null,
            earlier: Boolean(found.earlier),
            blocked: Boolean(found.blocked),
            flow: found.flow ?? null,
          }
        : null;
    return found?.run ? { run: runFromRaw(found.run), started: found.run.started, row } : { run: null, started: false, row };
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

  /**
   * The session's turns whose runs are open (queued, running or parked), oldest first: the session's
   * lane. The first is the one that runs; the others wait behind it.
   */
  async openTurns(sessionId: string, limit = 100, db: DbOrTx = this.db): Promise<string[]> {
    const result = await db.execute(
      sql`select message.id from ${openTurnsOf(sql`${sessionId}::uuid`)} order by message.seq limit ${limit}`,
    );
    return rowsOf<{ id: string }>(result).map((row) => row.id);
  }

  /**
   * The first open turn of the session's lane, read after every turn before it ends: a run whose end
   * is being written is waited for (its row is locked), so a turn queued while the one before it
   * ends is never missed by both that end and this read.
   */
  async laneHead(sessionId: string): Promise<string | undefined> {
    const result = await this.db.execute(
      sql`select message.id from ${openTurnsOf(sql`${sessionId}::uuid`)} order by message.seq limit 1 for share of run`,
    );
    return rowsOf<{ id: string }>(result)[0]?.id;
  }

  /** Marks turns (their user messages) rolled back: the end of each removes its messages. */
  async requestRollback(messageIds: readonly string[]): Promise<void> {
    if (!messageIds.length) return;
    await this.db
      .update(chatMessages)
      .set({ rollbackRequestedAt: new Date() })
      .where(and(inArray(chatMessages.id, [...messageIds]), eq(chatMessages.role, 'user')));
  }

  /**
   * Removes a turn marked rolled back: its user message, its answer and its tool results. Nothing
   * when it was not marked. Returns how many messages went.
   */
  async forgetRolledBack(messageId: string): Promise<number> {
    const result = await this.db.execute(sql`
      delete from chat_messages
      where (id = ${messageId}::uuid or reply_to = ${messageId}::uuid)
        and exists (select 1 from chat_messages turn where turn.id = ${messageId}::uuid and turn.rollback_requested_at is not null)
      returning id`);
    return rowsOf<{ id: string }>(result).length;
  }

  /** Keeps the session's multitask strategy (null: the default); false when `userId` owns no such session. */
  async setMultitask(userId: string, sessionId: string, multitask: ChatSessionRow['multitask']): Promise<boolean> {
    const rows = await this.db
      .update(chatSessions)
      .set({ multitask })
      .where(and(eq(chatSessions.id, sessionId), eq(chatSessions.userId, userId)))
      .returning({ id: chatSessions.id });
    return rows.length > 0;
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

  /** A turn (its user message) with its user (a thread message's sender, else the session's owner) and device; null when either is gone. */
  async findTurn(messageId: string, db: DbOrTx = this.db): Promise<{ sessionId: string; userId: string; deviceId: string | null } | null> {
    const rows = await db
      // A room thread's turn is its sender's: they pay for it, and only they may stop it.
      .select({
        sessionId: chatMessages.sessionId,
        userId: sql<string>`coalesce(${chatMessages.authorId}, ${chatSessions.userId})`,
        deviceId: chatSessions.deviceId,
      })
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
   * insert a no-op), marks the session active now (with the device that answered, when given), and
   * writes `usage` (the usage lines of the turn's model calls not recorded yet), in one statement.
   * In the transaction that ends the turn's run, so the answer, its usage and the run's end commit together.
   */
  async storeAnswer(
    reply: NewChatMessage & { replyTo: string },
    db: DbOrTx,
    answeredBy?: { deviceId?: string },
    usage: readonly UsageRecord[] = [],
  ): Promise<void> {
    await db.execute(withCtes([usageInsert(usage), ...answerWrites(reply, answeredBy)], sql`select 1`));
  }

  /**
   * Ends turn `messageId` in ONE statement: its run's `move`, and only when the run moved, what
   * the end keeps: `answer` as `storeAnswer` stores it, and the `usage` lines. Both or neither, as
   * the transaction of a run's end would. The moved run and the next turn of its session's lane (the
   * first open turn after it, as the statement saw them), or null when the run was not in `move.from`.
   */
  async endTurn(
    messageId: string,
    move: RunMove,
    keep: { answer?: NewChatMessage & { replyTo: string }; answeredBy?: { deviceId?: string }; usage: readonly UsageRecord[] },
  ): Promise<{ run: RunRow; nextTurn: string | null } | null> {
    const moved = sql`exists (select 1 from moved)`;
    const session = sql`(select session_id from chat_messages where id = ${messageId}::uuid)`;
    const result = await this.db.execute(
      withCtes(
        [
          moveRun('chat', messageId, move),
          usageInsert(keep.usage, moved),
          ...(keep.answer ? answerWrites(keep.answer, keep.answeredBy, moved) : []),
        ],
        sql`select to_jsonb(moved) as run, (
          select message.id from ${openTurnsOf(session)} and message.id <> ${messageId}::uuid order by message.seq limit 1
        ) as next_turn from moved`,
      ),
    );
    const [row] = rowsOf<{ run: RawRun; next_turn: string | null }>(result);
    return row ? { run: runFromRaw(row.run), nextTurn: row.next_turn } : null;
  }

  /** Every message of a session, oldest first. */
  async history(sessionId: string): Promise<ChatMessageRow[]> {
    return this.db.select().from(chatMessages).where(eq(chatMessages.sessionId, sessionId)).orderBy(chatMessages.seq);
  }

  /**
   * Up to `limit` of the session's latest messages before message `beforeSeq` (all when absent),
   * newest first: a history page walks back from the end of the conversation.
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
   * A page of the messages of every session `userId` has with flow `flowId`, newest first (by
   * `seq`, which orders messages across sessions), before message `beforeSeq` when given.
   */
  async flowHistoryPage(userId: string, flowId: string, options: { limit: number; beforeSeq?: number }): Promise<ChatMessageRow[]> {
    const before = options.beforeSeq === undefined ? undefined : lt(chatMessages.seq, options.beforeSeq);
    const rows = await this.db
      .select({ message: chatMessages })
      .from(chatMessages)
      .innerJoin(chatSessions, eq(chatSessions.id, chatMessages.sessionId))
      .where(and(eq(chatSessions.userId, userId), eq(chatSessions.flowId, flowId), before))
      .orderBy(desc(chatMessages.seq))
      .limit(options.limit);
    return rows.map((row) => row.message);
  }

  /** The sessions of `ids` that `userId` owns. */
  async findManyOwned(userId: string, ids: string[]): Promise<ChatSessionRow[]> {
    if (ids.length === 0) return [];
    return this.db
      .select()
      .from(chatSessions)
      .where(and(eq(chatSessions.userId, userId), inArray(chatSessions.id, ids)));
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
        and(
          eq(chatMessages.sessionId, sessionId),
          sql`${chatMessages.role} in ('user', 'assistant')`,
          // A turn that waited in the session's lane also reads the answers of the turns before it,
          // stored after its own message.
          or(
            lt(chatMessages.seq, beforeSeq),
            sql`${chatMessages.role} = 'assistant' and ${chatMessages.replyTo} in (select earlier.id from chat_messages earlier
              where earlier.session_id = ${sessionId}::uuid and earlier.seq < ${beforeSeq})`,
          ),
        ),
      )
      .orderBy(desc(chatMessages.seq))
      .limit(limit);
    return rows.reverse();
  }
}

/** Whether an earlier turn of turn `messageId`'s session is still open (the session's lane is busy before it). */
function earlierOpenTurn(messageId: SQLWrapper): SQL {
  return sql`exists (select 1 from chat_messages mine
    join chat_messages before on before.session_id = mine.session_id and before.seq < mine.seq and before.role = 'user'
    join runs earlier_run on earlier_run.kind = 'chat' and earlier_run.id = before.id and earlier_run.status in ('queued', 'running', 'waiting')
    where mine.id = ${messageId}::uuid)`;
}

/** The CTE `run` that writes a turn's queued run beside its message; null without one. */
function runInsert(run: NewRun | undefined): SQL | null {
  return run ? insertRun(run) : null;
}

/**
 * The CTEs `touched` and `answer`: a turn's answer stored unless one exists, and its session marked
 * active now (with the device that answered, when given); only when `when` holds, if given.
 */
function answerWrites(reply: NewChatMessage & { replyTo: string }, answeredBy?: { deviceId?: string }, when?: SQL): [SQL, SQL] {
  const only = when ? sql`where ${when}` : sql``;
  return [
    sql`touched as (
      update chat_sessions set updated_at = now(), device_id = coalesce(${answeredBy?.deviceId ?? null}::text, device_id)
      where id = ${reply.sessionId}::uuid ${when ? sql`and ${when}` : sql``}
    )`,
    sql`answer as (
      insert into chat_messages (session_id, role, content, reply_to, tool_name, provider, model, input_tokens, output_tokens, cost_usd, status)
      select ${reply.sessionId}::uuid, ${reply.role}, ${reply.content}, ${reply.replyTo}::uuid, ${reply.toolName ?? null},
        ${reply.provider ?? null}, ${reply.model ?? null}, ${reply.inputTokens ?? 0}::int, ${reply.outputTokens ?? 0}::int,
        ${reply.costUsd ?? 0}::float8, ${reply.status ?? 'completed'}
      ${only}
      on conflict (reply_to) where role = 'assistant' do nothing
    )`,
  ];
}
