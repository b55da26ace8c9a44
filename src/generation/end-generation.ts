import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { GenerationEventLog } from './event-log';
import type { GenerationLimiter } from './generation-limiter';

export interface EndGenerationDeps {
  repos: Repositories;
  events: GenerationEventLog;
  limiter: GenerationLimiter;
  logger: Logger;
}

/** Why a generation was ended from outside its worker: the code clients see, with a fixed message. */
export const GENERATION_END_REASONS = {
  /** Its worker died and its job is gone (the reaper, after a crash). */
  interrupted: 'The generation was interrupted (its worker stopped); please try again',
  /** Its canvas was deleted while it ran. */
  canvas_deleted: 'The canvas was deleted',
} as const;
export type GenerationEndReason = keyof typeof GENERATION_END_REASONS;

/**
 * The one way to end a generation that its worker will not end itself: move the row from
 * queued/running to `failed` (a conditional UPDATE, so many processes may try and one wins), give
 * the requester's concurrency slot back, and append the terminal `error` event so every SSE
 * stream on it ends. A worker still running it drops its result at the persist step (the row is
 * no longer running). Returns false when the generation had already ended.
 */
export async function endGeneration(deps: EndGenerationDeps, generationId: string, reason: GenerationEndReason): Promise<boolean> {
  const ended = await deps.repos.generations.endIfActive(generationId, {
    status: 'failed',
    errorCode: reason,
    errorMessage: GENERATION_END_REASONS[reason],
  });
  if (!ended) return false;
  await announceEnded(deps, ended, reason);
  return true;
}

/**
 * What follows the end of a generation whose row is already ended or gone (a canvas deletion
 * cascades to its generations): the slot goes back, the stream gets its terminal `error`.
 */
export async function announceEnded(
  deps: EndGenerationDeps,
  generation: { id: string; userId: string; canvasId: string },
  reason: GenerationEndReason,
): Promise<void> {
  await deps.limiter.release(generation.userId, generation.id);
  await deps.events.appendNext(generation.id, {
    type: 'error',
    generationId: generation.id,
    code: reason,
    message: GENERATION_END_REASONS[reason],
  });
  deps.logger.warn(
    { generationId: generation.id, canvasId: generation.canvasId, userId: generation.userId, reason },
    'generation ended from outside its worker',
  );
}
