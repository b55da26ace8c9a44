import type { TerminalStatus } from './transitions';

/**
 * How a run ended, as its runner returns it and the kernel records it: a typed value instead of a
 * sentinel or an exception used for control flow. `S` is what a success carries, `U` the usage a
 * cancelled run (or a failed one, when its kind keeps it) had spent.
 */
export type RunOutcome<S = unknown, U = unknown> =
  | { status: 'succeeded'; result: S }
  | { status: 'failed'; code: string; message: string; usage?: U }
  | { status: 'cancelled'; usage?: U }
  | { status: 'timed_out'; message: string };

/** The outcome's terminal status (the column the kernel writes). */
export type OutcomeStatus = RunOutcome['status'] & TerminalStatus;

/** The `error_code` / `error_message` the run's row keeps for an outcome. */
export function outcomeError(outcome: RunOutcome): { errorCode: string | null; errorMessage: string | null } {
  if (outcome.status === 'failed') return { errorCode: outcome.code, errorMessage: outcome.message };
  if (outcome.status === 'timed_out') return { errorCode: 'timed_out', errorMessage: outcome.message };
  return { errorCode: null, errorMessage: null };
}
