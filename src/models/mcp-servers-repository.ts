import { and, desc, eq } from 'drizzle-orm';
import { auditRow, type AuditEntry } from './audit-repository';
import type { Db } from './database';
import { mcpServers, systemAudit, type McpServerRow } from './schema';

/** At most this many MCP servers per user. */
export const MAX_MCP_SERVERS = 50;

/** `mcp_servers`: a user's registered MCP servers, by id or by name. */
export class McpServersRepository {
  constructor(private readonly db: Db) {}

  /**
   * Stores a server and its audit entry in one transaction; null when the user already has a
   * server of that name, or has {@link MAX_MCP_SERVERS} already.
   */
  async create(row: typeof mcpServers.$inferInsert, audit: AuditEntry): Promise<McpServerRow | 'name_taken' | 'too_many'> {
    return this.db.transaction(async (tx) => {
      const existing = await tx.select({ name: mcpServers.name }).from(mcpServers).where(eq(mcpServers.userId, row.userId));
      if (existing.some((server) => server.name === row.name)) return 'name_taken' as const;
      if (existing.length >= MAX_MCP_SERVERS) return 'too_many' as const;
      const [created] = await tx.insert(mcpServers).values(row).onConflictDoNothing().returning();
      if (!created) return 'name_taken' as const;
      await tx.insert(systemAudit).values(auditRow(audit));
      return created;
    });
  }

  /** The user's servers, newest first. */
  list(userId: string): Promise<McpServerRow[]> {
    return this.db
      .select()
      .from(mcpServers)
      .where(eq(mcpServers.userId, userId))
      .orderBy(desc(mcpServers.createdAt), desc(mcpServers.id))
      .limit(MAX_MCP_SERVERS);
  }

  /** The user's servers of these names. */
  async byNames(userId: string, names: readonly string[]): Promise<McpServerRow[]> {
    if (!names.length) return [];
    const rows = await this.list(userId);
    return rows.filter((row) => names.includes(row.name));
  }

  /** Deletes the user's server (audited in the same transaction); false when they have none with that id. */
  async remove(userId: string, id: string, audit: AuditEntry): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const deleted = await tx
        .delete(mcpServers)
        .where(and(eq(mcpServers.id, id), eq(mcpServers.userId, userId)))
        .returning({ id: mcpServers.id });
      if (deleted.length) await tx.insert(systemAudit).values(auditRow(audit));
      return deleted.length > 0;
    });
  }
}
