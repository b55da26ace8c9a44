import { and, asc, eq, inArray, lt, sql } from 'drizzle-orm';
import type { Block } from '../schemas/blocks';
import type { AuditEntry, AuditRepository } from './audit-repository';
import type { BlocksRepository } from './blocks-repository';
import type { CanvasesRepository } from './canvases-repository';
import type { Db, DbOrTx, Tx } from './database';
import { preparedOnce } from './prepared';
import { rowsOf } from './migrate';
import { insertRun, runAfterStart, runFromRaw, startRun, type NewRun, type RawRun } from './runs-repository';
import { generations, type GenerationRow, type RunRow } from './schema';
import type { UsageRecord } from './usage-repository';
import { publicStatus } from '../schemas/public-status';

/** The public view of a generation (`GET .../ai/generations/:id`). */
export function toGenerationView(row: GenerationRow) {
  return {
    id: row.id,
    canvasId: row.canvasId,
    userId: row.userId,
    status: row.status,
    blockCount: row.blockCount,
    truncated: row.truncated,
    usage: { provider: row.provider, model: row.model, inputTokens: row.inputTokens, outputTokens: row.outputTokens, costUsd: row.costUsd },
    error: row.errorCode ? { code: row.errorCode, message: row.errorMessage } : null,
    attempts: row.attempts,
    createdAt: row.createdAt.toISOString(),
    startedAt: row.startedAt?.toISOString() ?? null,
    completedAt: row.completedAt?.toISOString() ?? null,
    undoneAt: row.undoneAt?.toISOString() ?? null,
  };
}

/** A generation's row as `to_jsonb` gives it (snake_case keys, timestamps as text). */
interface RawGeneration {
  id: string;
  canvas_id: string;
  user_id: string;
  prompt: string;
  after_id: string | null;
  status: GenerationRow['status'];
  block_count: number;
  truncated: boolean;
  provider: string | null;
  model: string | null;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  error_code: string | null;
  error_message: string | null;
  attempts: number;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  undone_at: string | null;
  undone_blocks: GenerationRow['undoneBlocks'];
  cancel_requested_at: string | null;
}

function generationFromRaw(raw: RawGeneration): GenerationRow {
  const date = (value: string | null) => (value === null ? null : new Date(value));
  return {
    id: raw.id,
    canvasId: raw.canvas_id,
    userId: raw.user_id,
    prompt: raw.prompt,
    afterId: raw.after_id,
    status: raw.status,
    blockCount: raw.block_count,
    truncated: raw.truncated,
    provider: raw.provider,
    model: raw.model,
    inputTokens: raw.input_tokens,
    outputTokens: raw.output_tokens,
    costUsd: raw.cost_usd,
    errorCode: raw.error_code,
    errorMessage: raw.error_message,
    attempts: raw.attempts,
    createdAt: new Date(raw.created_at),
    startedAt: date(raw.started_at),
    completedAt: date(raw.completed_at),
    undoneAt: date(raw.undone_at),
    undoneBlocks: raw.undone_blocks,
    cancelRequestedAt: date(raw.cancel_requested_at),
  };
}

/** What a completed generation's row records (`complete`). */
export interface CompletedOutcome {
  blockCount: number;
  truncated: boolean;
  provider: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  completedAt: Date;
}

export class GenerationsRepository {
  constructor(
    private readonly db: Db,
    /** The tables a canvas deletion and an undo change in the same transaction. */
    private readonly related: { canvases: CanvasesRepository; blocks: BlocksRepository; audit: AuditRepository },
  ) {}

  // The statements on every generation's way to its model request, built once.
  private readonly createQuery = preparedOnce((name) =>
    this.db
      .insert(generations)
      .values({
        id: sql.placeholder('id'),
        canvasId: sql.placeholder('canvasId'),
        userId: sql.placeholder('userId'),
        prompt: sql.placeholder('prompt'),
        afterId: sql.placeholder('afterId'),
      })
      .onConflictDoNothing({ target: generations.id })
      .prepare(name),
  );
  private readonly findQuery = preparedOnce((name) =>
    this.db
      .select()
      .from(generations)
      .where(eq(generations.id, sql.placeholder('id')))
      .limit(1)
      .prepare(name),
  );
  private readonly findOnCanvasQuery = preparedOnce((name) =>
    this.db
      .select()
      .from(generations)
      .where(and(eq(generations.id, sql.placeholder('id')), eq(generations.canvasId, sql.placeholder('canvasId'))))
      .limit(1)
      .prepare(name),
  );
  async create(input: { id: string; canvasId: string; userId: string; prompt: string; afterId: string | null }): Promise<void> {
    await this.createQuery().execute(input);
  }

  /**
   * The generation's row and its queued run in ONE statement: both are written or neither is, so a
   * start that fails here leaves nothing behind to end.
   */
  async createWithRun(
    input: { id: string; canvasId: string; userId: string; prompt: string; afterId: string | null },
    run: NewRun,
  ): Promise<void> {
    await this.db.execute(sql`
      with ${insertRun(run)}
      insert into generations (id, canvas_id, user_id, prompt, after_id)
      values (${input.id}::uuid, ${input.canvasId}::uuid, ${input.userId}::uuid, ${input.prompt}, ${input.afterId}::uuid)
      on conflict (id) do nothing`);
  }

  async find(id: string, db: DbOrTx = this.db): Promise<GenerationRow | null> {
    const rows =
      db === this.db ? await this.findQuery().execute({ id }) : await db.select().from(generations).where(eq(generations.id, id)).limit(1);
    return rows[0] ?? null;
  }

  /** Row lock inside a transaction: the generation id keys the persist step. */
  async lock(id: string, db: DbOrTx): Promise<GenerationRow | null> {
    const rows = await db.select().from(generations).where(eq(generations.id, id)).for('update').limit(1);
    return rows[0] ?? null;
  }

  async findOnCanvas(canvasId: string, id: string): Promise<GenerationRow | null> {
    const rows = await this.findOnCanvasQuery().execute({ id, canvasId });
    return rows[0] ?? null;
  }

  /**
   * Starts an attempt in ONE statement: the generation's run moves to `running` (when it is in
   * `from` and, with `unlessCancelRequested`, no cancel was asked for) and, only if it moved, the
   * generation's row becomes `running` with one more attempt. Returns the run as it now is.
   */
  async start(
    id: string,
    move: { from: readonly RunRow['status'][]; unlessCancelRequested: boolean },
  ): Promise<{ run: RunRow | null; started: boolean; row: GenerationRow | null }> {
    // The generation's row comes back too (as the start left it), so its worker reads it here.
    const result = await this.db.execute(sql`
      with moved as (${startRun('generation', id, { from: move.from.join(','), anyway: !move.unlessCancelRequested })}), marked as (
        update generations set status = 'running', started_at = coalesce(started_at, now()), attempts = attempts + 1
        where id = ${id}::uuid and status in ('queued', 'running') and exists (select 1 from moved)
        returning *
      )
      select ${runAfterStart('generation', id)} as run,
        coalesce((select to_jsonb(marked) from marked), (select to_jsonb(g) from generations g where g.id = ${id}::uuid)) as generation`);
    const found = rowsOf<{ run: (RawRun & { started: boolean }) | null; generation: RawGeneration | null }>(result)[0];
    const row = found?.generation ? generationFromRaw(found.generation) : null;
    return found?.run ? { run: runFromRaw(found.run), started: found.run.started, row } : { run: null, started: false, row };
  }

  async update(id: string, change: Partial<typeof generations.$inferInsert>, db: DbOrTx = this.db): Promise<void> {
    await db.update(generations).set(change).where(eq(generations.id, id));
  }

  /**
   * The persist step's bookkeeping in ONE statement (one round trip and no query building,
   * where `update`, `audit.write` and `usage.record` took three): the row becomes `completed` with
   * its outcome, beside its audit entry and its usage row.
   */
  async complete(tx: Tx, input: { id: string; outcome: CompletedOutcome; audit: AuditEntry; usage: UsageRecord }): Promise<void> {
    const { id, outcome: o, audit: a, usage: u } = input;
    await tx.execute(sql`
      with completed as (
        update generations set status = ${publicStatus('generation', 'succeeded')}, block_count = ${o.blockCount}::int, truncated = ${o.truncated}::boolean,
          provider = ${o.provider}, model = ${o.model}, input_tokens = ${o.inputTokens}::int, output_tokens = ${o.outputTokens}::int,
          cost_usd = ${o.costUsd}::float8, error_code = null, error_message = null, completed_at = ${o.completedAt.toISOString()}::timestamptz
        where id = ${id}::uuid
      ), audited as (
        insert into system_audit (actor_id, on_behalf_of, action, canvas_id, target_type, target_id, details)
        values (${a.actorId}::uuid, ${a.onBehalfOf ?? null}::uuid, ${a.action}, ${a.canvasId ?? null}::uuid, ${a.targetType ?? null}, ${a.targetId ?? null}::uuid, ${JSON.stringify(a.details ?? {})}::jsonb)
      )
      insert into llm_usage (user_id, generation_id, session_id, purpose, provider, model, input_tokens, output_tokens, cost_usd, estimated)
      values (${u.userId}::uuid, ${u.generationId ?? null}::uuid, ${u.sessionId ?? null}::uuid, ${u.purpose}, ${u.provider}, ${u.model},
        ${u.inputTokens}::int, ${u.outputTokens}::int, ${u.costUsd}::float8, ${u.estimated ?? false}::boolean)`);
  }

  /**
   * Ends a generation that is still queued or running (one conditional UPDATE: the first to end it
   * wins); null when it had already ended.
   */
  async endIfActive(id: string, change: Partial<typeof generations.$inferInsert>, db: DbOrTx = this.db): Promise<GenerationRow | null> {
    const rows = await db
      .update(generations)
      .set({ completedAt: new Date(), ...change })
      .where(and(eq(generations.id, id), inArray(generations.status, ['queued', 'running'])))
      .returning();
    return rows[0] ?? null;
  }

  /**
   * Deletes a canvas's generations (its deletion, before the canvas row): each row goes after
   * whoever holds its lock (a worker's persist step) has committed, so the statuses returned are
   * final, not a snapshot taken before the wait.
   */
  async deleteOnCanvas(canvasId: string, tx: Tx): Promise<Pick<GenerationRow, 'id' | 'canvasId' | 'userId' | 'status' | 'completedAt'>[]> {
    return tx.delete(generations).where(eq(generations.canvasId, canvasId)).returning({
      id: generations.id,
      canvasId: generations.canvasId,
      userId: generations.userId,
      status: generations.status,
      completedAt: generations.completedAt,
    });
  }

  /**
   * Deletes a canvas and its generations in one transaction (the generations first, each after
   * whoever holds its lock has committed). `beforeCommit` runs inside it with the deleted rows, for
   * what must be gone before anyone can see the canvas gone. Returns the deleted generations.
   */
  async deleteCanvas(
    canvasId: string,
    beforeCommit: (deleted: Awaited<ReturnType<GenerationsRepository['deleteOnCanvas']>>) => Promise<void>,
  ): Promise<Awaited<ReturnType<GenerationsRepository['deleteOnCanvas']>>> {
    return this.db.transaction(async (tx) => {
      const rows = await this.deleteOnCanvas(canvasId, tx);
      await this.related.canvases.delete(canvasId, tx);
      await beforeCommit(rows);
      return rows;
    });
  }

  /**
   * Undoes a completed generation of `canvasId` in one transaction: its blocks no person has edited
   * since are removed (every one with `force`), the row becomes `undone` keeping the removed blocks
   * for a redo, and the audit row is written by `actorId`. The removal holds the canvas lock that
   * hand edits take, so an edit racing it either lands first (its block is kept) or finds the block
   * gone. `beforeCommit` runs inside it once the blocks are gone. Says why when it cannot: not this
   * canvas's generation, undone already, not completed, or (with `askIfEdited`) blocks of it were
   * edited, listed in rank order; nothing changes then.
   */
  async undo(
    input: { generationId: string; canvasId: string; actorId: string; force: boolean; askIfEdited?: boolean },
    beforeCommit: () => Promise<void>,
  ): Promise<
    | { undone: true; blockIds: string[]; keptBlockIds: string[] }
    | { undone: false; reason: 'not_found' }
    | { undone: false; reason: 'already_undone' }
    | { undone: false; reason: 'not_completed'; status: GenerationRow['status'] }
    | { undone: false; reason: 'edited'; editedBlockIds: string[] }
  > {
    return this.db.transaction(async (tx) => {
      const generation = await this.lock(input.generationId, tx);
      if (!generation || generation.canvasId !== input.canvasId) return { undone: false as const, reason: 'not_found' as const };
      if (generation.status === 'undone') return { undone: false as const, reason: 'already_undone' as const };
      if (generation.status !== 'completed') return { undone: false as const, reason: 'not_completed' as const, status: generation.status };
      if (input.askIfEdited && !input.force) {
        const edited = await this.related.blocks.editedOfGeneration(tx, { canvasId: input.canvasId, generationId: generation.id });
        if (edited.length) return { undone: false as const, reason: 'edited' as const, editedBlockIds: edited };
      }
      const { removed, keptIds } = await this.related.blocks.removeGeneration(tx, {
        canvasId: input.canvasId,
        generationId: generation.id,
        force: input.force,
      });
      const blockIds = removed.map((block) => block.id);
      await this.update(generation.id, { status: 'undone', undoneAt: new Date(), undoneBlocks: removed }, tx);
      await beforeCommit();
      await this.related.audit.write(
        {
          actorId: input.actorId,
          action: 'ai.generation.undone',
          canvasId: input.canvasId,
          targetType: 'generation',
          targetId: generation.id,
          details: { blockCount: blockIds.length, keptBlockIds: keptIds, force: input.force },
        },
        tx,
      );
      return { undone: true as const, blockIds, keptBlockIds: keptIds };
    });
  }

  /**
   * Redoes the last undo of a generation of `canvasId` in one transaction: the blocks it removed
   * come back with their ids and ranks, the row is `completed` again with nothing left to redo, and
   * the audit row is written by `actorId`. Says why when it cannot: not this canvas's generation,
   * nothing to redo (never undone, or redone already), no room on the canvas, or a place the
   * blocks held is taken now (nothing is restored then).
   */
  async redo(input: {
    generationId: string;
    canvasId: string;
    actorId: string;
    maxBlocks?: number;
  }): Promise<
    | { redone: true; blocks: Block[] }
    | { redone: false; reason: 'not_found' | 'nothing_to_redo' | 'taken' }
    | { redone: false; reason: 'canvas_full'; limit: number }
  > {
    return this.db.transaction(async (tx) => {
      const generation = await this.lock(input.generationId, tx);
      if (!generation || generation.canvasId !== input.canvasId) return { redone: false as const, reason: 'not_found' as const };
      if (generation.status !== 'undone' || !generation.undoneBlocks) return { redone: false as const, reason: 'nothing_to_redo' as const };
      const restored = await this.related.blocks.restore(tx, {
        canvasId: input.canvasId,
        generationId: generation.id,
        rows: generation.undoneBlocks,
        maxBlocks: input.maxBlocks,
      });
      if (!restored.restored) return { redone: false as const, ...restored };
      await this.update(generation.id, { status: 'completed', undoneAt: null, undoneBlocks: null }, tx);
      await this.related.audit.write(
        {
          actorId: input.actorId,
          action: 'ai.generation.redone',
          canvasId: input.canvasId,
          targetType: 'generation',
          targetId: generation.id,
          details: { blockCount: restored.blocks.length },
        },
        tx,
      );
      return { redone: true as const, blocks: restored.blocks };
    });
  }

  /** Queued or running generations created before `before`, oldest first (the reaper's candidates). */
  async listActiveBefore(before: Date, limit: number): Promise<GenerationRow[]> {
    return this.db
      .select()
      .from(generations)
      .where(and(inArray(generations.status, ['queued', 'running']), lt(generations.createdAt, before)))
      .orderBy(asc(generations.createdAt))
      .limit(limit);
  }

  /** Generations of a user still queued or running (for the concurrency limit's self-healing). */
  async countActive(userId: string): Promise<number> {
    const rows = await this.db
      .select({ count: sql<number>`count(*)::int` })
      .from(generations)
      .where(and(eq(generations.userId, userId), inArray(generations.status, ['queued', 'running'])));
    return rows[0]?.count ?? 0;
  }
}
