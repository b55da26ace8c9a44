import { refreshTokens } from './oauth-clients';
import { ReauthRequiredError, type OAuthSettings, type OAuthTokens, type Provider } from './types';

/** Refresh this long before `expiresAt`, so a token does not expire between check and use. */
const EXPIRY_MARGIN_MS = 60_000;

/**
 * Holds one connection's tokens during a fetch: hands out a valid access token (refreshing it
 * when it is about to expire) and, when the provider still answers 401, refreshes once and
 * retries. Concurrent requests share one refresh, and every new token set is handed to
 * `onTokens` (awaited) before it is used, so the caller has stored it re-encrypted.
 */
export class TokenKeeper {
  private tokens: OAuthTokens;
  private refreshing?: Promise<void>;

  constructor(
    private readonly provider: Provider,
    private readonly settings: OAuthSettings,
    tokens: OAuthTokens,
    private readonly onTokens: (tokens: OAuthTokens) => Promise<void>,
  ) {
    this.tokens = { ...tokens };
  }

  /** A current access token, refreshed first when it expires within a minute. */
  async accessToken(): Promise<string> {
    const { expiresAt } = this.tokens;
    if (expiresAt !== undefined && expiresAt - EXPIRY_MARGIN_MS <= Date.now()) await this.refreshIfStale(this.tokens.accessToken);
    return this.tokens.accessToken;
  }

  /**
   * Runs `request` with a current access token; when it fails with an authorization error
   * (`isUnauthorized`), refreshes once and runs it again.
   */
  async withAuth<T>(request: (accessToken: string) => Promise<T>, isUnauthorized: (error: unknown) => boolean): Promise<T> {
    const token = await this.accessToken();
    try {
      return await request(token);
    } catch (error) {
      if (!isUnauthorized(error)) throw error;
      await this.refreshIfStale(token);
      return request(this.tokens.accessToken);
    }
  }

  /** Refreshes unless another request already replaced `usedToken`. */
  private async refreshIfStale(usedToken: string): Promise<void> {
    if (this.tokens.accessToken !== usedToken) return;
    this.refreshing ??= this.refresh().finally(() => {
      this.refreshing = undefined;
    });
    await this.refreshing;
  }

  private async refresh(): Promise<void> {
    const { refreshToken } = this.tokens;
    if (!refreshToken)
      throw new ReauthRequiredError(
        this.provider,
        `The ${this.provider} access token was rejected and there is no refresh token; reconnect the account`,
      );
    const fresh = await refreshTokens(this.provider, { settings: this.settings, refreshToken, granted: this.tokens.scope });
    const next: OAuthTokens = {
      accessToken: fresh.accessToken,
      refreshToken: fresh.refreshToken ?? refreshToken,
      expiresAt: fresh.expiresAt,
      scope: fresh.scope ?? this.tokens.scope,
      tokenType: fresh.tokenType ?? this.tokens.tokenType,
    };
    await this.onTokens(next);
    this.tokens = next;
  }
}
