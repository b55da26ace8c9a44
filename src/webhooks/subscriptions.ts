import { countCacheLookup } from '../lib/cache-stats';
import type { Logger } from '../lib/logger';
import { duplicateRedis, isCluster, type RedisClient } from '../lib/redis';
import { redisKeys } from '../lib/redis-keys';
import type { UserSubscriptions } from '../models/webhooks-repository';

export type { UserSubscriptions };

/** The cache's face to the webhook service: a user's subscriptions, and the word that they changed. */
export interface SubscriptionsPort {
  get(userId: string): Promise<UserSubscriptions>;
  /** After the database holds a change of the user's endpoints or push configs: every node reads them again. */
  changed(userId: string): Promise<void>;
}

/** How long an entry is used at most: the bound on staleness should an announcement be lost. */
const TTL_MS = 60_000;
/** Users held at most (the least recently read go first): many users cannot grow memory without bound. */
const MAX_USERS = 20_000;

/**
 * Each user's webhook subscriptions, kept in memory per process, so that a run's end (every chat
 * and chatflow turn) asks the database nothing when, as usual, nobody subscribed. A change (an
 * endpoint created or deleted, a push config set or deleted) is announced on one pub/sub channel
 * after the database holds it, and every process drops that user's entry: a change takes effect on
 * every node within the announcement's delivery, without a Redis call per run.
 *
 * Entries are used only while the subscriber connection is subscribed: from its first subscribe and
 * again after each reconnect everything is dropped (announcements missed while it was away are not
 * repeated), and in between every lookup reads the database. A read that overlaps an announcement is
 * not kept. An entry older than a minute is read again, which bounds the damage of an announcement
 * that could not be sent. A stale entry can at worst name an endpoint deleted meanwhile (its
 * delivery is not written: see `createDeliveries`) or miss one created in the last moment.
 *
 * On a Redis Cluster the channel is a sharded one (`SPUBLISH`, `SSUBSCRIBE`), like the revocations'.
 */
export class SubscriptionCache implements SubscriptionsPort {
  private readonly channel: string;
  private readonly sharded: boolean;
  private readonly entries = new Map<string, { value: UserSubscriptions; at: number }>();
  /** Reads under way, by user: a lookup meanwhile waits for the same read. */
  private readonly reading = new Map<string, Promise<UserSubscriptions>>();
  /** Bumped by every announcement received and every (re)subscribe: a read that saw it change is not kept. */
  private epoch = 0;
  private live = false;
  private subscriber?: RedisClient;

  constructor(
    private readonly redis: RedisClient,
    keyPrefix: string,
    private readonly load: (userId: string) => Promise<UserSubscriptions>,
    private readonly logger?: Logger,
  ) {
    this.channel = redisKeys(keyPrefix).webhookSubscriptionsChannel();
    this.sharded = isCluster(redis);
  }

  get(userId: string): Promise<UserSubscriptions> {
    const entry = this.entries.get(userId);
    if (entry && Date.now() - entry.at < TTL_MS) {
      countCacheLookup('webhook_subscriptions', true);
      return Promise.resolve(entry.value);
    }
    // A run's end asks twice at once (its webhooks, its push configs): one read serves both.
    const reading = this.reading.get(userId);
    countCacheLookup('webhook_subscriptions', reading !== undefined);
    if (reading) return reading;
    const read = this.read(userId).finally(() => {
      if (this.reading.get(userId) === read) this.reading.delete(userId);
    });
    this.reading.set(userId, read);
    return read;
  }

  private async read(userId: string): Promise<UserSubscriptions> {
    const epoch = this.epoch;
    const value = await this.load(userId);
    if (this.live && epoch === this.epoch) {
      // Map order is insertion order: re-inserting keeps the most recently read last.
      this.entries.delete(userId);
      this.entries.set(userId, { value, at: Date.now() });
      if (this.entries.size > MAX_USERS) this.entries.delete(this.entries.keys().next().value!);
    }
    return value;
  }

  async changed(userId: string): Promise<void> {
    this.drop(userId);
    try {
      await (this.sharded ? this.redis.spublish(this.channel, userId) : this.redis.publish(this.channel, userId));
    } catch (error) {
      // The change is in the database; other nodes see it when their entry expires.
      this.logger?.warn({ err: error, userId }, 'webhook subscriptions change could not be announced');
    }
  }

  /** Subscribes this process. Until it is subscribed, and while it is not, nothing is kept. */
  async listen(): Promise<void> {
    if (this.subscriber) return;
    const subscriber = duplicateRedis(
      this.redis,
      { enableOfflineQueue: true, maxRetriesPerRequest: null, lazyConnect: true },
      { shardedSubscribers: this.sharded },
    );
    this.subscriber = subscriber;
    subscriber.on(this.sharded ? 'smessage' : 'message', (_channel: string, userId: string) => this.drop(userId));
    subscriber.on('error', (error) => this.logger?.warn({ err: error }, 'webhook subscriptions subscriber error'));
    // Away: nothing kept is trusted, nor kept until subscribed again (ioredis subscribes again on reconnect).
    subscriber.on('close', () => this.reset(false));
    // On a reconnect ioredis has sent the subscribe again before `ready` (the first time, `listen` subscribes below).
    let subscribed = false;
    subscriber.on('ready', () => {
      if (subscribed && this.subscriber === subscriber) this.reset(true);
    });
    await subscriber.connect();
    await (this.sharded ? subscriber.ssubscribe(this.channel) : subscriber.subscribe(this.channel));
    subscribed = true;
    if (this.subscriber === subscriber) this.reset(true);
  }

  async close(): Promise<void> {
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    this.reset(false);
    if (subscriber) await subscriber.quit().catch(() => subscriber.disconnect());
  }

  /** A read under way began before the change: it is not kept, and no later lookup waits for it. */
  private drop(userId: string): void {
    this.epoch += 1;
    this.entries.delete(userId);
    this.reading.delete(userId);
  }

  private reset(live: boolean): void {
    this.epoch += 1;
    this.entries.clear();
    this.reading.clear();
    this.live = live;
  }
}
