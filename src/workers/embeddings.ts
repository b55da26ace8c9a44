import { UnrecoverableError } from 'bullmq';
import { embeddingEstimate, type BatchedEmbedder, type TextEmbedder } from '../ai/embeddings';
import { Pricing, type PriceTable } from '../budget/pricing';
import { BudgetExceededError, type BudgetDoor, type BudgetTicket } from '../budget/budget-door';
import { MicroBatcher } from '../lib/micro-batcher';
import type { EmbeddingResult } from '../producers/embeddings';
import { onJobs } from './handlers';
import type { WorkerPorts } from './ports';

/** Texts per model call, and how long the first text of a batch waits for company. */
export const EMBEDDING_BATCH = { maxSize: 64, maxDelayMs: 10 } as const;

/**
 * Texts arriving within ~10 ms go to the model in one call; a failed call fails every job of the batch, and each retries alone.
 * With a budget door, each text is reserved under its own user's ticket before it joins a batch and
 * settled with its share of the tokens the provider reported (nothing, when the call failed).
 */
export function batchedEmbedder(
  embedder: TextEmbedder,
  budgeted?: { budget: Pick<BudgetDoor, 'forCall' | 'settle'>; pricing: PriceTable },
): BatchedEmbedder {
  const batcher = new MicroBatcher<string, { vector: number[]; inputTokens: number }>(async (texts) => {
    const { vectors, inputTokens } = await embedder.embed(texts);
    return vectors.map((vector, i) => ({ vector, inputTokens: inputTokens[i] ?? 0 }));
  }, EMBEDDING_BATCH);
  const embed = async (text: string, ticket?: BudgetTicket) => {
    if (!budgeted || !ticket) return batcher.add(text);
    const { budget, pricing } = budgeted;
    const reservation = await budget.forCall(ticket, () => embeddingEstimate(pricing, embedder.model, [text]));
    let inputTokens = 0;
    try {
      const result = await batcher.add(text);
      inputTokens = result.inputTokens;
      return result;
    } finally {
      if (reservation) {
        const costUsd = Pricing.of(pricing).costOf({ model: embedder.model, inputTokens, outputTokens: 0 });
        await budget.settle(reservation, { inputTokens, outputTokens: 0, costUsd, requests: 0 });
      }
    }
  };
  return { provider: embedder.provider, model: embedder.model, embed };
}

/**
 * `embeddings` queue: each job submits its text to the shared batcher, then records its own usage
 * (its user, its share of the tokens) and returns its vector.
 */
export const embeddingHandlers = onJobs('embeddings', 'src/workers/embeddings.ts', {
  embed: async (
    { text, userId, tier, budget },
    _job,
    { config, repos, metrics, embedder }: Pick<WorkerPorts, 'config' | 'repos' | 'metrics' | 'embedder'>,
  ): Promise<EmbeddingResult> => {
    let embedded;
    try {
      // Reserved under the user's ticket (taking over what the request reserved); settled with the reported tokens.
      embedded = await embedder.embed(text, { userId, reservationId: budget });
    } catch (error) {
      // A spent budget stays spent for this job's retries: it fails now with the reason.
      if (error instanceof BudgetExceededError) throw new UnrecoverableError(`budget_exceeded: ${error.message}`);
      throw error;
    }
    const { vector, inputTokens } = embedded;
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
