import { sql } from 'drizzle-orm';
import type { Db } from './database';
import { rowsOf } from './migrate';

/**
 * What one entry of a user's history is: a tool the assistant ran on their device, a generation
 * they asked for, a flow execution or agent run of theirs, or any other audited action they took
 * (`action`: an undo or redo, an approval, a key created …).
 */
export type HistoryKind = 'device_tool_call' | 'generation' | 'flow_execution' | 'agent_run' | 'action';

export interface HistoryEntry {
  id: string;
  kind: HistoryKind;
  /** The audit action (`device.tool_call`, `ai.generation.undone`, …), or the kind for rows of their own table. */
  action: string;
  /** When it happened (an agent run: when it started). */
  at: string;
  details: Record<string, unknown>;
}

/** A position in the history: the entry's time in microseconds (as text, exact) and its id. */
export interface HistoryPosition {
  atMicros: string;
  id: string;
}

interface RawEntry {
  id: string;
  kind: HistoryKind;
  action: string;
  at_micros: string;
  at: string | Date;
  details: Record<string, unknown> | string;
}

/**
 * One user's history, newest first, from the rows that already record it: their audit rows (as the
 * actor), their generations, flow executions and agent runs. Every branch is filtered by the user
 * first, so another user's row can never be selected, whatever the cursor says.
 */
export class HistoryRepository {
  constructor(private readonly db: Db) {}

  /** Up to `limit` entries of `userId` older than `before` (the previous page's last), newest first. */
  async page(
    userId: string,
    options: { limit: number; before?: HistoryPosition },
  ): Promise<Array<HistoryEntry & { position: HistoryPosition }>> {
    const micros = (column: string) => sql.raw(`(extract(epoch from ${column}) * 1000000)::bigint`);
    const before = options.before
      ? sql`where (h.at_micros, h.id) < (${options.before.atMicros}::bigint, ${options.before.id}::uuid)`
      : sql``;
    const result = await this.db.execute(sql`
      select h.id, h.kind, h.action, h.at_micros::text as at_micros, h.at, h.details from (
        select a.id, case when a.action = 'device.tool_call' then 'device_tool_call' else 'action' end as kind, a.action,
          ${micros('a.created_at')} as at_micros, a.created_at as at,
          a.details || jsonb_strip_nulls(jsonb_build_object('canvasId', a.canvas_id, 'targetType', a.target_type,
            'targetId', a.target_id, 'deviceId', a.device_id)) as details
        from system_audit a where a.actor_id = ${userId}::uuid
        union all
        select g.id, 'generation', 'generation', ${micros('g.created_at')}, g.created_at,
          jsonb_build_object('canvasId', g.canvas_id, 'status', g.status, 'blockCount', g.block_count,
            'errorCode', g.error_code, 'undoneAt', g.undone_at)
        from generations g where g.user_id = ${userId}::uuid
        union all
        select e.id, 'flow_execution', 'flow_execution', ${micros('e.created_at')}, e.created_at,
          jsonb_build_object('flowId', e.flow_id, 'status', e.status, 'errorCode', e.error_code)
        from flow_executions e where e.user_id = ${userId}::uuid
        union all
        select r.id, 'agent_run', 'agent_run', ${micros('r.started_at')}, r.started_at,
          jsonb_build_object('agentId', r.agent_id, 'agentType', r.agent_type, 'trigger', r.trigger, 'status', r.status,
            'deviceId', r.device_id, 'itemsProcessed', r.items_processed, 'itemsCreated', r.items_created)
        from agent_runs r where r.user_id = ${userId}::uuid
      ) h
      ${before}
      order by h.at_micros desc, h.id desc
      limit ${options.limit}`);
    return rowsOf<RawEntry>(result).map((row) => ({
      id: row.id,
      kind: row.kind,
      action: row.action,
      at: new Date(row.at).toISOString(),
      details: typeof row.details === 'string' ? (JSON.parse(row.details) as Record<string, unknown>) : row.details,
      position: { atMicros: row.at_micros, id: row.id },
    }));
  }
}
