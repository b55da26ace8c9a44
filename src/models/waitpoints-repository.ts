import { and, asc, eq, isNull, lte, or, sql } from 'drizzle-orm';
import type { Db, DbOrTx, Tx } from './database';
import type { RunMove, RunsRepository } from './runs-repository';
import { runs, waitpoints, type RunRow, type WaitpointKind, type WaitpointRow } from './schema';

type RunKind = RunRow['kind'];

/** A run whose jobs may still be continued. */
const OPEN: readonly RunRow['status'][] = ['queued', 'running', 'waiting'];

/** A waitpoint to create: what is awaited, by whom, under which key. */
export interface NewWaitpoint {
  kind: WaitpointKind;
  /** Its owner: the only user who may complete it. */
  userId: string;
  /** Per owner, the same key names the same waitpoint (a second create finds the first). */
  idempotencyKey: string;
  /** What is awaited, in the kind's words (an approval's id, a device's id, another run's id). */
  ref?: string | null;
  /** When it completes on its own (a deadline, or a wait's timeout). */
  completeAfter?: Date | null;
}

/** The answer of `park`: the run as it is and the run's waitpoints of this wait. */
export type ParkResult =
  /** Parked: no worker holds the run until its pending waitpoints complete. */
  | { state: 'waiting'; run: RunRow; waitpoints: WaitpointRow[] }
  /** Everything it waited for had completed already: moved on to `queued`, to continue now. */
  | { state: 'continue'; run: RunRow; waitpoints: WaitpointRow[] }
  /** Not parked: its cancel was requested, or it is not running (the run as it is, or null). */
  | { state: 'refused'; run: RunRow | null; waitpoints: WaitpointRow[] };

/** The answer of `complete`. */
export type CompleteResult =
  | { state: 'not_found' }
  | { state: 'already_completed'; waitpoint: WaitpointRow }
  /**
   * Completed; `continued` is the run moved to `queued` (its last pending waitpoint), with the
   * waitpoints it waited for, or (`moved: false`) an open run whose jobs wait rather than the run,
   * with this one waitpoint.
   */
  | { state: 'completed'; waitpoint: WaitpointRow; continued: { run: RunRow; waitpoints: WaitpointRow[]; moved: boolean } | null };

/**
 * What a completion does besides completing the waitpoint, in its transaction: the owner of what
 * was awaited records its side (an approval's expiry marks the request `timeout`) and returns the
 * output the waitpoint keeps.
 */
export type Completing = (tx: Tx, waitpoint: WaitpointRow, output: Record<string, unknown>) => Promise<Record<string, unknown>>;

/** How a completion moves the run on. */
export interface CompleteOptions {
  /** `waiting → queued`, when it was the run's last pending waitpoint. */
  resume: RunMove;
  /** The run's jobs wait, not the run: while the run is open, the completed waitpoint is handed on at once. */
  jobsWait?: boolean;
  completing?: Completing;
}

/**
 * `waitpoints`: what runs wait for. Every statement that decides whether a run goes on locks the
 * run's row first (`for update`), so a park and completions of the same run, on any number of
 * processes, are serialized: the last pending waitpoint's completion, and only it, moves the run
 * `waiting → queued`. The run's own row is moved through the runs repository, its one writer.
 */
export class WaitpointsRepository {
  constructor(
    private readonly db: Db,
    private readonly runsRepository: RunsRepository,
  ) {}

  /**
   * Creates the waitpoints (those whose key exists are found instead) blocking run (`kind`, `id`),
   * without moving it: a wait announced before its run parks. Returns them in the order given.
   */
  async create(kind: RunKind, id: string, list: readonly NewWaitpoint[], db: DbOrTx = this.db): Promise<WaitpointRow[]> {
    if (list.length === 0) return [];
    await db
      .insert(waitpoints)
      .values(
        list.map((w) => ({
          kind: w.kind,
          userId: w.userId,
          runKind: kind,
          runId: id,
          idempotencyKey: w.idempotencyKey,
          ref: w.ref ?? null,
          completeAfter: w.completeAfter ?? null,
        })),
      )
      .onConflictDoNothing({ target: [waitpoints.userId, waitpoints.idempotencyKey] });
    const found = await db
      .select()
      .from(waitpoints)
      .where(or(...list.map((w) => and(eq(waitpoints.userId, w.userId), eq(waitpoints.idempotencyKey, w.idempotencyKey)))));
    const byKey = new Map(found.map((row) => [`${row.userId}|${row.idempotencyKey}`, row]));
    return list.flatMap((w) => byKey.get(`${w.userId}|${w.idempotencyKey}`) ?? []);
  }

  /**
   * Parks run (`kind`, `id`) on `list` (created here) and on any waitpoint created for it before,
   * in one transaction: the run moves by `wait` (`running → waiting`, refused once its cancel was
   * requested: then nothing is created); when nothing it waits for is pending any more it moves on by `resume`
   * (`waiting → queued`) at once, and its completed waitpoints are released to the continuation.
   */
  async park(kind: RunKind, id: string, list: readonly NewWaitpoint[], moves: { wait: RunMove; resume: RunMove }): Promise<ParkResult> {
    return this.db.transaction(async (tx) => {
      const locked = await this.lockRun(kind, id, tx);
      if (!locked) return { state: 'refused', run: null, waitpoints: [] };
      const parked = await this.runsRepository.move(kind, id, moves.wait, tx);
      if (!parked) return { state: 'refused', run: locked, waitpoints: [] };
      await this.create(kind, id, list, tx);
      if (await this.hasPending(kind, id, tx)) return { state: 'waiting', run: parked, waitpoints: await this.ofRun(kind, id, tx) };
      const resumed = await this.resume(kind, id, moves.resume, tx);
      return resumed ? { state: 'continue', ...resumed } : { state: 'waiting', run: parked, waitpoints: await this.ofRun(kind, id, tx) };
    });
  }

  /**
   * Completes waitpoint `id` with `output`, once: `by` is the completing user (it must be the
   * owner; null for the system: a deadline, a decision already authorized). When it was the run's
   * last pending waitpoint and the run is waiting, the run moves by `resume` in the same transaction.
   */
  async complete(id: string, by: string | null, output: Record<string, unknown>, options: CompleteOptions): Promise<CompleteResult> {
    return this.db.transaction(async (tx) => {
      const [found] = await tx
        .select()
        .from(waitpoints)
        .where(and(eq(waitpoints.id, id), by === null ? undefined : eq(waitpoints.userId, by)))
        .limit(1);
      if (!found) return { state: 'not_found' };
      // The run's row first: a park or another completion of the same run waits for this one.
      const run = await this.lockRun(found.runKind, found.runId, tx);
      let [completed] = await tx
        .update(waitpoints)
        .set({ status: 'completed', output, completedAt: sql`now()`, completedBy: by })
        .where(and(eq(waitpoints.id, id), eq(waitpoints.status, 'pending')))
        .returning();
      if (!completed) return { state: 'already_completed', waitpoint: found };
      const kept = options.completing ? await options.completing(tx, completed, output) : output;
      if (kept !== output) [completed] = await tx.update(waitpoints).set({ output: kept }).where(eq(waitpoints.id, id)).returning();
      if (options.jobsWait) {
        if (!run || !OPEN.includes(run.status)) return { state: 'completed', waitpoint: completed, continued: null };
        [completed] = await tx
          .update(waitpoints)
          .set({ releasedAt: sql`now()` })
          .where(eq(waitpoints.id, id))
          .returning();
        return { state: 'completed', waitpoint: completed, continued: { run, waitpoints: [completed], moved: false } };
      }
      if (await this.hasPending(found.runKind, found.runId, tx)) return { state: 'completed', waitpoint: completed, continued: null };
      const continued = await this.resume(found.runKind, found.runId, options.resume, tx);
      return { state: 'completed', waitpoint: completed, continued: continued && { ...continued, moved: true } };
    });
  }

  async find(id: string): Promise<WaitpointRow | null> {
    const rows = await this.db.select().from(waitpoints).where(eq(waitpoints.id, id)).limit(1);
    return rows[0] ?? null;
  }

  /** The waitpoint `userId` created under `key`, or null. */
  async findByKey(userId: string, key: string): Promise<WaitpointRow | null> {
    const rows = await this.db
      .select()
      .from(waitpoints)
      .where(and(eq(waitpoints.userId, userId), eq(waitpoints.idempotencyKey, key)))
      .limit(1);
    return rows[0] ?? null;
  }

  /** Every waitpoint of a run, oldest first. */
  async ofRun(kind: RunKind, id: string, db: DbOrTx = this.db): Promise<WaitpointRow[]> {
    return db
      .select()
      .from(waitpoints)
      .where(and(eq(waitpoints.runKind, kind), eq(waitpoints.runId, id)))
      .orderBy(asc(waitpoints.createdAt), asc(waitpoints.id));
  }

  /** Pending waitpoints whose time has come (recovery completes them when their delayed job was lost). */
  async listOverdue(limit: number): Promise<WaitpointRow[]> {
    return this.db
      .select()
      .from(waitpoints)
      .where(and(eq(waitpoints.status, 'pending'), lte(waitpoints.completeAfter, sql`now()`)))
      .orderBy(asc(waitpoints.completeAfter))
      .limit(limit);
  }

  private async lockRun(kind: RunKind, id: string, tx: Tx): Promise<RunRow | null> {
    const rows = await tx
      .select()
      .from(runs)
      .where(and(eq(runs.kind, kind), eq(runs.id, id)))
      .for('update');
    return rows[0] ?? null;
  }

  private async hasPending(kind: RunKind, id: string, tx: Tx): Promise<boolean> {
    const rows = await tx
      .select({ id: waitpoints.id })
      .from(waitpoints)
      .where(and(eq(waitpoints.runKind, kind), eq(waitpoints.runId, id), eq(waitpoints.status, 'pending')))
      .limit(1);
    return rows.length > 0;
  }

  /**
   * Moves the run on (`waiting → queued`) and releases the completed waitpoints it waited for (each
   * is handed to one continuation): null when the run was not waiting (cancelled, ended, or not parked yet).
   */
  private async resume(kind: RunKind, id: string, move: RunMove, tx: Tx): Promise<{ run: RunRow; waitpoints: WaitpointRow[] } | null> {
    const run = await this.runsRepository.move(kind, id, move, tx);
    if (!run) return null;
    const released = await tx
      .update(waitpoints)
      .set({ releasedAt: sql`now()` })
      .where(and(eq(waitpoints.runKind, kind), eq(waitpoints.runId, id), eq(waitpoints.status, 'completed'), isNull(waitpoints.releasedAt)))
      .returning();
    released.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.id.localeCompare(b.id));
    return { run, waitpoints: released };
  }
}
