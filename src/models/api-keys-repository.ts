import { and, desc, eq, isNull, sql } from 'drizzle-orm';
import type { Tier } from '../../config';
import { auditRow, type AuditEntry } from './audit-repository';
import type { Db } from './database';
import { preparedOnce } from './prepared';
import { apiKeys, systemAudit, users, type ApiKeyRow } from './schema';

export type ApiKeyScope = 'read' | 'write';

/** What authenticating with a key reads: the key's state and its user, in one indexed lookup. */
export interface ApiKeyMatch {
  id: string;
  keyHash: string;
  scopes: ApiKeyScope[];
  expiresAt: Date | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
  user: { id: string; email: string; name: string; tier: Tier; role: 'user' | 'admin' | 'service' };
}

/** A key as its owner sees it: never the secret nor its hash. */
export type ApiKeyView = Omit<ApiKeyRow, 'keyHash' | 'userId'>;

const view = ({ keyHash: _hash, userId: _user, ...rest }: ApiKeyRow): ApiKeyView => rest;

/** `api_keys`: a user's keys, found by the SHA-256 of their secret. */
export class ApiKeysRepository {
  constructor(private readonly db: Db) {}

  /** Stores a new key and its audit entry in one transaction. */
  async create(
    key: { userId: string; name: string; prefix: string; keyHash: string; scopes: ApiKeyScope[]; expiresAt: Date | null },
    audit: (id: string) => AuditEntry,
  ): Promise<ApiKeyView> {
    return this.db.transaction(async (tx) => {
      const [row] = await tx.insert(apiKeys).values(key).returning();
      const entry = audit(row.id);
      await tx.insert(systemAudit).values(auditRow(entry));
      return view(row);
    });
  }

  /** The user's keys, newest first, `limit` after the key `beforeId` (the previous page's last). */
  async listPage(userId: string, options: { limit: number; beforeId?: string }): Promise<ApiKeyView[]> {
    const before = options.beforeId
      ? sql`(${apiKeys.createdAt}, ${apiKeys.id}) < (select k.created_at, k.id from api_keys k where k.id = ${options.beforeId})`
      : undefined;
    const rows = await this.db
      .select()
      .from(apiKeys)
      .where(and(eq(apiKeys.userId, userId), before))
      .orderBy(desc(apiKeys.createdAt), desc(apiKeys.id))
      .limit(options.limit);
    return rows.map(view);
  }

  /**
   * Revokes the user's key `id` (audited in the same transaction). Returns the key, or null when the
   * user has no such key; a key already revoked keeps its first `revokedAt` and is not audited again.
   */
  async revoke(userId: string, id: string, audit: AuditEntry): Promise<ApiKeyView | null> {
    return this.db.transaction(async (tx) => {
      const [revoked] = await tx
        .update(apiKeys)
        .set({ revokedAt: sql`now()` })
        .where(and(eq(apiKeys.id, id), eq(apiKeys.userId, userId), isNull(apiKeys.revokedAt)))
        .returning();
      if (revoked) {
        await tx.insert(systemAudit).values(auditRow(audit));
        return view(revoked);
      }
      const [existing] = await tx
        .select()
        .from(apiKeys)
        .where(and(eq(apiKeys.id, id), eq(apiKeys.userId, userId)))
        .limit(1);
      return existing ? view(existing) : null;
    });
  }

  /** The key whose secret hashes to `keyHash`, with its user; null when none. One indexed lookup. */
  async findByHash(keyHash: string): Promise<ApiKeyMatch | null> {
    const rows = await this.byHashQuery().execute({ keyHash });
    const row = rows[0];
    if (!row) return null;
    const { userId, email, name, tier, role, ...key } = row;
    return { ...key, user: { id: userId, email, name, tier, role } };
  }

  /** Records a use; written at most once a minute per key, so busy keys cost no write per request. */
  async touch(id: string): Promise<void> {
    await this.db
      .update(apiKeys)
      .set({ lastUsedAt: sql`now()` })
      .where(and(eq(apiKeys.id, id), sql`(${apiKeys.lastUsedAt} is null or ${apiKeys.lastUsedAt} < now() - interval '1 minute')`));
  }

  private readonly byHashQuery = preparedOnce((name) =>
    this.db
      .select({
        id: apiKeys.id,
        keyHash: apiKeys.keyHash,
        scopes: apiKeys.scopes,
        expiresAt: apiKeys.expiresAt,
        revokedAt: apiKeys.revokedAt,
        lastUsedAt: apiKeys.lastUsedAt,
        userId: users.id,
        email: users.email,
        name: users.name,
        tier: users.tier,
        role: users.role,
      })
      .from(apiKeys)
      .innerJoin(users, eq(users.id, apiKeys.userId))
      .where(eq(apiKeys.keyHash, sql.placeholder('keyHash')))
      .limit(1)
      .prepare(name),
  );
}
