import { and, desc, eq, lt, or, sql } from 'drizzle-orm';
import type { Db, DbOrTx } from './database';
import { preparedOnce } from './prepared';
import { flows, type FlowRow, type FlowType } from './schema';

/** The public view of a flow. */
export function toFlowView(row: FlowRow) {
  return {
    id: row.id,
    type: row.type,
    name: row.name,
    definition: row.definition,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}
export type FlowView = ReturnType<typeof toFlowView>;

/**
 * Saved flows. Every read and write but `find` is scoped to the owner: another user's flow is
 * simply not there (the routes answer 404).
 */
export class FlowsRepository {
  constructor(private readonly db: Db) {}

  // On every chatflow turn's way in (its flow, read by owner): built once and bound per call (0160).
  private readonly getQuery = preparedOnce((name) =>
    this.db
      .select()
      .from(flows)
      .where(and(eq(flows.id, sql.placeholder('id')), eq(flows.userId, sql.placeholder('userId'))))
      .limit(1)
      .prepare(name),
  );

  async create(input: { userId: string; type: FlowType; name: string; definition: Record<string, unknown> }): Promise<FlowRow> {
    const [row] = await this.db.insert(flows).values(input).returning();
    return row;
  }

  /** The flow when `userId` owns it. */
  async get(userId: string, id: string, db: DbOrTx = this.db): Promise<FlowRow | null> {
    const rows =
      db === this.db
        ? await this.getQuery().execute({ id, userId })
        : await db
            .select()
            .from(flows)
            .where(and(eq(flows.id, id), eq(flows.userId, userId)))
            .limit(1);
    return rows[0] ?? null;
  }

  /** Any flow by id, whoever owns it (for workers and embeds, which act for the owner). */
  async find(id: string, db: DbOrTx = this.db): Promise<FlowRow | null> {
    const rows = await db.select().from(flows).where(eq(flows.id, id)).limit(1);
    return rows[0] ?? null;
  }

  /** The owner's flows, newest first, `limit` rows after the cursor's `(createdAt, id)`. */
  async listPage(userId: string, options: { limit: number; after?: { at: Date; id: string } }): Promise<FlowRow[]> {
    const { after } = options;
    const page = after ? or(lt(flows.createdAt, after.at), and(eq(flows.createdAt, after.at), lt(flows.id, after.id))) : undefined;
    return this.db
      .select()
      .from(flows)
      .where(and(eq(flows.userId, userId), page))
      .orderBy(desc(flows.createdAt), desc(flows.id))
      .limit(options.limit);
  }

  /** Changes the owner's flow; null when there is none. */
  async update(userId: string, id: string, change: { name?: string; definition?: Record<string, unknown> }): Promise<FlowRow | null> {
    const [row] = await this.db
      .update(flows)
      .set({ ...change, updatedAt: sql`now()` })
      .where(and(eq(flows.id, id), eq(flows.userId, userId)))
      .returning();
    return row ?? null;
  }

  /** Deletes the owner's flow (its executions go with it); false when there is none. */
  async remove(userId: string, id: string): Promise<boolean> {
    const rows = await this.db
      .delete(flows)
      .where(and(eq(flows.id, id), eq(flows.userId, userId)))
      .returning({ id: flows.id });
    return rows.length > 0;
  }
}
