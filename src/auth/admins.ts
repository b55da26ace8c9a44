import { userInfo, hostname } from 'node:os';
import { and, eq, sql } from 'drizzle-orm';
import type { Db } from '../models/database';
import { systemAudit, users, type UserRow } from '../models/schema';

/**
 * The actor of grants made outside the API (the `switchboard admin` CLI, ADMIN_USER_IDS): a
 * service row created on first use. Its email holds no `@`, so nobody can register it.
 */
export const OPERATOR_ACTOR_ID = '00000000-0000-4000-8000-0000000000b0';
const OPERATOR_EMAIL = 'operator';

export const ADMIN_GRANTED = 'admin.granted';
export const ADMIN_REVOKED = 'admin.revoked';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What a grant or revoke did, for the CLI to print. */
export interface AdminChange {
  user: Pick<UserRow, 'id' | 'email' | 'name' | 'createdAt'>;
  /** false when the user already was (grant) or was not (revoke) an admin: nothing written. */
  changed: boolean;
}

/** Thrown when the named user does not exist or cannot be an admin; the CLI prints the message. */
export class AdminTargetError extends Error {
  override name = 'AdminTargetError';
}

/**
 * Who is an admin: a user whose id is in ADMIN_USER_IDS, or whose `users.role` an operator
 * set to `admin` with `switchboard admin grant`. Never an email match, never the token's `role`
 * claim alone: the database is read on every check, so a revoke takes effect at the next request.
 */
export class AdminDirectory {
  private readonly envIds: ReadonlySet<string>;

  constructor(
    private readonly db: Db,
    envUserIds: readonly string[] = [],
  ) {
    this.envIds = new Set(envUserIds.map((id) => id.toLowerCase()));
  }

  /** True when `userId` holds admin rights right now. */
  async isAdmin(userId: string): Promise<boolean> {
    // Not a uuid: nobody (and no query that the uuid column would refuse with an error).
    if (!UUID.test(userId)) return false;
    const [row] = await this.db.select({ role: users.role }).from(users).where(eq(users.id, userId)).limit(1);
    if (!row || row.role === 'service') return false;
    return row.role === 'admin' || this.envIds.has(userId.toLowerCase());
  }

  /** Sets the admin flag of the user named by email (as stored: lower-cased) or id; audited. */
  grant(who: string): Promise<AdminChange> {
    return this.change(who, 'admin');
  }

  /** Clears the admin flag; audited. ADMIN_USER_IDS, if it names the user, still applies (the CLI says so). */
  revoke(who: string): Promise<AdminChange> {
    return this.change(who, 'user');
  }

  /** True when ADMIN_USER_IDS names this user (revoking the flag leaves them an admin). */
  namedByEnv(userId: string): boolean {
    return this.envIds.has(userId.toLowerCase());
  }

  /**
   * Audits the env grants once each: for every ADMIN_USER_IDS id of an existing user without an
   * env grant row yet, writes one. Returns the ids that name no user (the caller warns).
   */
  async recordEnvGrants(): Promise<string[]> {
    const unknown: string[] = [];
    for (const id of this.envIds) {
      const [user] = await this.db.select({ id: users.id, role: users.role }).from(users).where(eq(users.id, id)).limit(1);
      if (!user || user.role === 'service') {
        unknown.push(id);
        continue;
      }
      await this.db.transaction(async (tx) => {
        // Replicas starting together: the lock makes the check-then-insert happen once.
        await tx.execute(sql`select pg_advisory_xact_lock(7042090)`);
        const [seen] = await tx
          .select({ id: systemAudit.id })
          .from(systemAudit)
          .where(and(eq(systemAudit.action, ADMIN_GRANTED), eq(systemAudit.targetId, id), sql`${systemAudit.details}->>'via' = 'env'`))
          .limit(1);
        if (seen) return;
        await ensureOperator(tx);
        await tx.insert(systemAudit).values({
          actorId: OPERATOR_ACTOR_ID,
          action: ADMIN_GRANTED,
          targetType: 'user',
          targetId: id,
          details: { via: 'env', variable: 'ADMIN_USER_IDS' },
        });
      });
    }
    return unknown;
  }

  private async change(who: string, role: 'admin' | 'user'): Promise<AdminChange> {
    const target = who.trim();
    const where = UUID.test(target) ? eq(users.id, target.toLowerCase()) : eq(users.email, target.toLowerCase());
    return this.db.transaction(async (tx) => {
      const [user] = await tx.select().from(users).where(where).limit(1).for('update');
      if (!user) throw new AdminTargetError(`No user ${target}: they must register first (the grant names an existing account).`);
      if (user.role === 'service') throw new AdminTargetError(`${target} is a service account and cannot be an admin.`);
      const view = { id: user.id, email: user.email, name: user.name, createdAt: user.createdAt };
      if (user.role === role) return { user: view, changed: false };
      await tx.update(users).set({ role, updatedAt: new Date() }).where(eq(users.id, user.id));
      await ensureOperator(tx);
      await tx.insert(systemAudit).values({
        actorId: OPERATOR_ACTOR_ID,
        action: role === 'admin' ? ADMIN_GRANTED : ADMIN_REVOKED,
        targetType: 'user',
        targetId: user.id,
        details: { via: 'cli', email: user.email, osUser: safeUserName(), host: hostname() },
      });
      return { user: view, changed: true };
    });
  }
}

/** The operator row audit entries point at (actor_id references users). */
async function ensureOperator(db: Db): Promise<void> {
  await db
    .insert(users)
    .values({ id: OPERATOR_ACTOR_ID, email: OPERATOR_EMAIL, name: 'Switchboard operator', role: 'service', tier: 'enterprise' })
    .onConflictDoNothing();
}

function safeUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}
