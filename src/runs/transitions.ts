import type { RunRow } from '../models/schema';

/** Where a run is. `queued`, `running` and `waiting` are open; the other four are terminal. */
export type RunStatus = RunRow['status'];
/** How a run ended. */
export type TerminalStatus = Exclude<RunStatus, 'queued' | 'running' | 'waiting'>;
/** Every kind of run the kernel owns. */
export type RunKindName = RunRow['kind'];

/** The open statuses: a run in one of them can still move. */
export const OPEN_STATUSES = ['queued', 'running', 'waiting'] as const satisfies readonly RunStatus[];

/**
 * The allowed moves, the one place they are written down. `running → running` is a retry's new
 * attempt of a run already started. `running → waiting` parks a run on its waitpoints (no worker
 * holds it); `waiting → queued` is the move of the completion that left it none pending, and its
 * new job takes it from there. A waiting run may end without a worker (cancelled, failed, timed
 * out), never succeed: only a worker finishes the work. A terminal status has no way out: whoever
 * moved the run there first ended it, and every later end is refused.
 */
export const TRANSITIONS: Readonly<Record<RunStatus, readonly RunStatus[]>> = {
  queued: ['running', 'succeeded', 'failed', 'cancelled', 'timed_out'],
  running: ['running', 'waiting', 'succeeded', 'failed', 'cancelled', 'timed_out'],
  waiting: ['queued', 'failed', 'cancelled', 'timed_out'],
  succeeded: [],
  failed: [],
  cancelled: [],
  timed_out: [],
};

/** Whether `from → to` is an allowed move. */
export function canMove(from: RunStatus, to: RunStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/** The statuses a run may be in to move to `to` (the condition of the UPDATE that moves it). */
export function allowedFrom(to: RunStatus): RunStatus[] {
  return (Object.keys(TRANSITIONS) as RunStatus[]).filter((from) => canMove(from, to));
}

/** Whether `status` is terminal. */
export function isTerminal(status: RunStatus): status is TerminalStatus {
  return TRANSITIONS[status].length === 0;
}

/**
 * Moves a run may not make once its cancel was requested: it does not start, it does not succeed
 * (a cancel that arrived after the last token still wins; nothing is kept), it does not park, and
 * a completed waitpoint does not queue it again (the cancel ends it instead).
 */
export function blockedByCancel(to: RunStatus): boolean {
  return to === 'running' || to === 'succeeded' || to === 'waiting' || to === 'queued';
}
