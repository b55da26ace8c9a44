import { UnrecoverableError } from 'bullmq';
import { z } from 'zod';
import { ASSISTANT_QUEUE } from './assistant';
import { baseJobOptions, type QueueRegistry } from './queue-registry';

/**
 * `assistant` queue, job `journey-turn`: one answer of an agent setup journey (decision 0027).
 * Ids only, as every payload (0011): the answer waits in Redis beside the journey session
 * (`JourneyStore.putAnswer`) and the reply is written to the session, so the job's data and its
 * return value hold no user text.
 */
export const JOURNEY_TURN_JOB = 'journey-turn';

export const journeyTurnJobSchema = z.object({
  userId: z.uuid(),
  sessionId: z.uuid(),
  /** Which answer this is (1 for the answer to the first question). */
  turn: z.number().int().min(1).max(100),
});
export type JourneyTurnJob = z.infer<typeof journeyTurnJobSchema>;

/** What a finished turn returns; the reply text itself is read from the session. */
export const journeyTurnResultSchema = z.object({ turn: z.number().int(), done: z.boolean() });
export type JourneyTurnResult = z.infer<typeof journeyTurnResultSchema>;

/** One job per (session, answer): a double submit of the same answer waits on the same job. */
export const journeyTurnJobId = (sessionId: string, turn: number) => `journey-${sessionId}-${turn}`;

/**
 * One attempt: the model call retries and falls back inside the attempt; a failed turn answers the
 * waiting request with an error and the user sends the answer again (which replaces the failed job).
 * Finished jobs are dropped after an hour: their id only matters while the turn is open.
 */
export async function enqueueJourneyTurn(queues: QueueRegistry, data: JourneyTurnJob) {
  const payload = journeyTurnJobSchema.parse(data);
  return queues.get(ASSISTANT_QUEUE).add(JOURNEY_TURN_JOB, payload, {
    ...baseJobOptions,
    attempts: 1,
    removeOnComplete: { age: 3600 },
    jobId: journeyTurnJobId(payload.sessionId, payload.turn),
  });
}

/** Why a turn failed, as the HTTP layer maps it (503, 404, 502). */
export const JOURNEY_FAILURES = ['llm_unavailable', 'session_not_found', 'journey_failed'] as const;
export type JourneyFailureCode = (typeof JOURNEY_FAILURES)[number];

/** A permanent turn failure whose reason starts with its code (`llm_unavailable: …`), so the waiter can map it. */
export function journeyFailure(code: JourneyFailureCode, message: string): UnrecoverableError {
  return new UnrecoverableError(`${code}: ${message}`);
}

/** The code and message of a failed turn's reason; unknown reasons are `journey_failed`. */
export function parseJourneyFailure(reason: string): { code: JourneyFailureCode; message: string } {
  const match = /^([a-z_]+): (.*)$/s.exec(reason);
  const code = JOURNEY_FAILURES.find((c) => c === match?.[1]);
  return code ? { code, message: match![2] } : { code: 'journey_failed', message: reason };
}
