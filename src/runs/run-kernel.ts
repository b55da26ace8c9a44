import type { QueueName } from '../../config';
import type { CancelKind, CancelSignals } from '../lib/cancel-signals';
import { conflict } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Tx } from '../models/database';
import type { NewRun, RunMove, RunsRepository } from '../models/runs-repository';
import type { MemberRole, RunRow, WaitpointKind, WaitpointRow } from '../models/schema';
import type { NewWaitpoint, WaitpointsRepository } from '../models/waitpoints-repository';
import type { QueueRegistry } from '../producers/registry';
import type { BudgetTicket } from '../budget/budget-door';
import { outcomeError, type RunOutcome } from './outcome';
import { Waitpoints, type WaitpointHook, type WaitResult } from './waitpoints';
import type { RunHoldings } from './run-holdings';
import { allowedFrom, blockedByCancel, OPEN_STATUSES, type RunKindName } from './transitions';

/** Who asks to cancel: the user, and on a canvas their role there (a generation lets an editor cancel). */
export interface RunActor {
  userId: string;
  canvasId?: string;
  role?: MemberRole | null;
}

/** One thing a run holds until it ends (a rate-limit slot, a stream, a budget reservation). */
export interface RunRelease {
  /** Named in the log when it fails. */
  name: string;
  /** Gives it back; called once per end, by whoever ended the run. Must be safe to call twice. */
  release(run: RunRow): Promise<void>;
}

/**
 * What a kind of run tells the kernel. `S` is what its success carries, `U` the usage of a
 * cancelled run, `C` what its worker hands to an end (a stream writer…), `P` what `persist`
 * returns to `announce` and to the caller of `end`.
 */
export interface RunKindSpec<S, U, C, P, R = unknown> {
  kind: RunKindName;
  /**
   * The queue of its jobs, and the job id of a run (so liveness is asked the same way for every
   * kind); null for a run carried by many jobs (a flow execution's nodes).
   */
  queue: QueueName;
  jobId(id: string): string | null;
  /**
   * The kind recovers its runs itself (a flow execution is resumed, its steps being idempotent, and
   * ends through the kernel from there); `recover` leaves its runs alone.
   */
  recoversItself?: boolean;
  /**
   * Its jobs wait, not the run (a flow execution's node parks while other nodes run): the run stays
   * `running`, and each waitpoint completed while it is open is handed to `continue` at once, which
   * continues the job it belongs to.
   */
  jobsWait?: boolean;
  /**
   * A cancel request ends the run at once, whoever holds its jobs (a flow execution: running nodes
   * are aborted by the signal and find the execution ended). Otherwise the worker holding its job ends it.
   */
  cancelEndsAtOnce?: boolean;
  /**
   * The run is held outside its own job (a chat turn parked for a person's decision, or continued
   * by another job): recovery leaves it open, and a cancel does not end it by taking its job off
   * the queue (the kind ends it in `cancelRequested`, or the job holding it does).
   */
  heldElsewhere?(run: RunRow): Promise<boolean>;
  /**
   * Continues a run whose waitpoints have all completed: it has just moved `waiting → queued`, and
   * this queues the job that takes it on (to `running`), given the waitpoints it waited for. Called
   * once per wait, by whichever completion moved it; idempotent by its job id. For a kind whose
   * jobs wait (`jobsWait`), called once per completed waitpoint while the run is open.
   */
  continue?(run: RunRow, waitpoints: readonly WaitpointRow[]): Promise<void>;
  /** The cancel signal's kind (src/lib/cancel-signals.ts), when its worker listens for one. */
  signal?: CancelKind;
  /**
   * Owner-only authorization as the kind defines it: throws 404 (not the actor's to see) or 403,
   * else returns the kind's own status (the 409's message when the run has already ended).
   */
  authorizeCancel(id: string, actor: RunActor): Promise<{ status: string }>;
  /**
   * Recovery's say over one of its open runs, before the default (end it when its job is not
   * live): `leave` keeps it open (it waits on something other than a job), an outcome ends it with
   * that outcome, `undefined` takes the default. For a kind with no single job id it also answers
   * whether the run's jobs are live.
   */
  recover?(run: RunRow): Promise<'leave' | RunOutcome<S, U> | undefined>;
  /** After a cancel request is recorded (its audit). */
  cancelRequested?(run: RunRow, actor: RunActor): Promise<void>;
  /** The kind's own row for this end, in the transaction that moved the run. */
  persist(tx: Tx, run: RunRow, outcome: RunOutcome<S, U>, context: C | undefined): Promise<P>;
  /**
   * A kind's own end in ONE statement, when it can write what `persist` would without reading
   * first (the hot path keeps one statement and no transaction): the run's `move` and the kind's
   * row, both or neither. Resolves with the moved run and what was persisted, or null when the run
   * was not in `move.from`. Returns undefined for an end it does not take: the kernel moves the
   * run and calls `persist` in a transaction.
   */
  endInOne?(
    id: string,
    move: RunMove,
    outcome: RunOutcome<S, U>,
    context: C | undefined,
  ): Promise<{ run: RunRow; value: P } | null> | undefined;
  /** The terminal event, once, by whoever won the end; after the commit and the releases. */
  announce(run: RunRow, outcome: RunOutcome<S, U>, context: C | undefined, persisted: P): Promise<void>;
  releases: readonly RunRelease[];
  /** The failure a run whose worker stopped ends with. */
  interrupted: { code: string; message: string };
  /**
   * A kind's own start, when it folds the run's move into a statement on its own row (the hot path
   * keeps one statement), which may read that row too (`row`). Without it, the run's row alone moves.
   */
  start?(id: string, from: RunRow['status'][]): Promise<StartResult<R>>;
}

/** A new run: its id and owner, and the job carrying it when its id does not name it. */
export interface NewRunInput {
  id: string;
  userId: string;
  job?: { queue: QueueName; jobId: string };
}

/** The answer of `start`: the run as it now is, whether this call started it, and the kind's row when its start read it. */
export interface StartResult<R = unknown> {
  run: RunRow | null;
  started: boolean;
  row?: R;
}

/** The answer of `end`: the winner gets the run and what its kind persisted; a loser gets the run as it is. */
export type EndResult<P> = { won: true; run: RunRow; persisted: P } | { won: false; run: RunRow | null };

export { WAITPOINT_DEADLINE_JOB, type WaitResult, type WaitpointHook } from './waitpoints';

export interface RunKernelDeps {
  runs: RunsRepository;
  queues: Pick<QueueRegistry, 'remove' | 'isLive'> & Partial<Pick<QueueRegistry, 'enqueue'>>;
  /** What runs wait for (none without it: `wait` and `completeWaitpoint` are refused). */
  waitpoints?: Pick<WaitpointsRepository, 'create' | 'park' | 'complete' | 'listOverdue' | 'findByKey' | 'find'>;
  signals: Pick<CancelSignals, 'request'>;
  logger: Logger;
  /**
   * Told once of every run that ended, by whoever won the end, after its terminal event (webhooks
   * out). It cannot fail the end: a rejection is logged.
   */
  onEnded?: (run: RunRow) => Promise<void>;
  /** The budget reservations runs hold, given back on every terminal move (none without it: nothing is budgeted). */
  holdings?: Pick<RunHoldings, 'hold' | 'releaseAll'>;
}

/**
 * The owner of every run's life. One state machine for all kinds
 * (src/runs/transitions.ts), each move a conditional UPDATE of the run's row so two processes can
 * never both end a run; the winner alone writes the kind's row (same transaction), gives back what
 * the run held (one `finally`), then emits the terminal event. Cancel and crash recovery go
 * through the same ends.
 */
export class RunKernel {
  private readonly kinds = new Map<RunKindName, RunKindSpec<unknown, unknown, unknown, unknown, unknown>>();
  private readonly log: Logger;
  /** What runs wait for, and the one path that completes it. */
  private readonly waits: Waitpoints;

  constructor(private readonly deps: RunKernelDeps) {
    this.log = deps.logger.child({ component: 'run-kernel' });
    this.waits = new Waitpoints({
      waitpoints: deps.waitpoints,
      enqueue: deps.queues.enqueue,
      log: this.log,
      kind: (kind) => this.kinds.get(kind),
      park: (kind, id) => this.park(kind, id),
    });
  }

  /** Registers a kind (once) and returns its typed handle. */
  register<S, U, C, P, R = unknown>(spec: RunKindSpec<S, U, C, P, R>): RunHandle<S, U, C, P, R> {
    if (this.kinds.has(spec.kind)) throw new Error(`Run kind ${spec.kind} is registered twice`);
    this.kinds.set(spec.kind, spec as RunKindSpec<unknown, unknown, unknown, unknown, unknown>);
    return new RunHandle(this, spec);
  }

  /** Registers what completing a kind of waitpoint does besides moving its run (once per kind). */
  onWaitpoint(kind: WaitpointKind, hook: WaitpointHook): void {
    this.waits.onComplete(kind, hook);
  }

  /** The registered kinds (the reaper recovers each). */
  registered(): RunKindName[] {
    return [...this.kinds.keys()];
  }

  /**
   * The one cancel path: the kind authorizes the actor (404/403), the request is recorded on the
   * open run (409 `not_running` once it has ended), every node is signalled, and a job still
   * waiting is taken off its queue and the run ended here; a job a worker holds is ended by it.
   */
  async cancel(kind: RunKindName, id: string, actor: RunActor): Promise<RunRow> {
    const spec = this.spec(kind);
    const subject = await spec.authorizeCancel(id, actor);
    const run = await this.deps.runs.requestCancel(kind, id, actor.userId);
    if (!run) throw conflict('not_running', `This ${describe(kind)} has already ended (it is ${subject.status})`);
    if (spec.signal) await this.deps.signals.request(spec.signal, id);
    if (spec.cancelRequested) await spec.cancelRequested(run, actor);
    this.log.info({ kind, id, userId: actor.userId }, 'cancel requested');
    // A waiting run: no worker holds it, its waitpoints do. The cancel ends it now.
    if (spec.cancelEndsAtOnce || run.status === 'waiting') await this.end(kind, id, { status: 'cancelled' }, undefined);
    else if (!(await spec.heldElsewhere?.(run)) && (await this.takeOffQueue(spec, run)))
      await this.end(kind, id, { status: 'cancelled' }, undefined);
    return run;
  }

  /**
   * Ends runs of every registered kind whose job can no longer run (its worker died, Redis lost
   * it): `cancelled` when their cancel was requested, else `failed` with the kind's `interrupted`.
   */
  async recover(before: Date, limit: number): Promise<Partial<Record<RunKindName, number>>> {
    const report: Partial<Record<RunKindName, number>> = {};
    // A waiting run is left alone while it waits; a deadline whose delayed job was lost completes now.
    await this.completeOverdue(limit);
    for (const [kind, spec] of this.kinds) {
      if (spec.recoversItself) continue;
      let ended = 0;
      for (const run of await this.deps.runs.listOpenBefore(kind, before, limit)) {
        const verdict = spec.recover ? await spec.recover(run) : undefined;
        if (verdict === 'leave') continue;
        if (!verdict && run.queue && run.jobId && (await this.deps.queues.isLive(run.queue as QueueName, run.jobId))) continue;
        if (!verdict && (await spec.heldElsewhere?.(run))) continue;
        const outcome: RunOutcome =
          verdict ?? (run.cancelRequestedAt ? { status: 'cancelled' } : { status: 'failed', ...spec.interrupted });
        if ((await this.end(kind, run.id, outcome, undefined)).won) ended += 1;
      }
      report[kind] = ended;
    }
    return report;
  }

  /**
   * Records a new queued run on the job that will carry it: the kind's queue and job id, or `job`
   * when the job id does not follow from the run's id (a journey turn's job is keyed by its session
   * and turn, its run by the attempt).
   */
  async create(kind: RunKindName, input: NewRunInput, db?: Tx): Promise<void> {
    await this.deps.runs.insert(this.row(kind, input), db);
  }

  /** The row `create` writes, for a kind that writes it in a statement of its own row's. */
  row(kind: RunKindName, input: NewRunInput): NewRun {
    const spec = this.spec(kind);
    const queue = input.job?.queue ?? spec.queue;
    const jobId = input.job ? input.job.jobId : spec.jobId(input.id);
    return { kind, id: input.id, userId: input.userId, queue, jobId };
  }

  /** The run as it now is, or null. */
  find(kind: RunKindName, id: string): Promise<RunRow | null> {
    return this.deps.runs.find(kind, id);
  }

  /**
   * Records a new queued run under an id whose previous run has ended (a kind whose subject runs
   * again, as a session's notes after a failure); false while a run under that id is still open.
   */
  async reopen(kind: RunKindName, input: { id: string; userId: string }, db?: Tx): Promise<boolean> {
    const spec = this.spec(kind);
    return this.deps.runs.reopen({ kind, id: input.id, userId: input.userId, queue: spec.queue, jobId: spec.jobId(input.id) }, db);
  }

  /**
   * Registers a budget reservation the run holds (the one its request took for its first model
   * call): whoever ends the run gives back what no call took, on every terminal move. A runner
   * never releases a reservation itself.
   */
  async hold(
    kind: RunKindName,
    id: string,
    ticket: Pick<BudgetTicket, 'userId' | 'reservationId'>,
    how: { beforeQueued?: boolean } = {},
  ): Promise<void> {
    const holdings = this.deps.holdings;
    if (!holdings || !ticket.reservationId) return;
    const added = await holdings.hold(kind, id, ticket);
    // Held already (its request registered it, and any end since gave it back), or held by the
    // request that created the run before its job was queued: nothing can have ended it unseen.
    if (!added || how.beforeQueued) return;
    // Ended before it was held (cancelled while queued, reaped): its end gave back nothing of this, so it goes back now.
    const run = await this.deps.runs.find(kind, id);
    if (run && !isOpen(run)) await holdings.releaseAll(kind, id);
  }

  /**
   * The run waits outside any job (for its device to come online) before a model call took its
   * reservation: what it holds is given back now, as its end would, so a wait of hours blocks no
   * budget. The call that continues it reserves its own.
   */
  async park(kind: RunKindName, id: string): Promise<void> {
    try {
      await this.deps.holdings?.releaseAll(kind, id);
    } catch (error) {
      this.log.warn({ err: error, kind, id }, 'budget reservations of a parked run not given back; they expire on their own');
    }
  }

  /**
   * Creates waitpoints blocking the run without parking it yet (a wait announced while its worker
   * still holds the run): whatever completes before the park is counted by `wait`. Idempotent by key.
   */
  block(kind: RunKindName, id: string, waitpoints: readonly NewWaitpoint[]): Promise<WaitpointRow[]> {
    return this.waits.block(kind, id, waitpoints);
  }

  /** Parks a running run on its waitpoints (`running → waiting`); see `Waitpoints.wait`. */
  wait(kind: RunKindName, id: string, waitpoints: readonly NewWaitpoint[] = []): Promise<WaitResult> {
    return this.waits.wait(kind, id, waitpoints);
  }

  /** The one completion path of a waitpoint (404 not the caller's, 409 completed twice); see `Waitpoints.complete`. */
  completeWaitpoint(
    id: string,
    by: string | null,
    output: Record<string, unknown> = {},
  ): Promise<{ waitpoint: WaitpointRow; continued: boolean }> {
    return this.waits.complete(id, by, output);
  }

  /** Completes the pending waitpoint `userId` created under `key` on the system's behalf; see `Waitpoints.completeByKey`. */
  completeByKey(userId: string, key: string, output: Record<string, unknown>): Promise<boolean | null> {
    return this.waits.completeByKey(userId, key, output);
  }

  /** `WAITPOINT_DEADLINE_JOB`: completes a waitpoint whose time has come; false when it was completed first. */
  completeDeadline(id: string): Promise<boolean> {
    return this.waits.completeDeadline(id);
  }

  /** Completes pending waitpoints past their time (their delayed job was lost with Redis, or never ran): how many. */
  completeOverdue(limit: number): Promise<number> {
    return this.waits.completeOverdue(limit);
  }

  /** Moves the run to `running` unless it has ended or its cancel was requested. */
  async start(kind: RunKindName, id: string): Promise<StartResult<unknown>> {
    return this.startOf(this.spec(kind), id);
  }

  /** `start` for a kind's spec, typed by the row its own start reads. */
  async startOf<R>(spec: Pick<RunKindSpec<unknown, unknown, unknown, unknown, R>, 'kind' | 'start'>, id: string): Promise<StartResult<R>> {
    const from = allowedFrom('running');
    if (spec.start) return spec.start(id, from);
    const run = await this.deps.runs.move(spec.kind, id, { to: 'running', from, unlessCancelRequested: blockedByCancel('running') });
    return run ? { run, started: true } : { run: await this.deps.runs.find(spec.kind, id), started: false };
  }

  /**
   * Ends the run with `outcome` if it is still open (and, for a success, its cancel was not
   * requested): the kind's row is written in the same transaction, what the run held is given back
   * in one `finally`, then the terminal event is emitted. Exactly one caller wins; the others get
   * `won: false` and the run as it is.
   */
  async end<P>(kind: RunKindName, id: string, outcome: RunOutcome, context: unknown): Promise<EndResult<P>> {
    const spec = this.spec(kind) as RunKindSpec<unknown, unknown, unknown, P>;
    const move: RunMove = {
      to: outcome.status,
      from: allowedFrom(outcome.status),
      unlessCancelRequested: blockedByCancel(outcome.status),
      ...outcomeError(outcome),
    };
    let moved: { run: RunRow; value: P } | null = null;
    try {
      moved = await (spec.endInOne?.(id, move, outcome, context) ??
        this.deps.runs.moveWith(kind, id, move, (tx, run) => spec.persist(tx, run, outcome, context)));
    } finally {
      // The one place what a run held is given back: by the winner, before anyone hears it ended.
      if (moved) await this.releaseAll(spec, moved.run);
    }
    if (!moved) return { won: false, run: await this.deps.runs.find(kind, id) };
    await spec.announce(moved.run, outcome, context, moved.value);
    await this.tellEnded(moved.run);
    return { won: true, run: moved.run, persisted: moved.value };
  }

  /**
   * Finishes an end that an earlier attempt committed but did not follow through (its worker
   * stopped between the commit and the terminal event): the releases, then the terminal event.
   */
  async settle<P>(spec: RunKindSpec<unknown, unknown, unknown, P>, run: RunRow, outcome: RunOutcome, context: unknown, persisted: P) {
    await this.releaseAll(spec, run);
    await spec.announce(run, outcome, context, persisted);
  }

  private async tellEnded(run: RunRow): Promise<void> {
    if (!this.deps.onEnded) return;
    try {
      await this.deps.onEnded(run);
    } catch (error) {
      this.log.warn({ err: error, kind: run.kind, id: run.id }, 'a listener of ended runs failed');
    }
  }

  /**
   * Gives back everything the run held: the kind's releases and the budget reservations no call
   * took. A release that fails is logged (each one expires on its own).
   */
  private async releaseAll(spec: RunKindSpec<unknown, unknown, unknown, unknown>, run: RunRow): Promise<void> {
    const holdings = this.deps.holdings;
    const releases: readonly RunRelease[] = holdings
      ? [...spec.releases, { name: 'budget reservations', release: (ended) => holdings.releaseAll(ended.kind, ended.id) }]
      : spec.releases;
    const results = await Promise.allSettled(releases.map((release) => release.release(run)));
    results.forEach((result, index) => {
      if (result.status === 'rejected')
        this.log.warn(
          { err: result.reason, kind: run.kind, id: run.id, release: releases[index]?.name },
          'release of an ended run failed; it expires on its own',
        );
    });
  }

  /** Takes a job no worker holds off its queue; false when a worker holds it (that worker ends the run). */
  private async takeOffQueue(spec: RunKindSpec<unknown, unknown, unknown, unknown>, run: RunRow): Promise<boolean> {
    if (!run.queue || !run.jobId) return false;
    try {
      return await this.deps.queues.remove(run.queue as QueueName, run.jobId);
    } catch (error) {
      // The request is recorded and signalled: a worker that takes the job ends it, else the reaper does.
      this.log.warn(
        { err: error, kind: spec.kind, id: run.id },
        'queued job of a cancelled run not removed; its worker or the reaper ends it',
      );
      return false;
    }
  }

  private spec(kind: RunKindName): RunKindSpec<unknown, unknown, unknown, unknown, unknown> {
    const spec = this.kinds.get(kind);
    if (!spec) throw new Error(`Run kind ${kind} is not registered`);
    return spec;
  }
}

/** A kind's typed door to the kernel, for its service and runner. */
export class RunHandle<S, U, C, P, R = unknown> {
  constructor(
    private readonly kernel: RunKernel,
    readonly spec: RunKindSpec<S, U, C, P, R>,
  ) {}

  create(input: NewRunInput, db?: Tx): Promise<void> {
    return this.kernel.create(this.spec.kind, input, db);
  }

  /** The queued run's row as `create` writes it, to write beside the kind's own row. */
  row(input: NewRunInput): NewRun {
    return this.kernel.row(this.spec.kind, input);
  }

  find(id: string): Promise<RunRow | null> {
    return this.kernel.find(this.spec.kind, id);
  }

  reopen(input: { id: string; userId: string }, db?: Tx): Promise<boolean> {
    return this.kernel.reopen(this.spec.kind, input, db);
  }

  start(id: string): Promise<StartResult<R>> {
    return this.kernel.startOf(this.spec, id);
  }

  /** The run waits outside any job: what it holds is given back now. */
  park(id: string): Promise<void> {
    return this.kernel.park(this.spec.kind, id);
  }

  /** Parks the run on its waitpoints (`running → waiting`); see `RunKernel.wait`. */
  wait(id: string, waitpoints?: readonly NewWaitpoint[]): Promise<WaitResult> {
    return this.kernel.wait(this.spec.kind, id, waitpoints);
  }

  /** Creates waitpoints blocking the run before it parks; see `RunKernel.block`. */
  block(id: string, waitpoints: readonly NewWaitpoint[]): Promise<WaitpointRow[]> {
    return this.kernel.block(this.spec.kind, id, waitpoints);
  }

  /** Registers a budget reservation the run holds; the kernel gives it back when the run ends. */
  hold(id: string, ticket: Pick<BudgetTicket, 'userId' | 'reservationId'>, how?: { beforeQueued?: boolean }): Promise<void> {
    return this.kernel.hold(this.spec.kind, id, ticket, how);
  }

  end(id: string, outcome: RunOutcome<S, U>, context?: C): Promise<EndResult<P>> {
    return this.kernel.end<P>(this.spec.kind, id, outcome, context);
  }

  /** Finishes an end an earlier attempt committed: releases, then the terminal event again. */
  settle(run: RunRow, outcome: RunOutcome<S, U>, context: C | undefined, persisted: P): Promise<void> {
    return this.kernel.settle(this.spec as RunKindSpec<unknown, unknown, unknown, P>, run, outcome, context, persisted);
  }

  cancel(id: string, actor: RunActor): Promise<RunRow> {
    return this.kernel.cancel(this.spec.kind, id, actor);
  }
}

/** Whether a run is still open. */
export function isOpen(run: Pick<RunRow, 'status'>): boolean {
  return (OPEN_STATUSES as readonly string[]).includes(run.status);
}

function describe(kind: RunKindName): string {
  const names: Record<RunKindName, string> = {
    generation: 'generation',
    chat: 'chat turn',
    notes: 'ticket notes run',
    flow: 'flow execution',
    agent: 'agent run',
    journey: 'journey turn',
  };
  return names[kind];
}
