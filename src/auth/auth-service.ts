import { randomUUID } from 'node:crypto';
import { AppError, conflict, unauthorized } from '../lib/errors';
import type { UsersRepository } from '../models/users-repository';
import type { Tx } from '../models/database';
import type { RefreshTokenRow, UserRow } from '../models/schema';
import { hashPassword, verifyPassword } from './passwords';
import type { SessionGuard } from './session-guard';
import { newRefreshToken, hashRefreshClient, hashRefreshToken, signAccessToken, type RefreshClient, type TokenSettings } from './tokens';

export const publicUser = (user: UserRow) => ({
  id: user.id,
  email: user.email,
  name: user.name,
  tier: user.tier,
  role: user.role,
  createdAt: user.createdAt.toISOString(),
});

const reused = () => new AppError(401, 'refresh_token_reused', 'This refresh token was already used; sign in again');
const invalidRefresh = () => new AppError(401, 'invalid_refresh_token', 'Refresh token is invalid or expired');

/** Registration, login, logout and refresh-token rotation with reuse detection. */
export class AuthService {
  constructor(
    private readonly users: UsersRepository,
    private readonly tokens: TokenSettings,
    private readonly refreshTtlDays: number,
    /** Revokes the access tokens of a session; absent where only refresh tokens matter. */
    private readonly sessions?: SessionGuard,
    /** Seconds a just-rotated refresh token still rotates once more for its own client (0: never). */
    private readonly reuseGraceSeconds = 0,
  ) {}

  async register(input: { email: string; password: string; name: string }, client?: RefreshClient) {
    const user = await this.users.create({ email: input.email, name: input.name, passwordHash: await hashPassword(input.password) });
    if (!user) throw conflict('email_taken', 'An account with this email already exists');
    return { user: publicUser(user), ...(await this.issue(user, randomUUID(), client)) };
  }

  async login(input: { email: string; password: string }, client?: RefreshClient) {
    const user = await this.users.findByEmail(input.email);
    const ok = await verifyPassword(user?.role === 'service' ? null : (user?.passwordHash ?? null), input.password);
    if (!user || !ok) throw new AppError(401, 'invalid_credentials', 'Email or password is wrong');
    return { user: publicUser(user), ...(await this.issue(user, randomUUID(), client)) };
  }

  /**
   * Rotates a refresh token: the old one is consumed and a new pair returned in the same family.
   * Presenting an already-used token means it leaked: the whole family is revoked, with the access
   * tokens issued in it. Consuming the old token, revoking and issuing the new one all happen under
   * the family's lock, so a revocation racing a rotation also revokes what the rotation issued.
   *
   * One exception (see `grace`): the token rotated last, presented again within the reuse grace by
   * the client it was issued to, is rotated once more instead, its lost successor retired.
   */
  async refresh(refreshToken: string, client?: RefreshClient) {
    const tokenHash = hashRefreshToken(refreshToken);
    const known = await this.users.findRefreshToken(tokenHash);
    if (!known) throw invalidRefresh();
    const familyId = known.familyId;
    const clientHash = client ? hashRefreshClient(client) : null;
    const outcome = await this.users.inFamily(familyId, async (tx) => {
      const result = await this.users.consumeRefreshToken(tokenHash, tx);
      if (result.status === 'reused') {
        const graced = await this.grace(result.token, clientHash, tx);
        if (graced) return { status: 'ok' as const, userId: result.token.userId, refreshToken: graced };
        await this.users.revokeFamily(familyId, tx);
        return { status: 'reused' as const };
      }
      if (result.status === 'invalid') return { status: 'invalid' as const };
      const refresh = newRefreshToken();
      const id = randomUUID();
      await this.users.insertRefreshToken(
        { id, userId: result.token.userId, familyId, tokenHash: refresh.hash, expiresAt: this.refreshExpiry(), clientHash },
        tx,
      );
      await this.users.markReplaced(result.token.id, id, tx);
      return { status: 'ok' as const, userId: result.token.userId, refreshToken: refresh.token };
    });
    if (outcome.status === 'reused') {
      await this.sessions?.revoke(familyId);
      throw reused();
    }
    if (outcome.status === 'invalid') throw invalidRefresh();
    const user = await this.users.findById(outcome.userId);
    if (!user) throw unauthorized();
    return { user: publicUser(user), accessToken: await this.accessToken(user, familyId), refreshToken: outcome.refreshToken };
  }

  /**
   * Signs out the session of `refreshToken`: every refresh token of its family stops working, and
   * so do the access tokens issued in it. Unknown tokens are accepted silently (nothing to revoke,
   * and nothing to learn about which tokens exist).
   */
  async logout(refreshToken: string): Promise<void> {
    const known = await this.users.findRefreshToken(hashRefreshToken(refreshToken));
    if (!known) return;
    await this.users.inFamily(known.familyId, (tx) => this.users.revokeFamily(known.familyId, tx));
    await this.sessions?.revoke(known.familyId);
  }

  /**
   * The reuse grace: a page that unloads while its refresh is in flight never stores the new token,
   * and its reload presents the old one again. That old token gets a new token in its family (no
   * revocation) when all of these hold, else it is reuse as ever:
   * - it was rotated less than the grace ago, and is neither revoked nor expired;
   * - it is presented by the client it was issued to (same user agent and address, bound at issue;
   *   tokens issued before the binding never qualify);
   * - the token issued in its place is still the family's live one: a token older than the last
   *   rotation revokes the family.
   * That live successor is retired in the same step, so the family never holds two live tokens:
   * the grace cannot fork the session, only hand its one live token to the reloaded page.
   */
  private async grace(token: RefreshTokenRow, clientHash: string | null, tx: Tx): Promise<string | null> {
    const now = Date.now();
    if (this.reuseGraceSeconds <= 0 || !clientHash || token.clientHash !== clientHash || !token.replacedBy) return null;
    if (token.revokedAt || !token.usedAt || token.expiresAt.getTime() <= now) return null;
    if (now - token.usedAt.getTime() > this.reuseGraceSeconds * 1000) return null;
    const refresh = newRefreshToken();
    const id = randomUUID();
    if (!(await this.users.retireRefreshToken(token.replacedBy, token.familyId, id, tx))) return null;
    await this.users.insertRefreshToken(
      { id, userId: token.userId, familyId: token.familyId, tokenHash: refresh.hash, expiresAt: this.refreshExpiry(), clientHash },
      tx,
    );
    await this.users.markReplaced(token.id, id, tx);
    return refresh.token;
  }

  private refreshExpiry() {
    return new Date(Date.now() + this.refreshTtlDays * 24 * 3600 * 1000);
  }

  private accessToken(user: UserRow, familyId: string) {
    return signAccessToken(this.tokens, {
      sub: user.id,
      email: user.email,
      name: user.name,
      tier: user.tier,
      role: user.role,
      sid: familyId,
    });
  }

  private async issue(user: UserRow, familyId: string, client?: RefreshClient) {
    const refresh = newRefreshToken();
    const clientHash = client ? hashRefreshClient(client) : null;
    await this.users.insertRefreshToken({
      userId: user.id,
      familyId,
      tokenHash: refresh.hash,
      expiresAt: this.refreshExpiry(),
      clientHash,
    });
    return { accessToken: await this.accessToken(user, familyId), refreshToken: refresh.token };
  }
}
