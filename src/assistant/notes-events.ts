import type { RedisClient } from '../lib/redis';
import { JsonEventLog } from '../lib/redis-streams';
import type { StreamFollower } from '../lib/stream-follower';
import { redisKeys } from '../lib/redis-keys';

/** The `error` event of notes whose worker died mid-stream (the reaper and a stalled re-run both send it). */
export const NOTES_INTERRUPTED = 'The notes were interrupted (their worker stopped); resolve the session again to retry';

/** What the notes job tells its listeners. `chunk` texts concatenate to `done.documentation`. */
export type NotesEvent = { type: 'chunk'; text: string } | { type: 'done'; documentation: string } | { type: 'error'; message: string };

/** Everything but a chunk ends the notes' stream. */
export const isNotesTerminal = (event: NotesEvent): boolean => event.type !== 'chunk';

/**
 * A session's ticket notes as one Redis stream (the chat turn log's design): the worker
 * appends, any API node replays from the first chunk, so a listener that arrives late loses nothing.
 */
export class NotesEventLog extends JsonEventLog<NotesEvent> {
  constructor(redis: RedisClient, keyPrefix: string, ttlSeconds = 3_600, follower?: StreamFollower) {
    super(redis, (sessionId) => redisKeys(keyPrefix).notesEvents(sessionId), isNotesTerminal, ttlSeconds, follower);
  }
}
