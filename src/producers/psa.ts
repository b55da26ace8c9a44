import { z } from 'zod';
import { baseJobOptions, defineJob, defineQueue } from './define';

/**
 * `psa` queue: push a resolved session's ticket notes to its owner's PSA. `pushId` is the id of one
 * claim of the push (each resolve that claims it makes a new one), so a push claimed again after a
 * failure is a new job, and the resolve and the finished notes both adding one claim's job run it once.
 */
export const psaPushJobSchema = z.object({
  userId: z.uuid(),
  sessionId: z.uuid(),
  pushId: z.uuid(),
});
export type PsaPushJob = z.infer<typeof psaPushJobSchema>;

/** Tries of one push: a PSA that is down, slow or busy (5xx, 429, timeout) is tried again, with backoff. */
export const PSA_PUSH_ATTEMPTS = 4;

export const psaQueue = defineQueue({
  name: 'psa',
  jobs: {
    'push-notes': defineJob({
      schema: psaPushJobSchema,
      options: { ...baseJobOptions, attempts: PSA_PUSH_ATTEMPTS, backoff: { type: 'exponential', delay: 1_000 } },
      jobId: (job) => `psa-push.${job.sessionId}.${job.pushId}`,
    }),
  },
  concurrency: 4,
});
