import type { Redis } from 'ioredis';

/**
 * Follows a Redis stream live from after `fromId` until the consumer stops or `signal` aborts,
 * yielding `[entryId, firstFieldValue]`. Blocking reads hold a connection, so each follower gets a
 * duplicate of its own; aborting disconnects it, which ends the pending XREAD at once.
 */
export async function* followStream(redis: Redis, key: string, fromId: string, signal: AbortSignal): AsyncGenerator<[string, string]> {
  const blocking = redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null });
  const abort = () => blocking.disconnect();
  signal.addEventListener('abort', abort, { once: true });
  let last = fromId;
  try {
    while (!signal.aborted) {
      const result = (await blocking.xread('BLOCK', 10_000, 'STREAMS', key, last).catch((error) => {
        if (signal.aborted) return null;
        throw error;
      })) as Array<[string, Array<[string, string[]]>]> | null;
      if (!result) continue;
      for (const [id, fields] of result[0][1]) {
        last = id;
        yield [id, fields[1]];
      }
    }
  } finally {
    signal.removeEventListener('abort', abort);
    blocking.disconnect();
  }
}

/**
 * A JSON event log in one Redis stream per key: writers append, any node follows from the first
 * event, so a listener that arrives late loses nothing. Used for chat turns and ticket notes.
 */
export class JsonEventLog<E> {
  constructor(
    private readonly redis: Redis,
    private readonly keyOf: (id: string) => string,
    private readonly isTerminal: (event: E) => boolean,
    private readonly ttlSeconds = 3_600,
  ) {}

  key(id: string): string {
    return this.keyOf(id);
  }

  async append(id: string, event: E): Promise<void> {
    const key = this.keyOf(id);
    await this.redis.multi().xadd(key, '*', 'e', JSON.stringify(event)).expire(key, this.ttlSeconds).exec();
  }

  /** Forgets the log (before a new run writes it again). */
  async reset(id: string): Promise<void> {
    await this.redis.del(this.keyOf(id));
  }

  /** Every event from the first, live, until a terminal one or `signal` aborts. */
  async *follow(id: string, signal: AbortSignal): AsyncGenerator<E> {
    for await (const [, json] of followStream(this.redis, this.keyOf(id), '0', signal)) {
      const event = JSON.parse(json) as E;
      yield event;
      if (this.isTerminal(event)) return;
    }
  }
}
