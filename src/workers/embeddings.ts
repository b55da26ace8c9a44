import { UnrecoverableError, type Job } from 'bullmq';
import { costUsd, type Config } from '../../config';
import type { TextEmbedder } from '../ai/embeddings';
import { MicroBatcher } from '../lib/micro-batcher';
import type { Repositories } from '../models';
import type { Metrics } from '../observability/metrics';
import { embeddingJobSchema, type EmbeddingResult } from '../producers/embeddings';

/**
 * Jobs one worker runs at once: two full batches, so the next batch fills while one is at the
 * model (with exactly one batch's worth, slots free up one job at a time and batches shrink).
 */
export const EMBEDDINGS_CONCURRENCY = 128;
/** Texts per model call, and how long the first text of a batch waits for company. */
export const EMBEDDING_BATCH = { maxSize: 64, maxDelayMs: 10 } as const;

interface Embedded {
  vector: number[];
  inputTokens: number;
}

/**
 * `embeddings` queue processor. Each job submits its text to a {@link MicroBatcher} shared by the
 * worker's concurrent jobs, so texts arriving within ~10 ms go to the model in one call; each job
 * then records its own usage (its user, its share of the tokens) and returns its vector. A failed
 * model call fails every job of the batch, and each retries alone.
 */
export function createEmbeddingsProcessor(deps: { config: Config; repos: Repositories; metrics?: Metrics; embedder: TextEmbedder }) {
  const { embedder } = deps;
  const batcher = new MicroBatcher<string, Embedded>(async (texts) => {
    const { vectors, inputTokens } = await embedder.embed(texts);
    return vectors.map((vector, i) => ({ vector, inputTokens: inputTokens[i] ?? 0 }));
  }, EMBEDDING_BATCH);

  return async (job: Job): Promise<EmbeddingResult> => {
    const parsed = embeddingJobSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError('Invalid embeddings payload: expected {text (1..8000 chars), userId, tier}');
    const { text, userId, tier } = parsed.data;
    const { vector, inputTokens } = await batcher.add(text);
    if (vector.length === 0) throw new UnrecoverableError(`The embedding model ${embedder.model} returned an empty vector`);
    const cost = costUsd(deps.config.llm.pricing, embedder.model, inputTokens, 0);
    await deps.repos.usage.record({ userId, purpose: 'embedding', provider: embedder.provider, model: embedder.model, inputTokens, outputTokens: 0, costUsd: cost });
    const labels = { provider: embedder.provider, model: embedder.model, tier };
    deps.metrics?.llmTokens.inc({ ...labels, direction: 'input' }, inputTokens);
    deps.metrics?.llmCost.inc(labels, cost);
    return { vector, model: embedder.model, dimensions: vector.length };
  };
}
