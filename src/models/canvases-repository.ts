import { and, asc, desc, eq, inArray, sql } from 'drizzle-orm';
import type { Db, DbOrTx } from './database';
import { preparedOnce } from './prepared';
import { canvases, canvasMembers, users, type CanvasRow, type MemberRole } from './schema';

export interface CanvasView {
  id: string;
  title: string;
  ownerId: string;
  role: MemberRole;
  createdAt: string;
  updatedAt: string;
}

const view = (row: CanvasRow, role: MemberRole): CanvasView => ({
  id: row.id,
  title: row.title,
  ownerId: row.ownerId,
  role,
  createdAt: row.createdAt.toISOString(),
  updatedAt: row.updatedAt.toISOString(),
});

/** Canvases and their members. Every read is scoped to a member: non-members see nothing. */
export class CanvasesRepository {
  constructor(private readonly db: Db) {}

  async create(ownerId: string, title: string): Promise<CanvasView> {
    return this.db.transaction(async (tx) => {
      const [row] = await tx.insert(canvases).values({ title, ownerId }).returning();
      await tx.insert(canvasMembers).values({ canvasId: row.id, userId: ownerId, role: 'owner' });
      return view(row, 'owner');
    });
  }

  /** The caller's role on the canvas, or null when the canvas does not exist or they are not a member. */
  async roleOf(canvasId: string, userId: string): Promise<MemberRole | null> {
    const rows = await this.roleQuery().execute({ canvasId, userId });
    return rows[0]?.role ?? null;
  }

  private readonly roleQuery = preparedOnce((name) =>
    this.db
      .select({ role: canvasMembers.role })
      .from(canvasMembers)
      .where(and(eq(canvasMembers.canvasId, sql.placeholder('canvasId')), eq(canvasMembers.userId, sql.placeholder('userId'))))
      .limit(1)
      .prepare(name),
  );

  async findForMember(canvasId: string, userId: string): Promise<CanvasView | null> {
    const rows = await this.db
      .select({ canvas: canvases, role: canvasMembers.role })
      .from(canvases)
      .innerJoin(canvasMembers, and(eq(canvasMembers.canvasId, canvases.id), eq(canvasMembers.userId, userId)))
      .where(eq(canvases.id, canvasId))
      .limit(1);
    return rows[0] ? view(rows[0].canvas, rows[0].role) : null;
  }

  /**
   * The member's canvases newest first, up to `limit`, after canvas `beforeId` (the previous
   * page's last; its position is read from its row, so no timestamp precision is lost).
   */
  async listPageForMember(userId: string, options: { limit: number; beforeId?: string }): Promise<CanvasView[]> {
    const before = options.beforeId
      ? sql`(${canvases.createdAt}, ${canvases.id}) < (select c.created_at, c.id from canvases c where c.id = ${options.beforeId})`
      : undefined;
    const rows = await this.db
      .select({ canvas: canvases, role: canvasMembers.role })
      .from(canvases)
      .innerJoin(canvasMembers, and(eq(canvasMembers.canvasId, canvases.id), eq(canvasMembers.userId, userId)))
      .where(before)
      .orderBy(desc(canvases.createdAt), desc(canvases.id))
      .limit(options.limit);
    return rows.map((row) => view(row.canvas, row.role));
  }

  async listForMember(userId: string): Promise<CanvasView[]> {
    const rows = await this.db
      .select({ canvas: canvases, role: canvasMembers.role })
      .from(canvases)
      .innerJoin(canvasMembers, and(eq(canvasMembers.canvasId, canvases.id), eq(canvasMembers.userId, userId)))
      .orderBy(asc(canvases.createdAt));
    return rows.map((row) => view(row.canvas, row.role));
  }

  async rename(canvasId: string, title: string): Promise<void> {
    await this.db.update(canvases).set({ title, updatedAt: new Date() }).where(eq(canvases.id, canvasId));
  }

  async delete(canvasId: string, db: DbOrTx = this.db): Promise<void> {
    await db.delete(canvases).where(eq(canvases.id, canvasId));
  }

  /** Adds a member or changes their role. */
  async upsertMember(canvasId: string, userId: string, role: MemberRole): Promise<void> {
    await this.db
      .insert(canvasMembers)
      .values({ canvasId, userId, role })
      .onConflictDoUpdate({ target: [canvasMembers.canvasId, canvasMembers.userId], set: { role } });
  }

  /** Removes a membership; true when there was one. */
  async removeMember(canvasId: string, userId: string): Promise<boolean> {
    const rows = await this.db
      .delete(canvasMembers)
      .where(and(eq(canvasMembers.canvasId, canvasId), eq(canvasMembers.userId, userId)))
      .returning({ userId: canvasMembers.userId });
    return rows.length > 0;
  }

  async listMembers(canvasId: string) {
    return this.db
      .select({ userId: users.id, name: users.name, email: users.email, role: canvasMembers.role })
      .from(canvasMembers)
      .innerJoin(users, eq(users.id, canvasMembers.userId))
      .where(eq(canvasMembers.canvasId, canvasId))
      .orderBy(asc(canvasMembers.createdAt));
  }

  /**
   * A page of members in the order they joined (the owner first), after the member `afterUserId`
   * (keyset on the membership's `(created_at, user_id)`, read from that row).
   */
  async listMembersPage(canvasId: string, options: { limit: number; afterUserId?: string }) {
    const after = options.afterUserId
      ? sql`(${canvasMembers.createdAt}, ${canvasMembers.userId}) > (select m.created_at, m.user_id from canvas_members m where m.canvas_id = ${canvasId} and m.user_id = ${options.afterUserId})`
      : undefined;
    return this.db
      .select({ userId: users.id, name: users.name, email: users.email, role: canvasMembers.role })
      .from(canvasMembers)
      .innerJoin(users, eq(users.id, canvasMembers.userId))
      .where(and(eq(canvasMembers.canvasId, canvasId), after))
      .orderBy(asc(canvasMembers.createdAt), asc(canvasMembers.userId))
      .limit(options.limit);
  }

  /** Display names for presence lists. */
  async names(userIds: string[]): Promise<Map<string, string>> {
    if (!userIds.length) return new Map();
    const rows = await this.db.select({ id: users.id, name: users.name }).from(users).where(inArray(users.id, userIds));
    return new Map(rows.map((row) => [row.id, row.name]));
  }
}
