import type { Redis } from 'ioredis';

/** Usage of one turn, summed over its model calls. */
export interface TurnUsage {
  provider: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

/** What a turn tells its HTTP listener; devices get `text_chunk` and `final` over Socket.IO too. */
export type ChatEvent =
  | { type: 'text_chunk'; sessionId: string; text: string }
  | { type: 'final'; sessionId: string; response: string; usage: TurnUsage }
  | { type: 'error'; sessionId: string; code: string; message: string };

const isTerminal = (event: ChatEvent) => event.type === 'final' || event.type === 'error';

/**
 * A chat turn's events in one Redis stream per turn (keyed by the user message id), the same
 * design as the generation event log (0008): the worker appends, any API node follows from the
 * start, so a listener that subscribes late loses nothing.
 */
export class ChatEventLog {
  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string,
    private readonly ttlSeconds = 3_600,
  ) {}

  key(messageId: string): string {
    return `${this.keyPrefix}:chat:${messageId}:events`;
  }

  async append(messageId: string, event: ChatEvent): Promise<void> {
    const key = this.key(messageId);
    await this.redis.multi().xadd(key, '*', 'e', JSON.stringify(event)).expire(key, this.ttlSeconds).exec();
  }

  /** Every event of the turn from the first, live, until `final` / `error` or `signal` aborts. */
  async *follow(messageId: string, signal: AbortSignal): AsyncGenerator<ChatEvent> {
    const key = this.key(messageId);
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
          const event = JSON.parse(fields[1]) as ChatEvent;
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
