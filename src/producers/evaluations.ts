import { z } from 'zod';
import { baseJobOptions, defineJob } from './define';

/**
 * The BullMQ priority an evaluation's jobs start from (lower runs first; BullMQ's largest is
 * 2^21). An evaluation's node jobs get it added to their fair-share priority and its own jobs
 * carry it, so they wait behind every user's own executions on the `flows` queue and run when
 * the queue has nothing else: an evaluation never starves anyone, its owner included.
 */
export const BACKGROUND_PRIORITY = 1_000_000;

/** Claims the evaluation's next rows (up to its concurrency) and starts their executions; completes it when none is left. */
export const evaluationAdvanceJobSchema = z.object({ evaluationId: z.uuid() });
/** Scores the result of one ended execution of an evaluation, then advances it. */
export const evaluationScoreJobSchema = z.object({ evaluationId: z.uuid(), executionId: z.uuid() });

/** One scoring per execution, however many times its end is heard. */
export const evaluationScoreJobId = (executionId: string) => `eval-score-${executionId}`;

/** The evaluation jobs of the `flows` queue (declarations only). */
export const evaluationJobs = {
  'evaluation-advance': defineJob({
    schema: evaluationAdvanceJobSchema,
    options: { ...baseJobOptions, priority: BACKGROUND_PRIORITY },
  }),
  'evaluation-score': defineJob({
    schema: evaluationScoreJobSchema,
    options: { ...baseJobOptions, priority: BACKGROUND_PRIORITY },
    jobId: (job) => evaluationScoreJobId(job.executionId),
  }),
};
