import { duplicateRedis, isCluster, pipelineByKey, type RedisClient } from './redis';
import type { Logger } from './logger';
import { redisKeys } from './redis-keys';

/**
 * What can be cancelled: a canvas generation, a chat turn (keyed by its user message id), a flow
 * execution, an agent run, a journey turn (keyed by the attempt id its answer was stored with).
 */
export type CancelKind = 'generation' | 'chat' | 'flow' | 'agent-run' | 'journey';

const KIND_NAMES: Record<CancelKind, string> = {
  generation: 'generation',
  chat: 'chat turn',
  flow: 'flow execution',
  'agent-run': 'agent run',
  journey: 'journey turn',
};

/** How long a cancel request is remembered in Redis (a turn or generation never runs longer). */
const REQUEST_TTL_SECONDS = 3_600;

/** A local watch on one operation: `signal` aborts when anyone, on any node, asks to cancel it. */
export interface CancelWatch {
  signal: AbortSignal;
  /** Stops watching (always call it: the watch holds an entry until then). */
  release(): void;
}

/**
 * Cancel requests across processes. The API node that takes the request
 * sets a key (remembered, so a worker that starts later still sees it) and publishes on one channel;
 * each worker process holds one subscriber connection and aborts the local `AbortController` of
 * the operation named. The database row stays the truth about whether the operation ended; this is
 * only the fast path that stops a model stream within milliseconds.
 *
 * On a Redis Cluster the channel is a sharded one (`SPUBLISH`, `SSUBSCRIBE`; Redis 7): ioredis
 * says when its sharded subscriber is back and subscribed after losing its node
 * (`subscribersReady`), which is when the watched keys must be read again; it tells nothing when
 * the connection of a plain cluster subscription is replaced.
 */
export class CancelSignals {
  private readonly channel: string;
  private readonly watching = new Map<string, Set<AbortController>>();
  private subscriber?: RedisClient;
  /** Sharded pub/sub: on a Redis Cluster (see the class comment). */
  private readonly sharded: boolean;

  constructor(
    private readonly redis: RedisClient,
    private readonly keyPrefix: string,
    private readonly logger?: Logger,
  ) {
    this.channel = redisKeys(keyPrefix).cancelChannel();
    this.sharded = isCluster(redis);
  }

  private key(kind: CancelKind, id: string) {
    return redisKeys(this.keyPrefix).cancelRequest(kind, id);
  }

  /** Records the request and tells every listening process. */
  async request(kind: CancelKind, id: string): Promise<void> {
    if (!this.sharded) {
      await this.redis.multi().set(this.key(kind, id), '1', 'EX', REQUEST_TTL_SECONDS).publish(this.channel, `${kind}:${id}`).exec();
      return;
    }
    // The key and the sharded channel are in different slots, so two commands (a MULTI is one
    // slot's): the mark first, so a listener that misses the message still reads it.
    await this.redis.set(this.key(kind, id), '1', 'EX', REQUEST_TTL_SECONDS);
    await this.redis.spublish(this.channel, `${kind}:${id}`);
  }

  /** Whether a cancel was requested (within the last hour). */
  async isRequested(kind: CancelKind, id: string): Promise<boolean> {
    return (await this.redis.exists(this.key(kind, id))) === 1;
  }

  /**
   * Subscribes this process (worker role). After every (re)connect the keys of everything watched
   * are read again, so a request published while the subscriber was disconnected still lands.
   */
  async listen(): Promise<void> {
    if (this.subscriber) return;
    const subscriber = duplicateRedis(
      this.redis,
      { enableOfflineQueue: true, maxRetriesPerRequest: null, lazyConnect: true },
      { shardedSubscribers: this.sharded },
    );
    this.subscriber = subscriber;
    subscriber.on(this.sharded ? 'smessage' : 'message', (_channel: string, message: string) => {
      const split = message.indexOf(':');
      this.abortLocal(message.slice(0, split) as CancelKind, message.slice(split + 1));
    });
    subscriber.on('ready', () => void this.recheckAll());
    if (this.sharded) subscriber.on('subscribersReady', () => void this.recheckAll());
    subscriber.on('error', (error) => this.logger?.warn({ err: error }, 'cancel subscriber error'));
    await subscriber.connect();
    await (this.sharded ? subscriber.ssubscribe(this.channel) : subscriber.subscribe(this.channel));
  }

  /**
   * Watches one operation in this process. A request made before the watch began aborts it too
   * (the key is read once right away), unless `startReadsRequest`: the operation's start reads the
   * request where it is recorded before it is signalled (its run's row), after this watch began,
   * so a request the key would show is one the start sees, and any later one is published to this watch.
   */
  watch(kind: CancelKind, id: string, options: { startReadsRequest?: boolean } = {}): CancelWatch {
    const controller = new AbortController();
    const name = `${kind}:${id}`;
    const set = this.watching.get(name) ?? new Set();
    this.watching.set(name, set.add(controller));
    if (!options.startReadsRequest)
      void this.isRequested(kind, id)
        .then((requested) => requested && controller.abort(new CancelledError(kind, id)))
        .catch((error: unknown) =>
          this.logger?.warn({ err: error, kind, id }, 'cancel check at watch start failed; the pub/sub signal still arrives'),
        );
    return {
      signal: controller.signal,
      release: () => {
        set.delete(controller);
        if (!set.size && this.watching.get(name) === set) this.watching.delete(name);
      },
    };
  }

  async close(): Promise<void> {
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    if (subscriber) await subscriber.quit().catch(() => subscriber.disconnect());
  }

  private abortLocal(kind: CancelKind, id: string) {
    for (const controller of this.watching.get(`${kind}:${id}`) ?? []) controller.abort(new CancelledError(kind, id));
  }

  private async recheckAll() {
    const names = [...this.watching.keys()];
    if (!names.length) return;
    try {
      const keyOf = (name: string) => {
        const split = name.indexOf(':');
        return this.key(name.slice(0, split) as CancelKind, name.slice(split + 1));
      };
      const results = await pipelineByKey(this.redis, names, keyOf, (pipeline, name) => pipeline.exists(keyOf(name)));
      names.forEach((name, index) => {
        if (results[index][0]?.[1] !== 1) return;
        const split = name.indexOf(':');
        this.abortLocal(name.slice(0, split) as CancelKind, name.slice(split + 1));
      });
    } catch (error) {
      this.logger?.warn({ err: error }, 'cancel recheck failed');
    }
  }
}

/** The abort reason of a cancelled operation. */
export class CancelledError extends Error {
  constructor(
    readonly kind: CancelKind,
    readonly id: string,
  ) {
    super(`The ${KIND_NAMES[kind]} was cancelled`);
    this.name = 'CancelledError';
  }
}
