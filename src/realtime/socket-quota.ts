import { pipelineByKey, type RedisClient } from '../lib/redis';
import type { Namespace, Socket } from 'socket.io';
import type { Logger } from '../lib/logger';
import { redisKeys } from '../lib/redis-keys';
import { redisScripts, type RedisScripts } from '../lib/redis-scripts';

/** Error `data` of the `connect_error` a client over the cap gets. */
export interface QuotaRefusal {
  code: 'too_many_sockets';
  message: string;
}

/**
 * `MAX_SOCKETS_PER_USER` across every API node and both namespaces (`/canvas`, `/device`),
 * plus the plain-WebSocket device endpoint ({@link hold}).
 * Each admitted socket holds a lease in the user's Redis sorted set; this node renews the leases
 * of its live sockets every third of `leaseMs` and drops a socket's lease when it disconnects, so
 * the set holds exactly the user's live sockets, plus, for at most `leaseMs`, those of a node that
 * died without saying goodbye.
 */
export class SocketQuota {
  /** This node's admitted sockets: key → members. */
  private readonly live = new Map<string, Set<string>>();
  private readonly timer: NodeJS.Timeout;
  private readonly scripts: RedisScripts;

  constructor(
    private readonly redis: RedisClient,
    private readonly keyPrefix: string,
    private readonly options: { maxPerUser: number; leaseMs: number },
    private readonly logger?: Logger,
  ) {
    this.scripts = redisScripts(redis);
    this.timer = setInterval(() => void this.renew(), Math.max(250, Math.floor(options.leaseMs / 3)));
    this.timer.unref();
  }

  private key(userId: string): string {
    return redisKeys(this.keyPrefix).socketLeases(userId);
  }

  /** Takes a lease for `member`; false at the cap. */
  async acquire(userId: string, member: string): Promise<boolean> {
    const now = Date.now();
    // Expired leases (of a node that died with kill -9 and stopped renewing) are dropped first.
    return this.scripts.socketAcquire(
      { leases: this.key(userId) },
      { nowMs: now, untilMs: now + this.options.leaseMs, member, max: this.options.maxPerUser, keyTtlMs: this.options.leaseMs * 2 },
    );
  }

  /**
   * Takes and keeps renewing a lease for a connection this node serves outside Socket.IO (the plain
   * WebSocket device endpoint); false at the cap. Give it back with {@link release}.
   */
  async hold(userId: string, member: string): Promise<boolean> {
    if (!(await this.acquire(userId, member))) return false;
    this.remember(userId, member);
    return true;
  }

  /** Counts a socket that skipped the middleware (a recovered session) without refusing it. */
  async adopt(userId: string, member: string): Promise<void> {
    await this.redis.zadd(this.key(userId), Date.now() + this.options.leaseMs, member);
  }

  async release(userId: string, member: string): Promise<void> {
    const key = this.key(userId);
    const members = this.live.get(key);
    members?.delete(member);
    if (members?.size === 0) this.live.delete(key);
    await this.redis.zrem(key, member);
  }

  private remember(userId: string, member: string): void {
    const key = this.key(userId);
    const members = this.live.get(key) ?? new Set<string>();
    members.add(member);
    this.live.set(key, members);
  }

  private async renew(): Promise<void> {
    if (this.live.size === 0) return;
    const until = Date.now() + this.options.leaseMs;
    try {
      await pipelineByKey(
        this.redis,
        [...this.live],
        ([key]) => key,
        (pipeline, [key, members]) => {
          for (const member of members) pipeline.zadd(key, 'XX', until, member);
          pipeline.pexpire(key, this.options.leaseMs * 2);
        },
      );
    } catch (error) {
      this.logger?.warn({ err: error }, 'socket lease renewal failed');
    }
  }

  /**
   * Guards `nsp`: a namespace middleware (register it after authentication) refuses a user's
   * socket past the cap with `connect_error` message `too_many_sockets` (`data: {code, message}`).
   */
  guard(nsp: Namespace): void {
    const admitted = new WeakSet<Socket>();
    const memberOf = (socket: Socket) => `${nsp.name}#${socket.id}`;
    nsp.use(
      (socket, next) =>
        void (async () => {
          const userId = (socket.data as { user?: { id: string } }).user?.id;
          if (!userId) return next(new Error('unauthorized'));
          try {
            if (!(await this.acquire(userId, memberOf(socket)))) {
              const refusal: QuotaRefusal = {
                code: 'too_many_sockets',
                message: `At most ${this.options.maxPerUser} open sockets per user`,
              };
              return next(Object.assign(new Error('too_many_sockets'), { data: refusal }));
            }
          } catch (error) {
            this.logger?.warn({ err: error }, 'socket quota unavailable');
            return next(Object.assign(new Error('unavailable'), { data: { code: 'unavailable', message: 'Try again shortly' } }));
          }
          admitted.add(socket);
          next();
        })(),
    );
    // Leases are renewed only from here: one taken for a socket that never connected ages out.
    nsp.on('connection', (socket: Socket) => {
      const userId = (socket.data as { user?: { id: string } }).user?.id;
      if (!userId) return;
      const member = memberOf(socket);
      this.remember(userId, member);
      socket.on(
        'disconnect',
        () => void this.release(userId, member).catch((error: unknown) => this.logger?.warn({ err: error }, 'socket lease release failed')),
      );
      // A recovered session skips middlewares: count it again (its lease went when it dropped).
      if (!admitted.has(socket))
        void this.adopt(userId, member).catch((error: unknown) => this.logger?.warn({ err: error }, 'socket lease failed'));
    });
  }

  /** Stops renewing (the leases of sockets still open then age out on their own). */
  close(): void {
    clearInterval(this.timer);
  }
}
