import { AppError } from '../lib/errors';
import { settled } from '../lib/settled';
import type { AgentRunJob } from './agent-runs';
import { embeddingResultSchema, type EmbeddingJob, type EmbeddingResult } from './embeddings';
import type { Enqueue, QueueRegistry } from './registry';

/*
 * What callers do through the queue registry beyond one typed enqueue. Kept apart from the queue
 * contracts, which the registry's catalog imports: a contract never imports the registry.
 */

/** Queues a run where it starts: `connectors` for a cloud agent that still has to fetch, else `agent-runs`. */
export function startAgentRun(enqueue: Enqueue, job: AgentRunJob) {
  return job.agentType === 'cloud' && !job.deviceId
    ? enqueue('connectors', 'connector-fetch', job)
    : enqueue('agent-runs', 'agent-run', job);
}

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
