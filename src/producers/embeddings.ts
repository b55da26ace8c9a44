import { z } from 'zod';
import { TIERS } from '../../config';
import { AppError } from '../lib/errors';
import { MAX_EMBED_TEXT_CHARS } from '../schemas/api';
import { baseJobOptions, defineJob, defineQueue } from './define';
import type { QueueRegistry } from './registry';
import { settled } from '../lib/settled';

/**
 * `embeddings` queue: one text → one vector. Unlike other queues the payload carries the text
 * itself (there is no row to point at), so finished jobs are removed within a minute: the text
 * and its vector sit in Redis only while a caller waits for them. The worker micro-batches
 * concurrent jobs into one model call (docs/decisions/0020-embedding-micro-batches.md).
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

/** How long an HTTP caller waits for its vector by default (retries included). */
export const EMBEDDING_WAIT_MS = 30_000;

/**
 * Enqueues one text and waits for its vector through the process's shared `QueueEvents`.
 * Throws 504 `embedding_timeout` when no result arrives in time and 502 `embedding_failed` when
 * the job failed for good; a Redis outage surfaces as the enqueue's connection error (503).
 */
export async function requestEmbedding(queues: QueueRegistry, data: EmbeddingJob, timeoutMs = EMBEDDING_WAIT_MS): Promise<EmbeddingResult> {
  const events = await queues.events('embeddings');
  const job = await queues.enqueue('embeddings', 'embed', data);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new AppError(504, 'embedding_timeout', `No embedding arrived within ${Math.round(timeoutMs / 1000)} s; retry later`)),
      timeoutMs,
    );
  });
  // BullMQ's own deadline (a little later) only releases its listeners; ours decides the answer.
  const finished = job.waitUntilFinished(events, timeoutMs + 1_000);
  void settled(finished);
  try {
    return embeddingResultSchema.parse(await Promise.race([finished, timeout]));
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw new AppError(502, 'embedding_failed', 'The embedding model could not embed this text; retry later');
  } finally {
    clearTimeout(timer);
  }
}
