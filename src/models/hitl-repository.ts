import { and, asc, desc, eq, gt, inArray, isNull, lt, lte, ne, or, sql } from 'drizzle-orm';
import type { AuditRepository } from './audit-repository';
import type { Db, DbOrTx, Tx } from './database';
import { hitlRequests, hitlVotes, type HitlRequestRow, type HitlStatus } from './schema';

/** A request belongs to an assistant turn's chat session or to an agentflow execution: exactly one of the two is set. */
export interface NewHitlRequest {
  userId: string;
  sessionId?: string;
  executionId?: string;
  messageId: string;
  deviceId: string;
  toolName: string;
  parameters: Record<string, unknown>;
  reason: string;
  continuation: unknown;
  expiresAt: Date;
  /** The one member who decides it whatever its thread's policy (the owner of a device lent to the thread). */
  addressedTo?: string | null;
}

/** What a person's decision may carry besides yes or no: the arguments an approval edited, a rejection's reply. */
export interface DecisionAnswer {
  editedArguments?: Record<string, unknown>;
  reply?: string;
}

/** A member's vote on a quorum request. */
export interface HitlVote {
  userId: string;
  approved: boolean;
}

/** What a quorum vote did: counted (and maybe decided the request), or refused. */
export type VoteOutcome =
  | { outcome: 'counted'; votes: HitlVote[]; decided: HitlRequestRow | null }
  | { outcome: 'already_voted' | 'expired' | 'missing' }
  | { outcome: 'settled'; row: HitlRequestRow };

/**
 * The session an approval is shown under: its chat session, or for an agentflow node's request its
 * execution (the id the execution's stream and events carry).
 */
export const approvalSessionId = (row: Pick<HitlRequestRow, 'sessionId' | 'executionId'>): string => row.sessionId ?? row.executionId!;

/** The public view of an approval request (`GET /hitl/requests/:id`); the continuation stays inside. */
export function toHitlView(row: HitlRequestRow) {
  return {
    id: row.id,
    sessionId: approvalSessionId(row),
    toolName: row.toolName,
    parameters: row.parameters,
    reason: row.reason,
    status: row.status,
    expiresAt: row.expiresAt.toISOString(),
    decidedAt: row.decidedAt?.toISOString() ?? null,
    decidedBy: row.decidedBy,
    /** `user`, `timeout`, or `cancelled` (the turn was cancelled); null while pending. */
    decisionReason: row.decisionReason,
    /** The one member who decides it whatever its thread's policy (the owner of a lent device); null for everyone else's. */
    addressedTo: row.addressedTo,
    /** The arguments the approver ran the call with instead of `parameters`; null when it ran as asked (or was not approved). */
    editedArguments: row.editedArguments,
    /** A rejection's message, given to the model as the tool's result; null for a plain rejection. */
    reply: row.reply,
    createdAt: row.createdAt.toISOString(),
  };
}

/** `hitl_requests`: approvals of dangerous tool calls. Reads by id are scoped to the requester. */
export class HitlRepository {
  constructor(
    private readonly db: Db,
    /** The audit trail a decision is written to in the same transaction. */
    private readonly audit: AuditRepository,
  ) {}

  async create(input: NewHitlRequest): Promise<HitlRequestRow> {
    const [row] = await this.db.insert(hitlRequests).values(input).returning();
    return row;
  }

  async find(id: string, db: DbOrTx = this.db): Promise<HitlRequestRow | null> {
    const rows = await db.select().from(hitlRequests).where(eq(hitlRequests.id, id)).limit(1);
    return rows[0] ?? null;
  }

  /** The approvals one chat turn asked for (ids and states only), to tell a parked turn from a lost one. */
  async forMessage(messageId: string): Promise<Array<{ id: string; status: HitlStatus }>> {
    return this.db
      .select({ id: hitlRequests.id, status: hitlRequests.status })
      .from(hitlRequests)
      .where(eq(hitlRequests.messageId, messageId));
  }

  /** The request if `userId` made it; null otherwise (callers answer 404 either way). */
  async findOwned(userId: string, id: string): Promise<HitlRequestRow | null> {
    const rows = await this.db
      .select()
      .from(hitlRequests)
      .where(and(eq(hitlRequests.id, id), eq(hitlRequests.userId, userId)))
      .limit(1);
    return rows[0] ?? null;
  }

  /** The requests of one turn (its user message) still waiting for a decision. */
  async pendingForMessage(messageId: string): Promise<HitlRequestRow[]> {
    return this.db
      .select()
      .from(hitlRequests)
      .where(and(eq(hitlRequests.messageId, messageId), eq(hitlRequests.status, 'pending')));
  }

  /**
   * `userId`'s requests, newest first, optionally only those in `status` (the console's approvals
   * list): up to `limit`, after request `beforeId` (the previous page's last).
   */
  async listForUser(userId: string, options: { status?: HitlStatus; limit: number; beforeId?: string }): Promise<HitlRequestRow[]> {
    const before = options.beforeId
      ? sql`(${hitlRequests.createdAt}, ${hitlRequests.id}) < (select h.created_at, h.id from hitl_requests h where h.id = ${options.beforeId})`
      : undefined;
    // A member's list holds what they asked and what they are asked (a device of theirs lent to a thread).
    const where = and(
      or(eq(hitlRequests.userId, userId), eq(hitlRequests.addressedTo, userId)),
      options.status ? eq(hitlRequests.status, options.status) : undefined,
      before,
    );
    return this.db
      .select()
      .from(hitlRequests)
      .where(where)
      .orderBy(desc(hitlRequests.createdAt), desc(hitlRequests.id))
      .limit(options.limit);
  }

  /**
   * Moves a pending request to `status`; null when it was already decided (the conditional UPDATE
   * makes the first decision win when an approval, a rejection and the timeout race).
   */
  async decide(
    id: string,
    status: Exclude<HitlStatus, 'pending'>,
    decidedBy: string | null,
    db: DbOrTx = this.db,
    decisionReason: NonNullable<HitlRequestRow['decisionReason']> = status === 'timeout' ? 'timeout' : 'user',
    answer: DecisionAnswer = {},
  ): Promise<HitlRequestRow | null> {
    // A person's decision holds only before expiresAt, by the database's clock: past it,
    // only the timeout (or a cancel of the turn) can settle the request, whatever happened to the
    // delayed job of its waitpoint's deadline.
    const inTime = decisionReason === 'user' ? gt(hitlRequests.expiresAt, sql`now()`) : undefined;
    const rows = await db
      .update(hitlRequests)
      .set({
        status,
        decidedBy,
        decidedAt: sql`now()`,
        decisionReason,
        ...(answer.editedArguments ? { editedArguments: answer.editedArguments } : {}),
        ...(answer.reply ? { reply: answer.reply } : {}),
      })
      .where(and(eq(hitlRequests.id, id), eq(hitlRequests.status, 'pending'), inTime))
      .returning();
    return rows[0] ?? null;
  }

  /**
   * {@link decide} and its audit row (`hitl.<status>` by `decidedBy`, or the owner when the system
   * decided) in one transaction (`db`'s when given); null, and nothing written, when the request was already decided.
   */
  async decideAudited(
    id: string,
    status: Exclude<HitlStatus, 'pending'>,
    decidedBy: string | null,
    details: Record<string, unknown>,
    decisionReason?: NonNullable<HitlRequestRow['decisionReason']>,
    db?: Tx,
    answer: DecisionAnswer = {},
  ): Promise<HitlRequestRow | null> {
    const write = async (tx: DbOrTx) => {
      const row = await this.decide(id, status, decidedBy, tx, decisionReason, answer);
      if (row)
        await this.audit.write(
          {
            actorId: decidedBy ?? row.userId,
            action: `hitl.${status}`,
            targetType: 'hitl_request',
            targetId: row.id,
            details: { ...details, toolName: row.toolName, sessionId: approvalSessionId(row) },
          },
          tx,
        );
      return row;
    };
    // Inside a caller's transaction (a waitpoint's completion), or in one of its own.
    return db ? write(db) : this.db.transaction(write);
  }

  /**
   * A member's vote on a quorum request, under the request's row lock so that votes cast at once on
   * any node are counted one after the other: refused when the request is gone, already settled,
   * past its expiry (by the database's clock), or when this member voted on it before (a vote
   * counts once). `settle` reads the votes so far and says whether they decide it; when they do,
   * the request is decided in the same transaction by the member whose vote settled it, and its
   * audit row names every voter.
   */
  async castVote(
    id: string,
    userId: string,
    approved: boolean,
    settle: (votes: HitlVote[]) => Exclude<HitlStatus, 'pending' | 'timeout'> | null,
    details: Record<string, unknown>,
  ): Promise<VoteOutcome> {
    return this.db.transaction(async (tx) => {
      const locked = await tx
        .select({ row: hitlRequests, inTime: sql<boolean>`${hitlRequests.expiresAt} > now()` })
        .from(hitlRequests)
        .where(eq(hitlRequests.id, id))
        .for('update');
      const current = locked[0];
      if (!current) return { outcome: 'missing' };
      if (current.row.status !== 'pending') return { outcome: 'settled', row: current.row };
      if (!current.inTime) return { outcome: 'expired' };
      const cast = await tx
        .insert(hitlVotes)
        .values({ approvalId: id, userId, approved })
        .onConflictDoNothing()
        .returning({ userId: hitlVotes.userId });
      if (!cast.length) return { outcome: 'already_voted' };
      const votes = await tx
        .select({ userId: hitlVotes.userId, approved: hitlVotes.approved })
        .from(hitlVotes)
        .where(eq(hitlVotes.approvalId, id))
        .orderBy(asc(hitlVotes.createdAt), asc(hitlVotes.userId));
      await this.audit.write(
        {
          actorId: userId,
          action: 'hitl.voted',
          targetType: 'hitl_request',
          targetId: id,
          details: { ...details, approved, toolName: current.row.toolName, sessionId: approvalSessionId(current.row) },
        },
        tx,
      );
      const status = settle(votes);
      const decided = status ? await this.decideAudited(id, status, userId, { ...details, voters: votes }, 'user', tx) : null;
      return { outcome: 'counted', votes, decided };
    });
  }

  /** The votes cast on a quorum request, in the order they came. */
  async votesOf(id: string): Promise<HitlVote[]> {
    return this.db
      .select({ userId: hitlVotes.userId, approved: hitlVotes.approved })
      .from(hitlVotes)
      .where(eq(hitlVotes.approvalId, id))
      .orderBy(asc(hitlVotes.createdAt), asc(hitlVotes.userId));
  }

  /** Records that the decided turn's resume began; false when another resume already did. */
  async markResumed(id: string): Promise<boolean> {
    const rows = await this.db
      .update(hitlRequests)
      .set({ resumedAt: sql`now()` })
      .where(and(eq(hitlRequests.id, id), isNull(hitlRequests.resumedAt)))
      .returning({ id: hitlRequests.id });
    return rows.length > 0;
  }

  /**
   * Records that the resume of the requests asked together (one parked round) began, in one
   * statement: the ids it marked (none when another resume already did).
   */
  async markResumedAll(ids: string[]): Promise<string[]> {
    if (!ids.length) return [];
    const rows = await this.db
      .update(hitlRequests)
      .set({ resumedAt: sql`now()` })
      .where(and(inArray(hitlRequests.id, ids), isNull(hitlRequests.resumedAt)))
      .returning({ id: hitlRequests.id });
    return rows.map((row) => row.id);
  }

  /** Pending requests past their expiry (the reaper times them out: their delayed job may be gone). */
  async listOverdue(limit: number): Promise<HitlRequestRow[]> {
    return this.db
      .select()
      .from(hitlRequests)
      .where(and(eq(hitlRequests.status, 'pending'), lte(hitlRequests.expiresAt, sql`now()`)))
      .orderBy(asc(hitlRequests.expiresAt))
      .limit(limit);
  }

  /** Decided requests whose resume never began, decided between `after` and `before`. */
  async listUnresumed(before: Date, after: Date, limit: number): Promise<HitlRequestRow[]> {
    return this.db
      .select()
      .from(hitlRequests)
      .where(
        and(
          ne(hitlRequests.status, 'pending'),
          isNull(hitlRequests.resumedAt),
          // A cancelled turn is not resumed: its cancel ended it.
          or(isNull(hitlRequests.decisionReason), ne(hitlRequests.decisionReason, 'cancelled')),
          // A turn with a request still pending is waiting, not lost: its last decision resumes it.
          sql`not exists (select 1 from hitl_requests p where p.message_id = ${hitlRequests.messageId} and p.status = 'pending')`,
          lt(hitlRequests.decidedAt, before),
          gt(hitlRequests.decidedAt, after),
        ),
      )
      .orderBy(asc(hitlRequests.decidedAt))
      .limit(limit);
  }

  /** Every request of a turn (a turn may park more than once). */
  async listForMessage(messageId: string): Promise<HitlRequestRow[]> {
    return this.db.select().from(hitlRequests).where(eq(hitlRequests.messageId, messageId));
  }
}
