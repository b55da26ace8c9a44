import { auth as googleAuth, gmail as gmailApi, type gmail_v1 } from '@googleapis/gmail';
import { cleanList, endsFetch, inWindow, timeWindow } from './filter';
import type { FetchContext } from './types';
import { headerOf, mimeText } from './text';
import { TokenKeeper } from './token-keeper';
import {
  ConnectorError,
  ProviderRateLimitedError,
  ReauthRequiredError,
  parseRetryAfter,
  type ConnectorItem,
  type FetchResult,
  type FilterConfig,
} from './types';

/** Messages fetched at once within a page. */
const GET_CONCURRENCY = 4;
/** Retries of a 5xx / network failure inside one request, before it counts as failed. */
const RETRY_CONFIG = { retry: 2, retryDelay: 200, statusCodesToRetry: [[500, 599]], noResponseRetries: 2 };

/** A Gmail search value: quoted when it holds spaces or search syntax; quotes removed. */
function term(value: string): string {
  const clean = value.replace(/"/g, '');
  return /[\s(){}:]/.test(clean) ? `"${clean}"` : clean;
}

/**
 * The Gmail search (`q`) for a filter: any of the labels (`{label:a label:b}`), any of the senders
 * (`from:(a OR b)`), and the time window as epoch seconds (`after:` / `before:`).
 */
export function gmailQuery(filter: FilterConfig, since?: Date): string {
  const parts: string[] = [];
  const labels = cleanList(filter.labels);
  if (labels.length === 1) parts.push(`label:${term(labels[0])}`);
  if (labels.length > 1) parts.push(`{${labels.map((label) => `label:${term(label)}`).join(' ')}}`);
  const senders = cleanList(filter.senders);
  if (senders.length === 1) parts.push(`from:${term(senders[0])}`);
  if (senders.length > 1) parts.push(`from:(${senders.map(term).join(' OR ')})`);
  const { after, before } = timeWindow(filter, since);
  if (after) parts.push(`after:${Math.floor(after.getTime() / 1000)}`);
  if (before) parts.push(`before:${Math.ceil(before.getTime() / 1000)}`);
  return parts.join(' ');
}

interface GoogleErrorShape {
  name?: string;
  response?: {
    status?: number;
    headers?: Headers | Record<string, string>;
    data?: { error?: { status?: string; errors?: Array<{ reason?: string }> } };
  };
}

function header(headers: Headers | Record<string, string> | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  return (headers as Record<string, string>)[name];
}

const isUnauthorized = (error: unknown) => (error as GoogleErrorShape)?.response?.status === 401;

/**
 * Our error for a failed Gmail call. SDK errors carry the request (with its Authorization header),
 * so they are never passed on: only the status and Google's reason survive.
 */
function toConnectorError(error: unknown, signal?: AbortSignal): Error {
  if (error instanceof ConnectorError || error instanceof ReauthRequiredError || error instanceof ProviderRateLimitedError) return error;
  if (signal?.aborted) return signal.reason instanceof Error ? signal.reason : new Error('aborted');
  const { response } = error as GoogleErrorShape;
  if (!response?.status) {
    const { code, name } = (error ?? {}) as { code?: unknown; name?: string };
    return new ConnectorError(`Gmail API unreachable (${typeof code === 'string' ? code : (name ?? 'error')})`);
  }
  const reason = response.data?.error?.errors?.[0]?.reason ?? response.data?.error?.status ?? 'error';
  if (response.status === 429 || (response.status === 403 && /rateLimitExceeded/i.test(reason))) {
    return new ProviderRateLimitedError(parseRetryAfter(header(response.headers, 'retry-after')), 'gmail');
  }
  if (response.status === 401)
    return new ReauthRequiredError('gmail', 'Gmail rejected a freshly refreshed access token; reconnect the account');
  return new ConnectorError(`Gmail API answered ${response.status} (${reason})`, response.status);
}

function toItem(message: gmail_v1.Schema$Message, labelNames: Map<string, string>): ConnectorItem {
  const payload = message.payload;
  if (!message.id || !payload) throw new Error('message has no payload');
  const internal = Number(message.internalDate);
  const date = Number.isFinite(internal) && internal > 0 ? new Date(internal) : new Date(headerOf(payload, 'date') ?? '');
  if (Number.isNaN(date.getTime())) throw new Error('message has no readable date');
  return {
    id: message.id,
    provider: 'gmail',
    kind: 'email',
    subject: headerOf(payload, 'subject'),
    sender: headerOf(payload, 'from'),
    date: date.toISOString(),
    text: mimeText(payload),
    labels: (message.labelIds ?? []).map((id) => labelNames.get(id) ?? id),
  };
}

/** Gmail messages matching the filter since `since`, newest first, every page. */
export async function* fetchGmail(ctx: FetchContext): AsyncGenerator<FetchResult> {
  const { google } = ctx.settings;
  const keeper = new TokenKeeper('gmail', ctx.settings, ctx.tokens, ctx.onTokens);
  const auth = new googleAuth.OAuth2({
    clientId: google.clientId,
    clientSecret: google.clientSecret,
    endpoints: { oauth2TokenUrl: `${google.oauthBaseUrl}/token`, oauth2AuthBaseUrl: google.authorizeUrl },
  });
  const api = gmailApi({ version: 'v1', auth, rootUrl: `${google.apiBaseUrl.replace(/\/+$/, '')}/` });
  const options = { signal: ctx.signal, retryConfig: RETRY_CONFIG };

  /** One API call with a current token (the SDK's client only carries it; the keeper refreshes). */
  const call = async <T>(request: () => Promise<{ data: T }>): Promise<T> => {
    try {
      return await keeper.withAuth(async (accessToken) => {
        auth.setCredentials({ access_token: accessToken, token_type: 'Bearer' });
        return (await request()).data;
      }, isUnauthorized);
    } catch (error) {
      throw toConnectorError(error, ctx.signal);
    }
  };

  /** Label id → name, read once per fetch (user labels have ids like `Label_12`). */
  let labelNames: Promise<Map<string, string>> | undefined;
  const labels = () =>
    (labelNames ??= call(() => api.users.labels.list({ userId: 'me' }, options)).then(
      (list) => new Map((list.labels ?? []).flatMap((label) => (label.id && label.name ? [[label.id, label.name] as const] : []))),
      (error: unknown) => {
        if (endsFetch(error)) throw error;
        return new Map<string, string>(); // Label ids are still useful when names cannot be read.
      },
    ));

  const fetchOne = async (id: string): Promise<FetchResult> => {
    let message: gmail_v1.Schema$Message;
    try {
      message = await call(() => api.users.messages.get({ userId: 'me', id, format: 'full' }, options));
    } catch (error) {
      if (endsFetch(error)) throw error;
      return { error: { id, message: (error as Error).message } };
    }
    const names = await labels();
    try {
      return { item: toItem(message, names) };
    } catch (error) {
      return { error: { id, message: `Gmail message could not be read: ${(error as Error).message}` } };
    }
  };

  const q = gmailQuery(ctx.filter, ctx.since);
  // `after:` has whole seconds: a mail from the second before the window would come again.
  const window = timeWindow(ctx.filter, ctx.since);
  let remaining = ctx.maxItems ?? Number.POSITIVE_INFINITY;
  let pageToken: string | undefined;
  do {
    const page = await call(() =>
      api.users.messages.list({ userId: 'me', q: q || undefined, maxResults: ctx.pageSize ?? 100, pageToken }, options),
    );
    const ids = (page.messages ?? []).flatMap((message) => (message.id ? [message.id] : []));
    for (let start = 0; start < ids.length && remaining > 0; start += GET_CONCURRENCY) {
      const batch = ids.slice(start, start + Math.min(GET_CONCURRENCY, remaining));
      for (const result of await Promise.all(batch.map(fetchOne))) {
        ctx.signal?.throwIfAborted();
        if ('item' in result && !inWindow(new Date(result.item.date), window)) continue;
        yield result;
        remaining -= 1;
      }
    }
    pageToken = remaining > 0 ? (page.nextPageToken ?? undefined) : undefined;
  } while (pageToken);
}
