import { and, asc, count, desc, eq, inArray, isNull, lt, or, sql } from 'drizzle-orm';
import type { Db, DbOrTx, Tx } from './database';
import { RunsRepository } from './runs-repository';
import { flowExecutionNodes, flowExecutions, type FlowExecutionNodeRow, type FlowExecutionRow } from './schema';

const ACTIVE = ['queued', 'running'] as const;

/** A trigger's fire found its concurrency limit taken: nothing was written; the fire waits and tries again. */
export class TriggerConcurrencyFull extends Error {
  constructor(readonly limit: number) {
    super(`The trigger already has ${limit} executions queued or running under this concurrency key`);
    this.name = 'TriggerConcurrencyFull';
  }
}

/** A node's public view (`GET /flows/:id/executions/:executionId`). */
export function toNodeView(row: FlowExecutionNodeRow) {
  return {
    id: row.nodeId,
    status: row.status,
    output: row.output ?? null,
    error: row.errorCode ? { code: row.errorCode, message: row.errorMessage ?? '' } : null,
    attempts: row.attempts,
    reused: row.reused,
    usage: { provider: row.provider, model: row.model, inputTokens: row.inputTokens, outputTokens: row.outputTokens, costUsd: row.costUsd },
    startedAt: row.startedAt?.toISOString() ?? null,
    completedAt: row.completedAt?.toISOString() ?? null,
  };
}

/** An execution's public view; `nodes` only when given (the list leaves them out). */
export function toExecutionView(row: FlowExecutionRow, nodes?: FlowExecutionNodeRow[]) {
  return {
    id: row.id,
    flowId: row.flowId,
    flowVersion: row.flowVersion,
    status: row.status,
    input: row.input,
    output: row.output ?? null,
    error: row.errorCode ? { code: row.errorCode, message: row.errorMessage ?? '' } : null,
    usage: { inputTokens: row.inputTokens, outputTokens: row.outputTokens, costUsd: row.costUsd },
    replayOf: row.replayOf && row.replayFrom ? { executionId: row.replayOf, fromNode: row.replayFrom } : null,
    createdAt: row.createdAt.toISOString(),
    startedAt: row.startedAt?.toISOString() ?? null,
    completedAt: row.completedAt?.toISOString() ?? null,
    ...(nodes ? { nodes: nodes.map(toNodeView) } : {}),
  };
}

/** A node a replay takes over from its source execution, as it ended there. */
export interface ReusedNode {
  nodeId: string;
  status: 'completed' | 'skipped';
  output: unknown;
}

/** What a finished model call of a node cost. */
export interface NodeCost {
  provider: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

/**
 * Agentflow executions and their nodes. Every state change is one conditional UPDATE, so two
 * workers (or a worker and a cancel) racing on the same row cannot both win, and a node's
 * completion is committed before anything it unblocks is dispatched.
 */
export class FlowExecutionsRepository {
  private readonly runs: RunsRepository;

  constructor(private readonly db: Db) {
    this.runs = new RunsRepository(db);
  }

  /**
   * The execution, one pending row per node and its queued run (carried by one job
   * per node, so no single job id), in one transaction.
   */
  async create(
    input: {
      id: string;
      flowId: string;
      userId: string;
      tier: FlowExecutionRow['tier'];
      definition: Record<string, unknown>;
      flowVersion: number;
      input: Record<string, unknown>;
      nodeIds: string[];
      /**
       * The trigger fire that started it: unique per trigger (a second insert of the same fire fails).
       * With `limit`, the insert is refused ({@link TriggerConcurrencyFull}) while that many of the
       * trigger's executions under the same key are queued or running: counted under a transaction
       * lock on (trigger, key), so two fires at once cannot both take the last place.
       */
      trigger?: { triggerId: string; fire: string; concurrencyKey: string; limit?: number };
      /** A subflow's child: the execution and node that started it, and its depth. */
      parent?: { executionId: string; nodeId: string; depth: number };
      /** `evaluation`: its jobs wait behind everyone's own executions. */
      lane?: 'evaluation';
      /**
       * A replay: the ended execution and node it starts from, and the nodes it reuses, written
       * finished with the source's outputs (no attempt, no cost) instead of `pending`.
       */
      replay?: { executionId: string; nodeId: string; reused: ReadonlyArray<ReusedNode> };
    },
    db: Db | Tx = this.db,
  ): Promise<FlowExecutionRow> {
    const reused = new Map((input.replay?.reused ?? []).map((node) => [node.nodeId, node]));
    return db.transaction(async (tx) => {
      const trigger = input.trigger;
      if (trigger?.limit !== undefined) {
        await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${`${trigger.triggerId}|${trigger.concurrencyKey}`}, 0))`);
        const [open] = await tx
          .select({ n: count() })
          .from(flowExecutions)
          .where(
            and(
              eq(flowExecutions.triggerId, trigger.triggerId),
              eq(flowExecutions.concurrencyKey, trigger.concurrencyKey),
              inArray(flowExecutions.status, ['queued', 'running']),
            ),
          );
        if ((open?.n ?? 0) >= trigger.limit) throw new TriggerConcurrencyFull(trigger.limit);
      }
      const [row] = await tx
        .insert(flowExecutions)
        .values({
          id: input.id,
          flowId: input.flowId,
          userId: input.userId,
          tier: input.tier,
          definition: input.definition,
          flowVersion: input.flowVersion,
          input: input.input,
          ...(trigger ? { triggerId: trigger.triggerId, triggerFire: trigger.fire, concurrencyKey: trigger.concurrencyKey } : {}),
          ...(input.parent
            ? { parentExecutionId: input.parent.executionId, parentNodeId: input.parent.nodeId, depth: input.parent.depth }
            : {}),
          ...(input.lane ? { lane: input.lane } : {}),
          ...(input.replay ? { replayOf: input.replay.executionId, replayFrom: input.replay.nodeId } : {}),
        })
        .returning();
      await tx.insert(flowExecutionNodes).values(
        input.nodeIds.map((nodeId, position) => {
          const kept = reused.get(nodeId);
          return kept
            ? {
                executionId: input.id,
                nodeId,
                position,
                status: kept.status,
                output: kept.status === 'completed' ? sql`${JSON.stringify(kept.output ?? null)}::jsonb` : null,
                completedAt: sql`now()`,
                reused: true,
              }
            : { executionId: input.id, nodeId, position };
        }),
      );
      await this.runs.insert({ kind: 'flow', id: input.id, userId: input.userId, queue: 'flows', jobId: null }, tx);
      return row;
    });
  }

  async find(id: string, db: DbOrTx = this.db): Promise<FlowExecutionRow | null> {
    const rows = await db.select().from(flowExecutions).where(eq(flowExecutions.id, id)).limit(1);
    return rows[0] ?? null;
  }

  /** The execution when it belongs to `flowId` (whose owner the caller was checked to be). */
  async findOfFlow(flowId: string, id: string, db: DbOrTx = this.db): Promise<FlowExecutionRow | null> {
    const rows = await db
      .select()
      .from(flowExecutions)
      .where(and(eq(flowExecutions.id, id), eq(flowExecutions.flowId, flowId)))
      .limit(1);
    return rows[0] ?? null;
  }

  /** A flow's executions, newest first, `limit` after the cursor's `(createdAt, id)`. */
  async listPage(flowId: string, options: { limit: number; after?: { at: Date; id: string } }): Promise<FlowExecutionRow[]> {
    const { after } = options;
    const page = after
      ? or(lt(flowExecutions.createdAt, after.at), and(eq(flowExecutions.createdAt, after.at), lt(flowExecutions.id, after.id)))
      : undefined;
    return this.db
      .select()
      .from(flowExecutions)
      .where(and(eq(flowExecutions.flowId, flowId), page))
      .orderBy(desc(flowExecutions.createdAt), desc(flowExecutions.id))
      .limit(options.limit);
  }

  /**
   * `findOfFlow` with the execution's nodes, read in one snapshot: a node's cost and the execution's
   * total are written in one transaction, so a reader sees both or neither (two reads in a row
   * could see a node's cost without the total it adds to).
   */
  async findOfFlowWithNodes(flowId: string, id: string): Promise<{ execution: FlowExecutionRow; nodes: FlowExecutionNodeRow[] } | null> {
    return this.db.transaction(
      async (tx) => {
        const execution = await this.findOfFlow(flowId, id, tx);
        return execution ? { execution, nodes: await this.nodes(execution.id, tx) } : null;
      },
      { isolationLevel: 'repeatable read', accessMode: 'read only' },
    );
  }

  /** The nodes of an execution in definition order. */
  async nodes(executionId: string, db: DbOrTx = this.db): Promise<FlowExecutionNodeRow[]> {
    return db
      .select()
      .from(flowExecutionNodes)
      .where(eq(flowExecutionNodes.executionId, executionId))
      .orderBy(asc(flowExecutionNodes.position));
  }

  async node(executionId: string, nodeId: string): Promise<FlowExecutionNodeRow | null> {
    const rows = await this.db
      .select()
      .from(flowExecutionNodes)
      .where(and(eq(flowExecutionNodes.executionId, executionId), eq(flowExecutionNodes.nodeId, nodeId)))
      .limit(1);
    return rows[0] ?? null;
  }

  /**
   * Starts an attempt of a node while its execution is active: the node becomes `running` (attempts
   * + 1), the execution `running`. Null when the execution ended or the node is no longer pending
   * or running (finished, skipped, cancelled).
   */
  async startNode(executionId: string, nodeId: string): Promise<FlowExecutionNodeRow | null> {
    return this.db.transaction(async (tx) => {
      const started = await tx
        .update(flowExecutions)
        .set({ status: 'running', startedAt: sql`coalesce(${flowExecutions.startedAt}, now())` })
        .where(and(eq(flowExecutions.id, executionId), inArray(flowExecutions.status, ACTIVE)))
        .returning({ id: flowExecutions.id });
      if (!started.length) return null;
      const [node] = await tx
        .update(flowExecutionNodes)
        .set({
          status: 'running',
          attempts: sql`${flowExecutionNodes.attempts} + 1`,
          startedAt: sql`coalesce(${flowExecutionNodes.startedAt}, now())`,
          errorCode: null,
          errorMessage: null,
        })
        .where(
          and(
            eq(flowExecutionNodes.executionId, executionId),
            eq(flowExecutionNodes.nodeId, nodeId),
            inArray(flowExecutionNodes.status, ['pending', 'running']),
          ),
        )
        .returning();
      return node ?? null;
    });
  }

  /**
   * Records a node's output and cost and adds the cost to the execution, only while the node runs
   * and the execution is active (a cancel or a failure elsewhere wins). False when it lost. A node
   * whose cost was counted as it went (its items) or that called no model passes `null`.
   */
  async completeNode(executionId: string, nodeId: string, output: unknown, cost: NodeCost | null): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const status = await this.lockExecution(tx, executionId);
      if (status !== 'running') return false;
      const rows = await tx
        .update(flowExecutionNodes)
        .set({ status: 'completed', output: sql`${JSON.stringify(output ?? null)}::jsonb`, completedAt: sql`now()`, ...(cost ?? {}) })
        .where(
          and(
            eq(flowExecutionNodes.executionId, executionId),
            eq(flowExecutionNodes.nodeId, nodeId),
            eq(flowExecutionNodes.status, 'running'),
          ),
        )
        .returning({ nodeId: flowExecutionNodes.nodeId });
      if (!rows.length) return false;
      if (cost) await this.addCost(tx, executionId, cost);
      return true;
    });
  }

  /**
   * Nodes no branch taken leads to: `pending` → `skipped` while the execution is active. The ids
   * that changed.
   */
  async skipNodes(executionId: string, nodeIds: string[]): Promise<string[]> {
    if (!nodeIds.length) return [];
    return this.db.transaction(async (tx) => {
      const status = await this.lockExecution(tx, executionId);
      if (status !== 'running' && status !== 'queued') return [];
      const rows = await tx
        .update(flowExecutionNodes)
        .set({ status: 'skipped', completedAt: sql`now()` })
        .where(
          and(
            eq(flowExecutionNodes.executionId, executionId),
            inArray(flowExecutionNodes.nodeId, nodeIds),
            eq(flowExecutionNodes.status, 'pending'),
          ),
        )
        .returning({ nodeId: flowExecutionNodes.nodeId });
      return rows.map((row) => row.nodeId);
    });
  }

  /** The child execution a subflow node of `parentId` started, if any. */
  async childOf(parentId: string, nodeId: string): Promise<FlowExecutionRow | null> {
    const rows = await this.db
      .select()
      .from(flowExecutions)
      .where(and(eq(flowExecutions.parentExecutionId, parentId), eq(flowExecutions.parentNodeId, nodeId)))
      .limit(1);
    return rows[0] ?? null;
  }

  /** The child executions of `parentId` still open. */
  async openChildren(parentId: string): Promise<FlowExecutionRow[]> {
    return this.db
      .select()
      .from(flowExecutions)
      .where(and(eq(flowExecutions.parentExecutionId, parentId), inArray(flowExecutions.status, ACTIVE)));
  }

  /** Adds cost to a node as its items finish (the execution's total is added with them). */
  async addNodeCostOnly(tx: DbOrTx, executionId: string, nodeId: string, cost: NodeCost): Promise<void> {
    await tx
      .update(flowExecutionNodes)
      .set({
        provider: cost.provider,
        model: cost.model,
        inputTokens: sql`${flowExecutionNodes.inputTokens} + ${cost.inputTokens}`,
        outputTokens: sql`${flowExecutionNodes.outputTokens} + ${cost.outputTokens}`,
        costUsd: sql`${flowExecutionNodes.costUsd} + ${cost.costUsd}`,
      })
      .where(and(eq(flowExecutionNodes.executionId, executionId), eq(flowExecutionNodes.nodeId, nodeId)));
    await this.addCost(tx, executionId, cost);
  }

  /** Ends a node `failed` (after its last attempt) and adds what it cost; false when it was no longer running. */
  async failNode(executionId: string, nodeId: string, error: { code: string; message: string }, cost?: NodeCost): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      await this.lockExecution(tx, executionId);
      const rows = await tx
        .update(flowExecutionNodes)
        .set({ status: 'failed', errorCode: error.code, errorMessage: error.message, completedAt: sql`now()`, ...(cost ?? {}) })
        .where(
          and(
            eq(flowExecutionNodes.executionId, executionId),
            eq(flowExecutionNodes.nodeId, nodeId),
            inArray(flowExecutionNodes.status, ['pending', 'running']),
          ),
        )
        .returning({ nodeId: flowExecutionNodes.nodeId });
      if (!rows.length) return false;
      if (cost) await this.addCost(tx, executionId, cost);
      return true;
    });
  }

  /** What a node's cut-short call cost (a cancel): kept on the node, however it ended, and on the execution. */
  async addNodeCost(executionId: string, nodeId: string, cost: NodeCost): Promise<void> {
    await this.db.transaction(async (tx) => {
      await this.lockExecution(tx, executionId);
      await tx
        .update(flowExecutionNodes)
        .set({
          provider: cost.provider,
          model: cost.model,
          inputTokens: sql`${flowExecutionNodes.inputTokens} + ${cost.inputTokens}`,
          outputTokens: sql`${flowExecutionNodes.outputTokens} + ${cost.outputTokens}`,
          costUsd: sql`${flowExecutionNodes.costUsd} + ${cost.costUsd}`,
          completedAt: sql`coalesce(${flowExecutionNodes.completedAt}, now())`,
        })
        .where(and(eq(flowExecutionNodes.executionId, executionId), eq(flowExecutionNodes.nodeId, nodeId)));
      await this.addCost(tx, executionId, cost);
    });
  }

  /**
   * Every transaction that writes a node takes its execution's row lock first: one order for all,
   * so two workers and a cancel never deadlock. Returns the execution's status.
   */
  async lockExecution(tx: DbOrTx, executionId: string): Promise<FlowExecutionRow['status'] | null> {
    const [row] = await tx
      .select({ status: flowExecutions.status })
      .from(flowExecutions)
      .where(eq(flowExecutions.id, executionId))
      .for('update');
    return row?.status ?? null;
  }

  private async addCost(tx: DbOrTx, executionId: string, cost: NodeCost): Promise<void> {
    await tx
      .update(flowExecutions)
      .set({
        inputTokens: sql`${flowExecutions.inputTokens} + ${cost.inputTokens}`,
        outputTokens: sql`${flowExecutions.outputTokens} + ${cost.outputTokens}`,
        costUsd: sql`${flowExecutions.costUsd} + ${cost.costUsd}`,
      })
      .where(eq(flowExecutions.id, executionId));
  }

  /** Notes that a node's terminal event was written. */
  async markAnnounced(executionId: string, nodeId: string): Promise<void> {
    await this.db
      .update(flowExecutionNodes)
      .set({ announcedAt: sql`coalesce(${flowExecutionNodes.announcedAt}, now())` })
      .where(and(eq(flowExecutionNodes.executionId, executionId), eq(flowExecutionNodes.nodeId, nodeId)));
  }

  /**
   * Ends the execution while it is active (the first to end it wins) and settles its open nodes:
   * pending ones become `skipped` (or `cancelled`), running ones `cancelled`. Null when it had ended.
   */
  async end(
    id: string,
    change: { status: 'completed' | 'failed' | 'cancelled'; output?: unknown; errorCode?: string; errorMessage?: string },
    db?: Tx,
  ): Promise<FlowExecutionRow | null> {
    if (!db) return this.db.transaction((tx) => this.end(id, change, tx));
    const tx = db;
    const [row] = await tx
      .update(flowExecutions)
      .set({
        status: change.status,
        completedAt: sql`now()`,
        ...(change.output !== undefined ? { output: sql`${JSON.stringify(change.output)}::jsonb` } : {}),
        ...(change.errorCode ? { errorCode: change.errorCode, errorMessage: change.errorMessage ?? null } : {}),
      })
      .where(and(eq(flowExecutions.id, id), inArray(flowExecutions.status, ACTIVE)))
      .returning();
    if (!row) return null;
    await tx
      .update(flowExecutionNodes)
      .set({ status: change.status === 'cancelled' ? 'cancelled' : 'skipped' })
      .where(and(eq(flowExecutionNodes.executionId, id), eq(flowExecutionNodes.status, 'pending')));
    await tx
      .update(flowExecutionNodes)
      .set({ status: 'cancelled', completedAt: sql`now()` })
      .where(and(eq(flowExecutionNodes.executionId, id), eq(flowExecutionNodes.status, 'running')));
    return row;
  }

  /** Active executions created before `before`, oldest first (the reaper re-dispatches them). */
  async listActiveBefore(before: Date, limit: number): Promise<FlowExecutionRow[]> {
    return this.db
      .select()
      .from(flowExecutions)
      .where(and(inArray(flowExecutions.status, ACTIVE), lt(flowExecutions.createdAt, before)))
      .orderBy(asc(flowExecutions.createdAt))
      .limit(limit);
  }

  /** Finished nodes whose event is still unwritten (a worker died between the commit and the event). */
  async unannounced(executionId: string): Promise<FlowExecutionNodeRow[]> {
    return this.db
      .select()
      .from(flowExecutionNodes)
      .where(
        and(
          eq(flowExecutionNodes.executionId, executionId),
          inArray(flowExecutionNodes.status, ['completed', 'failed']),
          isNull(flowExecutionNodes.announcedAt),
        ),
      );
  }
}
