import { and, asc, count, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from './database';
import type { FlowExecutionsRepository, NodeCost } from './flow-executions-repository';
import { flowExecutionItems, flowExecutionNodes, type FlowExecutionItemRow } from './schema';

const OPEN = ['queued', 'running'] as const;

/**
 * The items of foreach and loop nodes: one row per element or iteration, each run by its own job.
 * Every change takes the execution's row lock first (the order every node write keeps), so two
 * items finishing at once see each other, and the concurrency cap holds: an item is `queued` only
 * inside the transaction that counted the open ones.
 */
export class FlowItemsRepository {
  constructor(
    private readonly db: Db,
    private readonly executions: FlowExecutionsRepository,
  ) {}

  /**
   * Writes a node's items (a second call writes nothing new) and queues up to `cap` of them, while
   * the execution runs and the node is `running`. The indexes newly queued.
   */
  async open(executionId: string, nodeId: string, inputs: readonly unknown[], cap: number): Promise<number[]> {
    return this.db.transaction(async (tx) => {
      if ((await this.executions.lockExecution(tx, executionId)) !== 'running') return [];
      if (!(await this.nodeRunning(tx, executionId, nodeId))) return [];
      if (inputs.length)
        await tx
          .insert(flowExecutionItems)
          .values(inputs.map((input, index) => ({ executionId, nodeId, index, input: sql`${JSON.stringify(input ?? null)}::jsonb` })))
          .onConflictDoNothing();
      return this.claim(tx, executionId, nodeId, cap);
    });
  }

  /** Queues pending items up to `cap` open ones (inside the execution's lock). */
  private async claim(
    tx: Parameters<Parameters<Db['transaction']>[0]>[0],
    executionId: string,
    nodeId: string,
    cap: number,
  ): Promise<number[]> {
    const [{ open }] = await tx
      .select({ open: count() })
      .from(flowExecutionItems)
      .where(
        and(
          eq(flowExecutionItems.executionId, executionId),
          eq(flowExecutionItems.nodeId, nodeId),
          inArray(flowExecutionItems.status, OPEN),
        ),
      );
    const room = cap - open;
    if (room <= 0) return [];
    const next = await tx
      .select({ index: flowExecutionItems.index })
      .from(flowExecutionItems)
      .where(
        and(
          eq(flowExecutionItems.executionId, executionId),
          eq(flowExecutionItems.nodeId, nodeId),
          eq(flowExecutionItems.status, 'pending'),
        ),
      )
      .orderBy(asc(flowExecutionItems.index))
      .limit(room);
    if (!next.length) return [];
    const indexes = next.map((row) => row.index);
    await tx
      .update(flowExecutionItems)
      .set({ status: 'queued' })
      .where(
        and(
          eq(flowExecutionItems.executionId, executionId),
          eq(flowExecutionItems.nodeId, nodeId),
          inArray(flowExecutionItems.index, indexes),
        ),
      );
    return indexes;
  }

  private async nodeRunning(tx: Parameters<Parameters<Db['transaction']>[0]>[0], executionId: string, nodeId: string): Promise<boolean> {
    const [node] = await tx
      .select({ status: flowExecutionNodes.status })
      .from(flowExecutionNodes)
      .where(and(eq(flowExecutionNodes.executionId, executionId), eq(flowExecutionNodes.nodeId, nodeId)));
    return node?.status === 'running';
  }

  /** Starts an attempt of a queued (or re-run) item while the execution runs; null otherwise. */
  async start(executionId: string, nodeId: string, index: number): Promise<FlowExecutionItemRow | null> {
    return this.db.transaction(async (tx) => {
      if ((await this.executions.lockExecution(tx, executionId)) !== 'running') return null;
      const [row] = await tx
        .update(flowExecutionItems)
        .set({
          status: 'running',
          attempts: sql`${flowExecutionItems.attempts} + 1`,
          startedAt: sql`coalesce(${flowExecutionItems.startedAt}, now())`,
        })
        .where(and(this.itemIs(executionId, nodeId, index), inArray(flowExecutionItems.status, OPEN)))
        .returning();
      return row ?? null;
    });
  }

  /**
   * Commits an item's output and cost (added to its node and execution) while it runs and the
   * execution runs, and queues the next pending items up to `cap`. `won` is false when it lost.
   */
  async complete(
    executionId: string,
    nodeId: string,
    index: number,
    output: unknown,
    cost: NodeCost,
    cap: number,
  ): Promise<{ won: boolean; queued: number[] }> {
    return this.db.transaction(async (tx) => {
      if ((await this.executions.lockExecution(tx, executionId)) !== 'running') return { won: false, queued: [] };
      const rows = await tx
        .update(flowExecutionItems)
        .set({
          status: 'completed',
          output: sql`${JSON.stringify(output ?? null)}::jsonb`,
          completedAt: sql`now()`,
          inputTokens: cost.inputTokens,
          outputTokens: cost.outputTokens,
          costUsd: cost.costUsd,
        })
        .where(and(this.itemIs(executionId, nodeId, index), eq(flowExecutionItems.status, 'running')))
        .returning({ index: flowExecutionItems.index });
      if (!rows.length) return { won: false, queued: [] };
      await this.executions.addNodeCostOnly(tx, executionId, nodeId, cost);
      return { won: true, queued: await this.claim(tx, executionId, nodeId, cap) };
    });
  }

  /** Ends an item `failed` (its last attempt), adding what it cost; false when it was no longer open. */
  async fail(executionId: string, nodeId: string, index: number, code: string, cost?: NodeCost): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      await this.executions.lockExecution(tx, executionId);
      const rows = await tx
        .update(flowExecutionItems)
        .set({ status: 'failed', errorCode: code, completedAt: sql`now()` })
        .where(and(this.itemIs(executionId, nodeId, index), inArray(flowExecutionItems.status, OPEN)))
        .returning({ index: flowExecutionItems.index });
      if (!rows.length) return false;
      if (cost) await this.executions.addNodeCostOnly(tx, executionId, nodeId, cost);
      return true;
    });
  }

  /** Adds the next iteration of a loop, queued at once, while the execution runs; false when it exists. */
  async addIteration(executionId: string, nodeId: string, index: number): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      if ((await this.executions.lockExecution(tx, executionId)) !== 'running') return false;
      if (!(await this.nodeRunning(tx, executionId, nodeId))) return false;
      const rows = await tx
        .insert(flowExecutionItems)
        .values({ executionId, nodeId, index, status: 'queued' })
        .onConflictDoNothing()
        .returning({ index: flowExecutionItems.index });
      return rows.length > 0;
    });
  }

  async find(executionId: string, nodeId: string, index: number): Promise<FlowExecutionItemRow | null> {
    const rows = await this.db
      .select()
      .from(flowExecutionItems)
      .where(this.itemIs(executionId, nodeId, index))
      .limit(1);
    return rows[0] ?? null;
  }

  /** A node's items in order. */
  async list(executionId: string, nodeId: string): Promise<FlowExecutionItemRow[]> {
    return this.db
      .select()
      .from(flowExecutionItems)
      .where(and(eq(flowExecutionItems.executionId, executionId), eq(flowExecutionItems.nodeId, nodeId)))
      .orderBy(asc(flowExecutionItems.index));
  }

  /** The execution's items whose job should be on the queue (queued or running). */
  async openItems(executionId: string): Promise<Array<Pick<FlowExecutionItemRow, 'nodeId' | 'index'>>> {
    return this.db
      .select({ nodeId: flowExecutionItems.nodeId, index: flowExecutionItems.index })
      .from(flowExecutionItems)
      .where(and(eq(flowExecutionItems.executionId, executionId), inArray(flowExecutionItems.status, OPEN)));
  }

  private itemIs(executionId: string, nodeId: string, index: number) {
    return and(eq(flowExecutionItems.executionId, executionId), eq(flowExecutionItems.nodeId, nodeId), eq(flowExecutionItems.index, index));
  }
}
