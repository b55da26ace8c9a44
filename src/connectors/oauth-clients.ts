import { outboundRoute } from '../lib/outbound-proxy';
import {
  ConnectorError,
  ProviderNotConfiguredError,
  ProviderRateLimitedError,
  ReauthRequiredError,
  parseRetryAfter,
  type OAuthSettings,
  type OAuthTokens,
  type Provider,
} from './types';

/*
 * The OAuth 2.0 authorization-code flow for each provider, over plain fetch: the API process runs
 * these (authorize / callback / refresh routes) and must not load the provider SDKs.
 */

/** Scopes asked for per provider. `offline_access` / `access_type=offline` yield a refresh token. */
export const PROVIDER_SCOPES: Record<Provider, readonly string[]> = {
  gmail: ['https://www.googleapis.com/auth/gmail.readonly'],
  outlook: ['offline_access', 'Mail.Read'],
  teams: ['offline_access', 'Chat.Read'],
};

/**
 * Asked for on top of Teams' own scopes only for an agent that reads channels: listing the joined
 * teams and their channels, then reading channel messages (the last needs an administrator's
 * consent in most tenants, so an agent that reads chats alone never asks for it).
 */
export const TEAMS_CHANNEL_SCOPES = ['Team.ReadBasic.All', 'Channel.ReadBasic.All', 'ChannelMessage.Read.All'] as const;

/** Whether a granted scope string (as the token endpoint returned it) includes channel messages. */
export const grantsChannels = (scope: string | undefined) =>
  !!scope && scope.split(/\s+/).some((granted) => /(^|\/)ChannelMessage\.Read\.All$/i.test(granted));

/** The scopes asked for: the provider's, plus the channel scopes for a Teams agent that reads channels. */
export function scopesFor(provider: Provider, o: { channels?: boolean } = {}): string {
  return [...PROVIDER_SCOPES[provider], ...(provider === 'teams' && o.channels ? TEAMS_CHANNEL_SCOPES : [])].join(' ');
}

const TOKEN_TIMEOUT_MS = 15_000;

interface Client {
  clientId: string;
  clientSecret: string;
  authorizeEndpoint: string;
  tokenEndpoint: string;
  label: string;
}

function clientFor(provider: Provider, settings: OAuthSettings): Client {
  if (provider === 'gmail') {
    const { clientId, clientSecret, authorizeUrl, oauthBaseUrl } = settings.google;
    if (!clientId || !clientSecret) throw new ProviderNotConfiguredError(provider);
    return { clientId, clientSecret, authorizeEndpoint: authorizeUrl, tokenEndpoint: `${oauthBaseUrl}/token`, label: 'Google' };
  }
  const { clientId, clientSecret, tenant, loginBaseUrl } = settings.microsoft;
  if (!clientId || !clientSecret) throw new ProviderNotConfiguredError(provider);
  const base = `${loginBaseUrl}/${encodeURIComponent(tenant)}/oauth2/v2.0`;
  return { clientId, clientSecret, authorizeEndpoint: `${base}/authorize`, tokenEndpoint: `${base}/token`, label: 'Microsoft' };
}

/** The provider's consent page URL; the user comes back to `redirectUri` with `code` and `state`. */
export function authorizeUrl(
  provider: Provider,
  o: { settings: OAuthSettings; state: string; redirectUri: string; channels?: boolean },
): string {
  const client = clientFor(provider, o.settings);
  const url = new URL(client.authorizeEndpoint);
  const params: Record<string, string> = {
    client_id: client.clientId,
    redirect_uri: o.redirectUri,
    response_type: 'code',
    scope: scopesFor(provider, o),
    state: o.state,
  };
  if (provider === 'gmail') {
    // offline + consent: Google only returns a refresh token when the user is asked again.
    Object.assign(params, { access_type: 'offline', prompt: 'consent', include_granted_scopes: 'true' });
  } else {
    Object.assign(params, { response_mode: 'query', prompt: 'select_account' });
  }
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  return url.toString();
}

/** Trades the callback's `code` for tokens. An unknown, used or expired code is ReauthRequiredError. */
export async function exchangeCode(
  provider: Provider,
  o: { settings: OAuthSettings; code: string; redirectUri: string; channels?: boolean },
): Promise<OAuthTokens> {
  const params: Record<string, string> = { grant_type: 'authorization_code', code: o.code, redirect_uri: o.redirectUri };
  if (provider !== 'gmail') params.scope = scopesFor(provider, o);
  return requestTokens(provider, o.settings, params);
}

/**
 * Gets a new access token. Keeps the old refresh token when the provider does not rotate it
 * (Google); `invalid_grant` (revoked, expired, password changed) is ReauthRequiredError. `granted`
 * is the scope the credential holds: a Teams credential granted channel access keeps it.
 */
export async function refreshTokens(
  provider: Provider,
  o: { settings: OAuthSettings; refreshToken: string; granted?: string },
): Promise<OAuthTokens> {
  const params: Record<string, string> = { grant_type: 'refresh_token', refresh_token: o.refreshToken };
  if (provider !== 'gmail') params.scope = scopesFor(provider, { channels: grantsChannels(o.granted) });
  const tokens = await requestTokens(provider, o.settings, params);
  return { ...tokens, refreshToken: tokens.refreshToken ?? o.refreshToken };
}

async function requestTokens(provider: Provider, settings: OAuthSettings, params: Record<string, string>): Promise<OAuthTokens> {
  const client = clientFor(provider, settings);
  const body = new URLSearchParams({ ...params, client_id: client.clientId, client_secret: client.clientSecret });
  let response: Response;
  try {
    response = await outboundRoute().fetch(client.tokenEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body,
      signal: AbortSignal.timeout(TOKEN_TIMEOUT_MS),
    });
  } catch (error) {
    // The cause can carry the request; keep only its kind.
    throw new ConnectorError(`${client.label} token endpoint unreachable (${(error as Error).name})`);
  }
  const payload = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (response.status === 429) throw new ProviderRateLimitedError(parseRetryAfter(response.headers.get('retry-after')), provider);
  if (!response.ok || typeof payload.access_token !== 'string') {
    const code = typeof payload.error === 'string' ? payload.error : 'no_access_token';
    if (code === 'invalid_grant') throw new ReauthRequiredError(provider);
    throw new ConnectorError(`${client.label} token endpoint answered ${response.status} (${code})`, response.status);
  }
  const expiresIn = Number(payload.expires_in);
  return {
    accessToken: payload.access_token,
    refreshToken: typeof payload.refresh_token === 'string' ? payload.refresh_token : undefined,
    expiresAt: Number.isFinite(expiresIn) && expiresIn > 0 ? Date.now() + expiresIn * 1000 : undefined,
    scope: typeof payload.scope === 'string' ? payload.scope : undefined,
    tokenType: typeof payload.token_type === 'string' ? payload.token_type : undefined,
  };
}
