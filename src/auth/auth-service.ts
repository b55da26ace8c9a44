import { randomUUID } from 'node:crypto';
import { AppError, conflict, unauthorized } from '../lib/errors';
import type { UsersRepository } from '../models/users-repository';
import type { UserRow } from '../models/schema';
import { hashPassword, verifyPassword } from './passwords';
import { newRefreshToken, hashRefreshToken, signAccessToken, type TokenSettings } from './tokens';

export const publicUser = (user: UserRow) => ({
  id: user.id,
  email: user.email,
  name: user.name,
  tier: user.tier,
  role: user.role,
  createdAt: user.createdAt.toISOString(),
});

/** Registration, login and refresh-token rotation with reuse detection. */
export class AuthService {
  constructor(
    private readonly users: UsersRepository,
    private readonly tokens: TokenSettings,
    private readonly refreshTtlDays: number,
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
   * Presenting an already-used token means it leaked: the whole family is revoked.
   */
  async refresh(refreshToken: string) {
    const result = await this.users.consumeRefreshToken(hashRefreshToken(refreshToken));
    if (result.status === 'reused') {
      await this.users.revokeFamily(result.token.familyId);
      throw new AppError(401, 'refresh_token_reused', 'This refresh token was already used; sign in again');
    }
    if (result.status === 'invalid') throw new AppError(401, 'invalid_refresh_token', 'Refresh token is invalid or expired');
    const user = await this.users.findById(result.token.userId);
    if (!user) throw unauthorized();
    return { user: publicUser(user), ...(await this.issue(user, result.token.familyId)) };
  }

  private async issue(user: UserRow, familyId: string) {
    const accessToken = await signAccessToken(this.tokens, { sub: user.id, email: user.email, name: user.name, tier: user.tier, role: user.role });
    const refresh = newRefreshToken();
    await this.users.insertRefreshToken({
      userId: user.id,
      familyId,
      tokenHash: refresh.hash,
      expiresAt: new Date(Date.now() + this.refreshTtlDays * 24 * 3600 * 1000),
    });
    return { accessToken, refreshToken: refresh.token };
  }
}
