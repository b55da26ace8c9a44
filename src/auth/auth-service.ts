import { randomUUID } from 'node:crypto';
import { AppError, conflict, unauthorized } from '../lib/errors';
import type { UsersRepository } from '../models/users-repository';
import type { UserRow } from '../models/schema';
import { hashPassword, verifyPassword } from './passwords';
import type { SessionGuard } from './session-guard';
import { newRefreshToken, hashRefreshToken, signAccessToken, type TokenSettings } from './tokens';

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
  ) {}

  async register(input: { email: string; password: string; name: string }) {
    const user = await this.users.create({ email: input.email, name: input.name, passwordHash: await hashPassword(input.password) });
    if (!user) throw conflict('email_taken', 'An account with this email already exists');
    return { user: publicUser(user), ...(await this.issue(user, randomUUID())) };
  }

  async login(input: { email: string; password: string }) {
    const user = await this.users.findByEmail(input.email);
    const ok = await verifyPassword(user?.role === 'service' ? null : (user?.passwordHash ?? null), input.password);
    if (!user || !ok) throw new AppError(401, 'invalid_credentials', 'Email or password is wrong');
    return { user: publicUser(user), ...(await this.issue(user, randomUUID())) };
  }

  /**
   * Rotates a refresh token: the old one is consumed and a new pair returned in the same family.
   * Presenting an already-used token means it leaked: the whole family is revoked, with the access
   * tokens issued in it. Consuming the old token, revoking and issuing the new one all happen under
   * the family's lock, so a revocation racing a rotation also revokes what the rotation issued.
   */
  async refresh(refreshToken: string) {
    const tokenHash = hashRefreshToken(refreshToken);
    const known = await this.users.findRefreshToken(tokenHash);
    if (!known) throw invalidRefresh();
    const familyId = known.familyId;
    const outcome = await this.users.inFamily(familyId, async (tx) => {
      const result = await this.users.consumeRefreshToken(tokenHash, tx);
      if (result.status === 'reused') {
        await this.users.revokeFamily(familyId, tx);
        return { status: 'reused' as const };
      }
      if (result.status === 'invalid') return { status: 'invalid' as const };
      const refresh = newRefreshToken();
      await this.users.insertRefreshToken(
        { userId: result.token.userId, familyId, tokenHash: refresh.hash, expiresAt: this.refreshExpiry() },
        tx,
      );
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

  private async issue(user: UserRow, familyId: string) {
    const refresh = newRefreshToken();
    await this.users.insertRefreshToken({ userId: user.id, familyId, tokenHash: refresh.hash, expiresAt: this.refreshExpiry() });
    return { accessToken: await this.accessToken(user, familyId), refreshToken: refresh.token };
  }
}
