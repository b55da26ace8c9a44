import { and, desc, eq, gt, ilike, isNull, ne, or, sql } from 'drizzle-orm';
import type { Db, DbOrTx, Tx } from './database';
import { preparedOnce } from './prepared';
import { ensureOperator, OPERATOR_ACTOR_ID } from './admins-repository';
import { auditRow } from './audit-repository';
import { canvasMembers, refreshTokens, systemAudit, users, type MemberRole, type UserRow } from './schema';

export const USER_TIER_CHANGED = 'user.tier_changed';
export const USER_LIMITS_CHANGED = 'user.limits_changed';

/** An operator's change to a user's plan: a new tier, or new limit overrides (null clears them). */
export type PlanChange = { tier: UserRow['tier'] } | { limitOverrides: UserRow['limitOverrides'] };

/** Whether the session (refresh-token family) named by placeholder `familyId` was revoked; false for null. */
const sessionRevoked = () =>
  sql<boolean>`exists(select 1 from ${refreshTokens} where ${refreshTokens.familyId} = ${sql.placeholder('familyId')} and ${refreshTokens.revokedAt} is not null)`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A user as an operator's list shows them: no password hash, no overrides. */
export type UserListRow = Pick<UserRow, 'id' | 'email' | 'name' | 'tier' | 'role' | 'createdAt'>;

/** `text` as a LIKE pattern matching itself anywhere: `%`, `_` and `\\` lose their meaning. */
const containing = (text: string) => `%${text.replace(/[\\%_]/g, (char) => `\\${char}`)}%`;

/** A user's plan as the session check reads it: tier, an operator's overrides, and when the row last changed. */
export type SessionPlan = Pick<UserRow, 'tier' | 'limitOverrides' | 'updatedAt'>;

/** Users and their refresh-token families. */
export class UsersRepository {
  constructor(private readonly db: Db) {}

  /** Inserts a user; returns null when the email is taken. */
  async create(input: { email: string; name: string; passwordHash: string }): Promise<UserRow | null> {
    const rows = await this.db
      .insert(users)
      .values({ email: input.email.toLowerCase(), name: input.name, passwordHash: input.passwordHash })
      .onConflictDoNothing({ target: users.email })
      .returning();
    return rows[0] ?? null;
  }

  /**
   * People (never service rows), newest first, `limit` of them after the user `beforeId`; with
   * `search`, only those whose email or name contains it, case-insensitively.
   */
  async listPage(options: { limit: number; beforeId?: string; search?: string }): Promise<UserListRow[]> {
    const before = options.beforeId
      ? sql`(${users.createdAt}, ${users.id}) < (select u.created_at, u.id from users u where u.id = ${options.beforeId})`
      : undefined;
    const matches = options.search
      ? or(ilike(users.email, containing(options.search)), ilike(users.name, containing(options.search)))
      : undefined;
    return this.db
      .select({ id: users.id, email: users.email, name: users.name, tier: users.tier, role: users.role, createdAt: users.createdAt })
      .from(users)
      .where(and(ne(users.role, 'service'), before, matches))
      .orderBy(desc(users.createdAt), desc(users.id))
      .limit(options.limit);
  }

  async findByEmail(email: string): Promise<UserRow | null> {
    const rows = await this.db.select().from(users).where(eq(users.email, email.toLowerCase())).limit(1);
    return rows[0] ?? null;
  }

  async findById(id: string): Promise<UserRow | null> {
    const rows = await this.db.select().from(users).where(eq(users.id, id)).limit(1);
    return rows[0] ?? null;
  }

  /** Whether a user with this id exists (an access token may outlive its user). */
  async exists(id: string): Promise<boolean> {
    if (!UUID.test(id)) return false;
    const rows = await this.db.select({ id: users.id }).from(users).where(eq(users.id, id)).limit(1);
    return rows.length > 0;
  }

  /**
   * Whether the user exists and, when a session (refresh-token family) is named, that session was
   * not revoked — one query, so every authenticated request costs one round trip.
   */
  async sessionStands(userId: string, familyId?: string): Promise<boolean> {
    return (await this.sessionTier(userId, familyId)) !== null;
  }

  /**
   * `sessionStands`, answering the user's tier as stored now when the session stands (null when it
   * does not): a tier an operator changed applies from the next request, whatever the token says.
   */
  async sessionTier(userId: string, familyId?: string): Promise<UserRow['tier'] | null> {
    return (await this.sessionPlan(userId, familyId))?.tier ?? null;
  }

  /**
   * `sessionTier` with the rest of the user's plan as stored now (overrides, and `updatedAt`, which
   * moves with every plan change): the request's later steps take their limits from it.
   */
  async sessionPlan(userId: string, familyId?: string): Promise<SessionPlan | null> {
    if (!UUID.test(userId) || (familyId !== undefined && !UUID.test(familyId))) return null;
    // No session named: `family_id = null` matches nothing, so only the user's existence counts.
    const rows = await this.sessionQuery().execute({ userId, familyId: familyId ?? null });
    const row = rows[0];
    return row && !row.revoked ? { tier: row.tier, limitOverrides: row.limitOverrides, updatedAt: row.updatedAt } : null;
  }

  /**
   * `sessionStands` and the user's role on one canvas (null when not a member), in the same one
   * statement: a canvas route's authentication and its access check in one round trip.
   */
  async sessionAndCanvasRole(
    userId: string,
    familyId: string | undefined,
    canvasId: string,
  ): Promise<{ stands: boolean; role: MemberRole | null; tier?: UserRow['tier']; plan?: SessionPlan }> {
    if (!UUID.test(userId) || (familyId !== undefined && !UUID.test(familyId)) || !UUID.test(canvasId))
      return { stands: false, role: null };
    const rows = await this.sessionAndRoleQuery().execute({ userId, familyId: familyId ?? null, canvasId });
    const row = rows[0];
    return row && !row.revoked
      ? {
          stands: true,
          role: row.role,
          tier: row.tier,
          plan: { tier: row.tier, limitOverrides: row.limitOverrides, updatedAt: row.updatedAt },
        }
      : { stands: false, role: null };
  }

  private readonly sessionAndRoleQuery = preparedOnce((name) =>
    this.db
      .select({
        revoked: sessionRevoked(),
        tier: users.tier,
        limitOverrides: users.limitOverrides,
        updatedAt: users.updatedAt,
        role: sql<MemberRole | null>`(select ${canvasMembers.role} from ${canvasMembers} where ${canvasMembers.canvasId} = ${sql.placeholder('canvasId')} and ${canvasMembers.userId} = ${sql.placeholder('userId')})`,
      })
      .from(users)
      .where(eq(users.id, sql.placeholder('userId')))
      .limit(1)
      .prepare(name),
  );

  private readonly sessionQuery = preparedOnce((name) =>
    this.db
      .select({ revoked: sessionRevoked(), tier: users.tier, limitOverrides: users.limitOverrides, updatedAt: users.updatedAt })
      .from(users)
      .where(eq(users.id, sql.placeholder('userId')))
      .limit(1)
      .prepare(name),
  );

  async setTier(id: string, tier: UserRow['tier'], db: DbOrTx = this.db): Promise<void> {
    await db.update(users).set({ tier, updatedAt: new Date() }).where(eq(users.id, id));
  }

  /**
   * Applies an operator's plan change under the user's row lock and audits it in the same
   * transaction (`actorId`: the admin, or the operator row for the CLI). Null when no such user.
   */
  async changePlan(id: string, change: PlanChange, actor: { actorId: string; details?: Record<string, unknown> }): Promise<UserRow | null> {
    if (!UUID.test(id)) return null;
    return this.db.transaction(async (tx) => {
      const [user] = await tx.select().from(users).where(eq(users.id, id)).limit(1).for('update');
      if (!user) return null;
      const [updated] = await tx
        .update(users)
        .set({ ...change, updatedAt: new Date() })
        .where(eq(users.id, id))
        .returning();
      if (actor.actorId === OPERATOR_ACTOR_ID) await ensureOperator(tx);
      const details =
        'tier' in change ? { from: user.tier, to: change.tier } : { from: user.limitOverrides ?? null, to: change.limitOverrides ?? null };
      await tx.insert(systemAudit).values(
        auditRow({
          actorId: actor.actorId,
          action: 'tier' in change ? USER_TIER_CHANGED : USER_LIMITS_CHANGED,
          targetType: 'user',
          targetId: id,
          details: { ...actor.details, ...details },
        }),
      );
      return updated;
    });
  }

  async insertRefreshToken(
    input: { id?: string; userId: string; familyId: string; tokenHash: string; expiresAt: Date; clientHash?: string | null },
    db: DbOrTx = this.db,
  ) {
    await db.insert(refreshTokens).values(input);
  }

  /** Records which token was issued in place of a rotated one (call under the family's lock). */
  async markReplaced(id: string, replacedBy: string, db: DbOrTx = this.db) {
    await db.update(refreshTokens).set({ replacedBy }).where(eq(refreshTokens.id, id));
  }

  /**
   * Retires the family's live token `id` in favour of `replacedBy`: marks it used, if it is still
   * unused, unrevoked and of `familyId`. False when it is not (already rotated or revoked). Call
   * under the family's lock.
   */
  async retireRefreshToken(id: string, familyId: string, replacedBy: string, db: DbOrTx = this.db): Promise<boolean> {
    const retired = await db
      .update(refreshTokens)
      .set({ usedAt: new Date(), replacedBy })
      .where(
        and(eq(refreshTokens.id, id), eq(refreshTokens.familyId, familyId), isNull(refreshTokens.usedAt), isNull(refreshTokens.revokedAt)),
      )
      .returning({ id: refreshTokens.id });
    return retired.length > 0;
  }

  /**
   * Marks the token used and returns it — atomically, so two concurrent refreshes with the same
   * token cannot both succeed. Returns `reused` when it had been used already (a stolen token).
   */
  async consumeRefreshToken(tokenHash: string, db: DbOrTx = this.db) {
    const now = new Date();
    const consumed = await db
      .update(refreshTokens)
      .set({ usedAt: now })
      .where(
        and(
          eq(refreshTokens.tokenHash, tokenHash),
          isNull(refreshTokens.usedAt),
          isNull(refreshTokens.revokedAt),
          gt(refreshTokens.expiresAt, now),
        ),
      )
      .returning();
    if (consumed[0]) return { status: 'ok' as const, token: consumed[0] };
    const existing = await db.select().from(refreshTokens).where(eq(refreshTokens.tokenHash, tokenHash)).limit(1);
    if (existing[0]?.usedAt) return { status: 'reused' as const, token: existing[0] };
    return { status: 'invalid' as const };
  }

  /**
   * Serialises every change to one refresh-token family until the transaction ends: a rotation and
   * a revocation of the same family never interleave, so a revocation sees every token the
   * rotation issued.
   */
  async lockFamily(familyId: string, db: DbOrTx) {
    await db.execute(sql`select pg_advisory_xact_lock(hashtext(${`refresh-family:${familyId}`}))`);
  }

  /** Runs `work` in one transaction holding the family's lock (see `lockFamily`). */
  inFamily<T>(familyId: string, work: (tx: Tx) => Promise<T>): Promise<T> {
    return this.db.transaction(async (tx) => {
      await this.lockFamily(familyId, tx);
      return work(tx);
    });
  }

  /** The stored token with this hash, used or not. */
  async findRefreshToken(tokenHash: string, db: DbOrTx = this.db) {
    const rows = await db.select().from(refreshTokens).where(eq(refreshTokens.tokenHash, tokenHash)).limit(1);
    return rows[0] ?? null;
  }

  /** Revokes every token of a family (after reuse of a rotated token, or logout). */
  async revokeFamily(familyId: string, db: DbOrTx = this.db) {
    await db
      .update(refreshTokens)
      .set({ revokedAt: new Date() })
      .where(and(eq(refreshTokens.familyId, familyId), isNull(refreshTokens.revokedAt)));
  }
}
