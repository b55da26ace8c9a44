import { Client, HTTPMessageHandler, RetryHandler, RetryHandlerOptions, type GraphRequest } from '@microsoft/microsoft-graph-client';
import { TokenKeeper } from './token-keeper';
import {
  ConnectorError,
  ProviderRateLimitedError,
  ReauthRequiredError,
  parseRetryAfter,
  type OAuthSettings,
  type OAuthTokens,
  type Provider,
} from './types';

/** A Graph collection page. */
export interface GraphPage<T> {
  value?: T[];
  '@odata.nextLink'?: string;
}

interface GraphErrorShape {
  statusCode?: number;
  code?: string | null;
  headers?: Headers;
}

const isUnauthorized = (error: unknown) => (error as GraphErrorShape)?.statusCode === 401;

/**
 * The Microsoft Graph client for one fetch. Its middleware chain is ours: a RetryHandler that
 * retries 503/504 but never 429 (a 429 must reach the worker as ProviderRateLimitedError, which
 * turns it into queue rate limiting), then the fetch itself. The token is set per request by the
 * TokenKeeper, not by the SDK's AuthenticationHandler: that handler only signs https Graph hosts,
 * and the base URL is configurable (a local http fake in tests).
 */
export class GraphSession {
  private readonly client: Client;
  private readonly keeper: TokenKeeper;
  private readonly base: URL;

  constructor(
    private readonly provider: Provider,
    settings: OAuthSettings,
    tokens: OAuthTokens,
    onTokens: (tokens: OAuthTokens) => Promise<void>,
    private readonly signal?: AbortSignal,
  ) {
    this.keeper = new TokenKeeper(provider, settings, tokens, onTokens);
    this.base = new URL(`${settings.microsoft.graphBaseUrl}/`);
    const retry = new RetryHandler(
      new RetryHandlerOptions(1, 2, (_delay, _attempt, _request, _options, response) => response.status !== 429),
    );
    this.client = Client.initWithMiddleware({
      baseUrl: this.base.toString(),
      defaultVersion: 'v1.0',
      middleware: [retry, new HTTPMessageHandler()],
    });
  }

  /** GETs one resource: `build` shapes the request (path, $filter, …) on the client. */
  async get<T>(build: (client: Client) => GraphRequest): Promise<T> {
    try {
      return await this.keeper.withAuth(async (accessToken) => {
        const request = build(this.client).header('Authorization', `Bearer ${accessToken}`);
        if (this.signal) request.option('signal', this.signal);
        return (await request.get()) as T;
      }, isUnauthorized);
    } catch (error) {
      throw this.toConnectorError(error);
    }
  }

  /**
   * Every page of a collection: the first from `build`, then each `@odata.nextLink` (which
   * carries the query; `headers` such as Prefer are sent again with every page).
   */
  async *pages<T>(build: (client: Client) => GraphRequest, headers: Record<string, string> = {}): AsyncGenerator<T[]> {
    let page = await this.get<GraphPage<T>>((client) => build(client).headers(headers));
    yield page.value ?? [];
    while (page['@odata.nextLink']) {
      const next = this.relative(page['@odata.nextLink']);
      page = await this.get<GraphPage<T>>((client) => client.api(next).headers(headers));
      yield page.value ?? [];
    }
  }

  /**
   * A nextLink as a path the client accepts. Graph returns absolute links; the SDK only parses
   * https ones, and a link to another host must never receive the user's token.
   */
  private relative(nextLink: string): string {
    const url = new URL(nextLink, this.base);
    if (url.origin !== this.base.origin || !url.pathname.startsWith(this.base.pathname)) {
      throw new ConnectorError(`Microsoft Graph returned a next page on another host (${url.host}); not following it`, undefined, false);
    }
    const rest = url.pathname.slice(this.base.pathname.length).replace(/^v1\.0\//, '');
    return `/${rest}${url.search}`;
  }

  private toConnectorError(error: unknown): Error {
    if (error instanceof ConnectorError || error instanceof ReauthRequiredError || error instanceof ProviderRateLimitedError) return error;
    if (this.signal?.aborted) return this.signal.reason instanceof Error ? this.signal.reason : new Error('aborted');
    const { statusCode, code, headers } = (error ?? {}) as GraphErrorShape;
    if (!statusCode || statusCode < 0) return new ConnectorError(`Microsoft Graph unreachable (${code ?? 'network error'})`);
    if (statusCode === 429) return new ProviderRateLimitedError(parseRetryAfter(headers?.get?.('retry-after')), this.provider);
    if (statusCode === 401)
      return new ReauthRequiredError(
        this.provider,
        `Microsoft Graph rejected a freshly refreshed access token; reconnect the ${this.provider} account`,
      );
    return new ConnectorError(`Microsoft Graph answered ${statusCode} (${code ?? 'error'})`, statusCode);
  }
}

/** An OData string literal. */
export const odataString = (value: string) => `'${value.replace(/'/g, "''")}'`;
