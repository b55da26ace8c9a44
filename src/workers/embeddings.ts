import { UnrecoverableError } from 'bullmq';
import type { TextEmbedder } from '../ai/embeddings';
import { Pricing } from '../ai/pricing';
import { MicroBatcher } from '../lib/micro-batcher';
import type { EmbeddingResult } from '../producers/embeddings';
import { onJobs } from './handlers';
import type { WorkerPorts } from './ports';

/** Texts per model call, and how long the first text of a batch waits for company. */
export const EMBEDDING_BATCH = { maxSize: 64, maxDelayMs: 10 } as const;

/** The process's embedding model behind one {@link MicroBatcher} shared by the worker's concurrent jobs. */
export interface BatchedEmbedder {
  provider: string;
  model: string;
  embed(text: string): Promise<{ vector: number[]; inputTokens: number }>;
}

/** Texts arriving within ~10 ms go to the model in one call; a failed call fails every job of the batch, and each retries alone. */
export function batchedEmbedder(embedder: TextEmbedder): BatchedEmbedder {
  const batcher = new MicroBatcher<string, { vector: number[]; inputTokens: number }>(async (texts) => {
    const { vectors, inputTokens } = await embedder.embed(texts);
    return vectors.map((vector, i) => ({ vector, inputTokens: inputTokens[i] ?? 0 }));
  }, EMBEDDING_BATCH);
  return { provider: embedder.provider, model: embedder.model, embed: (text) => batcher.add(text) };
}

/**
 * `embeddings` queue: each job submits its text to the shared batcher, then records its own usage
 * (its user, its share of the tokens) and returns its vector.
 */
export const embeddingHandlers = onJobs('embeddings', 'src/workers/embeddings.ts', {
  embed: async (
    { text, userId, tier },
    _job,
    { config, repos, metrics, embedder }: Pick<WorkerPorts, 'config' | 'repos' | 'metrics' | 'embedder'>,
  ): Promise<EmbeddingResult> => {
    const { vector, inputTokens } = await embedder.embed(text);
    if (vector.length === 0) throw new UnrecoverableError(`The embedding model ${embedder.model} returned an empty vector`);
    const cost = Pricing.of(config.llm.pricing).costOf({ model: embedder.model, inputTokens, outputTokens: 0 });
    await repos.usage.record({
      userId,
      purpose: 'embedding',
      provider: embedder.provider,
      model: embedder.model,
      inputTokens,
      outputTokens: 0,
      costUsd: cost,
    });
    const labels = { provider: embedder.provider, model: embedder.model, tier };
    metrics.llmTokens.inc({ ...labels, direction: 'input' }, inputTokens);
    metrics.llmCost.inc(labels, cost);
    return { vector, model: embedder.model, dimensions: vector.length };
  },
});
