import type { FetchResult, FilterConfig, OAuthSettings, OAuthTokens, Provider } from './types';

export * from './types';
export { authorizeUrl, exchangeCode, refreshTokens, PROVIDER_SCOPES } from './oauth-clients';
export { SecretBox, SecretBoxError, resolveOAuthEncryptionKey } from './secret-box';

/** What one fetch needs: the connection's tokens, the agent's filter, and where to resume. */
export interface FetchContext {
  provider: Provider;
  settings: OAuthSettings;
  /** Decrypted tokens of the connection. */
  tokens: OAuthTokens;
  /**
   * Called (and awaited) with the new token set after every refresh, before it is used, so the
   * caller re-encrypts and stores it; a refresh token the provider rotated is only in here.
   */
  onTokens: (tokens: OAuthTokens) => Promise<void>;
  filter: FilterConfig;
  /** Only items received (Teams: changed) after this instant; usually the last successful run. */
  since?: Date;
  /** Aborts in-flight requests; the generator then throws the signal's reason. */
  signal?: AbortSignal;
  /** Stop after this many results (items and item errors). */
  maxItems?: number;
  /** Page size asked of the provider (Gmail default 100, Graph default 50). */
  pageSize?: number;
}

/**
 * Every item of the connection that matches the filter, page after page. Each item is its own
 * unit: one that cannot be fetched or decoded yields `{error}` and the rest continue. The whole
 * fetch throws ReauthRequiredError (reconnect; do not retry), ProviderRateLimitedError (retry
 * after `retryAfterMs`), or ConnectorError for a provider that cannot be reached.
 *
 * The provider SDKs are loaded here, on first use, so that importing this module (types, OAuth
 * helpers, SecretBox) from the API process does not load them.
 */
export async function* fetchItems(ctx: FetchContext): AsyncGenerator<FetchResult> {
  ctx.signal?.throwIfAborted();
  switch (ctx.provider) {
    case 'gmail':
      yield* (await import('./gmail')).fetchGmail(ctx);
      return;
    case 'outlook':
      yield* (await import('./outlook')).fetchOutlook(ctx);
      return;
    case 'teams':
      yield* (await import('./teams')).fetchTeams(ctx);
      return;
    default:
      throw new Error(`Unknown provider ${String(ctx.provider satisfies never)}`);
  }
}
