import { pipelineByKey, type RedisClient } from '../lib/redis';
import type { Block } from '../schemas/blocks';
import type { GenerationEvent } from './events';
import { isTerminal } from './events';
import type { StreamFollower } from '../lib/stream-follower';
import { redisKeys } from '../lib/redis-keys';
import { SequencedEventLog, type EventWriter } from '../lib/sequenced-event-log';

/** The first line of a kept copy of blocks (`keepBlocks`): not JSON, on purpose. */
const KEPT_BLOCKS_FORMAT = '#blocks v2';

/** How long the broadcast's copy of the blocks is kept: far beyond its retries (5 attempts, backoff from 200 ms). */
export const KEPT_BLOCKS_TTL_SECONDS = 600;

/** The writer of one generation's events. */
export type GenerationEventWriter = EventWriter<GenerationEvent>;

/**
 * Generation events: the sequenced log of each generation, plus the copy of its persisted
 * blocks kept for the broadcast job.
 */
export class GenerationEventLog extends SequencedEventLog<GenerationEvent> {
  constructor(
    redis: RedisClient,
    private readonly keyPrefix: string,
    ttlSeconds: number,
    follower?: StreamFollower,
  ) {
    super(redis, (generationId) => redisKeys(keyPrefix).generationEvents(generationId), ttlSeconds, isTerminal, follower);
  }

  /**
   * Keeps the persisted blocks for the broadcast job: the runner already holds
   * them, so the fan-out need not read 200 rows back from the database before its first chunk. The
   * job payload stays ids only; this copy lives beside the event log, which already holds
   * the same blocks in its `complete` event, for a few minutes only. Each block is kept as its
   * JSON text, one per line (JSON text has no raw newline), so the broadcast can cut its chunks
   * without parsing and serializing 200 blocks again. The first line marks the format:
   * it is not JSON, so a worker of the version before, which parsed one JSON array, fails to
   * parse it and reads the database instead of sending a wrong broadcast.
   */
  async keepBlocks(generationId: string, blocks: Block[]): Promise<void> {
    const lines = [KEPT_BLOCKS_FORMAT, ...blocks.map((block) => JSON.stringify(block))];
    await this.redis.set(this.blocksKey(generationId), lines.join('\n'), 'EX', KEPT_BLOCKS_TTL_SECONDS);
  }

  /**
   * Takes the blocks kept by `keepBlocks` as their JSON texts, in order (read and dropped in one
   * command, GETDEL), or null when gone (taken, expired, evicted, never written). A broadcast that
   * fails after taking them reads the database on its retry. A copy kept as one JSON array (by a
   * worker of the version before) is read too.
   */
  async takeKeptBlocks(generationId: string): Promise<string[] | null> {
    const kept = await this.redis.getdel(this.blocksKey(generationId));
    if (kept === null) return null;
    if (kept.startsWith('[')) return (JSON.parse(kept) as Block[]).map((block) => JSON.stringify(block));
    const [format, ...blocks] = kept.split('\n');
    if (format !== KEPT_BLOCKS_FORMAT) throw new Error(`kept blocks of ${generationId} in an unknown format`);
    return blocks;
  }

  /** Drops the kept blocks: no longer to be sent (undo, canvas deletion). */
  async forgetBlocks(...generationIds: string[]): Promise<void> {
    // One DEL per generation (each its own slot), pipelined per Redis node.
    const replies = await pipelineByKey(
      this.redis,
      generationIds,
      (id) => this.blocksKey(id),
      (pipeline, id) => pipeline.del(this.blocksKey(id)),
    );
    const failed = replies.find((reply) => reply[0]?.[0])?.[0]?.[0];
    if (failed) throw failed;
  }

  private blocksKey(generationId: string): string {
    return redisKeys(this.keyPrefix).generationBlocks(generationId);
  }
}
