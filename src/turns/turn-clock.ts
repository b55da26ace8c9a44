/**
 * The timing of one turn in this job: when it began and when its first text reached the user, for
 * the turn's log line (`duration_ms`, `response_time_ms`). In memory: the first chunk sets one field.
 */
export interface TurnClock {
  /** `performance.now()` when the job began the turn (or its resume). */
  readonly startedAt: number;
  /** `performance.now()` of the first text chunk the model streamed; unset while none came. */
  firstTextAt?: number;
}

export const startTurnClock = (): TurnClock => ({ startedAt: performance.now() });

/** The turn's duration so far and its time to first token (null when no text was streamed), in whole milliseconds. */
export function turnTimings(clock: TurnClock, now = performance.now()): { duration_ms: number; response_time_ms: number | null } {
  return {
    duration_ms: Math.round(now - clock.startedAt),
    response_time_ms: clock.firstTextAt === undefined ? null : Math.round(clock.firstTextAt - clock.startedAt),
  };
}
