import { and, eq, sql } from 'drizzle-orm';
import type { Db, DbOrTx } from './database';
import { auditRow } from './audit-repository';
import { systemAudit, users, type UserRow } from './schema';

/**
 * The actor of grants made outside the API (the `switchboard admin` CLI, ADMIN_USER_IDS): a
 * service row created on first use. Its email holds no `@`, so nobody can register it.
 */
export const OPERATOR_ACTOR_ID = '00000000-0000-4000-8000-0000000000b0';
const OPERATOR_EMAIL = 'operator';

export const ADMIN_GRANTED = 'admin.granted';
export const ADMIN_REVOKED = 'admin.revoked';

/** Replicas starting together take this transaction lock, so an env grant is audited once. */
const ENV_GRANT_LOCK = 7042090;

/** A user as a grant or revoke reports it. */
export type AdminTarget = Pick<UserRow, 'id' | 'email' | 'name' | 'createdAt'>;

/** What {@link AdminsRepository.setRole} found: the user and whether it wrote anything. */
export type RoleChange =
  { outcome: 'missing' } | { outcome: 'service' } | { outcome: 'unchanged'; user: AdminTarget } | { outcome: 'changed'; user: AdminTarget };

/**
 * The admin flag of users (`users.role`) and the audit rows of its grants and revokes, written by
 * the operator row in the same transaction as the change.
 */
export class AdminsRepository {
  constructor(private readonly db: Db) {}

  /** The user's role, or null when no such user exists. `id` must be a uuid. */
  async roleOf(id: string): Promise<UserRow['role'] | null> {
    const [row] = await this.db.select({ role: users.role }).from(users).where(eq(users.id, id)).limit(1);
    return row?.role ?? null;
  }

  /**
   * Sets the role of the user named by id or by email (lower-cased, as stored) under its row lock,
   * and audits the change with `details` and the user's email (as it was then). A service account is never changed; a user that already
   * has the role is left alone and nothing is audited.
   */
  async setRole(who: { id: string } | { email: string }, role: 'admin' | 'user', details: Record<string, unknown>): Promise<RoleChange> {
    const where = 'id' in who ? eq(users.id, who.id.toLowerCase()) : eq(users.email, who.email.toLowerCase());
    return this.db.transaction(async (tx): Promise<RoleChange> => {
      const [user] = await tx.select().from(users).where(where).limit(1).for('update');
      if (!user) return { outcome: 'missing' };
      if (user.role === 'service') return { outcome: 'service' };
      const view = { id: user.id, email: user.email, name: user.name, createdAt: user.createdAt };
      if (user.role === role) return { outcome: 'unchanged', user: view };
      await tx.update(users).set({ role, updatedAt: new Date() }).where(eq(users.id, user.id));
      await ensureOperator(tx);
      await tx.insert(systemAudit).values(
        auditRow({
          actorId: OPERATOR_ACTOR_ID,
          action: role === 'admin' ? ADMIN_GRANTED : ADMIN_REVOKED,
          targetType: 'user',
          targetId: user.id,
          details: { ...details, email: user.email },
        }),
      );
      return { outcome: 'changed', user: view };
    });
  }

  /**
   * Audits an ADMIN_USER_IDS grant of user `id` once: writes the row unless an env grant of that
   * user is recorded already. False when the user is missing or a service account (nothing written).
   */
  async recordEnvGrant(id: string, details: Record<string, unknown>): Promise<boolean> {
    const role = await this.roleOf(id);
    if (!role || role === 'service') return false;
    await this.db.transaction(async (tx) => {
      // Replicas starting together: the lock makes the check-then-insert happen once.
      await tx.execute(sql`select pg_advisory_xact_lock(${sql.raw(String(ENV_GRANT_LOCK))})`);
      const [seen] = await tx
        .select({ id: systemAudit.id })
        .from(systemAudit)
        .where(and(eq(systemAudit.action, ADMIN_GRANTED), eq(systemAudit.targetId, id), sql`${systemAudit.details}->>'via' = 'env'`))
        .limit(1);
      if (seen) return;
      await ensureOperator(tx);
      await tx
        .insert(systemAudit)
        .values(auditRow({ actorId: OPERATOR_ACTOR_ID, action: ADMIN_GRANTED, targetType: 'user', targetId: id, details }));
    });
    return true;
  }
}

/** The operator row audit entries point at (actor_id references users). */
export async function ensureOperator(db: DbOrTx): Promise<void> {
  await db
    .insert(users)
    .values({ id: OPERATOR_ACTOR_ID, email: OPERATOR_EMAIL, name: 'Switchboard operator', role: 'service', tier: 'enterprise' })
    .onConflictDoNothing();
}
