import type { Config } from '../../config';

/** Cloud providers a cloud agent can read from. */
export const PROVIDERS = ['gmail', 'outlook', 'teams'] as const;
export type Provider = (typeof PROVIDERS)[number];

/** The `config.oauth` section: client credentials and the provider base URLs (fakes in tests). */
export type OAuthSettings = Config['oauth'];

/** What a token endpoint gave us. Never logged; stored only sealed by SecretBox. */
export interface OAuthTokens {
  accessToken: string;
  refreshToken?: string;
  /** Epoch ms after which the access token is no longer accepted. */
  expiresAt?: number;
  scope?: string;
  tokenType?: string;
}

/** A cloud agent's `filterConfig`: which items of the mailbox / chats it reads. */
export interface FilterConfig {
  /** Gmail labels, Outlook categories (any of them); ignored for Teams. */
  labels?: string[];
  /** ISO dates or date-times; a bare date `to` includes that whole day (UTC). */
  dateRange?: { from?: string; to?: string };
  /** Sender addresses (Gmail, Outlook) or display names / user ids (Teams); any of them. */
  senders?: string[];
  /** Teams: also read the channel messages of the teams the user joined (needs the channel scopes); ignored elsewhere. */
  channels?: boolean;
}

/** One email or chat message, decoded to plain text. */
export interface ConnectorItem {
  /** The provider's id (Gmail message id, Graph message id). */
  id: string;
  provider: Provider;
  kind: 'email' | 'chat_message' | 'channel_message';
  subject?: string;
  sender?: string;
  /** ISO 8601. */
  date: string;
  text: string;
  labels?: string[];
  /** Teams: the chat's topic (or its id when it has none), or `<team> / <channel>` for a channel message. */
  channel?: string;
}

/** Each item is its own unit: a message that cannot be fetched or decoded becomes an error result. */
export type FetchResult = { item: ConnectorItem } | { error: { id: string; message: string } };

/** The provider refused the refresh token (`invalid_grant`): the user must reconnect. Never retry. */
export class ReauthRequiredError extends Error {
  constructor(
    readonly provider: Provider,
    message = `The ${provider} connection has expired or was revoked; reconnect the account`,
  ) {
    super(message);
    this.name = 'ReauthRequiredError';
  }
}

/** The provider answered 429 (or Google's rate-limit 403): wait `retryAfterMs`, then try again. */
export class ProviderRateLimitedError extends Error {
  constructor(
    readonly retryAfterMs: number,
    readonly provider?: Provider,
    message = `${provider ?? 'The provider'} is rate limiting requests; retry in ${Math.ceil(retryAfterMs / 1000)} s`,
  ) {
    super(message);
    this.name = 'ProviderRateLimitedError';
  }
}

/** The deployment has no OAuth client for this provider (GOOGLE_CLIENT_ID / MS_CLIENT_ID unset). */
export class ProviderNotConfiguredError extends Error {
  constructor(readonly provider: Provider) {
    const vars = provider === 'gmail' ? 'GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET' : 'MS_CLIENT_ID and MS_CLIENT_SECRET';
    super(`${provider} is not configured on this server: set ${vars}`);
    this.name = 'ProviderNotConfiguredError';
  }
}

/**
 * Any other provider failure. The message names the provider, the status and the provider's error
 * code, never a token or a request body. `retryable` is false for 4xx answers that will not change
 * on retry.
 */
export class ConnectorError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly retryable = status === undefined || status >= 500 || status === 408,
  ) {
    super(message);
    this.name = 'ConnectorError';
  }
}

/** Default wait when a provider rate-limits without a usable Retry-After. */
export const DEFAULT_RETRY_AFTER_MS = 30_000;

/**
 * Reads a Retry-After header (delta seconds or an HTTP date) as milliseconds from `now`;
 * DEFAULT_RETRY_AFTER_MS when absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number {
  if (!value) return DEFAULT_RETRY_AFTER_MS;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? DEFAULT_RETRY_AFTER_MS : Math.max(0, at - now);
}

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
