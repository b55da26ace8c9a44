import { z } from 'zod';
import { TIERS } from '../../config';
import { baseJobOptions, defineJob, defineQueue } from './define';

/**
 * `generation` queue: one canvas AI generation. The payload carries ids only — the prompt lives in
 * the `generations` row, so user text never sits in Redis or in the dashboard.
 */
export const generationJobSchema = z.object({
  generationId: z.uuid(),
  canvasId: z.uuid(),
  userId: z.uuid(),
  tier: z.enum(TIERS),
  /** The budget reservation the request took for the first model call (absent: the user has no budget limits). */
  budget: z.string().optional(),
});
export type GenerationJob = z.infer<typeof generationJobSchema>;

export const generationQueue = defineQueue({
  name: 'generation',
  jobs: {
    /** The job id is the generation id: the same generation can never be queued twice. */
    generate: defineJob({ schema: generationJobSchema, options: baseJobOptions, jobId: (job) => job.generationId }),
  },
  concurrency: (config) => config.generation.concurrency,
});
