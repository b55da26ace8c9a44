import type { FetchContext, FetchResult } from './types';

export * from './types';
export { authorizeUrl, exchangeCode, refreshTokens, PROVIDER_SCOPES } from './oauth-clients';
export { SecretBox, SecretBoxError, resolveOAuthEncryptionKey } from './secret-box';

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
