import { z } from 'zod';
import { TIERS } from '../../config';
import { baseJobOptions, type QueueRegistry } from './queue-registry';

/**
 * `generation` queue: one canvas AI generation. The payload carries ids only — the prompt lives in
 * the `generations` row, so user text never sits in Redis or in the dashboard.
 */
export const GENERATION_QUEUE = 'generation' as const;
export const GENERATION_JOB = 'generate';

export const generationJobSchema = z.object({
  generationId: z.uuid(),
  canvasId: z.uuid(),
  userId: z.uuid(),
  tier: z.enum(TIERS),
});
export type GenerationJob = z.infer<typeof generationJobSchema>;

/** The job id is the generation id: the same generation can never be queued twice. */
export async function enqueueGeneration(queues: QueueRegistry, data: GenerationJob) {
  const payload = generationJobSchema.parse(data);
  return queues.get(GENERATION_QUEUE).add(GENERATION_JOB, payload, { ...baseJobOptions, jobId: payload.generationId });
}
