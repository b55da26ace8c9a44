import { createHash } from 'node:crypto';
import type { RedisClient } from '../lib/redis';
import { AppError } from '../lib/errors';
import { RateLimiter } from '../lib/rate-limiter';
import { redisKeys } from '../lib/redis-keys';
import { redisScripts, type RedisScripts } from '../lib/redis-scripts';

/** First lock after the allowed run of wrong passwords; it doubles with each further failure. */
const FIRST_LOCK_MS = 30_000;
const MAX_LOCK_MS = 15 * 60_000;
/** A run of failures is forgotten a day after the last one. */
const FAILURES_TTL_MS = 24 * 3600_000;

export interface LoginThrottleLimits {
  loginAttemptsPerIpPerMinute: number;
  loginFailuresBeforeBackoff: number;
  registrationsPerIpPerHour: number;
}

/**
 * Limits the endpoints that cost argon2 time and guess passwords: login per client
 * IP (fixed window) and per account (after a run of wrong passwords the account backs off: every
 * attempt, right password or not, answers 429 with Retry-After until the lock lapses), and
 * registration per IP. Checked before any password is hashed. Account keys hold a hash of the
 * lower-cased email, not the address.
 */
export class LoginThrottle {
  private readonly windows: RateLimiter;
  private readonly scripts: RedisScripts;

  constructor(
    private readonly redis: RedisClient,
    private readonly keyPrefix: string,
    private readonly limits: LoginThrottleLimits,
  ) {
    this.windows = new RateLimiter(redis, keyPrefix);
    this.scripts = redisScripts(redis);
  }

  private accountKey(email: string, what: 'fails' | 'lock') {
    const id = createHash('sha256').update(email.trim().toLowerCase()).digest('hex').slice(0, 32);
    return redisKeys(this.keyPrefix).loginAccount(what, id);
  }

  /** Throws 429 when this IP is over its window or the account is backing off. */
  async beforeLogin(ip: string, email: string): Promise<void> {
    await this.windows.take('login', ip, this.limits.loginAttemptsPerIpPerMinute, 60_000);
    const lockMs = await this.redis.pttl(this.accountKey(email, 'lock'));
    if (lockMs > 0) {
      const retryAfter = Math.max(1, Math.ceil(lockMs / 1000));
      throw new AppError(429, 'rate_limited', `Too many failed sign-ins for this account; retry in ${retryAfter} s`, undefined, {
        'Retry-After': String(retryAfter),
      });
    }
  }

  async loginFailed(email: string): Promise<void> {
    await this.scripts.loginFailed({ failures: this.accountKey(email, 'fails'), lock: this.accountKey(email, 'lock') }, this.backoff());
  }

  async loginSucceeded(email: string): Promise<void> {
    await this.redis.del(this.accountKey(email, 'fails'), this.accountKey(email, 'lock'));
  }

  private operatorKey(ip: string, what: 'fails' | 'lock') {
    return redisKeys(this.keyPrefix).dashboardLogin(what, createHash('sha256').update(ip).digest('hex').slice(0, 32));
  }

  /**
   * The one door for every operator secret a client presents: the dashboard's Basic
   * ADMIN_USER/ADMIN_PASSWORD (on the dashboard, `/metrics/json` and their legacy paths) and the
   * METRICS_TOKEN bearer. Per client IP and shared by all of them: after the same run of wrong
   * secrets as an account, this IP backs off (429 with Retry-After, right secret or not) until the
   * lock lapses, so a lock earned on one path holds on every other. Answers whether `matches` held.
   */
  async checkOperatorSecret(ip: string, matches: () => boolean): Promise<boolean> {
    const lockMs = await this.redis.pttl(this.operatorKey(ip, 'lock'));
    if (lockMs > 0) {
      const retryAfter = Math.max(1, Math.ceil(lockMs / 1000));
      throw new AppError(
        429,
        'rate_limited',
        `Too many wrong operator credentials from this address; retry in ${retryAfter} s`,
        undefined,
        {
          'Retry-After': String(retryAfter),
        },
      );
    }
    if (matches()) {
      await this.redis.del(this.operatorKey(ip, 'fails'), this.operatorKey(ip, 'lock'));
      return true;
    }
    await this.scripts.loginFailed({ failures: this.operatorKey(ip, 'fails'), lock: this.operatorKey(ip, 'lock') }, this.backoff());
    return false;
  }

  /**
   * Counts one failure; from the allowed run of wrong passwords on, locks for FIRST_LOCK_MS,
   * doubling with each further failure up to MAX_LOCK_MS.
   */
  private backoff() {
    return {
      threshold: this.limits.loginFailuresBeforeBackoff,
      firstLockMs: FIRST_LOCK_MS,
      maxLockMs: MAX_LOCK_MS,
      failuresTtlMs: FAILURES_TTL_MS,
    };
  }

  /** Throws 429 when this IP registered too many accounts this hour. */
  async beforeRegister(ip: string): Promise<void> {
    await this.windows.take('register', ip, this.limits.registrationsPerIpPerHour, 3600_000);
  }
}
