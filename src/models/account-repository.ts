import { and, asc, eq, gt, inArray, ne, sql } from 'drizzle-orm';
import type { Db } from './database';
import {
  agentRuns,
  apiKeys,
  webhookEndpoints,
  mcpServers,
  blocks,
  canvases,
  canvasMembers,
  chatMessages,
  chatSessions,
  cloudAgents,
  flowEmbeds,
  flowVersions,
  httpCredentials,
  flowExecutionNodes,
  flowExecutions,
  flows,
  generations,
  hitlRequests,
  llmUsage,
  localAgents,
  oauthCredentials,
  psaConnections,
  refreshTokens,
  systemAudit,
  users,
} from './schema';
import type { RunsRepository } from './runs-repository';

/** Reads one page of a list: rows after the cursor `after` (exclusive), at most `limit`. */
export type PageReader<R> = (after: string | undefined, limit: number) => Promise<R[]>;

/** What deleting an account did, for the audit row and for the live side (sockets, jobs, canvas logs). */
export interface AccountDeletion {
  /** Every sign-in session (refresh-token family) and API key id of the user: their sockets are closed. */
  sessionIds: string[];
  /** Canvases the user owned alone (no editor): deleted with their blocks. */
  canvasesDeleted: string[];
  /** Canvases the user owned that had an editor: handed to the longest-standing one. */
  canvasesTransferred: Array<{ canvasId: string; to: string }>;
  /** Runs still queued or running: their waiting jobs are removed. */
  openRuns: Array<{ queue: string; jobId: string }>;
}

export const ACCOUNT_DELETED = 'account.deleted';

/**
 * Everything Switchboard holds about one user, read in keyset pages for the export (so a large
 * account never sits in memory whole), and the deletion of the account in one transaction. Reads
 * select the columns a user may see: never password or token hashes, never sealed credentials.
 */
export class AccountRepository {
  constructor(
    private readonly db: Db,
    private readonly runs: RunsRepository,
  ) {}

  async profile(userId: string) {
    const [row] = await this.db
      .select({
        id: users.id,
        email: users.email,
        name: users.name,
        tier: users.tier,
        role: users.role,
        createdAt: users.createdAt,
        updatedAt: users.updatedAt,
      })
      .from(users)
      .where(eq(users.id, userId))
      .limit(1);
    return row ?? null;
  }

  ownedCanvases(userId: string): PageReader<typeof canvases.$inferSelect> {
    return (after, limit) =>
      this.db
        .select()
        .from(canvases)
        .where(and(eq(canvases.ownerId, userId), after ? gt(canvases.id, after) : undefined))
        .orderBy(asc(canvases.id))
        .limit(limit);
  }

  /** A canvas's blocks in document order (ranks are unique per canvas). */
  canvasBlocks(
    canvasId: string,
  ): PageReader<{ id: string; type: string; content: unknown; rank: string; createdBy: string; createdAt: Date; updatedAt: Date }> {
    return (after, limit) =>
      this.db
        .select({
          id: blocks.id,
          type: blocks.type,
          content: blocks.content,
          rank: blocks.rank,
          createdBy: blocks.createdBy,
          createdAt: blocks.createdAt,
          updatedAt: blocks.updatedAt,
        })
        .from(blocks)
        .where(and(eq(blocks.canvasId, canvasId), after ? gt(blocks.rank, after) : undefined))
        .orderBy(asc(blocks.rank))
        .limit(limit);
  }

  /** Canvases the user is a member of without owning them: the id and the role only. */
  memberships(userId: string): PageReader<{ canvasId: string; role: string; joinedAt: Date }> {
    return (after, limit) =>
      this.db
        .select({ canvasId: canvasMembers.canvasId, role: canvasMembers.role, joinedAt: canvasMembers.createdAt })
        .from(canvasMembers)
        .where(
          and(eq(canvasMembers.userId, userId), ne(canvasMembers.role, 'owner'), after ? gt(canvasMembers.canvasId, after) : undefined),
        )
        .orderBy(asc(canvasMembers.canvasId))
        .limit(limit);
  }

  chatSessions(userId: string): PageReader<typeof chatSessions.$inferSelect> {
    return (after, limit) =>
      this.db
        .select()
        .from(chatSessions)
        .where(and(eq(chatSessions.userId, userId), after ? gt(chatSessions.id, after) : undefined))
        .orderBy(asc(chatSessions.id))
        .limit(limit);
  }

  /** A session's messages in the order they were written (the cursor is the message's `seq`). */
  chatMessages(sessionId: string): PageReader<typeof chatMessages.$inferSelect> {
    return (after, limit) =>
      this.db
        .select()
        .from(chatMessages)
        .where(and(eq(chatMessages.sessionId, sessionId), after ? gt(chatMessages.seq, Number(after)) : undefined))
        .orderBy(asc(chatMessages.seq))
        .limit(limit);
  }

  /** Approval requests of the user's assistant turns (the tool, its parameters, the decision). */
  approvals(userId: string) {
    const reader: PageReader<Omit<typeof hitlRequests.$inferSelect, 'continuation'>> = (after, limit) =>
      this.db
        .select({
          id: hitlRequests.id,
          userId: hitlRequests.userId,
          sessionId: hitlRequests.sessionId,
          executionId: hitlRequests.executionId,
          messageId: hitlRequests.messageId,
          deviceId: hitlRequests.deviceId,
          toolName: hitlRequests.toolName,
          parameters: hitlRequests.parameters,
          reason: hitlRequests.reason,
          status: hitlRequests.status,
          expiresAt: hitlRequests.expiresAt,
          decidedAt: hitlRequests.decidedAt,
          decidedBy: hitlRequests.decidedBy,
          decisionReason: hitlRequests.decisionReason,
          addressedTo: hitlRequests.addressedTo,
          editedArguments: hitlRequests.editedArguments,
          reply: hitlRequests.reply,
          resumedAt: hitlRequests.resumedAt,
          createdAt: hitlRequests.createdAt,
        })
        .from(hitlRequests)
        .where(and(eq(hitlRequests.userId, userId), after ? gt(hitlRequests.id, after) : undefined))
        .orderBy(asc(hitlRequests.id))
        .limit(limit);
    return reader;
  }

  flows(userId: string): PageReader<typeof flows.$inferSelect> {
    return (after, limit) =>
      this.db
        .select()
        .from(flows)
        .where(and(eq(flows.userId, userId), after ? gt(flows.id, after) : undefined))
        .orderBy(asc(flows.id))
        .limit(limit);
  }

  flowExecutions(flowId: string): PageReader<typeof flowExecutions.$inferSelect> {
    return (after, limit) =>
      this.db
        .select()
        .from(flowExecutions)
        .where(and(eq(flowExecutions.flowId, flowId), after ? gt(flowExecutions.id, after) : undefined))
        .orderBy(asc(flowExecutions.id))
        .limit(limit);
  }

  /** An execution's nodes (an agentflow has at most a few dozen: read whole). */
  flowExecutionNodes(executionId: string) {
    return this.db
      .select()
      .from(flowExecutionNodes)
      .where(eq(flowExecutionNodes.executionId, executionId))
      .orderBy(asc(flowExecutionNodes.position));
  }

  /** A flow's saved versions, oldest first. */
  flowVersions(flowId: string): PageReader<Pick<typeof flowVersions.$inferSelect, 'version' | 'definition' | 'createdAt'>> {
    return (after, limit) =>
      this.db
        .select({ version: flowVersions.version, definition: flowVersions.definition, createdAt: flowVersions.createdAt })
        .from(flowVersions)
        .where(and(eq(flowVersions.flowId, flowId), after ? gt(flowVersions.version, Number(after)) : undefined))
        .orderBy(asc(flowVersions.version))
        .limit(limit);
  }

  /** The user's HTTP tool credentials by name: never their sealed values. */
  httpCredentials(userId: string) {
    return this.db
      .select({
        name: httpCredentials.name,
        scheme: httpCredentials.scheme,
        headerName: httpCredentials.headerName,
        origins: httpCredentials.origins,
        createdAt: httpCredentials.createdAt,
      })
      .from(httpCredentials)
      .where(eq(httpCredentials.userId, userId))
      .orderBy(asc(httpCredentials.name));
  }

  /** A flow's chat widgets: where they may be embedded, never their token's hash. */
  flowEmbeds(flowId: string) {
    return this.db
      .select({
        id: flowEmbeds.id,
        allowedOrigins: flowEmbeds.allowedOrigins,
        version: flowEmbeds.flowVersion,
        createdAt: flowEmbeds.createdAt,
      })
      .from(flowEmbeds)
      .where(eq(flowEmbeds.flowId, flowId))
      .orderBy(asc(flowEmbeds.id));
  }

  localAgents(userId: string): PageReader<typeof localAgents.$inferSelect> {
    return (after, limit) =>
      this.db
        .select()
        .from(localAgents)
        .where(and(eq(localAgents.userId, userId), after ? gt(localAgents.id, after) : undefined))
        .orderBy(asc(localAgents.id))
        .limit(limit);
  }

  cloudAgents(userId: string): PageReader<typeof cloudAgents.$inferSelect> {
    return (after, limit) =>
      this.db
        .select()
        .from(cloudAgents)
        .where(and(eq(cloudAgents.userId, userId), after ? gt(cloudAgents.id, after) : undefined))
        .orderBy(asc(cloudAgents.id))
        .limit(limit);
  }

  /** The user's OAuth connections: which provider and scope, never the sealed token. */
  connections(userId: string) {
    return this.db
      .select({
        id: oauthCredentials.id,
        provider: oauthCredentials.provider,
        scope: oauthCredentials.scope,
        createdAt: oauthCredentials.createdAt,
        updatedAt: oauthCredentials.updatedAt,
      })
      .from(oauthCredentials)
      .where(eq(oauthCredentials.userId, userId))
      .orderBy(asc(oauthCredentials.id));
  }

  /** The user's PSA connection: where and how, never the sealed credentials. */
  psaConnections(userId: string) {
    return this.db
      .select({
        provider: psaConnections.provider,
        baseUrl: psaConnections.baseUrl,
        companyId: psaConnections.companyId,
        clientId: psaConnections.clientId,
        memberIdentifier: psaConnections.memberIdentifier,
        authType: psaConnections.authType,
        createdAt: psaConnections.createdAt,
        updatedAt: psaConnections.updatedAt,
      })
      .from(psaConnections)
      .where(eq(psaConnections.userId, userId));
  }

  agentRuns(userId: string): PageReader<typeof agentRuns.$inferSelect> {
    return (after, limit) =>
      this.db
        .select()
        .from(agentRuns)
        .where(and(eq(agentRuns.userId, userId), after ? gt(agentRuns.id, after) : undefined))
        .orderBy(asc(agentRuns.id))
        .limit(limit);
  }

  generations(userId: string): PageReader<typeof generations.$inferSelect> {
    return (after, limit) =>
      this.db
        .select()
        .from(generations)
        .where(and(eq(generations.userId, userId), after ? gt(generations.id, after) : undefined))
        .orderBy(asc(generations.id))
        .limit(limit);
  }

  usage(userId: string): PageReader<typeof llmUsage.$inferSelect> {
    return (after, limit) =>
      this.db
        .select()
        .from(llmUsage)
        .where(and(eq(llmUsage.userId, userId), after ? gt(llmUsage.id, after) : undefined))
        .orderBy(asc(llmUsage.id))
        .limit(limit);
  }

  /** The user's API keys: names, scopes and dates, never the hash nor the visible prefix. */
  apiKeys(userId: string) {
    const reader: PageReader<{
      id: string;
      name: string;
      scopes: string[];
      createdAt: Date;
      lastUsedAt: Date | null;
      expiresAt: Date | null;
      revokedAt: Date | null;
    }> = (after, limit) =>
      this.db
        .select({
          id: apiKeys.id,
          name: apiKeys.name,
          scopes: apiKeys.scopes,
          createdAt: apiKeys.createdAt,
          lastUsedAt: apiKeys.lastUsedAt,
          expiresAt: apiKeys.expiresAt,
          revokedAt: apiKeys.revokedAt,
        })
        .from(apiKeys)
        .where(and(eq(apiKeys.userId, userId), after ? gt(apiKeys.id, after) : undefined))
        .orderBy(asc(apiKeys.id))
        .limit(limit);
    return reader;
  }

  /** The user's webhook endpoints: URL, events and flow, never the signing secret (`{stored: true}` stands for it). */
  webhooks(userId: string) {
    const reader: PageReader<{ id: string; url: string; description: string; events: string[]; flowId: string | null; createdAt: Date }> = (
      after,
      limit,
    ) =>
      this.db
        .select({
          id: webhookEndpoints.id,
          url: webhookEndpoints.url,
          description: webhookEndpoints.description,
          events: webhookEndpoints.events,
          flowId: webhookEndpoints.flowId,
          createdAt: webhookEndpoints.createdAt,
        })
        .from(webhookEndpoints)
        .where(and(eq(webhookEndpoints.userId, userId), after ? gt(webhookEndpoints.id, after) : undefined))
        .orderBy(asc(webhookEndpoints.id))
        .limit(limit);
    return reader;
  }

  /** The user's MCP servers: the auth header by name only, never its sealed value. */
  mcpServers(userId: string) {
    const reader: PageReader<{
      id: string;
      name: string;
      url: string;
      authHeaderName: string | null;
      allowedTools: string[];
      safeTools: string[];
      createdAt: Date;
    }> = (after, limit) =>
      this.db
        .select({
          id: mcpServers.id,
          name: mcpServers.name,
          url: mcpServers.url,
          authHeaderName: mcpServers.authHeaderName,
          allowedTools: mcpServers.allowedTools,
          safeTools: mcpServers.safeTools,
          createdAt: mcpServers.createdAt,
        })
        .from(mcpServers)
        .where(and(eq(mcpServers.userId, userId), after ? gt(mcpServers.id, after) : undefined))
        .orderBy(asc(mcpServers.id))
        .limit(limit);
    return reader;
  }

  /**
   * Deletes the account in one transaction, under the user's row lock (two deletions at once: the
   * second finds no user and answers null). Each canvas the user owned goes to its longest-standing
   * editor, or is deleted with its blocks when it has none; every session and key is revoked first
   * (so a token checked while the transaction runs already fails once it commits); the audit row is
   * written by the user; then the user's row goes and its rows with it (chat, flows, agents,
   * generations, keys; `llm_usage` keeps its numbers without the user). Audit entries about the user
   * lose the email they recorded. Returns null when the user does not exist.
   */
  async deleteUser(userId: string, details: Record<string, unknown>): Promise<AccountDeletion | null> {
    return this.db.transaction(async (tx) => {
      const [user] = await tx.select({ id: users.id }).from(users).where(eq(users.id, userId)).limit(1).for('update');
      if (!user) return null;

      const families = await tx.selectDistinct({ id: refreshTokens.familyId }).from(refreshTokens).where(eq(refreshTokens.userId, userId));
      const keys = await tx.select({ id: apiKeys.id }).from(apiKeys).where(eq(apiKeys.userId, userId));
      const now = new Date();
      await tx
        .update(refreshTokens)
        .set({ revokedAt: now })
        .where(and(eq(refreshTokens.userId, userId), sql`${refreshTokens.revokedAt} is null`));
      await tx
        .update(apiKeys)
        .set({ revokedAt: now })
        .where(and(eq(apiKeys.userId, userId), sql`${apiKeys.revokedAt} is null`));

      const owned = await tx.select({ id: canvases.id }).from(canvases).where(eq(canvases.ownerId, userId)).for('update');
      const canvasesDeleted: string[] = [];
      const canvasesTransferred: AccountDeletion['canvasesTransferred'] = [];
      for (const { id: canvasId } of owned) {
        const [heir] = await tx
          .select({ userId: canvasMembers.userId })
          .from(canvasMembers)
          .where(and(eq(canvasMembers.canvasId, canvasId), eq(canvasMembers.role, 'editor')))
          .orderBy(asc(canvasMembers.createdAt), asc(canvasMembers.userId))
          .limit(1);
        if (heir) {
          await tx.update(canvases).set({ ownerId: heir.userId, updatedAt: now }).where(eq(canvases.id, canvasId));
          await tx
            .update(canvasMembers)
            .set({ role: 'owner' })
            .where(and(eq(canvasMembers.canvasId, canvasId), eq(canvasMembers.userId, heir.userId)));
          await tx.insert(systemAudit).values({
            actorId: userId,
            action: 'canvas.ownership_transferred',
            canvasId,
            targetType: 'user',
            targetId: heir.userId,
            details: { reason: 'owner_deleted' },
          });
          canvasesTransferred.push({ canvasId, to: heir.userId });
        } else {
          canvasesDeleted.push(canvasId);
        }
      }
      if (canvasesDeleted.length > 0) {
        await tx.delete(generations).where(inArray(generations.canvasId, canvasesDeleted));
        await tx.delete(canvases).where(inArray(canvases.id, canvasesDeleted));
      }

      const open = await this.runs.deleteOfUser(userId, tx);
      await tx
        .update(systemAudit)
        .set({ details: sql`${systemAudit.details} - 'email'` })
        .where(and(eq(systemAudit.targetType, 'user'), eq(systemAudit.targetId, userId)));
      await tx.insert(systemAudit).values({
        actorId: userId,
        action: ACCOUNT_DELETED,
        targetType: 'user',
        targetId: userId,
        details: { ...details, canvasesDeleted: canvasesDeleted.length, canvasesTransferred: canvasesTransferred.length },
      });
      await tx.delete(users).where(eq(users.id, userId));

      return {
        sessionIds: [...families.map((row) => row.id), ...keys.map((row) => row.id)],
        canvasesDeleted,
        canvasesTransferred,
        openRuns: open
          .filter((run) => (run.status === 'queued' || run.status === 'running') && run.queue && run.jobId)
          .map((run) => ({ queue: run.queue!, jobId: run.jobId! })),
      };
    });
  }
}
