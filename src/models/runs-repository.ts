import { and, asc, eq, inArray, isNull, lt, sql, type SQL, type SQLWrapper } from 'drizzle-orm';
import type { Db, DbOrTx, Tx } from './database';
import { runs, type RunRow } from './schema';

type RunKind = RunRow['kind'];
type RunStatus = RunRow['status'];

/** A new run: queued, on the job that carries it. */
export interface NewRun {
  kind: RunKind;
  id: string;
  userId: string;
  queue: string | null;
  jobId: string | null;
}

/** A move of a run's status, as the run kernel checked it (src/runs/transitions.ts). */
export interface RunMove {
  to: RunStatus;
  /** The statuses the run must be in for the move to happen. */
  from: readonly RunStatus[];
  /** Refuse the move when a cancel was requested. */
  unlessCancelRequested: boolean;
  errorCode?: string | null;
  errorMessage?: string | null;
}

/**
 * Every statement on the `runs` table: this module alone writes it. A kind whose own row is written
 * in the same statement (a generation, a chat turn) builds that statement from the fragments below
 * (`insertRun`, `moveRun`, `startRun`). Each write is conditional on the run's current status, so
 * any number of processes may try the same move and exactly one wins.
 */
export class RunsRepository {
  constructor(private readonly db: Db) {}

  async insert(run: NewRun, db: DbOrTx = this.db): Promise<void> {
    await db
      .insert(runs)
      .values(run)
      .onConflictDoNothing({ target: [runs.kind, runs.id] });
  }

  /**
   * A new queued run under an id whose last run has ended (a session's notes written again after a
   * failure): the ended row is replaced. Nothing happens while a run under that id is still open.
   * Returns whether the run was (re)created.
   */
  async reopen(run: NewRun, db: DbOrTx = this.db): Promise<boolean> {
    const rows = await db
      .insert(runs)
      .values(run)
      .onConflictDoUpdate({
        target: [runs.kind, runs.id],
        set: {
          userId: run.userId,
          status: 'queued',
          queue: run.queue,
          jobId: run.jobId,
          cancelRequestedAt: null,
          cancelRequestedBy: null,
          errorCode: null,
          errorMessage: null,
          createdAt: sql`now()`,
          startedAt: null,
          endedAt: null,
        },
        setWhere: inArray(runs.status, ['succeeded', 'failed', 'cancelled', 'timed_out']),
      })
      .returning({ id: runs.id });
    return rows.length > 0;
  }

  async find(kind: RunKind, id: string, db: DbOrTx = this.db): Promise<RunRow | null> {
    const rows = await db
      .select()
      .from(runs)
      .where(and(eq(runs.kind, kind), eq(runs.id, id)))
      .limit(1);
    return rows[0] ?? null;
  }

  /** Applies `move` when the run is in one of `move.from`: the moved row, or null when it was not. */
  async move(kind: RunKind, id: string, move: RunMove, db: DbOrTx = this.db): Promise<RunRow | null> {
    const rows = await db
      .update(runs)
      .set(setFor(move))
      .where(whereFor(kind, id, move))
      .returning();
    return rows[0] ?? null;
  }

  /**
   * Applies `move` and, in the same transaction, `within` (the kind's own row, written with the
   * run's end): null when the run was not in `move.from`. An error thrown by `within` undoes both.
   */
  async moveWith<P>(
    kind: RunKind,
    id: string,
    move: RunMove,
    within: (tx: Tx, run: RunRow) => Promise<P>,
  ): Promise<{ run: RunRow; value: P } | null> {
    return this.db.transaction(async (tx) => {
      const run = await this.move(kind, id, move, tx);
      if (!run) return null;
      return { run, value: await within(tx, run) };
    });
  }

  /** Records a cancel request on an open run (the first request's time and actor are kept); null once it has ended. */
  async requestCancel(kind: RunKind, id: string, actorId: string): Promise<RunRow | null> {
    const rows = await this.db
      .update(runs)
      .set({
        cancelRequestedAt: sql`coalesce(${runs.cancelRequestedAt}, now())`,
        cancelRequestedBy: sql`coalesce(${runs.cancelRequestedBy}, ${actorId}::uuid)`,
      })
      .where(and(eq(runs.kind, kind), eq(runs.id, id), inArray(runs.status, ['queued', 'running', 'waiting'])))
      .returning();
    return rows[0] ?? null;
  }

  /** Deletes every run of a user (account deletion, inside its transaction): what was open, for its jobs to be removed. */
  async deleteOfUser(userId: string, tx: Tx): Promise<Array<Pick<RunRow, 'queue' | 'jobId' | 'status'>>> {
    return tx.delete(runs).where(eq(runs.userId, userId)).returning({ queue: runs.queue, jobId: runs.jobId, status: runs.status });
  }

  /**
   * Open runs of `kind` created before `before`, oldest first (the reaper's candidates). A waiting
   * run is not one: no job carries it, its waitpoints do.
   */
  async listOpenBefore(kind: RunKind, before: Date, limit: number): Promise<RunRow[]> {
    return this.db
      .select()
      .from(runs)
      .where(and(eq(runs.kind, kind), inArray(runs.status, ['queued', 'running']), lt(runs.createdAt, before)))
      .orderBy(asc(runs.createdAt))
      .limit(limit);
  }
}

function setFor(move: RunMove) {
  if (move.to === 'running') return { status: move.to, startedAt: sql`coalesce(${runs.startedAt}, now())` };
  if (move.to === 'queued' || move.to === 'waiting') return { status: move.to };
  return { status: move.to, endedAt: sql`now()`, errorCode: move.errorCode ?? null, errorMessage: move.errorMessage ?? null };
}

function whereFor(kind: RunKind, id: string, move: RunMove): SQL {
  return and(
    eq(runs.kind, kind),
    eq(runs.id, id),
    inArray(runs.status, [...move.from]),
    move.unlessCancelRequested ? isNull(runs.cancelRequestedAt) : undefined,
  )!;
}

/**
 * The CTE `moved`: `move` applied to run (`kind`, `id`) as `move` does
 * it, returning the moved row (none when the run was not in `move.from`), for a statement that
 * writes a kind's own row beside the move.
 */
export function moveRun(kind: RunKind, id: string, move: RunMove): SQL {
  const from = sql.join(
    move.from.map((status) => sql`${status}`),
    sql`, `,
  );
  const set =
    move.to === 'running'
      ? sql`status = 'running', started_at = coalesce(started_at, now())`
      : move.to === 'queued' || move.to === 'waiting'
        ? sql`status = ${move.to}`
        : sql`status = ${move.to}, ended_at = now(), error_code = ${move.errorCode ?? null}, error_message = ${move.errorMessage ?? null}`;
  return sql`moved as (
    update runs set ${set}
    where kind = ${kind} and id = ${id}::uuid and status in (${from}) ${move.unlessCancelRequested ? sql`and cancel_requested_at is null` : sql``}
    returning *
  )`;
}

/** The CTE `run`: a new queued run written beside a kind's own row; nothing when the run exists. */
export function insertRun(run: NewRun): SQL {
  return sql`run as (
    insert into runs (kind, id, user_id, queue, job_id)
    values (${run.kind}, ${run.id}::uuid, ${run.userId}::uuid, ${run.queue}, ${run.jobId})
    on conflict (kind, id) do nothing
  )`;
}

/**
 * The statement of a CTE `moved` that starts a run: run (`kind`, `id`) moves to `running` when its
 * status is one of `from` (a comma-separated text) and, unless `anyway`, no cancel was asked for;
 * `also` adds a condition of the kind's own. It returns the moved row (none when it did not move).
 * The values may be placeholders of a prepared statement.
 */
export function startRun(
  kind: RunKind,
  id: SQLWrapper | string,
  move: { from: SQLWrapper | string; anyway: SQLWrapper | boolean; also?: SQL },
): SQL {
  return sql`update runs set status = 'running', started_at = coalesce(started_at, now())
    where kind = ${kind} and id = ${id}::uuid and status = any(string_to_array(${move.from}::text, ','))
      and (${move.anyway}::boolean or cancel_requested_at is null)
      ${move.also ? sql`and ${move.also}` : sql``}
    returning *`;
}

/** The run (`kind`, `id`) a statement with a `moved` CTE left: the moved row with `started`, else the row as it was. */
export function runAfterStart(kind: RunKind, id: SQLWrapper | string): SQL {
  return sql`(select to_jsonb(run) from (
    select moved.*, true as started from moved
    union all
    select runs.*, false as started from runs where kind = ${kind} and id = ${id}::uuid and not exists (select 1 from moved)
  ) run)`;
}

/** A run's row as a raw statement returns it (snake_case columns). */
export interface RawRun {
  kind: RunKind;
  id: string;
  user_id: string;
  status: RunStatus;
  queue: string | null;
  job_id: string | null;
  cancel_requested_at: Date | string | null;
  cancel_requested_by: string | null;
  error_code: string | null;
  error_message: string | null;
  created_at: Date | string;
  started_at: Date | string | null;
  ended_at: Date | string | null;
}

/** Maps a raw row (a CTE that moves a run beside a kind's own row) to the typed row. */
export function runFromRaw(raw: RawRun): RunRow {
  const date = (value: Date | string | null) => (value === null ? null : new Date(value));
  return {
    kind: raw.kind,
    id: raw.id,
    userId: raw.user_id,
    status: raw.status,
    queue: raw.queue,
    jobId: raw.job_id,
    cancelRequestedAt: date(raw.cancel_requested_at),
    cancelRequestedBy: raw.cancel_requested_by,
    errorCode: raw.error_code,
    errorMessage: raw.error_message,
    createdAt: new Date(raw.created_at),
    startedAt: date(raw.started_at),
    endedAt: date(raw.ended_at),
  };
}
