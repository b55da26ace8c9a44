import type { RedisClient } from '../lib/redis';
import { redisKeys } from '../lib/redis-keys';
import { JsonEventLog } from '../lib/redis-streams';
import type { StreamFollower } from '../lib/stream-follower';
import type { IngestProgress } from './ingester';

/** A document ingestion's last event: ready or failed. */
export const isIngestTerminal = (event: IngestProgress): boolean => event.status === 'ready' || event.status === 'failed';

/** The log id of one ingestion: a re-ingestion writes a log of its own, so a follower never stops at an old `ready`. */
export const ingestionLogId = (documentId: string, revision: number): string => `${documentId}:${revision}`;

/**
 * One ingestion's progress as a Redis stream (the chat turn log's design): the worker appends at
 * each step and after each stored round of chunks, any API node replays it from the start, so a
 * listener that arrives late loses nothing.
 */
export class KnowledgeEventLog extends JsonEventLog<IngestProgress> {
  constructor(redis: RedisClient, keyPrefix: string, ttlSeconds = 3_600, follower?: StreamFollower) {
    super(
      redis,
      (id) => {
        const at = id.lastIndexOf(':');
        return redisKeys(keyPrefix).knowledgeEvents(id.slice(0, at), Number(id.slice(at + 1)));
      },
      isIngestTerminal,
      ttlSeconds,
      follower,
    );
  }

  /** Appends an ingestion's event to its own log. */
  report(event: IngestProgress): Promise<void> {
    return this.append(ingestionLogId(event.documentId, event.revision), event);
  }
}
