import type { MemberRole } from '../models/schema';
import type { UsersRepository } from '../models/users-repository';
import { rememberRequestPlan } from './limits';
import type { AccessClaims } from './tokens';

/**
 * What a validly signed access token still has to pass: its user exists, and its session
 * (refresh-token family, claim `sid`) was not revoked by logout or by refresh-token reuse.
 *
 * Both facts live in PostgreSQL (a revoked family's refresh tokens carry `revoked_at`), so the check
 * is one indexed query and needs no Redis: reads that need only the database keep working while
 * Redis is down (test/faults/outages.test.ts).
 */
export class SessionGuard {
  constructor(
    private readonly users: UsersRepository,
    /** Told of each revoked session, e.g. to disconnect its sockets on every node. */
    private readonly onRevoke?: (sessionId: string) => void,
  ) {}

  /**
   * True when the token's user exists and its session stands. The same statement reads the user's
   * tier, which replaces the token's `tier` claim: an operator's tier change applies from the next
   * request on every node, without waiting for the token to expire. The same read is the
   * plan the rest of the request works its limits out from.
   */
  readonly accept = async (claims: AccessClaims): Promise<boolean> => {
    const plan = await this.users.sessionPlan(claims.sub, claims.sid);
    if (plan === null) return false;
    claims.tier = plan.tier;
    // The rest of the request (feature gates, the budget door) takes the user's limits from this read.
    rememberRequestPlan(claims.sub, plan);
    return true;
  };

  /** `accept`, and the user's role on `canvasId` read in the same statement (a canvas route). */
  readonly acceptOnCanvas = async (claims: AccessClaims, canvasId: string): Promise<{ stands: boolean; role: MemberRole | null }> => {
    const { stands, role, tier, plan } = await this.users.sessionAndCanvasRole(claims.sub, claims.sid, canvasId);
    if (tier) claims.tier = tier;
    if (plan) rememberRequestPlan(claims.sub, plan);
    return { stands, role };
  };

  /** Called after a family was revoked in the database: ends the session's live connections. */
  async revoke(sessionId: string): Promise<void> {
    this.onRevoke?.(sessionId);
  }
}
