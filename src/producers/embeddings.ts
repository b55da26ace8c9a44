import { z } from 'zod';
import { TIERS } from '../../config';
import { MAX_EMBED_TEXT_CHARS } from '../schemas/api';
import { baseJobOptions, defineJob, defineQueue } from './define';

/**
 * `embeddings` queue: one text → one vector. Unlike other queues the payload carries the text
 * itself (there is no row to point at), so finished jobs are removed within a minute: the text
 * and its vector sit in Redis only while a caller waits for them. The worker micro-batches
 * concurrent jobs into one model call.
 */
export const embeddingJobSchema = z.object({
  text: z.string().min(1).max(MAX_EMBED_TEXT_CHARS),
  userId: z.uuid(),
  /** Labels the token metrics like generations do. */
  tier: z.enum(TIERS),
  /** The budget reservation its request took for the text's tokens: the embedding takes it over. */
  budget: z.string().optional(),
});
export type EmbeddingJob = z.infer<typeof embeddingJobSchema>;

/** What a finished job returns (and the HTTP endpoint answers). */
export const embeddingResultSchema = z.object({
  vector: z.array(z.number()),
  model: z.string(),
  dimensions: z.number().int().positive(),
});
export type EmbeddingResult = z.infer<typeof embeddingResultSchema>;

export const embeddingsQueue = defineQueue({
  name: 'embeddings',
  jobs: {
    /** Random job ids: the same text embedded twice is harmless, and waiters never share a failure. */
    embed: defineJob({
      schema: embeddingJobSchema,
      options: {
        ...baseJobOptions,
        attempts: 3,
        backoff: { type: 'exponential', delay: 250 },
        removeOnComplete: { age: 60 },
        // Kept a little longer for the dashboard's failure reason, still without long-lived user text.
        removeOnFail: { age: 3600 },
      },
    }),
  },
  /**
   * Two full micro-batches per worker, so the next batch fills while one is at the model (with
   * exactly one batch's worth, slots free up one job at a time and batches shrink).
   */
  concurrency: 128,
});
