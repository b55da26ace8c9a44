import { and, asc, count, eq, inArray } from 'drizzle-orm';
import type { Db } from './database';
import { canvasMembers, chatSessions, threadDeviceLoans } from './schema';

/** Who decides an approval asked by a room thread's turn. */
export type ApprovalPolicyKind = 'requester' | 'any_editor' | 'canvas_owner' | 'quorum';

/** A thread's approval policy: `quorum` carries how many editors' approvals it needs. */
export interface ApprovalPolicy {
  policy: ApprovalPolicyKind;
  quorum: number | null;
}

/** A device lent to a thread, as its members list it. */
export interface DeviceLoan {
  deviceId: string;
  ownerId: string;
  lentAt: Date;
}

/**
 * What room threads keep beyond the chat session: who decides their approvals, how many members
 * may decide, and the devices their owners lent to them.
 */
export class ThreadsRepository {
  constructor(private readonly db: Db) {}

  /** Sets the thread's approval policy; false when the session is not a room thread (or is gone). */
  async setApprovalPolicy(threadId: string, policy: ApprovalPolicy): Promise<boolean> {
    const rows = await this.db
      .update(chatSessions)
      .set({ approvalPolicy: policy.policy, approvalQuorum: policy.policy === 'quorum' ? policy.quorum : null })
      .where(eq(chatSessions.id, threadId))
      .returning({ canvasId: chatSessions.canvasId });
    return Boolean(rows[0]?.canvasId);
  }

  /** The thread's approval policy; null when the session is not a room thread (or is gone). */
  async policyOf(threadId: string): Promise<ApprovalPolicy | null> {
    const rows = await this.db
      .select({ canvasId: chatSessions.canvasId, policy: chatSessions.approvalPolicy, quorum: chatSessions.approvalQuorum })
      .from(chatSessions)
      .where(eq(chatSessions.id, threadId))
      .limit(1);
    const row = rows[0];
    return row?.canvasId ? { policy: row.policy, quorum: row.quorum } : null;
  }

  /** How many members of the canvas may decide under `any_editor` or `quorum`: its editors and owners. */
  async editorCount(canvasId: string): Promise<number> {
    const rows = await this.db
      .select({ n: count() })
      .from(canvasMembers)
      .where(and(eq(canvasMembers.canvasId, canvasId), inArray(canvasMembers.role, ['editor', 'owner'])));
    return rows[0]?.n ?? 0;
  }

  /**
   * Lends `deviceId` of `ownerId` to the thread. `taken`: another member already lent a device of
   * that id to it (a thread tells its devices apart by id); lending one's own twice is a no-op.
   */
  async lend(threadId: string, ownerId: string, deviceId: string): Promise<{ loan: DeviceLoan } | { taken: true }> {
    await this.db.insert(threadDeviceLoans).values({ threadId, deviceId, ownerId }).onConflictDoNothing();
    const loan = await this.loan(threadId, deviceId);
    if (!loan || loan.ownerId !== ownerId) return { taken: true };
    return { loan };
  }

  /** Takes the owner's device back from the thread; false when it was not lent by them. */
  async withdraw(threadId: string, ownerId: string, deviceId: string): Promise<boolean> {
    const rows = await this.db
      .delete(threadDeviceLoans)
      .where(
        and(eq(threadDeviceLoans.threadId, threadId), eq(threadDeviceLoans.deviceId, deviceId), eq(threadDeviceLoans.ownerId, ownerId)),
      )
      .returning({ deviceId: threadDeviceLoans.deviceId });
    return rows.length > 0;
  }

  /** The loan of `deviceId` to the thread, if any. */
  async loan(threadId: string, deviceId: string): Promise<DeviceLoan | null> {
    const rows = await this.db
      .select({ deviceId: threadDeviceLoans.deviceId, ownerId: threadDeviceLoans.ownerId, lentAt: threadDeviceLoans.createdAt })
      .from(threadDeviceLoans)
      .where(and(eq(threadDeviceLoans.threadId, threadId), eq(threadDeviceLoans.deviceId, deviceId)))
      .limit(1);
    return rows[0] ?? null;
  }

  /** The devices lent to the thread, oldest loan first. */
  async loans(threadId: string): Promise<DeviceLoan[]> {
    return this.db
      .select({ deviceId: threadDeviceLoans.deviceId, ownerId: threadDeviceLoans.ownerId, lentAt: threadDeviceLoans.createdAt })
      .from(threadDeviceLoans)
      .where(eq(threadDeviceLoans.threadId, threadId))
      .orderBy(asc(threadDeviceLoans.createdAt), asc(threadDeviceLoans.deviceId));
  }
}
