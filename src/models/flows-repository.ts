import { and, desc, eq, lt, or, sql } from 'drizzle-orm';
import type { Db, DbOrTx } from './database';
import { preparedOnce } from './prepared';
import { flows, flowVersions, type FlowRow, type FlowType, type FlowVersionRow } from './schema';

/** The public view of a flow. */
export function toFlowView(row: FlowRow) {
  return {
    id: row.id,
    type: row.type,
    name: row.name,
    definition: row.definition,
    publishedVersion: row.publishedVersion,
    latestVersion: row.latestVersion,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}
export type FlowView = ReturnType<typeof toFlowView>;

/** The public view of a flow version (`definition` only when read one by one). */
export function toFlowVersionView(
  row: Pick<FlowVersionRow, 'version' | 'createdAt'> & { definition?: unknown },
  flow: Pick<FlowRow, 'publishedVersion'>,
) {
  return {
    version: row.version,
    published: row.version === flow.publishedVersion,
    createdAt: row.createdAt.toISOString(),
    ...(row.definition === undefined ? {} : { definition: row.definition as Record<string, unknown> }),
  };
}

/**
 * Saved flows. Every read and write but `find` is scoped to the owner: another user's flow is
 * simply not there (the routes answer 404).
 */
export class FlowsRepository {
  constructor(private readonly db: Db) {}

  // On every chatflow turn's way in (its flow, read by owner): built once and bound per call.
  private readonly getQuery = preparedOnce((name) =>
    this.db
      .select()
      .from(flows)
      .where(and(eq(flows.id, sql.placeholder('id')), eq(flows.userId, sql.placeholder('userId'))))
      .limit(1)
      .prepare(name),
  );

  /** The flow with its version 1, published, in one transaction. */
  async create(input: { userId: string; type: FlowType; name: string; definition: Record<string, unknown> }): Promise<FlowRow> {
    return this.db.transaction(async (tx) => {
      const [row] = await tx.insert(flows).values(input).returning();
      await tx.insert(flowVersions).values({ flowId: row.id, version: 1, definition: input.definition, createdAt: row.createdAt });
      return row;
    });
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

  /**
   * Changes the owner's flow; null when there is none. A new definition is saved as the next
   * version (numbered under the flow row's lock, so two saves at once never share a number) and,
   * with `publish`, becomes the flow's published definition; without, what runs stays as it was.
   * Given a transaction, it is written in it (a replay saves its draft with its execution).
   */
  async update(
    userId: string,
    id: string,
    change: { name?: string; definition?: Record<string, unknown>; publish?: boolean },
    db: DbOrTx = this.db,
  ): Promise<FlowRow | null> {
    const { definition, publish = true, name } = change;
    if (definition === undefined) {
      const [row] = await db
        .update(flows)
        .set({ name, updatedAt: sql`now()` })
        .where(and(eq(flows.id, id), eq(flows.userId, userId)))
        .returning();
      return row ?? null;
    }
    return db.transaction(async (tx) => {
      const [row] = await tx
        .update(flows)
        .set({
          name,
          latestVersion: sql`${flows.latestVersion} + 1`,
          ...(publish ? { definition, publishedVersion: sql`${flows.latestVersion} + 1` } : {}),
          updatedAt: sql`now()`,
        })
        .where(and(eq(flows.id, id), eq(flows.userId, userId)))
        .returning();
      if (!row) return null;
      await tx.insert(flowVersions).values({ flowId: id, version: row.latestVersion, definition });
      return row;
    });
  }

  /** The owner's flow with `version` published (its definition becomes the flow's); null when either is missing. */
  async publish(userId: string, id: string, version: number): Promise<FlowRow | null> {
    return this.db.transaction(async (tx) => {
      const found = await this.version(id, version, tx);
      if (!found) return null;
      const [row] = await tx
        .update(flows)
        .set({ definition: found.definition, publishedVersion: version, updatedAt: sql`now()` })
        .where(and(eq(flows.id, id), eq(flows.userId, userId)))
        .returning();
      return row ?? null;
    });
  }

  /** One version of a flow (whose owner the caller checked), or null. */
  async version(flowId: string, version: number, db: DbOrTx = this.db): Promise<FlowVersionRow | null> {
    const rows = await db
      .select()
      .from(flowVersions)
      .where(and(eq(flowVersions.flowId, flowId), eq(flowVersions.version, version)))
      .limit(1);
    return rows[0] ?? null;
  }

  /** A flow's versions without their definitions, newest first, `limit` rows below `before`. */
  async listVersions(
    flowId: string,
    options: { limit: number; before?: number },
  ): Promise<Array<Pick<FlowVersionRow, 'version' | 'createdAt'>>> {
    return this.db
      .select({ version: flowVersions.version, createdAt: flowVersions.createdAt })
      .from(flowVersions)
      .where(and(eq(flowVersions.flowId, flowId), options.before === undefined ? undefined : lt(flowVersions.version, options.before)))
      .orderBy(desc(flowVersions.version))
      .limit(options.limit);
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
