import type { Db } from './database';
import type { FlowExecutionsRepository, ReusedNode } from './flow-executions-repository';
import type { FlowsRepository } from './flows-repository';
import type { FlowExecutionRow } from './schema';

/** A replay's execution, as `FlowExecutionsRepository.create` takes it, with its source and the nodes it reuses. */
export interface ReplayRows {
  id: string;
  flowId: string;
  userId: string;
  tier: FlowExecutionRow['tier'];
  definition: Record<string, unknown>;
  input: Record<string, unknown>;
  nodeIds: string[];
  replay: { executionId: string; nodeId: string; reused: ReadonlyArray<ReusedNode> };
}

/**
 * Replays of agentflow executions: the draft version a changed definition is saved as and the
 * replay's rows are written in one transaction, so a replay that cannot be written leaves no
 * draft behind, and a draft always has the execution that made it.
 */
export class FlowReplaysRepository {
  constructor(
    private readonly db: Db,
    private readonly flows: FlowsRepository,
    private readonly executions: FlowExecutionsRepository,
  ) {}

  /**
   * Writes the replay running `version`, or (`draft`) its definition saved first as the flow's
   * next version, unpublished. The version it runs; null when the owner's flow is gone.
   */
  async create(rows: ReplayRows, version: number | { draft: true }): Promise<number | null> {
    return this.db.transaction(async (tx) => {
      let number: number;
      if (typeof version === 'number') number = version;
      else {
        const saved = await this.flows.update(rows.userId, rows.flowId, { definition: rows.definition, publish: false }, tx);
        if (!saved) return null;
        number = saved.latestVersion;
      }
      await this.executions.create({ ...rows, flowVersion: number }, tx);
      return number;
    });
  }
}
