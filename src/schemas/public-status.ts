/**
 * The public status of each kind of run, from the run's own. Every run has one state machine
 * (`queued → running → succeeded | failed | cancelled | timed_out`, with `running → waiting →
 * queued` for a run parked on its waitpoints, src/runs/transitions.ts); each
 * kind also keeps, on its own row, the status its API has always published, in its own words. This
 * table is the one place those words are taken from when a run ends: whatever writes a kind's
 * terminal status writes `publicStatus(kind, run status)`.
 *
 * Words a kind has that are not a run's end stay with the kind, written where they happen:
 * - generation `undone`: a completed generation the user undid later (and `completed` again on redo);
 * - agent run `partial`: a success with errors along the way (`succeeded`, counted per item);
 * - agent run `waiting_device`: an open run parked until its device is online;
 * - agent run `queued`: a manual run asked for and not yet taken by a worker (its row is written with the request);
 * - the open words (`queued`, `running`, notes' `pending` and `generating`), which mirror an open run
 *   (a `waiting` run keeps the kind's word for it: a parked chat turn has no answer yet).
 *
 * `null`: the kind writes no status for that end (a chat turn that failed or timed out stores no
 * answer). A journey turn keeps no status column: its end is the reply saved in its session.
 */

/** How a run ends (the terminal statuses of the `runs` table). */
export const TERMINAL_RUN_STATUSES = ['succeeded', 'failed', 'cancelled', 'timed_out'] as const;
export type TerminalRunStatus = (typeof TERMINAL_RUN_STATUSES)[number];

export const PUBLIC_STATUS = {
  /** `generations.status` */
  generation: { succeeded: 'completed', failed: 'failed', cancelled: 'cancelled', timed_out: 'failed' },
  /** `chat_messages.status` of the turn's answer */
  chat: { succeeded: 'completed', failed: null, cancelled: 'cancelled', timed_out: null },
  /** `chat_sessions.documentation_status` (a cancelled run's notes are not there: `failed`, written again on the next resolve) */
  notes: { succeeded: 'ready', failed: 'failed', cancelled: 'failed', timed_out: 'failed' },
  /** `flow_executions.status` */
  flow: { succeeded: 'completed', failed: 'failed', cancelled: 'cancelled', timed_out: 'failed' },
  /** `agent_runs.status` (a timeout is an `error` whose last message says `timed_out:`) */
  agent: { succeeded: 'success', failed: 'error', cancelled: 'cancelled', timed_out: 'error' },
} as const satisfies Record<string, Record<TerminalRunStatus, string | null>>;

/** The kinds of run whose row keeps a public status. */
export type PublicStatusKind = keyof typeof PUBLIC_STATUS;
/** Kinds of run with no status column of their own. */
export const NO_PUBLIC_STATUS = ['journey'] as const;

/** The public word of `kind` for a run that ended `status`. */
export function publicStatus<K extends PublicStatusKind, S extends TerminalRunStatus>(kind: K, status: S): (typeof PUBLIC_STATUS)[K][S] {
  return PUBLIC_STATUS[kind][status];
}
