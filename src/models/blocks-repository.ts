import { randomUUID } from 'node:crypto';
import { and, asc, desc, eq, gt, isNotNull, isNull, lt, or, sql } from 'drizzle-orm';
import type { Block, BlockInput, BlockType } from '../schemas/blocks';
import type { Db, DbOrTx, Tx } from './database';
import { evenRanks, needsRebalance, rankBetween } from './lexorank';
import { rowsOf } from './migrate';
import { blocks, type BlockRow, type UndoneBlock } from './schema';

/** A block row as the API shows it. */
export function toBlock(row: BlockRow): Block {
  return {
    id: row.id,
    canvasId: row.canvasId,
    type: row.type as BlockType,
    content: row.content as Record<string, unknown>,
    rank: row.rank,
    generationSessionId: row.generationSessionId,
    createdBy: row.createdBy,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

/** A `blocks` row as raw SQL returns it (snake_case columns). */
interface RawBlockRow extends Record<string, unknown> {
  id: string;
  canvas_id: string;
  type: string;
  content: unknown;
  rank: string;
  generation_session_id: string | null;
  created_by: string;
  created_at: Date | string;
  updated_at: Date | string;
  edited_by?: string | null;
  edited_at?: Date | string | null;
}

function fromRaw(row: RawBlockRow): BlockRow {
  return {
    id: row.id,
    canvasId: row.canvas_id,
    type: row.type,
    content: row.content,
    rank: row.rank,
    generationSessionId: row.generation_session_id,
    createdBy: row.created_by,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    editedBy: row.edited_by ?? null,
    editedAt: row.edited_at ? new Date(row.edited_at) : null,
  };
}

/** A removed block as its generation's row keeps it for a redo. */
function toUndone(row: BlockRow): UndoneBlock {
  return {
    id: row.id,
    type: row.type,
    content: row.content,
    rank: row.rank,
    createdBy: row.createdBy,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    editedBy: row.editedBy,
    editedAt: row.editedAt?.toISOString() ?? null,
  };
}

/** Why a redo cannot put its blocks back: the canvas is full, or a place they held is taken. */
export type RestoreRefusal = { restored: false; reason: 'canvas_full'; limit: number } | { restored: false; reason: 'taken' };

/** Where to put new blocks: after one block, before one, between two, or (neither) at the end. */
export interface Placement {
  afterId?: string | null;
  beforeId?: string | null;
}

export class PlacementError extends Error {}

/** The canvas holds `limit` blocks already (MAX_BLOCKS_PER_CANVAS). */
export class CanvasFullError extends Error {
  constructor(
    readonly limit: number,
    readonly room: number,
  ) {
    super(`The canvas holds its maximum of ${limit} blocks`);
  }
}

/**
 * Blocks of a canvas. Writes lock the canvas row first, so concurrent inserts into one canvas
 * serialise and never compute the same rank.
 */
/**
 * Runs inside the write's transaction, after the write: if it throws, nothing is stored. The block
 * routes send the room event here, so a change is stored only when its event was logged.
 */
export type BeforeCommit<T> = (value: T) => Promise<unknown>;

export class BlocksRepository {
  constructor(private readonly db: Db) {}

  async list(canvasId: string): Promise<Block[]> {
    const rows = await this.db.select().from(blocks).where(eq(blocks.canvasId, canvasId)).orderBy(asc(blocks.rank));
    return rows.map(toBlock);
  }

  /** Up to `limit` blocks in rank order, after the `(rank, id)` of the previous page's last one. */
  async listPage(canvasId: string, options: { limit: number; after?: { rank: string; id: string } }): Promise<Block[]> {
    const after = options.after;
    const rows = await this.db
      .select()
      .from(blocks)
      .where(
        and(
          eq(blocks.canvasId, canvasId),
          after ? or(gt(blocks.rank, after.rank), and(eq(blocks.rank, after.rank), gt(blocks.id, after.id))) : undefined,
        ),
      )
      .orderBy(asc(blocks.rank), asc(blocks.id))
      .limit(options.limit);
    return rows.map(toBlock);
  }

  /** How many blocks a canvas holds. */
  async count(canvasId: string, db: DbOrTx = this.db): Promise<number> {
    const [row] = await db
      .select({ n: sql<number>`count(*)::int` })
      .from(blocks)
      .where(eq(blocks.canvasId, canvasId));
    return Number(row?.n ?? 0);
  }

  async find(canvasId: string, blockId: string, db: DbOrTx = this.db): Promise<Block | null> {
    const rows = await db
      .select()
      .from(blocks)
      .where(and(eq(blocks.canvasId, canvasId), eq(blocks.id, blockId)))
      .limit(1);
    return rows[0] ? toBlock(rows[0]) : null;
  }

  async listByGeneration(generationId: string, db: DbOrTx = this.db): Promise<Block[]> {
    const rows = await db.select().from(blocks).where(eq(blocks.generationSessionId, generationId)).orderBy(asc(blocks.rank));
    return rows.map(toBlock);
  }

  /** One block, placed as asked. */
  async create(
    canvasId: string,
    createdBy: string,
    input: BlockInput,
    placement: Placement,
    maxBlocks?: number,
    beforeCommit?: BeforeCommit<Block>,
    onRebalanced?: () => void,
  ): Promise<Block> {
    return this.db.transaction(async (tx) => {
      const [created] = await this.insertMany(tx, {
        canvasId,
        createdBy,
        inputs: [input],
        placement,
        generationSessionId: null,
        maxBlocks,
        whenFull: 'refuse',
        onRebalanced,
      });
      await beforeCommit?.(created);
      return created;
    });
  }

  /**
   * Inserts `inputs` in order, with all ranks computed in one batch and ONE multi-row insert.
   * Call inside a transaction. A missing anchor under `strict: false` falls back to the end.
   * With `maxBlocks`, the canvas never holds more (counted under the canvas lock): past it the
   * insert is refused with CanvasFullError (`refuse`) or cut to the room left (`truncate`).
   */
  async insertMany(
    tx: Tx,
    args: {
      canvasId: string;
      createdBy: string;
      inputs: BlockInput[];
      placement: Placement;
      generationSessionId: string | null;
      strict?: boolean;
      maxBlocks?: number;
      whenFull?: 'refuse' | 'truncate';
      /** Called (inside the transaction) when the canvas's ranks were rewritten to make room: see `rebalance`. */
      onRebalanced?: () => void;
      /** The caller holds the canvas lock already (`lockForGeneration`): the count it read then. */
      locked?: { count: number };
    },
  ): Promise<Block[]> {
    const count = args.locked ? args.locked.count : await lockCanvas(tx, args.canvasId);
    const appending = !args.placement.afterId && !args.placement.beforeId;
    if (args.maxBlocks !== undefined) {
      const room = Math.max(0, args.maxBlocks - count);
      if (args.inputs.length > room) {
        if (args.whenFull !== 'truncate') throw new CanvasFullError(args.maxBlocks, room);
        args = { ...args, inputs: args.inputs.slice(0, room) };
      }
      if (args.inputs.length === 0) return [];
    }
    let [prev, next] = appending
      ? [await this.lastRank(tx, args.canvasId), null]
      : await this.neighbours(tx, args.canvasId, args.placement, args.strict ?? true);
    if (prev !== null && next !== null && prev >= next) throw new PlacementError('afterId must come before beforeId');
    let ranks = rankBetween(prev, next, args.inputs.length);
    if (ranks.some(needsRebalance)) {
      await this.rebalance(tx, args.canvasId);
      args.onRebalanced?.();
      [prev, next] = await this.neighbours(tx, args.canvasId, args.placement, false);
      ranks = rankBetween(prev, next, args.inputs.length);
    }
    // One statement with ONE parameter, whatever the count: the rows travel as a JSON array that
    // jsonb_to_recordset expands (Drizzle's builder spent more CPU on 200 rows than the insert). Every
    // field is chosen here (the ids too), so nothing is returned: the blocks are built from what
    // was sent, not read back and parsed again (for 200 blocks that read cost as much as the
    // foreign-key checks).
    const now = new Date().toISOString();
    const created: Block[] = args.inputs.map((input, index) => ({
      id: randomUUID(),
      canvasId: args.canvasId,
      type: input.type,
      content: input.content,
      rank: ranks[index],
      generationSessionId: args.generationSessionId,
      createdBy: args.createdBy,
      createdAt: now,
      updatedAt: now,
    }));
    const json = JSON.stringify(created.map((block) => ({ id: block.id, type: block.type, content: block.content, rank: block.rank })));
    await tx.execute(sql`
      insert into blocks (id, canvas_id, type, content, rank, generation_session_id, created_by, created_at, updated_at)
      select r.id, ${args.canvasId}::uuid, r.type, r.content, r.rank, ${args.generationSessionId}::uuid, ${args.createdBy}::uuid, ${now}::timestamptz, ${now}::timestamptz
      from jsonb_to_recordset(${json}::jsonb) as r(id uuid, type text, content jsonb, rank text)`);
    // Ranks from rankBetween ascend with the inputs: the blocks are in rank order already.
    return created;
  }

  /**
   * A generation's persist step takes its two locks in one statement: the generation's row first,
   * then its canvas's (the order an undo and a canvas deletion take them). Returns how many blocks
   * the canvas holds, as `lockCanvas` does, or null when the generation's row is gone (its canvas
   * was deleted). Call inside a transaction, then pass the count to `insertMany` as `locked`.
   */
  async lockForGeneration(tx: Tx, canvasId: string, generationId: string): Promise<number | null> {
    // The row lock in the EXISTS runs as the canvas row is filtered, before that row is locked; a
    // sub-select with FOR UPDATE is never turned into a join, so the order holds.
    const [locked] = rowsOf<{ count: number }>(
      await tx.execute(sql`
        select c.block_count as count from canvases c
        where c.id = ${canvasId}::uuid
          and exists (select 1 from generations g where g.id = ${generationId}::uuid and g.canvas_id = c.id for update)
        for update of c`),
    );
    return locked ? Number(locked.count) : null;
  }

  /**
   * New content and/or a new position for one block, by a person: the block is marked edited by
   * `editedBy` (an undo of its generation then keeps it). Under the canvas lock, like an undo,
   * so an edit racing an undo lands either before it (kept) or after it (the block is gone: null).
   */
  async update(
    canvasId: string,
    blockId: string,
    change: { content?: Record<string, unknown>; placement?: Placement; editedBy: string },
    beforeCommit?: BeforeCommit<Block>,
    onRebalanced?: () => void,
  ): Promise<Block | null> {
    return this.db.transaction(async (tx) => {
      await lockCanvas(tx, canvasId);
      const now = new Date();
      const set: Partial<typeof blocks.$inferInsert> = { updatedAt: now, editedBy: change.editedBy, editedAt: now };
      if (change.content) set.content = change.content;
      if (change.placement) {
        const placement = change.placement;
        const rankFor = async () => {
          const [prev, next] = await this.neighbours(tx, canvasId, placement, true, blockId);
          if (prev !== null && next !== null && prev >= next) throw new PlacementError('afterId must come before beforeId');
          return rankBetween(prev, next, 1)[0];
        };
        set.rank = await rankFor();
        // Repeated moves into one gap lengthen ranks like repeated inserts do: rebalance the same way.
        if (needsRebalance(set.rank)) {
          await this.rebalance(tx, canvasId);
          onRebalanced?.();
          set.rank = await rankFor();
        }
      }
      const rows = await tx
        .update(blocks)
        .set(set)
        .where(and(eq(blocks.canvasId, canvasId), eq(blocks.id, blockId)))
        .returning();
      const block = rows[0] ? toBlock(rows[0]) : null;
      if (block) await beforeCommit?.(block);
      return block;
    });
  }

  async delete(canvasId: string, blockId: string, beforeCommit?: BeforeCommit<string>): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const rows = await tx
        .delete(blocks)
        .where(and(eq(blocks.canvasId, canvasId), eq(blocks.id, blockId)))
        .returning({ id: blocks.id });
      if (rows.length) await beforeCommit?.(blockId);
      return rows.length > 0;
    });
  }

  /**
   * The ids of a generation's blocks a person has edited since it created them, in rank order, read
   * under the canvas lock (the lock hand edits and `removeGeneration` take, so the answer holds for
   * the rest of the transaction). Call inside a transaction.
   */
  async editedOfGeneration(tx: Tx, args: { canvasId: string; generationId: string }): Promise<string[]> {
    await lockCanvas(tx, args.canvasId);
    const rows = await tx
      .select({ id: blocks.id })
      .from(blocks)
      .where(and(eq(blocks.canvasId, args.canvasId), eq(blocks.generationSessionId, args.generationId), isNotNull(blocks.editedAt)))
      .orderBy(asc(blocks.rank));
    return rows.map((row) => row.id);
  }

  /**
   * Removes a generation's blocks under the canvas lock (the lock hand edits take): those no person
   * has edited, or every one with `force`. Returns the removed blocks as they were and the ids of the
   * kept ones, both in rank order. Call inside a transaction.
   */
  async removeGeneration(
    tx: Tx,
    args: { canvasId: string; generationId: string; force: boolean },
  ): Promise<{ removed: UndoneBlock[]; keptIds: string[] }> {
    await lockCanvas(tx, args.canvasId);
    const ofGeneration = and(eq(blocks.canvasId, args.canvasId), eq(blocks.generationSessionId, args.generationId));
    const removed = await tx
      .delete(blocks)
      .where(args.force ? ofGeneration : and(ofGeneration, isNull(blocks.editedAt)))
      .returning();
    const kept = args.force ? [] : await tx.select({ id: blocks.id }).from(blocks).where(ofGeneration).orderBy(asc(blocks.rank));
    return { removed: removed.sort((a, b) => (a.rank < b.rank ? -1 : 1)).map(toUndone), keptIds: kept.map((row) => row.id) };
  }

  /**
   * Puts blocks an undo removed back under the canvas lock, with their ids, ranks and fields as
   * they were. Refused, with nothing written, when the canvas has no room for them or a rank or id
   * they held is taken now. Call inside a transaction.
   */
  async restore(
    tx: Tx,
    args: { canvasId: string; generationId: string; rows: UndoneBlock[]; maxBlocks?: number },
  ): Promise<{ restored: true; blocks: Block[] } | RestoreRefusal> {
    const count = await lockCanvas(tx, args.canvasId);
    if (!args.rows.length) return { restored: true, blocks: [] };
    if (args.maxBlocks !== undefined && count + args.rows.length > args.maxBlocks)
      return { restored: false, reason: 'canvas_full', limit: args.maxBlocks };
    const ranks = sql.join(
      args.rows.map((row) => sql`${row.rank}`),
      sql`, `,
    );
    const ids = sql.join(
      args.rows.map((row) => sql`${row.id}::uuid`),
      sql`, `,
    );
    const [clash] = rowsOf<{ id: string }>(
      await tx.execute(
        sql`select id from blocks where (canvas_id = ${args.canvasId}::uuid and rank in (${ranks})) or id in (${ids}) limit 1`,
      ),
    );
    if (clash) return { restored: false, reason: 'taken' };
    const json = JSON.stringify(args.rows);
    const result = await tx.execute(sql`
      insert into blocks (id, canvas_id, type, content, rank, generation_session_id, created_by, created_at, updated_at, edited_by, edited_at)
      select r."id", ${args.canvasId}::uuid, r."type", r."content", r."rank", ${args.generationId}::uuid, r."createdBy", r."createdAt", r."updatedAt", r."editedBy", r."editedAt"
      from jsonb_to_recordset(${json}::jsonb) as r("id" uuid, "type" text, "content" jsonb, "rank" text, "createdBy" uuid, "createdAt" timestamptz, "updatedAt" timestamptz, "editedBy" uuid, "editedAt" timestamptz)
      returning *`);
    const rows = rowsOf<RawBlockRow>(result).map(fromRaw);
    return { restored: true, blocks: rows.sort((a, b) => (a.rank < b.rank ? -1 : 1)).map(toBlock) };
  }

  /**
   * Rewrites every rank of a canvas to short, evenly spaced ones, keeping the order. Clients hold
   * the old ranks: whoever commits a rebalance announces `blocks_reranked` after the commit, and
   * clients reload the canvas's blocks.
   */
  async rebalance(tx: Tx, canvasId: string): Promise<void> {
    const rows = await tx.select({ id: blocks.id }).from(blocks).where(eq(blocks.canvasId, canvasId)).orderBy(asc(blocks.rank));
    if (!rows.length) return;
    const ranks = evenRanks(rows.length);
    await tx.execute(sql`set constraints blocks_canvas_rank_unique deferred`);
    const values = sql.join(
      rows.map((row, index) => sql`(${row.id}::uuid, ${ranks[index]}::text)`),
      sql`, `,
    );
    await tx.execute(sql`update blocks set rank = v.rank from (values ${values}) as v(id, rank) where blocks.id = v.id`);
  }

  /**
   * The canvas's last rank, read in a statement after `lockCanvas`: as a subquery of the locking
   * statement it would read the blocks as they were before the lock waited for the previous
   * holder, whose blocks it would then not see.
   */
  private async lastRank(tx: Tx, canvasId: string): Promise<string | null> {
    const [last] = rowsOf<{ rank: string }>(
      await tx.execute(sql`select rank from blocks where canvas_id = ${canvasId} order by rank desc limit 1`),
    );
    return last?.rank ?? null;
  }

  /** The ranks around the insertion point. `excludeId` ignores the block being moved. */
  private async neighbours(
    tx: Tx,
    canvasId: string,
    placement: Placement,
    strict: boolean,
    excludeId?: string,
  ): Promise<[string | null, string | null]> {
    const rankOf = async (id: string) => {
      const rows = await tx
        .select({ rank: blocks.rank })
        .from(blocks)
        .where(and(eq(blocks.canvasId, canvasId), eq(blocks.id, id)))
        .limit(1);
      if (!rows[0] && strict) throw new PlacementError(`block ${id} is not on this canvas`);
      return rows[0]?.rank ?? null;
    };
    const others = excludeId ? sql`${blocks.id} <> ${excludeId}` : sql`true`;
    const after = placement.afterId ? await rankOf(placement.afterId) : null;
    const before = placement.beforeId ? await rankOf(placement.beforeId) : null;
    if (after !== null && before !== null) return [after, before];
    if (after !== null) {
      const rows = await tx
        .select({ rank: blocks.rank })
        .from(blocks)
        .where(and(eq(blocks.canvasId, canvasId), gt(blocks.rank, after), others))
        .orderBy(asc(blocks.rank))
        .limit(1);
      return [after, rows[0]?.rank ?? null];
    }
    if (before !== null) {
      const rows = await tx
        .select({ rank: blocks.rank })
        .from(blocks)
        .where(and(eq(blocks.canvasId, canvasId), lt(blocks.rank, before), others))
        .orderBy(desc(blocks.rank))
        .limit(1);
      return [rows[0]?.rank ?? null, before];
    }
    const last = await tx
      .select({ rank: blocks.rank })
      .from(blocks)
      .where(and(eq(blocks.canvasId, canvasId), others))
      .orderBy(desc(blocks.rank))
      .limit(1);
    return [last[0]?.rank ?? null, null];
  }
}

/**
 * Serialises block writes per canvas (rank computation reads then writes); returns how many blocks
 * the canvas holds, a count its row keeps (triggers on blocks), read from the row as
 * the previous holder of the lock left it.
 */
async function lockCanvas(tx: Tx, canvasId: string): Promise<number> {
  const [locked] = rowsOf<{ count: number }>(
    await tx.execute(sql`select block_count as count from canvases where id = ${canvasId} for update`),
  );
  return Number(locked?.count ?? 0);
}
