import { duplicateRedis, isCluster, type RedisClient } from '../lib/redis';
import type { Logger } from '../lib/logger';
import { redisKeys } from '../lib/redis-keys';

/** What watches a credential: told once when any of its ids is revoked, on any node. */
export interface RevocationWatcher {
  revoked(): void;
}

/** How long a revocation is remembered on each node, for a watch that begins after it arrived. */
const REMEMBER_MS = 5 * 60_000;
/** Revocations remembered at most (the oldest go first): a flood of sign-outs cannot grow memory. */
const REMEMBER_MAX = 100_000;

/**
 * Revoked credentials, announced to every API node: a sign-in session (`sid`) on logout or refresh
 * token reuse, an API key (its id) on revoke, and a user (`user:<id>`) whose account was deleted.
 * Long-lived connections that hold no socket room (open SSE streams) watch the ids of their
 * credential here and end when one is revoked.
 *
 * One channel for the deployment and one subscriber connection per process, opened at start: a
 * watch costs no Redis command, and nothing is asked of Redis while a stream delivers events. A
 * request authenticated just before a revocation may start its watch just after the announcement
 * arrived, so each node remembers the revocations of the last minutes and a watch of one of them
 * fires at once. An announcement lost while the subscriber was disconnected is not repeated: the
 * credential is refused from the next request on every node all the same (PostgreSQL holds the
 * truth), and the stream ends at the latest with its work.
 *
 * On a Redis Cluster the channel is a sharded one (`SPUBLISH`, `SSUBSCRIBE`), like the cancel channel.
 */
export class Revocations {
  private readonly channel: string;
  private readonly watching = new Map<string, Set<RevocationWatcher>>();
  /** Recently revoked ids and when each was announced (insertion order is announcement order). */
  private readonly recent = new Map<string, number>();
  private subscriber?: RedisClient;
  private readonly sharded: boolean;

  constructor(
    private readonly redis: RedisClient,
    keyPrefix: string,
    private readonly logger?: Logger,
  ) {
    this.channel = redisKeys(keyPrefix).revocationChannel();
    this.sharded = isCluster(redis);
  }

  /** The id a deleted account's credentials are all watched under, besides their own. */
  static userId(userId: string): string {
    return `user:${userId}`;
  }

  /** Tells every node that these ids are revoked (after the database says so). */
  async announce(ids: readonly string[]): Promise<void> {
    if (!ids.length) return;
    const message = JSON.stringify(ids);
    await (this.sharded ? this.redis.spublish(this.channel, message) : this.redis.publish(this.channel, message));
  }

  /** Subscribes this process; resolves once subscribed, so an announcement made after that arrives. */
  async listen(): Promise<void> {
    if (this.subscriber) return;
    const subscriber = duplicateRedis(
      this.redis,
      { enableOfflineQueue: true, maxRetriesPerRequest: null, lazyConnect: true },
      { shardedSubscribers: this.sharded },
    );
    this.subscriber = subscriber;
    subscriber.on(this.sharded ? 'smessage' : 'message', (_channel: string, message: string) => this.received(message));
    subscriber.on('error', (error) => this.logger?.warn({ err: error }, 'revocation subscriber error'));
    await subscriber.connect();
    await (this.sharded ? subscriber.ssubscribe(this.channel) : subscriber.subscribe(this.channel));
  }

  /**
   * Watches a credential's ids until `unwatch`. When one of them was revoked in the last minutes,
   * `watcher.revoked()` runs in the next microtask.
   */
  watch(ids: readonly string[], watcher: RevocationWatcher): void {
    let revoked = false;
    for (const id of ids) {
      const set = this.watching.get(id);
      if (set) set.add(watcher);
      else this.watching.set(id, new Set([watcher]));
      if (this.recentlyRevoked(id)) revoked = true;
    }
    if (revoked) queueMicrotask(() => this.fire(ids, watcher));
  }

  unwatch(ids: readonly string[], watcher: RevocationWatcher): void {
    for (const id of ids) {
      const set = this.watching.get(id);
      if (set?.delete(watcher) && !set.size) this.watching.delete(id);
    }
  }

  async close(): Promise<void> {
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    if (subscriber) await subscriber.quit().catch(() => subscriber.disconnect());
  }

  private recentlyRevoked(id: string): boolean {
    const at = this.recent.get(id);
    return at !== undefined && Date.now() - at < REMEMBER_MS;
  }

  private received(message: string): void {
    let ids: unknown;
    try {
      ids = JSON.parse(message);
    } catch {
      return;
    }
    if (!Array.isArray(ids)) return;
    const now = Date.now();
    for (const id of ids) {
      if (typeof id !== 'string') continue;
      this.recent.delete(id);
      this.recent.set(id, now);
      const watchers = this.watching.get(id);
      if (watchers) for (const watcher of [...watchers]) this.fire([id], watcher);
    }
    this.forgetOld(now);
  }

  private fire(ids: readonly string[], watcher: RevocationWatcher): void {
    if (!ids.some((id) => this.watching.get(id)?.has(watcher))) return;
    try {
      watcher.revoked();
    } catch (error) {
      this.logger?.warn({ err: error }, 'a revocation watcher failed');
    }
  }

  private forgetOld(now: number): void {
    for (const [id, at] of this.recent) {
      if (this.recent.size <= REMEMBER_MAX && now - at < REMEMBER_MS) return;
      this.recent.delete(id);
    }
  }
}
