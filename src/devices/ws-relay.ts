import { randomUUID } from 'node:crypto';
import { duplicateRedis, isCluster, type RedisClient } from '../lib/redis';
import type { Logger } from '../lib/logger';
import type { ToolCall } from '../schemas/device-protocol';
import { redisKeys } from '../lib/redis-keys';

/** What a node holding a plain-WebSocket device is told through Redis. */
export type RelayMessage =
  /**
   * A server → device message (camelCase payload, as on Socket.IO); the holder writes the frame.
   * `turn`: the chat turn it belongs to, written only by the connection that started that turn or
   * one that asked for every turn's messages.
   */
  | { k: 'send'; event: string; payload: unknown; turn?: string }
  /** A tool call; the holder sends `tool_call` and publishes the `tool_result` to `replyTo`. */
  | { k: 'call'; call: ToolCall; replyTo: string; timeoutMs: number }
  /** A newer connection of this device exists (`connId`): every other one closes. */
  | { k: 'replace'; connId: string }
  /** The sign-in session (`sid`) of the connection's token was revoked (logout, refresh reuse). */
  | { k: 'revoked' };

/** How a holder reacts to the messages of the device it holds. */
export type RelayHandler = (message: RelayMessage) => void;

/** Raised when no `tool_result` came back in time (the RPC maps it to its `timeout` outcome). */
export class RelayTimeoutError extends Error {
  constructor() {
    super('operation has timed out');
  }
}

/**
 * Carries device traffic to plain-WebSocket devices through Redis pub/sub: any process
 * publishes on the device's channel, the API node holding that device's WebSocket is subscribed to
 * it and writes the frame. `PUBLISH` answers how many subscribers got the message, so a caller
 * knows at once whether a WebSocket holds the device (else the call goes to Socket.IO).
 *
 * On a Redis Cluster the relay uses sharded pub/sub (`SPUBLISH`, `SSUBSCRIBE`; Redis 7): a plain
 * `PUBLISH` reaches subscribers on every node but counts only those on the node it was sent to,
 * so a call would take a held device for absent (and the device would still run it). A sharded
 * channel lives on the node of its slot, where its subscribers are and where it is published, so
 * the count is every holder's.
 *
 * Replies to tool calls come back on a channel of the calling process. One publisher (the command
 * connection) keeps messages to a device in order; one subscriber connection per process, opened on
 * first use.
 */
export class WsRelay {
  private subscriber?: RedisClient;
  private subscribing?: Promise<RedisClient>;
  private readonly handlers = new Map<string, Set<RelayHandler>>();
  private readonly pending = new Map<string, (reply: unknown) => void>();
  private readonly replyChannel: string;
  private replyReady?: Promise<void>;
  private closed = false;
  /** Sharded pub/sub: on a Redis Cluster (see the class comment). */
  private readonly sharded: boolean;

  constructor(
    private readonly redis: RedisClient,
    private readonly keyPrefix: string,
    private readonly logger?: Logger,
  ) {
    this.replyChannel = redisKeys(keyPrefix).wsRelayReply(randomUUID());
    this.sharded = isCluster(redis);
  }

  private deviceChannel = (userId: string, deviceId: string) => redisKeys(this.keyPrefix).wsRelayDevice(userId, deviceId);
  private userChannel = (userId: string) => redisKeys(this.keyPrefix).wsRelayUser(userId);
  private sessionChannel = (sessionId: string) => redisKeys(this.keyPrefix).wsRelaySession(sessionId);

  /** Sends a message to one device if a WebSocket holds it (of chat turn `turn`, when given); resolves with how many holders got it. */
  send(userId: string, deviceId: string, event: string, payload: unknown, turn?: string): Promise<number> {
    return this.publish(this.deviceChannel(userId, deviceId), { k: 'send', event, payload, ...(turn ? { turn } : {}) });
  }

  /** Sends a message to every WebSocket device of a user. */
  sendToUser(userId: string, event: string, payload: unknown): Promise<number> {
    return this.publish(this.userChannel(userId), { k: 'send', event, payload });
  }

  /** Tells every other connection of the device that `connId` replaces it. */
  replace(userId: string, deviceId: string, connId: string): Promise<number> {
    return this.publish(this.deviceChannel(userId, deviceId), { k: 'replace', connId });
  }

  /** Tells every WebSocket opened with a token of this sign-in session, on any node, that it was revoked. */
  revokeSession(sessionId: string): Promise<number> {
    return this.publish(this.sessionChannel(sessionId), { k: 'revoked' });
  }

  /**
   * The holder's side of {@link revokeSession}: listens until the returned function is called.
   * Resolves once subscribed, so a revocation published after that arrives.
   */
  async watchSession(sessionId: string, handler: RelayHandler): Promise<() => Promise<void>> {
    const channel = this.sessionChannel(sessionId);
    await this.subscribe(channel, handler);
    return () => this.unsubscribe(channel, handler);
  }

  /**
   * Sends a tool call to the device's WebSocket. Resolves `null` when no WebSocket holds the device
   * (nothing was sent), else `[reply]`; rejects with {@link RelayTimeoutError} after `timeoutMs`.
   * `signal` abandons the wait (a late reply is then dropped).
   */
  async call(userId: string, deviceId: string, call: ToolCall, timeoutMs: number, signal?: AbortSignal): Promise<unknown[] | null> {
    await this.listenForReplies();
    let resolveReply!: (reply: unknown) => void;
    const reply = new Promise<unknown>((resolve) => (resolveReply = resolve));
    this.pending.set(call.id, resolveReply);
    const holders = await this.publish(this.deviceChannel(userId, deviceId), {
      k: 'call',
      call,
      replyTo: this.replyChannel,
      timeoutMs,
    }).catch((error: unknown) => {
      this.pending.delete(call.id);
      throw error;
    });
    if (holders === 0) {
      this.pending.delete(call.id);
      return null;
    }
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new RelayTimeoutError()), timeoutMs)));
      // The turn's signal lives for the whole turn: its listener must go with this call.
      const aborted = new Promise<never>((_, reject) =>
        signal?.addEventListener('abort', (onAbort = () => reject(new RelayTimeoutError())), { once: true }),
      );
      return [await Promise.race([reply, timeout, aborted])];
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
      this.pending.delete(call.id);
    }
  }

  /** The holder's side: a `tool_result` goes back to the process that made the call. */
  async reply(replyTo: string, reply: unknown): Promise<void> {
    await this.publishRaw(replyTo, JSON.stringify({ reply }));
  }

  /**
   * The holder's side: listens to the device's channel and its user's channel until the returned
   * function is called. Resolves once subscribed, so messages published after that arrive.
   */
  async hold(userId: string, deviceId: string, handler: RelayHandler): Promise<() => Promise<void>> {
    const channels = [this.deviceChannel(userId, deviceId), this.userChannel(userId)];
    await Promise.all(channels.map((channel) => this.subscribe(channel, handler)));
    return async () => {
      await Promise.all(channels.map((channel) => this.unsubscribe(channel, handler)));
    };
  }

  /** Closes the subscriber; calls in flight end on their timeout. */
  async close(): Promise<void> {
    this.closed = true;
    this.handlers.clear();
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    subscriber?.disconnect();
  }

  private publish(channel: string, message: RelayMessage): Promise<number> {
    return this.publishRaw(channel, JSON.stringify(message));
  }

  private async publishRaw(channel: string, text: string): Promise<number> {
    return this.sharded ? Number(await this.redis.spublish(channel, text)) : this.redis.publish(channel, text);
  }

  private listenForReplies(): Promise<void> {
    this.replyReady ??= this.subscribe(this.replyChannel, () => undefined).catch((error: unknown) => {
      this.replyReady = undefined;
      throw error;
    });
    return this.replyReady;
  }

  private async connection(): Promise<RedisClient> {
    if (this.closed) throw new Error('the relay is closed');
    this.subscribing ??= (async () => {
      // Queues SUBSCRIBE until connected (the command connection it copies fails fast instead), and
      // resubscribes by itself after a reconnect.
      const subscriber = duplicateRedis(
        this.redis,
        { enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: true },
        { shardedSubscribers: this.sharded },
      );
      subscriber.on('error', (error: unknown) => this.logger?.warn({ err: error }, 'ws relay subscriber error'));
      subscriber.on(this.sharded ? 'smessage' : 'message', (channel: string, raw: string) => this.dispatch(channel, raw));
      this.subscriber = subscriber;
      return subscriber;
    })();
    return this.subscribing;
  }

  private async subscribe(channel: string, handler: RelayHandler): Promise<void> {
    const handlers = this.handlers.get(channel) ?? new Set();
    const first = handlers.size === 0;
    this.handlers.set(channel, handlers.add(handler));
    if (!first) return;
    const subscriber = await this.connection();
    await (this.sharded ? subscriber.ssubscribe(channel) : subscriber.subscribe(channel));
  }

  private async unsubscribe(channel: string, handler: RelayHandler): Promise<void> {
    const handlers = this.handlers.get(channel);
    if (!handlers?.delete(handler) || handlers.size) return;
    this.handlers.delete(channel);
    await (this.sharded ? this.subscriber?.sunsubscribe(channel) : this.subscriber?.unsubscribe(channel))?.catch((error: unknown) =>
      this.logger?.warn({ err: error, channel }, 'ws relay channel not unsubscribed'),
    );
  }

  private dispatch(channel: string, raw: string): void {
    let message: unknown;
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    if (channel === this.replyChannel) {
      const reply = (message as { reply?: unknown }).reply;
      const id = (reply as { id?: unknown } | null)?.id;
      if (typeof id === 'string') this.pending.get(id)?.(reply);
      return;
    }
    for (const handler of this.handlers.get(channel) ?? []) {
      try {
        handler(message as RelayMessage);
      } catch (error) {
        this.logger?.warn({ err: error, channel }, 'ws relay handler failed');
      }
    }
  }
}
