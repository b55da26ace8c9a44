import { UnrecoverableError, type Job } from 'bullmq';
import type { Config } from '../../config';
import { sleep } from '../lib/sleep';
import type { Repositories } from '../models';
import type { Metrics } from '../observability/metrics';
import { broadcastJobSchema } from '../producers/broadcast';
import type { CanvasEmitter } from '../realtime/canvas-emitter';

/**
 * Sends a generation's persisted blocks to its canvas room as `blocks_bulk_added_chunk` messages,
 * `chunkSize` blocks each, `chunkDelayMs` apart, so clients render progressively and no single
 * frame is huge. The blocks are read once, in rank order: a retry resends the same chunks with the
 * same indexes.
 */
export function createBroadcastProcessor(deps: { config: Config; repos: Repositories; canvasEvents: CanvasEmitter; metrics?: Metrics }) {
  return async (job: Job) => {
    const parsed = broadcastJobSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError('Invalid broadcast payload');
    const { generationId, canvasId } = parsed.data;
    const generation = await deps.repos.generations.find(generationId);
    if (!generation || generation.status === 'undone') return { chunks: 0 };
    const blocks = await deps.repos.blocks.listByGeneration(generationId);
    const { chunkSize, chunkDelayMs } = deps.config.broadcast;
    const chunkCount = Math.ceil(blocks.length / chunkSize);
    for (let chunkIndex = 0; chunkIndex < chunkCount; chunkIndex += 1) {
      if (chunkIndex > 0) await sleep(chunkDelayMs);
      const chunk = blocks.slice(chunkIndex * chunkSize, (chunkIndex + 1) * chunkSize);
      await deps.canvasEvents.emit(canvasId, 'blocks_bulk_added_chunk', { canvasId, generationId, chunkIndex, chunkCount, blocks: chunk });
      deps.metrics?.broadcastChunks.inc();
    }
    await job.updateProgress({ chunksSent: chunkCount, chunkCount });
    return { chunks: chunkCount, blocks: blocks.length };
  };
}
