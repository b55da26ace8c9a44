import { and, arrayContains, desc, eq, gt, inArray, isNull, or, sql } from 'drizzle-orm';
import type { AuditRepository } from './audit-repository';
import type { Db, DbOrTx, Tx } from './database';
import { canvasMembers, inputRequests, users, type InputDecision, type InputRequestRow, type InputRequestStatus } from './schema';

/** A human_input node's request as the worker writes it. */
export interface NewInputRequest {
  userId: string;
  executionId: string;
  nodeId: string;
  recipients: string[];
  prompt: string;
  form: Record<string, unknown>;
  decisions: InputDecision[];
  expiresAt: Date;
}

/** What an answer writes: the form's values, the decision button, and who answered. */
export interface InputAnswer {
  values: Record<string, unknown>;
  decision: string | null;
  by: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * `input_requests`: the forms human_input nodes send. Every change of state is one conditional
 * UPDATE from `pending`, so an answer, a second answer, the timeout and the execution's end race
 * safely: exactly one of them wins.
 */
export class InputRequestsRepository {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditRepository,
  ) {}

  /** Writes the node's request, or finds the one written before (a re-run of the node): `created` says which. */
  async create(input: NewInputRequest): Promise<{ row: InputRequestRow; created: boolean }> {
    const inserted = await this.db
      .insert(inputRequests)
      .values(input)
      .onConflictDoNothing({ target: [inputRequests.executionId, inputRequests.nodeId] })
      .returning();
    if (inserted[0]) return { row: inserted[0], created: true };
    const found = await this.forNode(input.executionId, input.nodeId);
    if (!found) throw new Error(`input request of ${input.executionId}/${input.nodeId} neither written nor found`);
    return { row: found, created: false };
  }

  async find(id: string, db: DbOrTx = this.db): Promise<InputRequestRow | null> {
    const rows = await db.select().from(inputRequests).where(eq(inputRequests.id, id)).limit(1);
    return rows[0] ?? null;
  }

  /** The request a node of an execution sent, or null. */
  async forNode(executionId: string, nodeId: string): Promise<InputRequestRow | null> {
    const rows = await this.db
      .select()
      .from(inputRequests)
      .where(and(eq(inputRequests.executionId, executionId), eq(inputRequests.nodeId, nodeId)))
      .limit(1);
    return rows[0] ?? null;
  }

  /** The nodes of an execution whose form still waits for an answer. */
  async pendingNodes(executionId: string): Promise<string[]> {
    const rows = await this.db
      .select({ nodeId: inputRequests.nodeId })
      .from(inputRequests)
      .where(and(eq(inputRequests.executionId, executionId), eq(inputRequests.status, 'pending')));
    return rows.map((row) => row.nodeId);
  }

  /**
   * The requests `userId` may answer, newest first, optionally only those in `status`: up to
   * `limit`, after request `beforeId` (the previous page's last).
   */
  async listForRecipient(
    userId: string,
    options: { status?: InputRequestStatus; limit: number; beforeId?: string },
  ): Promise<InputRequestRow[]> {
    const before = options.beforeId
      ? sql`(${inputRequests.createdAt}, ${inputRequests.id}) < (select r.created_at, r.id from input_requests r where r.id = ${options.beforeId})`
      : undefined;
    return this.db
      .select()
      .from(inputRequests)
      .where(
        and(
          arrayContains(inputRequests.recipients, [userId]),
          options.status ? eq(inputRequests.status, options.status) : undefined,
          before,
        ),
      )
      .orderBy(desc(inputRequests.createdAt), desc(inputRequests.id))
      .limit(options.limit);
  }

  /**
   * The answer of a recipient, with its audit row, in the caller's transaction: null (nothing
   * written) when the request is no longer pending or its time is over by the database's clock.
   */
  async answer(id: string, answer: InputAnswer, tx: Tx): Promise<InputRequestRow | null> {
    const [row] = await tx
      .update(inputRequests)
      .set({ status: 'answered', answer: answer.values, decision: answer.decision, answeredBy: answer.by, answeredAt: sql`now()` })
      .where(and(eq(inputRequests.id, id), eq(inputRequests.status, 'pending'), gt(inputRequests.expiresAt, sql`now()`)))
      .returning();
    if (!row) return null;
    await this.audit.write(
      {
        actorId: answer.by,
        onBehalfOf: row.userId === answer.by ? null : row.userId,
        action: 'input.answered',
        targetType: 'input_request',
        targetId: row.id,
        details: { executionId: row.executionId, nodeId: row.nodeId, decision: row.decision, fields: Object.keys(answer.values) },
      },
      tx,
    );
    return row;
  }

  /** The request's time is over: `timeout` (with its audit row, by the owner as the system), unless something settled it first. */
  async timeOut(id: string, tx: Tx): Promise<InputRequestRow | null> {
    const [row] = await tx
      .update(inputRequests)
      .set({ status: 'timeout', answeredAt: sql`now()` })
      .where(and(eq(inputRequests.id, id), eq(inputRequests.status, 'pending')))
      .returning();
    if (row)
      await this.audit.write(
        {
          actorId: row.userId,
          action: 'input.timeout',
          targetType: 'input_request',
          targetId: row.id,
          details: { executionId: row.executionId, nodeId: row.nodeId },
        },
        tx,
      );
    return row ?? null;
  }

  /** The execution ended: its requests still pending become `cancelled` (returned). */
  async cancelOpen(executionId: string): Promise<InputRequestRow[]> {
    return this.db
      .update(inputRequests)
      .set({ status: 'cancelled', answeredAt: sql`now()` })
      .where(and(eq(inputRequests.executionId, executionId), eq(inputRequests.status, 'pending')))
      .returning();
  }

  /** Records that the recipients were told; false when it was recorded before. */
  async markAnnounced(id: string): Promise<boolean> {
    const rows = await this.db
      .update(inputRequests)
      .set({ announcedAt: sql`now()` })
      .where(and(eq(inputRequests.id, id), isNull(inputRequests.announcedAt)))
      .returning({ id: inputRequests.id });
    return rows.length > 0;
  }

  /**
   * Which of `refs` (user ids or emails) name a user `ownerId` may send a form to: the owner, or a
   * user who shares a canvas with them. A map from each such ref to the user's id; a ref naming
   * no one, or someone else, is absent (the two are not told apart).
   */
  async allowedRecipients(ownerId: string, refs: readonly string[]): Promise<Map<string, string>> {
    const ids = refs.filter((ref) => UUID.test(ref)).map((ref) => ref.toLowerCase());
    const emails = refs.filter((ref) => !UUID.test(ref)).map((ref) => ref.toLowerCase());
    if (!ids.length && !emails.length) return new Map();
    const shared = sql`exists (
      select 1 from ${canvasMembers} mine join ${canvasMembers} theirs on theirs.canvas_id = mine.canvas_id
      where mine.user_id = ${ownerId} and theirs.user_id = ${users.id})`;
    const rows = await this.db
      .select({ id: users.id, email: users.email })
      .from(users)
      .where(
        and(
          or(ids.length ? inArray(users.id, ids) : undefined, emails.length ? inArray(users.email, emails) : undefined),
          or(eq(users.id, ownerId), shared),
        ),
      );
    const found = new Map<string, string>();
    for (const ref of refs) {
      const key = ref.toLowerCase();
      const user = rows.find((row) => row.id === key || row.email === key);
      if (user) found.set(ref, user.id);
    }
    return found;
  }
}
