import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/*
 * A local HTTP fake of the Google endpoints a Gmail agent uses: the OAuth token endpoint and the
 * Gmail API (messages list / get, labels list), with Google's response and error shapes, so the
 * real googleapis client and our fetch-based OAuth code run over real HTTP in tests.
 * Point GOOGLE_API_BASE_URL and GOOGLE_OAUTH_BASE_URL (and GOOGLE_AUTHORIZE_URL, never fetched)
 * at `fake.url`.
 */

/** One request the fake received. `auth` is the raw Authorization header; `form` a token request's body. */
export interface FakeRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  auth?: string;
  form?: Record<string, string>;
  /** When it arrived (epoch ms). */
  at: number;
}

/** A mail in a fake mailbox; both fakes take this shape. */
export interface FakeMail {
  id: string;
  threadId?: string;
  /** `Name <address>` or a bare address. */
  from: string;
  to?: string;
  subject: string;
  date: Date | string;
  text: string;
  /** HTML alternative; default: the text in `<div>`s. */
  html?: string;
  /** Label names (Gmail: system ones like INBOX keep their id), Outlook categories. */
  labels?: string[];
  /** Gmail only: replaces the generated multipart/alternative tree (headers are still added). */
  payload?: GmailPart;
}

/** A Gmail `MessagePart`. */
export interface GmailPart {
  partId?: string;
  mimeType: string;
  filename?: string;
  headers?: Array<{ name: string; value: string }>;
  body?: { size: number; data?: string; attachmentId?: string };
  parts?: GmailPart[];
}

export const TODO_LINES = [
  'TODO: Send the invoice to ACME',
  'TODO: Book the venue for the team offsite',
  'TODO: Review the Q3 budget draft',
];

/**
 * `count` mails a minute apart from `start` (oldest first), senders rotating over three people;
 * the mails at index 1, 4, 7 … (the first `todos` of them) carry one TODO_LINES entry each and the
 * label `Work`. Every mail has the label INBOX.
 */
export function seedInbox(options: { count?: number; todos?: number; start?: Date; idPrefix?: string } = {}): FakeMail[] {
  const { count = 10, todos = 3, start = new Date('2025-03-03T09:00:00.000Z'), idPrefix = 'm' } = options;
  const people = ['Alice Martin <alice@acme.example>', 'Bob Stone <bob@globex.example>', 'Carol Diaz <carol@initech.example>'];
  return Array.from({ length: count }, (_, index) => {
    const todo = index % 3 === 1 && Math.floor(index / 3) < todos ? TODO_LINES[Math.floor(index / 3) % TODO_LINES.length] : undefined;
    const id = `${idPrefix}${String(index + 1).padStart(3, '0')}`;
    return {
      id,
      threadId: `t-${id}`,
      from: people[index % people.length],
      to: 'me@switchboard.example',
      subject: todo ? `Action needed #${index + 1}` : `Weekly update #${index + 1}`,
      date: new Date(start.getTime() + index * 60_000),
      text: todo ? `Hi,\n\n${todo} before Friday.\n\nThanks` : `Hi,\n\nNothing new this week (${index + 1}).\n\nCheers`,
      labels: todo ? ['INBOX', 'Work'] : ['INBOX'],
    };
  });
}

/** Tokens an authority issued. */
export interface IssuedTokens {
  accessToken: string;
  refreshToken: string;
  /** Epoch ms. */
  expiresAt: number;
}

/** A fake's token controls ({@link FakeProvider}), handed to its authority. */
export function tokenControls(
  authority: FakeAuthority,
): Pick<FakeProvider, 'issueCode' | 'issueTokens' | 'expireAccessTokens' | 'revokeRefreshTokens'> {
  return {
    issueCode: (o) => authority.issueCode(o),
    issueTokens: (o) => authority.issueTokens(o),
    expireAccessTokens: () => authority.expireAccessTokens(),
    revokeRefreshTokens: () => authority.revokeRefreshTokens(),
  };
}

/**
 * The token bookkeeping both fakes share: codes, access tokens with expiry, refresh tokens that can
 * be revoked. `rotateRefreshTokens` makes each refresh return a new refresh token (Microsoft).
 */
export class FakeAuthority {
  private readonly codes = new Map<string, { redirectUri?: string; tokens?: Partial<IssuedTokens> }>();
  private readonly access = new Map<string, number>();
  private readonly refresh = new Set<string>();

  constructor(private readonly options: { ttlSeconds: number; rotateRefreshTokens: boolean; prefix: string }) {}

  issueCode(o: { redirectUri?: string; accessToken?: string; refreshToken?: string } = {}): string {
    const code = `code-${randomBytes(8).toString('hex')}`;
    this.codes.set(code, { redirectUri: o.redirectUri, tokens: { accessToken: o.accessToken, refreshToken: o.refreshToken } });
    return code;
  }

  issueTokens(o: Partial<IssuedTokens> = {}): IssuedTokens {
    const accessToken = o.accessToken ?? `${this.options.prefix}-at-${randomBytes(12).toString('hex')}`;
    const refreshToken = o.refreshToken ?? `${this.options.prefix}-rt-${randomBytes(12).toString('hex')}`;
    const expiresAt = o.expiresAt ?? Date.now() + this.options.ttlSeconds * 1000;
    this.access.set(accessToken, expiresAt);
    this.refresh.add(refreshToken);
    return { accessToken, refreshToken, expiresAt };
  }

  /** Redeems a code once; undefined when unknown, used, or sent with another redirect URI. */
  redeem(code: string, redirectUri: string | undefined): IssuedTokens | undefined {
    const entry = this.codes.get(code);
    this.codes.delete(code);
    if (!entry || (entry.redirectUri !== undefined && entry.redirectUri !== redirectUri)) return undefined;
    return this.issueTokens(entry.tokens);
  }

  /** A new access token for a live refresh token; a new refresh token too only when rotating. */
  refreshWith(refreshToken: string): { accessToken: string; expiresAt: number; refreshToken?: string } | undefined {
    if (!this.refresh.has(refreshToken)) return undefined;
    const fresh = this.issueTokens();
    if (this.options.rotateRefreshTokens) return fresh;
    this.refresh.delete(fresh.refreshToken);
    return { accessToken: fresh.accessToken, expiresAt: fresh.expiresAt };
  }

  isValid(authorization: string | undefined): boolean {
    const token = /^Bearer (.+)$/i.exec(authorization ?? '')?.[1];
    const expiresAt = token ? this.access.get(token) : undefined;
    return expiresAt !== undefined && expiresAt > Date.now();
  }

  expireAccessTokens(): void {
    for (const token of this.access.keys()) this.access.set(token, 0);
  }

  revokeRefreshTokens(): void {
    this.refresh.clear();
  }
}

/** A started fake HTTP server. `handle` answers one request; thrown errors become 500s. */
export async function listen(
  handle: (req: IncomingMessage, res: ServerResponse, url: URL, body: string) => void | Promise<void>,
): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake.invalid');
      Promise.resolve(handle(req, res, url, Buffer.concat(chunks).toString('utf8'))).catch((error: Error) => {
        if (!res.headersSent) sendJson(res, 500, { error: { code: 500, message: error.message } });
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

/**
 * The provider's consent page, as a person who says yes sees it: straight back to `redirect_uri`
 * with a fresh code for it and the `state` it was given (`?deny=1` on the fake's URL: the person
 * declined, `error=access_denied`). Browser tests walk the whole redirect chain through it.
 */
export function consent(res: ServerResponse, url: URL, issueCode: (o: { redirectUri: string }) => string): void {
  const redirectUri = url.searchParams.get('redirect_uri');
  if (!redirectUri) return sendJson(res, 400, { error: 'invalid_request', error_description: 'Missing redirect_uri' });
  const back = new URL(redirectUri);
  if (url.searchParams.get('deny') === '1') back.searchParams.set('error', 'access_denied');
  else back.searchParams.set('code', issueCode({ redirectUri }));
  back.searchParams.set('state', url.searchParams.get('state') ?? '');
  res.writeHead(302, { location: back.toString() });
  res.end();
}

/** The request as FakeRequest (form fields parsed for urlencoded bodies). */
export function record(req: IncomingMessage, url: URL, body: string): FakeRequest {
  const form = req.headers['content-type']?.includes('application/x-www-form-urlencoded')
    ? Object.fromEntries(new URLSearchParams(body))
    : undefined;
  return {
    method: req.method ?? 'GET',
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    auth: req.headers.authorization,
    form,
    at: Date.now(),
  };
}

/** The client id / secret of a token request: form fields, or HTTP Basic. */
export function clientCredentials(req: IncomingMessage, form: Record<string, string>): { id?: string; secret?: string } {
  const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
  if (basic) {
    const [id, secret] = Buffer.from(basic, 'base64').toString('utf8').split(':').map(decodeURIComponent);
    return { id, secret };
  }
  return { id: form.client_id, secret: form.client_secret };
}

const SYSTEM_LABELS = new Set(['INBOX', 'SPAM', 'TRASH', 'UNREAD', 'STARRED', 'IMPORTANT', 'SENT', 'DRAFT']);
const b64url = (text: string) => Buffer.from(text, 'utf8').toString('base64url');
const normalLabel = (name: string) => name.toLowerCase().replace(/[\s/]+/g, '-');

function googleError(
  res: ServerResponse,
  code: number,
  status: string,
  reason: string,
  message: string,
  headers: Record<string, string> = {},
): void {
  sendJson(res, code, { error: { code, message, errors: [{ message, domain: 'global', reason }], status } }, headers);
}

export interface FakeGoogleOptions {
  clientId?: string;
  clientSecret?: string;
  mailbox?: FakeMail[];
  /** Lifetime of issued access tokens (default 3600 s). */
  accessTokenTtlSeconds?: number;
}

/** What both provider fakes offer: their URL and client, the requests seen, and token controls. */
export interface FakeProvider {
  url: string;
  clientId: string;
  clientSecret: string;
  /** Every request received, in order. */
  requests: FakeRequest[];
  /** The mails the provider serves (newest first); replace or push freely. */
  mailbox: FakeMail[];
  /** A code that the token endpoint (authorization_code) exchanges once for the given or fresh tokens. */
  issueCode(o?: { redirectUri?: string; accessToken?: string; refreshToken?: string }): string;
  /** Valid tokens without the code step. */
  issueTokens(o?: Partial<IssuedTokens>): IssuedTokens;
  /** Every access token issued so far answers 401 from now on. */
  expireAccessTokens(): void;
  /** Every refresh token issued so far answers `invalid_grant`. */
  revokeRefreshTokens(): void;
  /** The next `n` API requests answer 429 with `Retry-After: retryAfterSeconds`. */
  throttleNext(n: number, retryAfterSeconds: number): void;
  close(): Promise<void>;
}

/** The Google fake (`url` serves GOOGLE_API_BASE_URL and GOOGLE_OAUTH_BASE_URL). Tokens from `issueTokens` / redeemed codes are the only ones accepted. */
export interface FakeGoogle extends FakeProvider {
  /** Message ids whose `messages.get` answers 500 backendError (every time). */
  failMessageIds: Set<string>;
  /** Every access token issued so far expires once `n` more Gmail API requests were answered. */
  expireAccessTokensAfter(n: number): void;
}

/** Gmail's label ids: system labels keep their name, user labels become `Label_<n>`. */
function labelIds(mailbox: FakeMail[]): Map<string, string> {
  const ids = new Map<string, string>();
  for (const name of mailbox.flatMap((mail) => mail.labels ?? [])) {
    if (!ids.has(name)) ids.set(name, SYSTEM_LABELS.has(name.toUpperCase()) ? name.toUpperCase() : `Label_${ids.size + 1}`);
  }
  return ids;
}

/** Splits a Gmail query into terms at spaces outside quotes, () and {}. */
function terms(q: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let current = '';
  for (const char of q.trim()) {
    if (char === '"') quoted = !quoted;
    if (!quoted && (char === '(' || char === '{')) depth += 1;
    if (!quoted && (char === ')' || char === '}')) depth -= 1;
    if (char === ' ' && depth === 0 && !quoted) {
      if (current) out.push(current);
      current = '';
    } else current += char;
  }
  if (current) out.push(current);
  return out;
}

function epochSeconds(value: string): number {
  if (/^\d+$/.test(value)) return Number(value);
  const [y, m, d] = value.split('/').map(Number);
  const at = Date.UTC(y, (m ?? 1) - 1, d ?? 1) / 1000;
  if (Number.isNaN(at)) throw new Error(`bad date ${value}`);
  return at;
}

type Predicate = (mail: FakeMail) => boolean;
const unquote = (value: string) => value.replace(/^"(.*)"$/, '$1');

/** Parses the subset of Gmail search the connector sends: after/before, label, from, {…} OR groups, words. */
export function gmailSearch(q: string): Predicate {
  const predicates = terms(q).map((term): Predicate => {
    if (term.startsWith('{') && term.endsWith('}')) {
      const anyOf = terms(term.slice(1, -1)).map(gmailSearch);
      return (mail) => anyOf.some((p) => p(mail));
    }
    const op = /^([a-z_]+):(.+)$/i.exec(term);
    if (!op) return (mail) => `${mail.subject}\n${mail.text}`.toLowerCase().includes(unquote(term).toLowerCase());
    const [, name, raw] = op;
    const values = /^\((.*)\)$/.test(raw)
      ? raw
          .slice(1, -1)
          .split(/\s+OR\s+/)
          .map(unquote)
      : [unquote(raw)];
    const time = (mail: FakeMail) => new Date(mail.date).getTime() / 1000;
    switch (name.toLowerCase()) {
      case 'after':
        return (mail) => time(mail) >= epochSeconds(values[0]);
      case 'before':
        return (mail) => time(mail) < epochSeconds(values[0]);
      case 'label':
        return (mail) => (mail.labels ?? []).some((label) => values.some((v) => normalLabel(v) === normalLabel(label)));
      case 'from':
        return (mail) => values.some((v) => mail.from.toLowerCase().includes(v.toLowerCase()));
      default:
        throw new Error(`unsupported search operator ${name}:`);
    }
  });
  return (mail) => predicates.every((p) => p(mail));
}

function rfc2822(date: Date): string {
  return date.toUTCString().replace('GMT', '+0000');
}

/** The Gmail `Message` resource (format=full) of a fake mail. */
export function gmailMessage(mail: FakeMail, ids: Map<string, string>) {
  const date = new Date(mail.date);
  const headers = [
    { name: 'From', value: mail.from },
    { name: 'To', value: mail.to ?? 'me@switchboard.example' },
    { name: 'Subject', value: mail.subject },
    { name: 'Date', value: rfc2822(date) },
    { name: 'Message-ID', value: `<${mail.id}@fake.google>` },
  ];
  const html =
    mail.html ??
    mail.text
      .split('\n')
      .map((line) => `<div>${line || '<br>'}</div>`)
      .join('');
  const leaf = (partId: string, mimeType: string, content: string): GmailPart => ({
    partId,
    mimeType,
    filename: '',
    headers: [
      { name: 'Content-Type', value: `${mimeType}; charset="UTF-8"` },
      { name: 'Content-Transfer-Encoding', value: 'quoted-printable' },
    ],
    body: { size: Buffer.byteLength(content), data: b64url(content) },
  });
  const tree: GmailPart = mail.payload ?? {
    mimeType: 'multipart/alternative',
    headers: [{ name: 'Content-Type', value: 'multipart/alternative; boundary="000000000000fake"' }],
    body: { size: 0 },
    parts: [leaf('0', 'text/plain', mail.text), leaf('1', 'text/html', html)],
  };
  return {
    id: mail.id,
    threadId: mail.threadId ?? mail.id,
    labelIds: (mail.labels ?? []).map((name) => ids.get(name) ?? name),
    snippet: mail.text.replace(/\s+/g, ' ').slice(0, 100),
    historyId: '1000',
    internalDate: String(date.getTime()),
    sizeEstimate: mail.text.length + 500,
    payload: { partId: '', filename: '', ...tree, headers: [...headers, ...(tree.headers ?? [])] },
  };
}

/** Starts the fake on a free port of 127.0.0.1. */
export async function startFakeGoogle(options: FakeGoogleOptions = {}): Promise<FakeGoogle> {
  const clientId = options.clientId ?? 'fake-google-client.apps.googleusercontent.com';
  const clientSecret = options.clientSecret ?? 'fake-google-secret';
  const authority = new FakeAuthority({ ttlSeconds: options.accessTokenTtlSeconds ?? 3600, rotateRefreshTokens: false, prefix: 'ya29' });
  const requests: FakeRequest[] = [];
  let throttled = { remaining: 0, retryAfterSeconds: 0 };
  let expireAfter = -1;
  const state = { mailbox: options.mailbox ?? [], failMessageIds: new Set<string>() };

  const token = (res: ServerResponse, req: IncomingMessage, form: Record<string, string>) => {
    const client = clientCredentials(req, form);
    if (client.id !== clientId || client.secret !== clientSecret) {
      return sendJson(res, 401, { error: 'invalid_client', error_description: 'The OAuth client was not found.' });
    }
    const issued =
      form.grant_type === 'authorization_code'
        ? authority.redeem(form.code ?? '', form.redirect_uri)
        : form.grant_type === 'refresh_token'
          ? authority.refreshWith(form.refresh_token ?? '')
          : null;
    if (issued === null)
      return sendJson(res, 400, { error: 'unsupported_grant_type', error_description: `Invalid grant_type: ${form.grant_type}` });
    if (!issued)
      return sendJson(res, 400, {
        error: 'invalid_grant',
        error_description: form.grant_type === 'refresh_token' ? 'Token has been expired or revoked.' : 'Bad Request',
      });
    const scope = 'https://www.googleapis.com/auth/gmail.readonly';
    const expires_in = Math.round((issued.expiresAt - Date.now()) / 1000);
    return sendJson(res, 200, {
      access_token: issued.accessToken,
      expires_in,
      scope,
      token_type: 'Bearer',
      ...(issued.refreshToken ? { refresh_token: issued.refreshToken } : {}),
    });
  };

  const gmail = (res: ServerResponse, req: IncomingMessage, url: URL) => {
    if (throttled.remaining > 0) {
      throttled.remaining -= 1;
      return googleError(res, 429, 'RESOURCE_EXHAUSTED', 'rateLimitExceeded', 'Too many concurrent requests for user.', {
        'retry-after': String(throttled.retryAfterSeconds),
      });
    }
    if (!authority.isValid(req.headers.authorization)) {
      return googleError(
        res,
        401,
        'UNAUTHENTICATED',
        'authError',
        'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
        { 'www-authenticate': 'Bearer realm="https://accounts.google.com/", error="invalid_token"' },
      );
    }
    if (expireAfter > 0 && --expireAfter === 0) authority.expireAccessTokens();
    const ids = labelIds(state.mailbox);
    const base = '/gmail/v1/users/me/';
    const rest = url.pathname.startsWith(base) ? url.pathname.slice(base.length) : '';
    if (rest === 'labels') {
      return sendJson(res, 200, {
        labels: [...ids].map(([name, id]) => ({
          id,
          name: id === name.toUpperCase() ? id : name,
          type: id.startsWith('Label_') ? 'user' : 'system',
        })),
      });
    }
    if (rest === 'messages') {
      let matches: FakeMail[];
      try {
        matches = state.mailbox.filter(gmailSearch(url.searchParams.get('q') ?? ''));
      } catch (error) {
        return googleError(res, 400, 'INVALID_ARGUMENT', 'invalidArgument', (error as Error).message);
      }
      matches.sort((a, b) => new Date(b.date).getTime() - new Date(a.date).getTime());
      const size = Math.min(Number(url.searchParams.get('maxResults') ?? 100) || 100, 500);
      const offset = Number(Buffer.from(url.searchParams.get('pageToken') ?? '', 'base64url').toString() || 0);
      const page = matches.slice(offset, offset + size);
      const next = offset + size < matches.length ? Buffer.from(String(offset + size)).toString('base64url') : undefined;
      return sendJson(res, 200, {
        ...(page.length ? { messages: page.map((mail) => ({ id: mail.id, threadId: mail.threadId ?? mail.id })) } : {}),
        ...(next ? { nextPageToken: next } : {}),
        resultSizeEstimate: matches.length,
      });
    }
    const id = /^messages\/([^/]+)$/.exec(rest)?.[1];
    const mail = id ? state.mailbox.find((m) => m.id === decodeURIComponent(id)) : undefined;
    if (mail && state.failMessageIds.has(mail.id)) return googleError(res, 500, 'INTERNAL', 'backendError', 'Backend Error');
    if (!mail) return googleError(res, 404, 'NOT_FOUND', 'notFound', 'Requested entity was not found.');
    return sendJson(res, 200, gmailMessage(mail, ids));
  };

  const server = await listen((req, res, url, body) => {
    const entry = record(req, url, body);
    requests.push(entry);
    if (req.method === 'POST' && url.pathname === '/token') return token(res, req, entry.form ?? {});
    if (req.method === 'GET' && url.pathname.startsWith('/gmail/v1/')) return gmail(res, req, url);
    if (req.method === 'GET' && url.pathname === '/o/oauth2/v2/auth') return consent(res, url, (o) => authority.issueCode(o));
    return googleError(res, 404, 'NOT_FOUND', 'notFound', `No route ${req.method} ${url.pathname}`);
  });

  return {
    url: server.url,
    clientId,
    clientSecret,
    requests,
    get mailbox() {
      return state.mailbox;
    },
    set mailbox(mails: FakeMail[]) {
      state.mailbox = mails;
    },
    failMessageIds: state.failMessageIds,
    ...tokenControls(authority),
    expireAccessTokensAfter: (n) => {
      expireAfter = n;
    },
    throttleNext: (n, retryAfterSeconds) => {
      throttled = { remaining: n, retryAfterSeconds };
    },
    close: server.close,
  };
}
