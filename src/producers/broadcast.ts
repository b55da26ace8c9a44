import { z } from 'zod';
import { baseJobOptions, type QueueRegistry } from './queue-registry';

/** `broadcast` queue: chunked fan-out of a generation's persisted blocks to its canvas room. */
export const BROADCAST_QUEUE = 'broadcast' as const;
export const BROADCAST_JOB = 'broadcast-blocks';

export const broadcastJobSchema = z.object({
  generationId: z.uuid(),
  canvasId: z.uuid(),
});
export type BroadcastJob = z.infer<typeof broadcastJobSchema>;

/** One broadcast per generation: a retried generation job re-adding it is a no-op. */
export const broadcastJobId = (generationId: string) => `broadcast-${generationId}`;

export async function enqueueBroadcast(queues: QueueRegistry, data: BroadcastJob) {
  const payload = broadcastJobSchema.parse(data);
  return queues.get(BROADCAST_QUEUE).add(BROADCAST_JOB, payload, {
    ...baseJobOptions,
    attempts: 5,
    backoff: { type: 'exponential', delay: 200 },
    jobId: broadcastJobId(payload.generationId),
  });
}
