import type { Redis } from 'ioredis';
import type { UsersRepository } from '../models/users-repository';
import type { AccessClaims } from './tokens';

/**
 * What a validly signed access token still has to pass (0065): its user exists, and its session
 * (refresh-token family, claim `sid`) was not revoked by logout or by refresh-token reuse.
 *
 * Revoked sessions are kept in Redis for one access-token lifetime — after that every access token
 * of the session has expired anyway — so the check is one `EXISTS` plus one primary-key read.
 */
export class SessionGuard {
  constructor(
    private readonly users: UsersRepository,
    private readonly redis: Redis,
    private readonly keyPrefix: string,
    private readonly accessTokenTtlSeconds: number,
    /** Told of each revoked session, e.g. to disconnect its sockets on every node. */
    private readonly onRevoke?: (sessionId: string) => void,
  ) {}

  private key(sessionId: string) {
    return `${this.keyPrefix}:auth:revoked-session:${sessionId}`;
  }

  /** True when the token's user exists and its session stands. */
  readonly accept = async (claims: AccessClaims): Promise<boolean> => {
    const [exists, revoked] = await Promise.all([this.users.exists(claims.sub), claims.sid ? this.redis.exists(this.key(claims.sid)) : Promise.resolve(0)]);
    return exists && revoked === 0;
  };

  /** Refuses every access token of `sessionId` from now until they have all expired. */
  async revoke(sessionId: string): Promise<void> {
    await this.redis.set(this.key(sessionId), '1', 'EX', this.accessTokenTtlSeconds + 60);
    this.onRevoke?.(sessionId);
  }
}
