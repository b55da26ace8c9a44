import type { AgentRunStatus } from '../models/schema';
import { publicStatus } from '../schemas/public-status';

/**
 * How a run ended, as its runner hands it back: one of four terminal outcomes, never a sentinel.
 * The state machine of every run (queued → running → one of these) is the same for every kind; a
 * kind adds what it keeps of the run (`T`), e.g. an agent run's counts.
 */
export type RunOutcome<T = unknown> = T &
  (
    | { status: 'succeeded' }
    | { status: 'failed'; code: string; message: string }
    | { status: 'cancelled' }
    | { status: 'timed_out'; message: string }
  );

/** What an agent run keeps whatever its end: the documents read, the suggestions delivered, the errors met. */
export interface AgentRunCounts {
  itemsProcessed: number;
  itemsCreated: number;
  errors: string[];
  /** Succeeded with errors along the way (some items or documents failed). */
  partial?: boolean;
}

export type AgentRunOutcome = RunOutcome<AgentRunCounts>;

/**
 * The run row's status for an outcome: the kind's word for the run's end (a timeout is an `error`
 * whose last message says it timed out), and `partial` for a success with errors along the way.
 */
export function agentRunStatusOf(outcome: AgentRunOutcome): AgentRunStatus {
  if (outcome.status === 'succeeded' && outcome.partial) return 'partial';
  return publicStatus('agent', outcome.status);
}

/** The errors stored with an outcome: the run's own, then why it failed or timed out. */
export function agentRunErrorsOf(outcome: AgentRunOutcome): string[] {
  const errors = [...outcome.errors];
  if (outcome.status === 'failed' && !errors.includes(outcome.message)) errors.push(outcome.message);
  if (outcome.status === 'timed_out') errors.push(`timed_out: ${outcome.message}`);
  return errors.slice(0, 200).map((message) => message.slice(0, 1_000));
}

/** A run that stopped because it took too long (the device sent nothing in time). */
export class RunTimedOutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunTimedOutError';
  }
}
