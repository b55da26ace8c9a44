import { and, eq, gt, inArray, sql } from 'drizzle-orm';
import type { Db } from './database';
import { mcpOAuthGrants, type McpOAuthGrantRow, type McpOAuthStatus } from './schema';

/** What a locked update writes: the grant's new state (the sign-in under way is kept unless named). */
export interface McpOAuthGrantWrite {
  status: McpOAuthStatus;
  sealed: string;
  expiresAt: Date | null;
  /** A new sign-in under way (its state's and binding's hashes and its end), or `null` to end the one under way. */
  signIn?: { stateHash: string; bindingHash: string; expiresAt: Date } | null;
}

/** `mcp_oauth_grants`: each user's OAuth sign-in to each MCP server that needs one. */
export class McpOAuthRepository {
  constructor(private readonly db: Db) {}

  /** The user's grant for the server, or undefined. */
  async get(serverId: string, userId: string): Promise<McpOAuthGrantRow | undefined> {
    const [row] = await this.db
      .select()
      .from(mcpOAuthGrants)
      .where(and(eq(mcpOAuthGrants.serverId, serverId), eq(mcpOAuthGrants.userId, userId)));
    return row;
  }

  /** The user's grants for these servers (one read for a listing). */
  async ofUser(userId: string, serverIds: readonly string[]): Promise<McpOAuthGrantRow[]> {
    if (!serverIds.length) return [];
    return this.db
      .select()
      .from(mcpOAuthGrants)
      .where(and(eq(mcpOAuthGrants.userId, userId), inArray(mcpOAuthGrants.serverId, [...serverIds])));
  }

  /**
   * Reads the grant with its row locked (across api and worker processes), lets `change` decide
   * (it may make requests, e.g. a token refresh, while the lock holds so no two refresh at once),
   * and writes what it returns; `undefined` writes nothing. Returns what `change` returned.
   */
  async locked<T extends McpOAuthGrantWrite | undefined>(
    serverId: string,
    userId: string,
    change: (row: McpOAuthGrantRow | undefined) => Promise<T>,
  ): Promise<T> {
    return this.db.transaction(async (tx) => {
      const [row] = await tx
        .select()
        .from(mcpOAuthGrants)
        .where(and(eq(mcpOAuthGrants.serverId, serverId), eq(mcpOAuthGrants.userId, userId)))
        .for('update');
      const write = await change(row);
      if (!write) return write;
      const signIn =
        write.signIn === undefined
          ? {}
          : {
              stateHash: write.signIn?.stateHash ?? null,
              bindingHash: write.signIn?.bindingHash ?? null,
              stateExpiresAt: write.signIn?.expiresAt ?? null,
            };
      const values = { status: write.status, sealed: write.sealed, expiresAt: write.expiresAt, updatedAt: new Date(), ...signIn };
      await tx
        .insert(mcpOAuthGrants)
        .values({ serverId, userId, ...values })
        .onConflictDoUpdate({ target: [mcpOAuthGrants.serverId, mcpOAuthGrants.userId], set: values });
      return write;
    });
  }

  /**
   * Ends the sign-in under way whose state and binding hash to these, if it has not expired: one
   * use, whichever process answers. Returns the grant as it was, or undefined (nothing written).
   */
  async consumeSignIn(stateHash: string, bindingHash: string): Promise<McpOAuthGrantRow | undefined> {
    const [row] = await this.db
      .update(mcpOAuthGrants)
      .set({ stateHash: null, bindingHash: null, stateExpiresAt: null })
      .where(
        and(
          eq(mcpOAuthGrants.stateHash, stateHash),
          eq(mcpOAuthGrants.bindingHash, bindingHash),
          gt(mcpOAuthGrants.stateExpiresAt, sql`now()`),
        ),
      )
      .returning();
    return row;
  }
}
