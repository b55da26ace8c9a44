import { and, count, desc, eq, inArray, isNotNull, lte, or, sql } from 'drizzle-orm';
import { toStorable } from '../lib/text-safety';
import type { Db, DbOrTx } from './database';
import { rowsOf } from './migrate';
import {
  agentRuns,
  cloudAgents,
  localAgents,
  oauthCredentials,
  type AgentProvider,
  type AgentRunRow,
  type AgentRunStatus,
  type CloudAgentRow,
  type LocalAgentRow,
  type OAuthCredentialRow,
} from './schema';

export type AgentKind = 'local' | 'cloud';
export type AgentRow = LocalAgentRow | CloudAgentRow;
export type AgentRef = { kind: 'local'; agent: LocalAgentRow } | { kind: 'cloud'; agent: CloudAgentRow };
type NewLocalAgent = Omit<typeof localAgents.$inferInsert, 'id' | 'userId' | 'createdAt' | 'updatedAt'>;
type NewCloudAgent = Omit<typeof cloudAgents.$inferInsert, 'id' | 'userId' | 'createdAt' | 'updatedAt'>;

/** Thrown when enabling one more agent would pass the user's tier limit (local + cloud together). */
export class AgentLimitError extends Error {
  constructor(readonly limit: number) {
    super(`Your plan allows ${limit} enabled agent(s); disable one first`);
  }
}

const tables = { local: localAgents, cloud: cloudAgents } as const;

/** The JSON view of an agent config: camelCase, no credential material. */
export function toAgentView(ref: AgentRef) {
  const { agent } = ref;
  const common = {
    id: agent.id,
    name: agent.name,
    dataTypes: agent.dataTypes,
    promptTemplate: agent.promptTemplate,
    model: agent.model ?? null,
    scheduleCron: agent.scheduleCron,
    timezone: agent.timezone,
    enabled: agent.enabled,
    lastRunAt: agent.lastRunAt?.toISOString() ?? null,
    nextRunAt: agent.nextRunAt?.toISOString() ?? null,
    createdAt: agent.createdAt.toISOString(),
    updatedAt: agent.updatedAt.toISOString(),
  };
  if (ref.kind === 'local') {
    const { deviceId, directoryPaths, fileExtensions } = ref.agent;
    return { ...common, type: 'local_directory' as const, deviceId, directoryPaths, fileExtensions };
  }
  const { provider, filterConfig, credentialId, status } = ref.agent;
  return { ...common, type: provider, provider, filterConfig, connected: credentialId !== null, status };
}

export function toRunView(run: AgentRunRow) {
  return {
    id: run.id,
    agentId: run.agentId,
    agentType: run.agentType,
    trigger: run.trigger,
    slot: run.slot?.toISOString() ?? null,
    deviceId: run.deviceId,
    status: run.status,
    itemsProcessed: run.itemsProcessed,
    itemsCreated: run.itemsCreated,
    errors: run.errors,
    startedAt: run.startedAt.toISOString(),
    completedAt: run.completedAt?.toISOString() ?? null,
  };
}

/**
 * Local and cloud agent configs, their run logs and OAuth credentials. Every read and write by id
 * is scoped to the owner; the scheduler's and workers' reads by id say so in their names.
 */
export class AgentsRepository {
  constructor(private readonly db: Db) {}

  /* ---- configs ---------------------------------------------------------------------------- */

  createLocal(userId: string, values: NewLocalAgent, maxEnabled: number): Promise<LocalAgentRow> {
    return this.withinLimit(userId, values.enabled !== false, maxEnabled, async (tx) => {
      const [row] = await tx
        .insert(localAgents)
        .values({ ...values, userId })
        .returning();
      return row;
    });
  }

  createCloud(userId: string, values: NewCloudAgent, maxEnabled: number): Promise<CloudAgentRow> {
    return this.withinLimit(userId, values.enabled !== false, maxEnabled, async (tx) => {
      const [row] = await tx
        .insert(cloudAgents)
        .values({ ...values, userId })
        .returning();
      return row;
    });
  }

  /** Applies changes to the user's agent; null when the user has no such agent of that kind. */
  async update<K extends AgentKind>(
    kind: K,
    userId: string,
    id: string,
    changes: Partial<K extends 'local' ? NewLocalAgent : NewCloudAgent>,
    maxEnabled: number,
  ): Promise<(K extends 'local' ? LocalAgentRow : CloudAgentRow) | null> {
    const table = tables[kind] as typeof localAgents;
    return this.withinLimit(
      userId,
      changes.enabled === true,
      maxEnabled,
      async (tx) => {
        const [row] = await tx
          .update(table)
          .set({ ...(changes as Partial<NewLocalAgent>), updatedAt: new Date() })
          .where(and(eq(table.id, id), eq(table.userId, userId)))
          .returning();
        return (row ?? null) as never;
      },
      id,
    );
  }

  async get(kind: 'local', userId: string, id: string): Promise<LocalAgentRow | null>;
  async get(kind: 'cloud', userId: string, id: string): Promise<CloudAgentRow | null>;
  async get(kind: AgentKind, userId: string, id: string): Promise<AgentRow | null> {
    const table = tables[kind] as typeof localAgents;
    const [row] = await this.db
      .select()
      .from(table)
      .where(and(eq(table.id, id), eq(table.userId, userId)));
    return row ?? null;
  }

  /** The user's agent of either kind (for `POST /agents/:id/run`). */
  async find(userId: string, id: string): Promise<AgentRef | null> {
    const local = await this.get('local', userId, id);
    if (local) return { kind: 'local', agent: local };
    const cloud = await this.get('cloud', userId, id);
    return cloud ? { kind: 'cloud', agent: cloud } : null;
  }

  /** The agent a job names, whoever owns it (workers and the scheduler). */
  async findById(kind: AgentKind, id: string): Promise<AgentRef | null> {
    const table = tables[kind] as typeof localAgents;
    const [row] = await this.db.select().from(table).where(eq(table.id, id));
    return row ? ({ kind, agent: row } as AgentRef) : null;
  }

  list(kind: 'local', userId: string): Promise<LocalAgentRow[]>;
  list(kind: 'cloud', userId: string): Promise<CloudAgentRow[]>;
  list(kind: AgentKind, userId: string): Promise<AgentRow[]> {
    const table = tables[kind] as typeof localAgents;
    return this.db.select().from(table).where(eq(table.userId, userId)).orderBy(table.createdAt);
  }

  /** The user's agents of a kind, newest first, up to `limit`, after agent `beforeId` (the previous page's last). */
  listPage(kind: AgentKind, userId: string, options: { limit: number; beforeId?: string }): Promise<AgentRow[]> {
    const table = tables[kind] as typeof localAgents;
    const before = options.beforeId
      ? sql`(${table.createdAt}, ${table.id}) < (select a.created_at, a.id from ${table} a where a.id = ${options.beforeId})`
      : undefined;
    return this.db
      .select()
      .from(table)
      .where(and(eq(table.userId, userId), before))
      .orderBy(desc(table.createdAt), desc(table.id))
      .limit(options.limit);
  }

  /** Deletes the user's agent and its run logs in one transaction; false when there was none. */
  delete(kind: AgentKind, userId: string, id: string): Promise<boolean> {
    const table = tables[kind] as typeof localAgents;
    return this.db.transaction(async (tx) => {
      const deleted = await tx
        .delete(table)
        .where(and(eq(table.id, id), eq(table.userId, userId)))
        .returning({ id: table.id });
      if (deleted.length === 0) return false;
      await tx.delete(agentRuns).where(eq(agentRuns.agentId, id));
      return true;
    });
  }

  /** Enabled agents whose next run is due (the scheduler's tick). */
  async due(now: Date, limit = 500): Promise<AgentRef[]> {
    const [local, cloud] = await Promise.all(
      (['local', 'cloud'] as const).map((kind) => {
        const table = tables[kind] as typeof localAgents;
        return this.db
          .select()
          .from(table)
          .where(and(eq(table.enabled, true), isNotNull(table.scheduleCron), lte(table.nextRunAt, now)))
          .orderBy(table.nextRunAt)
          .limit(limit);
      }),
    );
    return [
      ...local.map((agent) => ({ kind: 'local' as const, agent })),
      ...cloud.map((agent) => ({ kind: 'cloud' as const, agent: agent as unknown as CloudAgentRow })),
    ];
  }

  /**
   * Moves an agent's schedule past `slot`, only if it is still due at `now` (no other scheduler
   * moved it first) and still has the schedule the slot was computed from. Returns whether this
   * caller moved it.
   */
  async advanceSchedule(
    kind: AgentKind,
    id: string,
    now: Date,
    slot: Date,
    next: Date,
    schedule: { scheduleCron: string; timezone: string },
  ): Promise<boolean> {
    const table = tables[kind] as typeof localAgents;
    const moved = await this.db
      .update(table)
      .set({ nextRunAt: next, lastScheduledAt: slot })
      // Also unchanged since it was read: a schedule edited meanwhile keeps the next run it computed.
      .where(
        and(
          eq(table.id, id),
          lte(table.nextRunAt, now),
          eq(table.scheduleCron, schedule.scheduleCron),
          eq(table.timezone, schedule.timezone),
        ),
      )
      .returning({ id: table.id });
    return moved.length > 0;
  }

  async setLastRunAt(kind: AgentKind, id: string, at: Date): Promise<void> {
    const table = tables[kind] as typeof localAgents;
    await this.db.update(table).set({ lastRunAt: at }).where(eq(table.id, id));
  }

  async setCloudStatus(id: string, status: CloudAgentRow['status']): Promise<void> {
    await this.db.update(cloudAgents).set({ status, updatedAt: new Date() }).where(eq(cloudAgents.id, id));
  }

  /** The provider refused a credential's refresh token: every agent using it needs the user to reconnect. */
  async markCredentialRevoked(credentialId: string): Promise<void> {
    await this.db
      .update(cloudAgents)
      .set({ status: 'reauth_required', updatedAt: new Date() })
      .where(eq(cloudAgents.credentialId, credentialId));
  }

  /** Attaches a credential to the user's cloud agent of the same provider; false when there is none. */
  async attachCredential(userId: string, agentId: string, credentialId: string, provider: AgentProvider): Promise<boolean> {
    const rows = await this.db
      .update(cloudAgents)
      .set({ credentialId, status: 'active', updatedAt: new Date() })
      .where(and(eq(cloudAgents.id, agentId), eq(cloudAgents.userId, userId), eq(cloudAgents.provider, provider)))
      .returning({ id: cloudAgents.id });
    return rows.length > 0;
  }

  /**
   * Detaches the user's cloud agent from its OAuth credential, and deletes the credential (its sealed
   * tokens) when no other agent of the user uses it. Null when the user has no such agent.
   */
  async detachCredential(userId: string, agentId: string): Promise<CloudAgentRow | null> {
    return this.db.transaction(async (tx) => {
      const [current] = await tx
        .select({ credentialId: cloudAgents.credentialId })
        .from(cloudAgents)
        .where(and(eq(cloudAgents.id, agentId), eq(cloudAgents.userId, userId)))
        .for('update');
      if (!current) return null;
      const [agent] = await tx
        .update(cloudAgents)
        .set({ credentialId: null, status: 'active', updatedAt: new Date() })
        .where(eq(cloudAgents.id, agentId))
        .returning();
      const credentialId = current.credentialId;
      if (credentialId) {
        const [stillUsed] = await tx
          .select({ id: cloudAgents.id })
          .from(cloudAgents)
          .where(eq(cloudAgents.credentialId, credentialId))
          .limit(1);
        if (!stillUsed)
          await tx.delete(oauthCredentials).where(and(eq(oauthCredentials.id, credentialId), eq(oauthCredentials.userId, userId)));
      }
      return agent;
    });
  }

  /** Each local agent of the user with the device it runs on (a bounded read for the devices view). */
  localAgentDevices(userId: string, limit: number): Promise<Array<{ id: string; name: string; deviceId: string }>> {
    return this.db
      .select({ id: localAgents.id, name: localAgents.name, deviceId: localAgents.deviceId })
      .from(localAgents)
      .where(eq(localAgents.userId, userId))
      .orderBy(desc(localAgents.createdAt), desc(localAgents.id))
      .limit(limit);
  }

  /**
   * Runs `write` in a transaction that holds the user's agent lock and, when it enables an agent,
   * checks that the user stays within `maxEnabled` (the lock makes concurrent creates count right).
   */
  private withinLimit<T>(
    userId: string,
    enables: boolean,
    maxEnabled: number,
    write: (tx: DbOrTx) => Promise<T>,
    excludeId?: string,
  ): Promise<T> {
    return this.db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`agents:${userId}`}))`);
      if (enables && Number.isFinite(maxEnabled)) {
        const enabled = await this.countEnabled(tx, userId, excludeId);
        if (enabled >= maxEnabled) throw new AgentLimitError(maxEnabled);
      }
      return write(tx);
    });
  }

  private async countEnabled(db: DbOrTx, userId: string, excludeId?: string): Promise<number> {
    const counts = await Promise.all(
      [localAgents, cloudAgents as unknown as typeof localAgents].map(async (table) => {
        const [row] = await db
          .select({ n: count() })
          .from(table)
          .where(and(eq(table.userId, userId), eq(table.enabled, true), excludeId ? sql`${table.id} <> ${excludeId}` : undefined));
        return Number(row.n);
      }),
    );
    return counts[0] + counts[1];
  }

  /* ---- runs -------------------------------------------------------------------------------- */

  /**
   * Records a run; null when the row exists already (a retried job) or the slot ran before, or
   * the agent already has a run waiting for its device (the new one is folded into it).
   */
  async insertRun(run: typeof agentRuns.$inferInsert): Promise<AgentRunRow | null> {
    const rows = await this.db.insert(agentRuns).values(run).onConflictDoNothing().returning();
    return rows[0] ?? null;
  }

  async getRun(id: string): Promise<AgentRunRow | null> {
    const [row] = await this.db.select().from(agentRuns).where(eq(agentRuns.id, id));
    return row ?? null;
  }

  /**
   * Run rows hold what devices and providers sent (fetched mails, files' errors): cleaned here, the
   * one door to the row, so a NUL or a lone surrogate can never fail the update and leave the run
   * `running` forever.
   */
  async updateRun(id: string, changes: Partial<Omit<AgentRunRow, 'id'>>): Promise<void> {
    await this.db.update(agentRuns).set(toStorable(changes)).where(eq(agentRuns.id, id));
  }

  async deleteRun(id: string): Promise<void> {
    await this.db.delete(agentRuns).where(eq(agentRuns.id, id));
  }

  /**
   * Appends a cloud run's fetched items and errors to the agent's run that already waits for a
   * device (the fetched items exist nowhere else once `last_run_at` moved); false when none waits.
   */
  async foldIntoWaitingRun(agentId: string, fetched: unknown[], errors: string[]): Promise<boolean> {
    const rows = await this.db
      .update(agentRuns)
      .set({
        fetched: sql`coalesce(${agentRuns.fetched}, '[]'::jsonb) || ${JSON.stringify(fetched)}::jsonb`,
        errors: sql`${agentRuns.errors} || ${JSON.stringify(errors)}::jsonb`,
      })
      .where(and(eq(agentRuns.agentId, agentId), eq(agentRuns.status, 'waiting_device')))
      .returning({ id: agentRuns.id });
    return rows.length > 0;
  }

  /** Takes a waiting run for a device: true for exactly one caller. */
  async claimWaitingRun(id: string, deviceId: string): Promise<boolean> {
    const rows = await this.db
      .update(agentRuns)
      .set({ status: 'running', deviceId })
      .where(and(eq(agentRuns.id, id), eq(agentRuns.status, 'waiting_device')))
      .returning({ id: agentRuns.id });
    return rows.length > 0;
  }

  /**
   * Takes a manual run queued by its request for the worker that runs it: `running` from now (its
   * start time too), on `deviceId`. Null when it is not queued (taken already, or cancelled).
   */
  async claimQueuedRun(id: string, deviceId: string | null): Promise<AgentRunRow | null> {
    const [row] = await this.db
      .update(agentRuns)
      .set({ status: 'running', deviceId, startedAt: new Date() })
      .where(and(eq(agentRuns.id, id), eq(agentRuns.status, 'queued')))
      .returning();
    return row ?? null;
  }

  /** The user's own run, or null (another user's run reads as missing). */
  async getOwnedRun(userId: string, id: string): Promise<AgentRunRow | null> {
    const [row] = await this.db
      .select()
      .from(agentRuns)
      .where(and(eq(agentRuns.id, id), eq(agentRuns.userId, userId)));
    return row ?? null;
  }

  /**
   * Records a cancel request on a run a worker may hold (`running`); the first request's time
   * stays. Null when the run is not running (ended, waiting or gone).
   */
  async requestRunCancel(id: string): Promise<AgentRunRow | null> {
    const [row] = await this.db
      .update(agentRuns)
      .set({ cancelRequestedAt: sql`coalesce(${agentRuns.cancelRequestedAt}, now())` })
      .where(and(eq(agentRuns.id, id), eq(agentRuns.status, 'running')))
      .returning();
    return row ?? null;
  }

  /**
   * Writes a run's terminal status, following its run's end in the run kernel's transaction (`db`):
   * one conditional UPDATE of a run that has not ended (`queued`, `running` or `waiting_device`, narrowed by
   * `from`: ending a waiting run must not end one a worker has just claimed). `errors` replaces the
   * run's errors; `appendErrors` adds to them (an end from outside the worker, which has no counts).
   * The ended row, or null when none was open.
   */
  async endRun(
    id: string,
    values: Pick<AgentRunRow, 'status'> &
      Partial<Pick<AgentRunRow, 'errors' | 'itemsProcessed' | 'itemsCreated'>> & { appendErrors?: string[] },
    from: AgentRunStatus[] = ['queued', 'running', 'waiting_device'],
    db: DbOrTx = this.db,
  ): Promise<AgentRunRow | null> {
    const { appendErrors, ...set } = values;
    const rows = await db
      .update(agentRuns)
      .set({
        ...toStorable(set),
        ...(appendErrors?.length && !set.errors
          ? { errors: sql`${agentRuns.errors} || ${JSON.stringify(toStorable(appendErrors))}::jsonb` }
          : {}),
        fetched: null,
        completedAt: new Date(),
      })
      .where(and(eq(agentRuns.id, id), inArray(agentRuns.status, from)))
      .returning();
    return rows[0] ?? null;
  }

  /** Runs of the user waiting for a device that `deviceId` may take: its own local agents' runs, and any cloud run. */
  async waitingRunsFor(userId: string, deviceId: string): Promise<AgentRunRow[]> {
    return this.db
      .select()
      .from(agentRuns)
      .where(
        and(
          eq(agentRuns.userId, userId),
          eq(agentRuns.status, 'waiting_device'),
          or(eq(agentRuns.agentType, 'cloud'), and(eq(agentRuns.agentType, 'local'), eq(agentRuns.deviceId, deviceId))),
        ),
      )
      .orderBy(agentRuns.startedAt);
  }

  /**
   * Newest first: by `page` (offset), or after run `beforeId` (keyset, the cursor's run). Answers
   * up to `limit + 1` runs, so the caller knows whether another page follows.
   */
  async listRuns(
    userId: string,
    options: { agentId?: string; page: number; limit: number; beforeId?: string },
  ): Promise<{ runs: AgentRunRow[]; total: number }> {
    const where = and(eq(agentRuns.userId, userId), options.agentId ? eq(agentRuns.agentId, options.agentId) : undefined);
    const before = options.beforeId
      ? sql`(${agentRuns.startedAt}, ${agentRuns.id}) < (select r.started_at, r.id from agent_runs r where r.id = ${options.beforeId})`
      : undefined;
    const [runs, [{ total }]] = await Promise.all([
      this.db
        .select()
        .from(agentRuns)
        .where(and(where, before))
        .orderBy(desc(agentRuns.startedAt), desc(agentRuns.id))
        .limit(options.limit + 1)
        .offset(options.beforeId ? 0 : (options.page - 1) * options.limit),
      this.db.select({ total: count() }).from(agentRuns).where(where),
    ]);
    return { runs, total: Number(total) };
  }

  /** Runs left `running` by a device that went away (marked `error` by the node that saw it go). */
  async runningRunsOn(userId: string, deviceId: string): Promise<AgentRunRow[]> {
    return this.db
      .select()
      .from(agentRuns)
      .where(
        and(eq(agentRuns.userId, userId), eq(agentRuns.deviceId, deviceId), inArray(agentRuns.status, ['running'] as AgentRunStatus[])),
      );
  }

  /* ---- OAuth credentials ------------------------------------------------------------------- */

  async insertCredential(values: {
    userId: string;
    provider: AgentProvider;
    keyId: string;
    ciphertext: string;
    scope?: string | null;
  }): Promise<OAuthCredentialRow> {
    const [row] = await this.db.insert(oauthCredentials).values(values).returning();
    return row;
  }

  /** A credential by id; with `userId`, only when that user owns it. */
  async getCredential(id: string, userId?: string): Promise<OAuthCredentialRow | null> {
    const [row] = await this.db
      .select()
      .from(oauthCredentials)
      .where(and(eq(oauthCredentials.id, id), userId ? eq(oauthCredentials.userId, userId) : undefined));
    return row ?? null;
  }

  async latestCredential(userId: string, provider: AgentProvider): Promise<OAuthCredentialRow | null> {
    const [row] = await this.db
      .select()
      .from(oauthCredentials)
      .where(and(eq(oauthCredentials.userId, userId), eq(oauthCredentials.provider, provider)))
      .orderBy(desc(oauthCredentials.updatedAt))
      .limit(1);
    return row ?? null;
  }

  async updateCredential(id: string, values: { keyId: string; ciphertext: string }): Promise<void> {
    await this.db
      .update(oauthCredentials)
      .set({ ...values, updatedAt: new Date() })
      .where(eq(oauthCredentials.id, id));
  }

  /** Raw rows, for tests that check what is at rest. */
  async credentialCiphertexts(userId: string): Promise<Array<{ keyId: string; ciphertext: string }>> {
    const result = await this.db.execute(sql`select key_id as "keyId", ciphertext from oauth_credentials where user_id = ${userId}`);
    return rowsOf<{ keyId: string; ciphertext: string }>(result);
  }
}
