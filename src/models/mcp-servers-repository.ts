import { and, desc, eq, isNull, or, sql } from 'drizzle-orm';
import { auditRow, type AuditEntry } from './audit-repository';
import type { Db } from './database';
import { mcpServers, systemAudit, type McpServerRow } from './schema';

/** At most this many MCP servers per user, and shared by the operators. */
export const MAX_MCP_SERVERS = 50;

/** Whose servers: a user's (`userId`), or the operators' shared ones (`null`). */
const ownedBy = (userId: string | null) => (userId ? eq(mcpServers.userId, userId) : isNull(mcpServers.userId));

/** `mcp_servers`: the servers a user registered, and those the operators share with every user. */
export class McpServersRepository {
  constructor(private readonly db: Db) {}

  /**
   * Stores a server and its audit entry in one transaction; `name_taken` when its owner (the user,
   * or the operators for a shared one) already has a server of that name, `too_many` at
   * {@link MAX_MCP_SERVERS}.
   */
  async create(row: typeof mcpServers.$inferInsert, audit: AuditEntry): Promise<McpServerRow | 'name_taken' | 'too_many'> {
    return this.db.transaction(async (tx) => {
      const existing = await tx
        .select({ name: mcpServers.name })
        .from(mcpServers)
        .where(ownedBy(row.userId ?? null));
      if (existing.some((server) => server.name === row.name)) return 'name_taken' as const;
      if (existing.length >= MAX_MCP_SERVERS) return 'too_many' as const;
      const [created] = await tx.insert(mcpServers).values(row).onConflictDoNothing().returning();
      if (!created) return 'name_taken' as const;
      await tx.insert(systemAudit).values(auditRow(audit));
      return created;
    });
  }

  /** The user's own servers (or, for `null`, the shared ones), newest first. */
  list(userId: string | null): Promise<McpServerRow[]> {
    return this.db
      .select()
      .from(mcpServers)
      .where(ownedBy(userId))
      .orderBy(desc(mcpServers.createdAt), desc(mcpServers.id))
      .limit(MAX_MCP_SERVERS);
  }

  /** One server of its owner (a user's, or for `null` a shared one), or undefined. */
  async get(userId: string | null, id: string): Promise<McpServerRow | undefined> {
    const [row] = await this.db
      .select()
      .from(mcpServers)
      .where(and(eq(mcpServers.id, id), ownedBy(userId)));
    return row;
  }

  /** Every server the user may use: their own, then the shared ones whose names they do not use themselves. */
  async usable(userId: string): Promise<McpServerRow[]> {
    const rows = await this.db
      .select()
      .from(mcpServers)
      .where(or(eq(mcpServers.userId, userId), isNull(mcpServers.userId)))
      .orderBy(desc(mcpServers.createdAt), desc(mcpServers.id))
      .limit(2 * MAX_MCP_SERVERS);
    const own = new Set(rows.filter((row) => row.userId).map((row) => row.name));
    return rows.filter((row) => row.userId || !own.has(row.name));
  }

  /** The servers of these names the user may use (their own first: a shared server of the same name is hidden). */
  async byNames(userId: string, names: readonly string[]): Promise<McpServerRow[]> {
    if (!names.length) return [];
    return (await this.usable(userId)).filter((row) => names.includes(row.name));
  }

  /**
   * Records what a listing of the server found: the definition sizes of the tools it listed
   * (`listed`, bytes by tool name) and which asked-for tools it no longer lists (`gone`). Other
   * tools' sizes are kept, so listings of some tools (a flow node's) and of all (an assistant turn's)
   * can run at once.
   */
  async recordToolSizes(id: string, listed: Record<string, number>, gone: readonly string[]): Promise<void> {
    await this.db
      .update(mcpServers)
      .set({
        toolSizes: sql`(${mcpServers.toolSizes} - array(select jsonb_array_elements_text(${JSON.stringify(gone)}::jsonb))) || ${JSON.stringify(listed)}::jsonb`,
      })
      .where(eq(mcpServers.id, id));
  }

  /**
   * Pins tool definitions (hash by tool name). `only_new`: pins only tools that have no pin yet (a
   * first listing), so a pin the owner approved is never replaced behind their back.
   */
  async pinTools(id: string, pins: Record<string, string>, mode: 'only_new' | 'replace'): Promise<void> {
    const given = JSON.stringify(pins);
    await this.db
      .update(mcpServers)
      .set({
        toolPins: mode === 'replace' ? sql`${mcpServers.toolPins} || ${given}::jsonb` : sql`${given}::jsonb || ${mcpServers.toolPins}`,
      })
      .where(eq(mcpServers.id, id));
  }

  /** Pins the owner approved (audited in the same transaction); false when they have no server with that id. */
  async approveTools(userId: string | null, id: string, pins: Record<string, string>, audit: AuditEntry): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const updated = await tx
        .update(mcpServers)
        .set({ toolPins: sql`${mcpServers.toolPins} || ${JSON.stringify(pins)}::jsonb` })
        .where(and(eq(mcpServers.id, id), ownedBy(userId)))
        .returning({ id: mcpServers.id });
      if (!updated.length) return false;
      await tx.insert(systemAudit).values(auditRow(audit));
      return true;
    });
  }

  /** Deletes a server of its owner (audited in the same transaction); false when they have none with that id. */
  async remove(userId: string | null, id: string, audit: AuditEntry): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const deleted = await tx
        .delete(mcpServers)
        .where(and(eq(mcpServers.id, id), ownedBy(userId)))
        .returning({ id: mcpServers.id });
      if (deleted.length) await tx.insert(systemAudit).values(auditRow(audit));
      return deleted.length > 0;
    });
  }
}
