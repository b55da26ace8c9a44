import { and, asc, desc, eq, sql } from 'drizzle-orm';
import { currentRequestOrigin } from '../lib/request-origin';
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
  /** The device the action ran on (a device tool call). */
  deviceId?: string | null;
  /** Client address and user agent; by default those of the HTTP request being served, if any. */
  ip?: string | null;
  userAgent?: string | null;
}

/**
 * The row an entry is stored as: an action taken while serving an HTTP request carries that
 * request's client address and user agent unless the entry names its own.
 */
export function auditRow(entry: AuditEntry) {
  const origin = currentRequestOrigin();
  return {
    ...entry,
    details: entry.details ?? {},
    ip: entry.ip === undefined ? (origin?.ip ?? null) : entry.ip,
    userAgent: entry.userAgent === undefined ? (origin?.userAgent ?? null) : entry.userAgent,
  };
}

export const toAuditView = (row: AuditRow) => ({ ...row, createdAt: row.createdAt.toISOString() });

/** `system_audit`: who did what, on whose behalf. Written in the same transaction as the change. */
export class AuditRepository {
  constructor(private readonly db: Db) {}

  async write(entry: AuditEntry, db: DbOrTx = this.db): Promise<void> {
    await db.insert(systemAudit).values(auditRow(entry));
  }

  /**
   * A canvas's entries newest first, up to `limit`, after the entry `beforeId` (the previous page's
   * last). The position is read from the row itself, so no timestamp precision is lost in a cursor.
   */
  async listPageForCanvas(canvasId: string, options: { limit: number; beforeId?: string }) {
    const before = options.beforeId
      ? sql`(${systemAudit.createdAt}, ${systemAudit.id}) < (select a.created_at, a.id from system_audit a where a.id = ${options.beforeId})`
      : undefined;
    const rows = await this.db
      .select()
      .from(systemAudit)
      .where(and(eq(systemAudit.canvasId, canvasId), before))
      .orderBy(desc(systemAudit.createdAt), desc(systemAudit.id))
      .limit(options.limit);
    return rows.map(toAuditView);
  }

  /**
   * Every entry newest first (the admin's view), optionally only those of one actor, device or
   * action, in pages like {@link listPageForCanvas}.
   */
  async listPage(options: { limit: number; beforeId?: string; actorId?: string; deviceId?: string; action?: string }) {
    const before = options.beforeId
      ? sql`(${systemAudit.createdAt}, ${systemAudit.id}) < (select a.created_at, a.id from system_audit a where a.id = ${options.beforeId})`
      : undefined;
    const rows = await this.db
      .select()
      .from(systemAudit)
      .where(
        and(
          options.actorId ? eq(systemAudit.actorId, options.actorId) : undefined,
          options.deviceId ? eq(systemAudit.deviceId, options.deviceId) : undefined,
          options.action ? eq(systemAudit.action, options.action) : undefined,
          before,
        ),
      )
      .orderBy(desc(systemAudit.createdAt), desc(systemAudit.id))
      .limit(options.limit);
    return rows.map(toAuditView);
  }

  async listForCanvas(canvasId: string, limit = 500) {
    const rows = await this.db
      .select()
      .from(systemAudit)
      .where(eq(systemAudit.canvasId, canvasId))
      .orderBy(asc(systemAudit.createdAt))
      .limit(limit);
    return rows.map(toAuditView);
  }
}
