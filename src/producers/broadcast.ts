import { z } from 'zod';
import { baseJobOptions, defineJob, defineQueue } from './define';

/** `broadcast` queue: chunked fan-out of a generation's persisted blocks to its canvas room. */
export const broadcastJobSchema = z.object({
  generationId: z.uuid(),
  canvasId: z.uuid(),
});
export type BroadcastJob = z.infer<typeof broadcastJobSchema>;

/** One broadcast per generation: a retried generation job re-adding it is a no-op. */
export const broadcastJobId = (generationId: string) => `broadcast-${generationId}`;

export const broadcastQueue = defineQueue({
  name: 'broadcast',
  jobs: {
    'broadcast-blocks': defineJob({
      schema: broadcastJobSchema,
      options: { ...baseJobOptions, attempts: 5, backoff: { type: 'exponential', delay: 200 } },
      jobId: (job) => broadcastJobId(job.generationId),
    }),
  },
  concurrency: (config) => config.broadcast.concurrency,
});
