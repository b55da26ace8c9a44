import { asc, eq } from 'drizzle-orm';
import type { Db, DbOrTx } from './database';
import { systemAudit, type AuditRow } from './schema';

export interface AuditEntry {
  actorId: string;
  onBehalfOf?: string | null;
  action: string;
  canvasId?: string | null;
  targetType?: string | null;
  targetId?: string | null;
  details?: Record<string, unknown>;
}

export const toAuditView = (row: AuditRow) => ({ ...row, createdAt: row.createdAt.toISOString() });

/** `system_audit`: who did what, on whose behalf. Written in the same transaction as the change. */
export class AuditRepository {
  constructor(private readonly db: Db) {}

  async write(entry: AuditEntry, db: DbOrTx = this.db): Promise<void> {
    await db.insert(systemAudit).values({ ...entry, details: entry.details ?? {} });
  }

  async listForCanvas(canvasId: string, limit = 500) {
    const rows = await this.db.select().from(systemAudit).where(eq(systemAudit.canvasId, canvasId)).orderBy(asc(systemAudit.createdAt)).limit(limit);
    return rows.map(toAuditView);
  }
}
