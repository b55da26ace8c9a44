import { sleep } from '../lib/sleep';
import { JsonText } from '../realtime/socket-parser';
import { onJobs } from './handlers';
import type { WorkerPorts } from './ports';

/**
 * `broadcast` queue: sends a generation's persisted blocks to its canvas room as
 * `blocks_bulk_added_chunk` messages, `chunkSize` blocks each, `chunkDelayMs` apart, so clients
 * render progressively and no single frame is huge. The blocks come from the copy the runner kept
 * in Redis, taken in one read-and-delete, or from the database when it is gone (a retry
 * after the copy was taken reads there); either way in rank order, so a retry resends the same
 * chunks with the same indexes. The copy exists only while the generation stands:
 * it is written before the persist commit, and undo and canvas deletion drop it before theirs,
 * so finding it answers the status question without a database read.
 */
export const broadcastHandlers = onJobs('broadcast', 'src/workers/broadcast.ts', {
  'broadcast-blocks': async (
    { generationId, canvasId },
    job,
    { config, repos, emit, events, metrics }: Pick<WorkerPorts, 'config' | 'repos' | 'emit' | 'events' | 'metrics'>,
  ) => {
    // Each block as its JSON text: the chunks are cut and sent without parsing them again.
    // eslint-disable-next-line no-restricted-syntax -- the kept copy is an optimisation: without it the blocks are read from the rows below
    const kept = await events.takeKeptBlocks(generationId).catch(() => null);
    const blocks = kept ?? (await storedBlocks(repos, generationId));
    if (!blocks) return { chunks: 0 };
    const { chunkSize, chunkDelayMs } = config.broadcast;
    const chunkCount = Math.ceil(blocks.length / chunkSize);
    // A re-run (its worker died, or the attempt failed, mid-broadcast): the chunks already in the
    // canvas's log reached the clients or can be caught up from there under their seq, so they are
    // not sent again under new seqs, which a client deduping by seq would apply twice.
    const logged = job.attemptsStarted > 1 ? await emit.logged(canvasId, 'blocks_bulk_added_chunk') : [];
    const sent = new Set(logged.filter((e) => e.payload.generationId === generationId).map((e) => Number(e.payload.chunkIndex)));
    const unsent = Array.from({ length: chunkCount }, (_, chunkIndex) => chunkIndex).filter((chunkIndex) => !sent.has(chunkIndex));
    // `{canvasId, generationId, generation_session_id, chunkIndex, chunkCount, blocks}`, written as
    // JSON.stringify would. `generation_session_id` repeats the generation's id under the name canvas
    // clients written for the canvas app's own API read.
    const head = JSON.stringify({ canvasId, generationId, generation_session_id: generationId }).slice(0, -1);
    const payload = (chunkIndex: number) =>
      new JsonText(
        `${head},"chunkIndex":${chunkIndex},"chunkCount":${chunkCount},"blocks":[${blocks.slice(chunkIndex * chunkSize, (chunkIndex + 1) * chunkSize).join(',')}]}`,
      );
    if (chunkDelayMs > 0) {
      for (const [i, chunkIndex] of unsent.entries()) {
        if (i > 0) await sleep(chunkDelayMs);
        await emit.emitAll(canvasId, 'blocks_bulk_added_chunk', [payload(chunkIndex)]);
        metrics.broadcastChunks.inc();
      }
    } else if (unsent.length > 0) {
      // No pacing: every chunk in one call to Redis, each logged and sent in order, and read by
      // every node in one go.
      await emit.emitAll(canvasId, 'blocks_bulk_added_chunk', unsent.map(payload));
      metrics.broadcastChunks.inc(unsent.length);
    }
    await job.updateProgress({ chunksSent: chunkCount, chunkCount });
    return { chunks: chunkCount - sent.size, skipped: sent.size, blocks: blocks.length };
  },
});

/** The generation's blocks from the database as JSON texts, or null when it no longer stands (undone, its canvas deleted). */
async function storedBlocks(repos: WorkerPorts['repos'], generationId: string): Promise<string[] | null> {
  const generation = await repos.generations.find(generationId);
  if (generation?.status !== 'completed') return null;
  return (await repos.blocks.listByGeneration(generationId)).map((block) => JSON.stringify(block));
}
