import type { RunRow } from '../models/schema';

/** Where a run is. `queued` and `running` are open; the other four are terminal. */
export type RunStatus = RunRow['status'];
/** How a run ended. */
export type TerminalStatus = Exclude<RunStatus, 'queued' | 'running'>;
/** Every kind of run the kernel owns. */
export type RunKindName = RunRow['kind'];

/** The open statuses: a run in one of them can still move. */
export const OPEN_STATUSES = ['queued', 'running'] as const satisfies readonly RunStatus[];

/**
 * The allowed moves, the one place they are written down. `running → running` is a retry's new
 * attempt of a run already started. A terminal status has no way out: whoever moved the run there
 * first ended it, and every later end is refused.
 */
export const TRANSITIONS: Readonly<Record<RunStatus, readonly RunStatus[]>> = {
  queued: ['running', 'succeeded', 'failed', 'cancelled', 'timed_out'],
  running: ['running', 'succeeded', 'failed', 'cancelled', 'timed_out'],
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
 * Moves a run may not make once its cancel was requested: it does not start, and it does not
 * succeed (a cancel that arrived after the last token still wins; nothing is kept).
 */
export function blockedByCancel(to: RunStatus): boolean {
  return to === 'running' || to === 'succeeded';
}
