import { UnrecoverableError } from 'bullmq';
import { Pricing } from '../budget/pricing';
import type { SessionEmbeddingJob } from '../producers/assistant';
import { BudgetExceededError } from '../budget/budget-door';
import { MAX_EMBED_TEXT_CHARS } from '../schemas/api';
import type { Config } from '../../config';
import type { BatchedEmbedder } from '../ai/embeddings';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { Metrics } from '../observability/metrics';

/** What a session is found by: its problem, its resolution and its notes, as one text. */
export function sessionEmbeddingText(session: {
  title: string | null;
  problemSummary: string | null;
  resolutionSummary: string | null;
  documentation: string | null;
}): string {
  return [session.title, session.problemSummary, session.resolutionSummary, session.documentation]
    .filter((part): part is string => Boolean(part?.trim()))
    .join('\n\n')
    .slice(0, MAX_EMBED_TEXT_CHARS);
}

/**
 * The `assistant/session-embedding` job: embeds a resolved session whose notes are stored, through
 * the process's batched embedder (budgeted under the user's ticket, usage recorded like any
 * embedding), and keeps the vector. A session gone, reopened or without notes is left alone.
 */
export async function embedResolvedSession(
  { userId, sessionId }: SessionEmbeddingJob,
  {
    repos,
    embedder,
    config,
    metrics,
    log,
  }: { repos: Repositories; embedder: BatchedEmbedder; config: Config; metrics: Metrics; log: Logger },
): Promise<{ embedded: boolean; dimensions?: number }> {
  const session = await repos.chat.findOwned(userId, sessionId);
  if (!session || session.status !== 'resolved' || session.documentationStatus !== 'ready' || !session.documentation)
    return { embedded: false };
  const text = sessionEmbeddingText(session);
  let embedded;
  try {
    embedded = await embedder.embed(text, { userId });
  } catch (error) {
    // A spent budget stays spent for this job's retries: it fails now with the reason.
    if (error instanceof BudgetExceededError) throw new UnrecoverableError(`budget_exceeded: ${error.message}`);
    throw error;
  }
  const { vector, inputTokens } = embedded;
  if (vector.length === 0) throw new UnrecoverableError(`The embedding model ${embedder.model} returned an empty vector`);
  const costUsd = Pricing.of(config.llm.pricing).costOf({ model: embedder.model, inputTokens, outputTokens: 0 });
  await repos.usage.record({
    userId,
    sessionId,
    purpose: 'embedding',
    provider: embedder.provider,
    model: embedder.model,
    inputTokens,
    outputTokens: 0,
    costUsd,
  });
  const tier = (await repos.users.findById(userId))?.tier ?? 'free';
  const labels = { provider: embedder.provider, model: embedder.model, tier };
  metrics.llmTokens.inc({ ...labels, direction: 'input' }, inputTokens);
  metrics.llmCost.inc(labels, costUsd);
  await repos.notes.storeEmbedding({ sessionId, userId, model: embedder.model, vector });
  log.info({ sessionId, dimensions: vector.length }, 'session embedding stored');
  return { embedded: true, dimensions: vector.length };
}
