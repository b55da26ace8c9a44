import { and, desc, eq } from 'drizzle-orm';
import type { Db } from './database';
import { flowEmbeds, type FlowEmbedRow } from './schema';

/** The public view of an embed (its token is shown once, when created, and never stored). */
export function toEmbedView(row: FlowEmbedRow) {
  return {
    id: row.id,
    embedId: row.id,
    flowId: row.flowId,
    allowedOrigins: row.allowedOrigins,
    version: row.flowVersion,
    createdAt: row.createdAt.toISOString(),
  };
}

/** Public chat widgets of chatflows. Reads by flow are scoped by the caller's flow check. */
export class EmbedsRepository {
  constructor(private readonly db: Db) {}

  async create(input: {
    flowId: string;
    userId: string;
    tokenHash: string;
    allowedOrigins: string[];
    flowVersion: number;
  }): Promise<FlowEmbedRow> {
    const [row] = await this.db.insert(flowEmbeds).values(input).returning();
    return row;
  }

  /** A flow's embeds, newest first (a flow holds a handful; capped all the same). */
  async listForFlow(flowId: string, limit = 200): Promise<FlowEmbedRow[]> {
    return this.db
      .select()
      .from(flowEmbeds)
      .where(eq(flowEmbeds.flowId, flowId))
      .orderBy(desc(flowEmbeds.createdAt), desc(flowEmbeds.id))
      .limit(limit);
  }

  /**
   * Replaces an embed's allowed origins (the next public request is checked against them) and, when
   * given, the flow version it is pinned to; null when the flow has no such embed.
   */
  async setOrigins(flowId: string, embedId: string, allowedOrigins: string[], flowVersion?: number): Promise<FlowEmbedRow | null> {
    const rows = await this.db
      .update(flowEmbeds)
      .set({ allowedOrigins, ...(flowVersion === undefined ? {} : { flowVersion }) })
      .where(and(eq(flowEmbeds.id, embedId), eq(flowEmbeds.flowId, flowId)))
      .returning();
    return rows[0] ?? null;
  }

  /** Revokes an embed: its token stops working with the next request. False when the flow has no such embed. */
  async delete(flowId: string, embedId: string): Promise<boolean> {
    const rows = await this.db
      .delete(flowEmbeds)
      .where(and(eq(flowEmbeds.id, embedId), eq(flowEmbeds.flowId, flowId)))
      .returning({ id: flowEmbeds.id });
    return rows.length > 0;
  }

  /** The embed a token (by its hash) opens, or null (unknown or revoked). */
  async findByTokenHash(tokenHash: string): Promise<FlowEmbedRow | null> {
    const rows = await this.db.select().from(flowEmbeds).where(eq(flowEmbeds.tokenHash, tokenHash)).limit(1);
    return rows[0] ?? null;
  }
}
