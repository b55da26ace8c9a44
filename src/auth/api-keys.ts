import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { RedisClient } from '../lib/redis';
import { AppError, notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { redisKeys } from '../lib/redis-keys';
import { redisScripts, type RedisScripts } from '../lib/redis-scripts';
import type { ApiKeyMatch, ApiKeyScope, ApiKeysRepository, ApiKeyView } from '../models/api-keys-repository';

/** Every secret starts with this, so a key is told from a JWT without parsing it (and secret scanners find it). */
export const API_KEY_PREFIX = 'sb_live_';
/** Random bytes in a secret: 256 bits, far beyond guessing, which is why a fast hash suffices. */
const SECRET_BYTES = 32;
/** Characters of the secret kept in clear for lists: the prefix and six random characters. */
const VISIBLE_CHARS = API_KEY_PREFIX.length + 6;
/** Longest header value read as a key; anything longer is not one of ours. */
const MAX_SECRET_CHARS = 200;

/** Failed key attempts a client IP may make before it backs off; the lock then doubles per failure. */
const FAILURES_BEFORE_BACKOFF = 10;
const FIRST_LOCK_MS = 30_000;
const MAX_LOCK_MS = 15 * 60_000;
const FAILURES_TTL_MS = 24 * 3600_000;
/** A key's `lastUsedAt` is written at most this often. */
const TOUCH_EVERY_MS = 60_000;

export type { ApiKeyScope, ApiKeyView };

/** True when `token` is shaped like an API key secret (not a JWT). */
export const isApiKeySecret = (token: string): boolean => token.startsWith(API_KEY_PREFIX);

export const hashApiKey = (secret: string): string => createHash('sha256').update(secret).digest('hex');

/** A key that authenticated: its user (never an admin through a key) and its scopes. */
export interface ApiKeyCaller {
  keyId: string;
  scopes: ApiKeyScope[];
  expiresAt: Date | null;
  user: ApiKeyMatch['user'];
}

/**
 * API keys: programs authenticate as their user with a long random secret, shown
 * once at creation and stored only as its SHA-256. `authenticate` costs one indexed lookup when
 * the key is good and no Redis at all; a failed attempt counts against the client IP, which backs
 * off (429 with Retry-After) after a run of failures. Nothing is cached, so a revoke applies on
 * every node with the next request; `onRevoke` closes the key's sockets wherever they are.
 */
export class ApiKeys {
  private readonly scripts: RedisScripts;

  constructor(
    private readonly repo: ApiKeysRepository,
    private readonly redis: RedisClient,
    private readonly keyPrefix: string,
    private readonly logger: Logger,
    /** Told of each revoked key (its id), e.g. to disconnect its sockets on every node. */
    private readonly onRevoke?: (keyId: string) => Promise<void>,
  ) {
    this.scripts = redisScripts(redis);
  }

  /** Creates a key for `userId`; the answer is the only place the secret ever appears. */
  async create(
    userId: string,
    input: { name: string; scopes: ApiKeyScope[]; expiresAt: Date | null },
  ): Promise<ApiKeyView & { secret: string }> {
    const secret = `${API_KEY_PREFIX}${randomBytes(SECRET_BYTES).toString('base64url')}`;
    const scopes = [...new Set(input.scopes)].sort();
    const key = await this.repo.create(
      { userId, name: input.name, prefix: secret.slice(0, VISIBLE_CHARS), keyHash: hashApiKey(secret), scopes, expiresAt: input.expiresAt },
      (id) => ({ actorId: userId, action: 'api_key.created', targetType: 'api_key', targetId: id, details: { name: input.name, scopes } }),
    );
    return { ...key, secret };
  }

  list(userId: string, options: { limit: number; beforeId?: string }): Promise<ApiKeyView[]> {
    return this.repo.listPage(userId, options);
  }

  /** Revokes the user's key at once (404 when the user has no such key); revoking twice is a no-op. */
  async revoke(userId: string, keyId: string): Promise<ApiKeyView> {
    const key = await this.repo.revoke(userId, keyId, {
      actorId: userId,
      action: 'api_key.revoked',
      targetType: 'api_key',
      targetId: keyId,
    });
    if (!key) throw notFound('API key');
    await this.onRevoke?.(keyId);
    return key;
  }

  /**
   * The caller behind `secret`, or null for an unknown, revoked or expired key (a 401). A failed
   * attempt counts against `ip`; from the allowed run of failures on it throws 429 `rate_limited`.
   * A good key is never refused for its IP's failures: a program sharing an address with a
   * misconfigured one keeps working.
   */
  async authenticate(secret: string, ip: string): Promise<ApiKeyCaller | null> {
    const match = secret.length <= MAX_SECRET_CHARS && isApiKeySecret(secret) ? await this.lookup(secret) : null;
    const now = Date.now();
    if (!match || match.revokedAt || (match.expiresAt && match.expiresAt.getTime() <= now)) {
      await this.failed(ip);
      return null;
    }
    if (!match.lastUsedAt || now - match.lastUsedAt.getTime() >= TOUCH_EVERY_MS) {
      this.repo
        .touch(match.id)
        .catch((error: unknown) => this.logger.warn({ err: error, keyId: match.id }, 'could not record an API key use'));
    }
    return { keyId: match.id, scopes: match.scopes, expiresAt: match.expiresAt, user: match.user };
  }

  /** The key by its hash; the stored hash is compared again in constant time before it counts. */
  private async lookup(secret: string): Promise<ApiKeyMatch | null> {
    const hash = hashApiKey(secret);
    const match = await this.repo.findByHash(hash);
    return match && timingSafeEqual(Buffer.from(match.keyHash), Buffer.from(hash)) ? match : null;
  }

  private async failed(ip: string): Promise<void> {
    const ipId = createHash('sha256').update(ip).digest('hex').slice(0, 32);
    const keys = {
      failures: redisKeys(this.keyPrefix).apiKeyFailures('fails', ipId),
      lock: redisKeys(this.keyPrefix).apiKeyFailures('lock', ipId),
    };
    const lockMs = await this.redis.pttl(keys.lock);
    const failures =
      lockMs > 0
        ? FAILURES_BEFORE_BACKOFF
        : await this.scripts.loginFailed(keys, {
            threshold: FAILURES_BEFORE_BACKOFF,
            firstLockMs: FIRST_LOCK_MS,
            maxLockMs: MAX_LOCK_MS,
            failuresTtlMs: FAILURES_TTL_MS,
          });
    if (failures < FAILURES_BEFORE_BACKOFF) return;
    const retryAfter = Math.max(1, Math.ceil((lockMs > 0 ? lockMs : await this.redis.pttl(keys.lock)) / 1000));
    throw new AppError(429, 'rate_limited', `Too many failed API key attempts from this address; retry in ${retryAfter} s`, undefined, {
      'Retry-After': String(retryAfter),
    });
  }
}
