import type { QueueRegistry } from '../producers/registry';
import { AppError, conflict, notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Tx } from '../models/database';
import type { RunMove } from '../models/runs-repository';
import type { RunRow, WaitpointKind, WaitpointRow } from '../models/schema';
import type { NewWaitpoint, WaitpointsRepository } from '../models/waitpoints-repository';
import { allowedFrom, blockedByCancel, type RunKindName } from './transitions';

/** What `wait` did: the run is `waiting`, or went on at once (`continued`), or was not parked (`refused`: its cancel was requested, or it is not running). */
export type WaitResult =
  | { state: 'waiting' | 'continued'; run: RunRow; waitpoints: WaitpointRow[] }
  | { state: 'refused'; run: RunRow | null; waitpoints: WaitpointRow[] };

/**
 * What the owner of a kind of waitpoint does when one completes (an approval's expiry marks the
 * request `timeout` and tells its owner), whoever completed it.
 */
export interface WaitpointHook {
  /** In the completion's transaction, before the run moves on: records its side; returns the output the waitpoint keeps. */
  completing?(tx: Tx, waitpoint: WaitpointRow, output: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** After the commit and before the run's kind continues it (its events). A failure is logged. */
  completed?(waitpoint: WaitpointRow): Promise<void>;
}

/** The delayed job that completes a deadline waitpoint. */
export const WAITPOINT_DEADLINE_JOB = 'waitpoint-deadline';

/** What the waitpoints need of a run's kind: whether its jobs wait (not the run), and how it goes on. */
interface WaitingKind {
  jobsWait?: boolean;
  continue?(run: RunRow, waitpoints: readonly WaitpointRow[]): Promise<void>;
}

export interface WaitpointsDeps {
  /** What runs wait for (none without it: `wait` and `complete` are refused). */
  waitpoints?: Pick<WaitpointsRepository, 'create' | 'park' | 'complete' | 'listOverdue' | 'findByKey' | 'find'>;
  /** Queues a deadline's delayed job (none without it: recovery completes overdue waitpoints). */
  enqueue?: QueueRegistry['enqueue'];
  log: Logger;
  /** The registered kind of a run. */
  kind(kind: RunKindName): WaitingKind | undefined;
  /** Gives back what a run that now waits holds (its budget reservations). */
  park(kind: RunKindName, id: string): Promise<void>;
}

/**
 * Waiting as a run state: a waitpoint row per thing a run awaits (an approval, a person's input, a
 * device coming online, a deadline), `running → waiting` while any is pending, and one completion
 * path that moves the run `waiting → queued` and hands it to its kind to queue its job. A deadline
 * is a waitpoint too, completed by its delayed job or, when that was lost, by recovery. The run
 * kernel owns this part of a run's life; it lives here for its size.
 */
export class Waitpoints {
  private readonly hooks = new Map<WaitpointKind, WaitpointHook>();

  constructor(private readonly deps: WaitpointsDeps) {}

  /** Registers what completing a kind of waitpoint does besides moving its run (once per kind). */
  onComplete(kind: WaitpointKind, hook: WaitpointHook): void {
    if (this.hooks.has(kind)) throw new Error(`Waitpoint kind ${kind} has a hook already`);
    this.hooks.set(kind, hook);
  }

  /**
   * Creates waitpoints blocking the run without parking it yet (a wait announced while its worker
   * still holds the run): whatever completes before the park is counted by `wait`. Idempotent by key.
   */
  async block(kind: RunKindName, id: string, waitpoints: readonly NewWaitpoint[]): Promise<WaitpointRow[]> {
    const created = await this.waitpointsRepo().create(kind, id, waitpoints);
    await this.schedule(created);
    return created;
  }

  /**
   * Parks a running run on its waitpoints (`waitpoints`, created here, and those `block` created
   * before): it moves `running → waiting` and what it holds is given back, so no worker slot or
   * budget waits. When nothing it waits for is pending any more (all completed before the park) it
   * goes on at once: `waiting → queued`, and its kind's `continue` queues its job. Refused (nothing
   * moves) once its cancel was requested or when it is not running: the caller ends it.
   */
  async wait(kind: RunKindName, id: string, waitpoints: readonly NewWaitpoint[] = []): Promise<WaitResult> {
    const spec = this.spec(kind);
    const parked = await this.waitpointsRepo().park(kind, id, waitpoints, {
      wait: { to: 'waiting', from: allowedFrom('waiting'), unlessCancelRequested: blockedByCancel('waiting') },
      resume: this.resumeMove(),
    });
    if (parked.state === 'refused') return parked;
    await this.schedule(parked.waitpoints);
    await this.deps.park(kind, id);
    this.deps.log.info({ kind, id, waitpoints: parked.waitpoints.length, state: parked.state }, 'run waits');
    if (parked.state === 'waiting') return parked;
    await this.continueRun(spec, parked.run, parked.waitpoints);
    return { ...parked, state: 'continued' };
  }

  /**
   * The one completion path of a waitpoint: `by` is the completing user (404 unless it is the
   * waitpoint's owner; null: the system, a deadline or a completion already authorized), 409
   * `already_completed` the second time. When it was the last pending waitpoint of a waiting run,
   * the run moves `waiting → queued` in the same transaction and its kind's `continue` queues its
   * job. A run cancelled meanwhile stays cancelled: exactly one of the two wins the run.
   */
  async complete(
    id: string,
    by: string | null,
    output: Record<string, unknown> = {},
  ): Promise<{ waitpoint: WaitpointRow; continued: boolean }> {
    const repo = this.waitpointsRepo();
    const found = await repo.find(id);
    if (!found || (by !== null && found.userId !== by)) throw notFound('Waitpoint');
    const hook = this.hooks.get(found.kind);
    const spec = this.deps.kind(found.runKind);
    const result = await repo.complete(id, by, output, {
      resume: this.resumeMove(),
      jobsWait: spec?.jobsWait,
      completing: hook?.completing?.bind(hook),
    });
    if (result.state === 'not_found') throw notFound('Waitpoint');
    if (result.state === 'already_completed') throw conflict('already_completed', 'This waitpoint is already completed');
    if (hook?.completed)
      await hook
        .completed(result.waitpoint)
        .catch((error: unknown) => this.deps.log.warn({ err: error, waitpointId: id }, 'a completion hook of a waitpoint failed'));
    if (!result.continued) return { waitpoint: result.waitpoint, continued: false };
    const { run, waitpoints } = result.continued;
    await this.continueRun(this.spec(run.kind), run, waitpoints);
    return { waitpoint: result.waitpoint, continued: true };
  }

  /**
   * Completes the pending waitpoint `userId` created under `key` on the system's behalf (its caller
   * authorized the completion: an approval's decision): whether there was one pending. Null when
   * there is no such waitpoint (a wait from before waitpoints), so the caller continues its own way.
   */
  async completeByKey(userId: string, key: string, output: Record<string, unknown>): Promise<boolean | null> {
    const waitpoint = await this.deps.waitpoints?.findByKey(userId, key);
    if (!waitpoint) return null;
    if (waitpoint.status !== 'pending') return false;
    try {
      await this.complete(waitpoint.id, null, output);
      return true;
    } catch (error) {
      if (error instanceof AppError && error.code === 'already_completed') return false;
      throw error;
    }
  }

  /**
   * `WAITPOINT_DEADLINE_JOB`: completes a waitpoint whose time has come (output `{timedOut: true}`);
   * false when it was completed first.
   */
  async completeDeadline(id: string): Promise<boolean> {
    try {
      await this.complete(id, null, { timedOut: true });
      return true;
    } catch (error) {
      if (error instanceof AppError && (error.code === 'already_completed' || error.code === 'not_found')) return false;
      throw error;
    }
  }

  /** Completes pending waitpoints past their time (their delayed job was lost with Redis, or never ran): how many. */
  async completeOverdue(limit: number): Promise<number> {
    const waitpoints = this.deps.waitpoints;
    if (!waitpoints) return 0;
    let completed = 0;
    for (const row of await waitpoints.listOverdue(limit)) if (await this.completeDeadline(row.id)) completed += 1;
    if (completed) this.deps.log.warn({ completed }, 'overdue waitpoints completed');
    return completed;
  }

  private resumeMove(): RunMove {
    return { to: 'queued', from: allowedFrom('queued'), unlessCancelRequested: blockedByCancel('queued') };
  }

  private waitpointsRepo(): NonNullable<WaitpointsDeps['waitpoints']> {
    if (!this.deps.waitpoints) throw new Error('Waitpoints are not wired into this run kernel');
    return this.deps.waitpoints;
  }

  /** Queues the delayed job of each pending waitpoint with a time (its id is the job id: scheduling twice is one job). */
  private async schedule(waitpoints: readonly WaitpointRow[]): Promise<void> {
    const { enqueue } = this.deps;
    for (const row of waitpoints) {
      if (row.status !== 'pending' || !row.completeAfter) continue;
      if (!enqueue) continue;
      // Recovery completes it when this job is lost, so a failure here only delays it.
      await enqueue(
        'assistant',
        WAITPOINT_DEADLINE_JOB,
        { waitpointId: row.id },
        { delay: Math.max(0, row.completeAfter.getTime() - Date.now()) },
      ).catch((error: unknown) =>
        this.deps.log.warn({ err: error, waitpointId: row.id }, 'deadline job not queued; recovery completes the waitpoint'),
      );
    }
  }

  /** Hands a run that went on (`waiting → queued`) to its kind, which queues its job. */
  private async continueRun(spec: WaitingKind, run: RunRow, waitpoints: readonly WaitpointRow[]) {
    if (!spec.continue) {
      this.deps.log.error({ kind: run.kind, id: run.id }, 'a run of a kind with no continue went on from waiting; nothing queues it');
      return;
    }
    try {
      await spec.continue(run, waitpoints);
    } catch (error) {
      // The run is queued: its kind's own recovery (or the reaper's default end) takes it from there.
      this.deps.log.warn({ err: error, kind: run.kind, id: run.id }, 'continuation of a run not queued');
    }
  }

  private spec(kind: RunKindName): WaitingKind {
    const spec = this.deps.kind(kind);
    if (!spec) throw new Error(`Run kind ${kind} is not registered`);
    return spec;
  }
}
