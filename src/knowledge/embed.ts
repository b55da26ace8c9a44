import type { Tier } from '../../config';
import type { QueueRegistry } from '../producers/registry';
import { requestEmbedding } from '../producers/requests';

/**
 * Embeds texts through the `embeddings` queue, one job each: the worker micro-batches them into
 * model calls, reserves each under the user's budget first (a spent budget fails the job
 * `budget_exceeded`) and records the usage. Vectors come back in input order.
 */
export async function embedTexts(
  queues: QueueRegistry,
  who: { userId: string; tier: Tier },
  texts: readonly string[],
): Promise<number[][]> {
  const results = await Promise.all(texts.map((text) => requestEmbedding(queues, { text, userId: who.userId, tier: who.tier })));
  return results.map((result) => result.vector);
}
