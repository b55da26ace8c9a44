import type { RedisClient } from '../lib/redis';
import { z } from 'zod';
import type { Logger } from '../lib/logger';
import type { CanvasNamespace } from './canvas-emitter';
import { rooms } from '../schemas/socket-events';
import { redisKeys } from '../lib/redis-keys';

const relayed = z.object({ canvasId: z.string(), from: z.string(), userId: z.string(), x: z.number(), y: z.number() });
/** A member typing in a room thread: as volatile as a cursor, so it travels the same way. */
const typing = z.object({
  kind: z.literal('typing'),
  canvasId: z.string(),
  from: z.string(),
  threadId: z.string(),
  userId: z.string(),
  name: z.string(),
});

/**
 * Carries `cursor` events between API nodes over one Redis pub/sub channel, NOT through the
 * Socket.IO adapter: the adapter's stream is also the connection-state-recovery history that every
 * client shares, and cursors (many per second, worthless a second later) would push everyone's
 * room events out of it. Pub/sub keeps nothing: a node that is down misses the
 * cursors, which is what a volatile event means anyway. Every node, the sender's included,
 * delivers what it hears to its own sockets in the room (`nsp.local`), except the sender.
 */
export class CursorRelay {
  private readonly channel: string;

  private constructor(
    private readonly publisher: RedisClient,
    private readonly subscriber: RedisClient,
    keyPrefix: string,
  ) {
    this.channel = redisKeys(keyPrefix).cursorChannel();
  }

  /** Subscribes with `subscriber` (a connection of its own: pub/sub mode takes it over). */
  static async start(options: {
    publisher: RedisClient;
    subscriber: RedisClient;
    keyPrefix: string;
    nsp: CanvasNamespace;
    logger?: Logger;
  }): Promise<CursorRelay> {
    const relay = new CursorRelay(options.publisher, options.subscriber, options.keyPrefix);
    options.subscriber.on('message', (channel: string, message: string) => {
      if (channel !== relay.channel) return;
      let raw: unknown;
      try {
        raw = JSON.parse(message);
      } catch {
        return;
      }
      const typed = typing.safeParse(raw);
      if (typed.success) {
        const { canvasId, from, threadId, userId, name } = typed.data;
        const room = rooms.canvas(canvasId);
        if (options.nsp.adapter.rooms.has(room))
          options.nsp.local.to(room).except(from).volatile.emit('thread_typing', { canvasId, threadId, userId, name });
        return;
      }
      const parsed = relayed.safeParse(raw);
      if (!parsed.success) return;
      const { canvasId, from, userId, x, y } = parsed.data;
      const room = rooms.canvas(canvasId);
      if (!options.nsp.adapter.rooms.has(room)) return;
      options.nsp.local.to(room).except(from).volatile.emit('cursor', { userId, x, y });
    });
    await options.subscriber.subscribe(relay.channel);
    return relay;
  }

  /** Sends one cursor to every node's members of the canvas room but the sending socket. */
  publish(cursor: z.infer<typeof relayed>): void {
    // eslint-disable-next-line no-restricted-syntax -- a cursor is superseded by the next one a moment later; a lost one needs no report
    this.publisher.publish(this.channel, JSON.stringify(cursor)).catch(() => undefined);
  }

  /** Sends one `thread_typing` to every node's members of the canvas room but the sending socket. */
  publishTyping(event: Omit<z.infer<typeof typing>, 'kind'>): void {
    // eslint-disable-next-line no-restricted-syntax -- typing is superseded by the next one a moment later; a lost one needs no report
    this.publisher.publish(this.channel, JSON.stringify({ kind: 'typing', ...event })).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.subscriber.quit().catch(() => this.subscriber.disconnect());
  }
}
