import type { Redis } from 'ioredis';

/** What the notes job tells its listeners. `chunk` texts concatenate to `done.documentation`. */
export type NotesEvent =
  | { type: 'chunk'; text: string }
  | { type: 'done'; documentation: string }
  | { type: 'error'; message: string };

const isTerminal = (event: NotesEvent) => event.type !== 'chunk';

/**
 * A session's ticket notes as one Redis stream (the chat turn log's design, 0019): the worker
 * appends, any API node replays from the first chunk, so a listener that arrives late loses nothing.
 */
export class NotesEventLog {
  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string,
    private readonly ttlSeconds = 3_600,
  ) {}

  key(sessionId: string): string {
    return `${this.keyPrefix}:notes:${sessionId}:events`;
  }

  async append(sessionId: string, event: NotesEvent): Promise<void> {
    const key = this.key(sessionId);
    await this.redis.multi().xadd(key, '*', 'e', JSON.stringify(event)).expire(key, this.ttlSeconds).exec();
  }

  /** Forgets an earlier (failed) run before a new job writes the notes again. */
  async reset(sessionId: string): Promise<void> {
    await this.redis.del(this.key(sessionId));
  }

  /** Every event from the first, live, until `done` / `error` or `signal` aborts. */
  async *follow(sessionId: string, signal: AbortSignal): AsyncGenerator<NotesEvent> {
    const key = this.key(sessionId);
    // A connection of its own: XREAD BLOCK holds it, and aborting disconnects it.
    const blocking = this.redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null });
    const abort = () => blocking.disconnect();
    signal.addEventListener('abort', abort, { once: true });
    let last = '0';
    try {
      while (!signal.aborted) {
        const result = (await blocking.xread('BLOCK', 10_000, 'STREAMS', key, last).catch((error) => {
          if (signal.aborted) return null;
          throw error;
        })) as Array<[string, Array<[string, string[]]>]> | null;
        if (!result) continue;
        for (const [id, fields] of result[0][1]) {
          last = id;
          const event = JSON.parse(fields[1]) as NotesEvent;
          yield event;
          if (isTerminal(event)) return;
        }
      }
    } finally {
      signal.removeEventListener('abort', abort);
      blocking.disconnect();
    }
  }
}
