import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  FakeAuthority,
  consent,
  clientCredentials,
  listen,
  record,
  sendJson,
  tokenControls,
  type FakeMail,
  type FakeProvider,
  type FakeRequest,
} from './fake-google';

/*
 * A local HTTP fake of the Microsoft identity platform token endpoint and the Microsoft Graph
 * endpoints Outlook and Teams agents use, with Graph's response shapes (`value`, `@odata.context`,
 * absolute `@odata.nextLink`) and error shapes. Point MS_GRAPH_BASE_URL and MS_LOGIN_BASE_URL at
 * `fake.url`.
 */

/** A Teams chat message; `from` is the sender's display name. */
export interface FakeChatMessage {
  id: string;
  from: string;
  userId?: string;
  html: string;
  createdDateTime: Date | string;
  /** Default: createdDateTime. */
  lastModifiedDateTime?: Date | string;
  messageType?: 'message' | 'systemEventMessage';
  deleted?: boolean;
}

export interface FakeChat {
  id: string;
  topic?: string | null;
  chatType?: 'oneOnOne' | 'group' | 'meeting';
  messages: FakeChatMessage[];
}

/** A channel of a team, with its top-level messages. */
export interface FakeChannel {
  id: string;
  displayName: string;
  messages: FakeChatMessage[];
}

/** A team the user joined. */
export interface FakeTeam {
  id: string;
  displayName: string;
  channels: FakeChannel[];
}

/**
 * `teams` teams of `channels` channels with `perChannel` messages each, a minute apart from `start`;
 * the first message of the first channel of each team reads `Action: …`.
 */
export function seedTeams(options: { teams?: number; channels?: number; perChannel?: number; start?: Date } = {}): FakeTeam[] {
  const { teams = 1, channels = 2, perChannel = 2, start = new Date('2025-03-04T09:00:00.000Z') } = options;
  let n = 0;
  return Array.from({ length: teams }, (_, t) => ({
    id: `team-${t + 1}-0000-4000-8000-00000000000${t + 1}`,
    displayName: `Team ${t + 1}`,
    channels: Array.from({ length: channels }, (_, c) => ({
      id: `19:channel${t + 1}${c + 1}@thread.tacv2`,
      displayName: c === 0 ? 'General' : `Channel ${c + 1}`,
      messages: Array.from({ length: perChannel }, (_, m) => {
        const at = new Date(start.getTime() + (n += 1) * 60_000);
        return {
          id: String(at.getTime()),
          from: m % 2 ? 'Evan Cho' : 'Dana Lee',
          userId: `user-${m % 2}`,
          html: m === 0 && c === 0 ? `<p>Action: ship the <i>release</i> of team ${t + 1}</p>` : `<p>Post ${m + 1} in channel ${c + 1}</p>`,
          createdDateTime: at,
        };
      }),
    })),
  }));
}

/**
 * `chats` group chats with `perChat` messages each, a minute apart from `start`; the second
 * message of the first `todos` chats reads `TODO: …` (in HTML, as Teams sends it).
 */
export function seedChats(options: { chats?: number; perChat?: number; todos?: number; start?: Date } = {}): FakeChat[] {
  const { chats = 2, perChat = 3, todos = 1, start = new Date('2025-03-03T10:00:00.000Z') } = options;
  const people = ['Dana Lee', 'Evan Cho'];
  return Array.from({ length: chats }, (_, c) => ({
    id: `19:chat${c + 1}@thread.v2`,
    topic: `Project ${String.fromCharCode(65 + c)}`,
    chatType: 'group' as const,
    messages: Array.from({ length: perChat }, (_, m) => ({
      id: String(start.getTime() + (c * perChat + m) * 60_000),
      from: people[m % people.length],
      userId: `user-${m % people.length}`,
      html:
        m === 1 && c < todos
          ? `<p>TODO: Prepare the <b>demo</b> for chat ${c + 1}</p>`
          : `<p>Message ${m + 1} in chat ${c + 1} &amp; more</p>`,
      createdDateTime: new Date(start.getTime() + (c * perChat + m) * 60_000),
    })),
  }));
}

export interface FakeMicrosoftOptions {
  tenant?: string;
  clientId?: string;
  clientSecret?: string;
  mailbox?: FakeMail[];
  chats?: FakeChat[];
  teams?: FakeTeam[];
  accessTokenTtlSeconds?: number;
}

/** The Microsoft fake (`url` serves MS_GRAPH_BASE_URL and MS_LOGIN_BASE_URL). Refresh tokens rotate on every refresh, as Microsoft's do. */
export interface FakeMicrosoft extends FakeProvider {
  tenant: string;
  /** Served by `/v1.0/me/chats` and `/v1.0/chats/:id/messages`. */
  chats: FakeChat[];
  /** Chat ids whose messages answer 403 Forbidden. */
  failChatIds: Set<string>;
  /** Served by `/v1.0/me/joinedTeams`, `/v1.0/teams/:id/channels` and `…/channels/:id/messages(/delta)`. */
  teams: FakeTeam[];
  /** Channel ids whose messages answer 403 Forbidden. */
  failChannelIds: Set<string>;
  /** `/me/joinedTeams` answers 403, as for a token granted without the channel scopes. */
  forbidJoinedTeams: boolean;
}

function graphError(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  const innerError = {
    date: new Date().toISOString().slice(0, 19),
    'request-id': 'fake-request',
    'client-request-id': 'fake-client-request',
  };
  sendJson(res, status, { error: { code, message, innerError } }, headers);
}

function address(from: string): { name: string; address: string } {
  const match = /^(.*?)\s*<([^>]+)>$/.exec(from);
  return match ? { name: match[1] || match[2], address: match[2] } : { name: from, address: from };
}

type Row = Record<string, unknown>;
const iso = (date: Date | string) => new Date(date).toISOString();

/** Splits at ` and ` / ` or ` outside quotes and parentheses. */
function splitTop(expression: string, word: 'and' | 'or'): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < expression.length; i += 1) {
    const char = expression[i];
    if (char === "'") quoted = !quoted;
    if (!quoted && char === '(') depth += 1;
    if (!quoted && char === ')') depth -= 1;
    if (!quoted && depth === 0 && expression.startsWith(` ${word} `, i)) {
      out.push(expression.slice(start, i));
      start = i + word.length + 2;
    }
  }
  out.push(expression.slice(start));
  return out.map((part) => part.trim());
}

const literal = (value: string) => value.slice(1, -1).replace(/''/g, "'");

/**
 * The `$filter` subset the connector sends: `and` of clauses, `( … or … )` groups, comparisons
 * `<field> ge|gt|le|lt <ISO date>` on date fields, `from/emailAddress/address eq '…'`,
 * `categories/any(c:c eq '…')`. Anything else throws (the fake answers 400).
 */
export function graphFilter(expression: string): (row: Row) => boolean {
  const clauses = splitTop(expression.trim(), 'and').map((clause): ((row: Row) => boolean) => {
    if (clause.startsWith('(') && clause.endsWith(')')) {
      const anyOf = splitTop(clause.slice(1, -1), 'or').map(graphFilter);
      return (row) => anyOf.some((p) => p(row));
    }
    const date = /^(receivedDateTime|lastModifiedDateTime|createdDateTime) (ge|gt|le|lt) (\S+)$/.exec(clause);
    if (date) {
      const [, field, op, value] = date;
      const bound = new Date(value).getTime();
      if (Number.isNaN(bound)) throw new Error(`Invalid date in filter: ${value}`);
      return (row) => {
        const at = new Date(String(row[field])).getTime();
        return op === 'ge' ? at >= bound : op === 'gt' ? at > bound : op === 'le' ? at <= bound : at < bound;
      };
    }
    const from = /^from\/emailAddress\/address eq ('(?:[^']|'')*')$/.exec(clause);
    if (from)
      return (row) =>
        String((row.from as { emailAddress: { address: string } }).emailAddress.address).toLowerCase() === literal(from[1]).toLowerCase();
    const category = /^categories\/any\(c:c eq ('(?:[^']|'')*')\)$/.exec(clause);
    if (category) return (row) => (row.categories as string[]).includes(literal(category[1]));
    throw new Error(`Invalid filter clause: ${clause}`);
  });
  return (row) => clauses.every((p) => p(row));
}

/** The Graph `message` resource of a fake mail (HTML body unless `text` is preferred). */
function graphMessage(mail: FakeMail, preferText: boolean): Row {
  const sender = { emailAddress: address(mail.from) };
  const html =
    mail.html ??
    `<html><body>${mail.text
      .split('\n')
      .map((line) => `<p>${line}</p>`)
      .join('')}</body></html>`;
  const received = iso(mail.date);
  return {
    '@odata.etag': `W/"${mail.id}"`,
    id: mail.id,
    createdDateTime: received,
    lastModifiedDateTime: received,
    receivedDateTime: received,
    sentDateTime: received,
    hasAttachments: false,
    internetMessageId: `<${mail.id}@fake.outlook>`,
    subject: mail.subject,
    bodyPreview: mail.text.slice(0, 255),
    importance: 'normal',
    conversationId: mail.threadId ?? mail.id,
    isRead: false,
    categories: (mail.labels ?? []).filter((label) => label.toUpperCase() !== 'INBOX'),
    body: preferText ? { contentType: 'text', content: mail.text } : { contentType: 'html', content: html },
    sender,
    from: sender,
    toRecipients: [{ emailAddress: address(mail.to ?? 'me@switchboard.example') }],
  };
}

function graphChatMessage(chat: FakeChat, message: FakeChatMessage): Row {
  return graphMessageOf({ chatId: chat.id, channelIdentity: null }, message);
}

/** A channel message: no chatId, its team and channel in `channelIdentity`. */
function graphChannelMessage(team: FakeTeam, channel: FakeChannel, message: FakeChatMessage): Row {
  return graphMessageOf({ chatId: null, channelIdentity: { teamId: team.id, channelId: channel.id } }, message);
}

function graphMessageOf(where: { chatId: string | null; channelIdentity: Row | null }, message: FakeChatMessage): Row {
  return {
    id: message.id,
    replyToId: null,
    etag: message.id,
    messageType: message.messageType ?? 'message',
    createdDateTime: iso(message.createdDateTime),
    lastModifiedDateTime: iso(message.lastModifiedDateTime ?? message.createdDateTime),
    lastEditedDateTime: null,
    deletedDateTime: message.deleted ? iso(message.lastModifiedDateTime ?? message.createdDateTime) : null,
    subject: null,
    summary: null,
    chatId: where.chatId,
    importance: 'normal',
    locale: 'en-us',
    webUrl: null,
    channelIdentity: where.channelIdentity,
    from: {
      application: null,
      device: null,
      user: {
        '@odata.type': '#microsoft.graph.teamworkUserIdentity',
        id: message.userId ?? message.from,
        displayName: message.from,
        userIdentityType: 'aadUser',
      },
    },
    body: { contentType: 'html', content: message.html },
    attachments: [],
    mentions: [],
    reactions: [],
  };
}

/** Starts the fake on a free port of 127.0.0.1. */
export async function startFakeMicrosoft(options: FakeMicrosoftOptions = {}): Promise<FakeMicrosoft> {
  const tenant = options.tenant ?? 'common';
  const clientId = options.clientId ?? '00000000-0000-0000-0000-00000000c1d0';
  const clientSecret = options.clientSecret ?? 'fake-ms-secret';
  const authority = new FakeAuthority({ ttlSeconds: options.accessTokenTtlSeconds ?? 3599, rotateRefreshTokens: true, prefix: 'eyJ0' });
  const requests: FakeRequest[] = [];
  const state = {
    mailbox: options.mailbox ?? [],
    chats: options.chats ?? [],
    failChatIds: new Set<string>(),
    teams: options.teams ?? [],
    failChannelIds: new Set<string>(),
    forbidJoinedTeams: false,
  };
  let throttled = { remaining: 0, retryAfterSeconds: 0 };
  let baseUrl = '';

  const token = (res: ServerResponse, req: IncomingMessage, form: Record<string, string>, pathTenant: string) => {
    const client = clientCredentials(req, form);
    const aad = (status: number, error: string, code: number, description: string) =>
      sendJson(res, status, {
        error,
        error_description: `AADSTS${code}: ${description}`,
        error_codes: [code],
        timestamp: new Date().toISOString(),
        trace_id: 'fake-trace',
        correlation_id: 'fake-correlation',
      });
    if (pathTenant !== tenant) return aad(400, 'invalid_request', 90002, `Tenant '${pathTenant}' not found.`);
    if (client.id !== clientId || client.secret !== clientSecret)
      return aad(401, 'invalid_client', 7000215, 'Invalid client secret provided.');
    if (!form.scope) return aad(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'scope'.");
    const issued =
      form.grant_type === 'authorization_code'
        ? authority.redeem(form.code ?? '', form.redirect_uri)
        : form.grant_type === 'refresh_token'
          ? authority.refreshWith(form.refresh_token ?? '')
          : null;
    if (issued === null) return aad(400, 'unsupported_grant_type', 70003, 'The app requested an unsupported grant type.');
    if (!issued) return aad(400, 'invalid_grant', 70008, 'The provided authorization code or refresh token has expired due to inactivity.');
    const expires_in = Math.round((issued.expiresAt - Date.now()) / 1000);
    return sendJson(res, 200, {
      token_type: 'Bearer',
      scope: form.scope,
      expires_in,
      ext_expires_in: expires_in,
      access_token: issued.accessToken,
      refresh_token: issued.refreshToken,
    });
  };

  /** One page of `rows` with OData $filter / $orderby / $select / $top and a $skip or $skiptoken nextLink. */
  const collection = (
    res: ServerResponse,
    url: URL,
    rows: Row[],
    o: {
      context: string;
      defaultTop: number;
      maxTop: number;
      skipParam: '$skip' | '$skiptoken';
      dateField: string;
      /** A delta query: the last page carries `@odata.deltaLink` (a `$deltatoken`) instead of nothing. */
      delta?: boolean;
    },
  ) => {
    const params = url.searchParams;
    let matches = rows;
    const filter = params.get('$filter');
    if (filter) {
      try {
        matches = matches.filter(graphFilter(filter));
      } catch (error) {
        return graphError(res, 400, 'BadRequest', (error as Error).message);
      }
    }
    const [orderField = o.dateField, direction = 'desc'] = (params.get('$orderby') ?? '').split(' ').filter(Boolean);
    const time = (row: Row) => new Date(String(row[orderField])).getTime();
    matches = [...matches].sort((a, b) => (direction === 'asc' ? time(a) - time(b) : time(b) - time(a)));
    const top = Math.min(Number(params.get('$top') ?? o.defaultTop) || o.defaultTop, o.maxTop);
    const skipValue = params.get(o.skipParam) ?? '';
    const offset = o.skipParam === '$skip' ? Number(skipValue || 0) : Number(Buffer.from(skipValue, 'base64url').toString() || 0);
    const select = params.get('$select')?.split(',');
    const page = matches
      .slice(offset, offset + top)
      .map((row) =>
        select
          ? Object.fromEntries(Object.entries(row).filter(([key]) => key === '@odata.etag' || key === 'id' || select.includes(key)))
          : row,
      );
    const body: Row = { '@odata.context': `${baseUrl}/v1.0/$metadata#${o.context}`, value: page };
    if (offset + top < matches.length) {
      const nextOffset = o.skipParam === '$skip' ? String(offset + top) : Buffer.from(String(offset + top)).toString('base64url');
      const query = [...params].filter(([key]) => key !== o.skipParam).concat([[o.skipParam, nextOffset]]);
      body['@odata.nextLink'] = `${baseUrl}${url.pathname}?${query.map(([key, value]) => `${key}=${encodeURIComponent(value)}`).join('&')}`;
    } else if (o.delta) {
      body['@odata.deltaLink'] = `${baseUrl}${url.pathname}?$deltatoken=${Buffer.from(new Date().toISOString()).toString('base64url')}`;
    }
    return sendJson(res, 200, body);
  };

  const graph = (res: ServerResponse, req: IncomingMessage, url: URL) => {
    if (throttled.remaining > 0) {
      throttled.remaining -= 1;
      return graphError(res, 429, 'TooManyRequests', 'Too many requests, retry after the time in the Retry-After header.', {
        'retry-after': String(throttled.retryAfterSeconds),
      });
    }
    if (!authority.isValid(req.headers.authorization)) {
      return graphError(res, 401, 'InvalidAuthenticationToken', 'Access token has expired or is not yet valid.', {
        'www-authenticate': 'Bearer realm="", error="invalid_token"',
      });
    }
    const path = url.pathname.slice('/v1.0'.length);
    if (path === '/me/messages') {
      const preferText = /outlook\.body-content-type="?text"?/i.test(String(req.headers.prefer ?? ''));
      if (preferText) res.setHeader('preference-applied', 'outlook.body-content-type="text"');
      const rows = state.mailbox.map((mail) => graphMessage(mail, preferText));
      return collection(res, url, rows, {
        context: "users('me')/messages",
        defaultTop: 10,
        maxTop: 1000,
        skipParam: '$skip',
        dateField: 'receivedDateTime',
      });
    }
    if (path === '/me/chats') {
      const rows = state.chats.map((chat) => {
        const times = chat.messages.map((m) => new Date(m.lastModifiedDateTime ?? m.createdDateTime).getTime());
        const updated = new Date(times.length ? Math.max(...times) : Date.UTC(2025, 0, 1)).toISOString();
        return {
          id: chat.id,
          topic: chat.topic ?? null,
          createdDateTime: updated,
          lastUpdatedDateTime: updated,
          chatType: chat.chatType ?? 'group',
          webUrl: `https://teams.microsoft.com/l/chat/${encodeURIComponent(chat.id)}/0`,
          tenantId: 'fake-tenant',
        };
      });
      return collection(res, url, rows, {
        context: "users('me')/chats",
        defaultTop: 20,
        maxTop: 50,
        skipParam: '$skiptoken',
        dateField: 'lastUpdatedDateTime',
      });
    }
    if (path === '/me/joinedTeams') {
      if (state.forbidJoinedTeams) return graphError(res, 403, 'Forbidden', 'Missing scope permissions on the request.');
      // Graph's joinedTeams: no paging parameters, the team's basic fields.
      const rows = state.teams.map((team) => ({
        id: team.id,
        displayName: team.displayName,
        description: null,
        isArchived: false,
        tenantId: 'fake-tenant',
      }));
      return sendJson(res, 200, { '@odata.context': `${baseUrl}/v1.0/$metadata#teams`, '@odata.count': rows.length, value: rows });
    }
    const teamPath = /^\/teams\/([^/]+)\/channels(?:\/([^/]+)\/messages(\/delta)?)?$/.exec(path);
    const team = teamPath ? state.teams.find((t) => t.id === decodeURIComponent(teamPath[1])) : undefined;
    if (teamPath && !teamPath[2] && team) {
      const rows = team.channels.map((channel) => ({
        id: channel.id,
        createdDateTime: '2025-01-01T00:00:00Z',
        displayName: channel.displayName,
        description: null,
        isFavoriteByDefault: null,
        email: '',
        webUrl: `https://teams.microsoft.com/l/channel/${encodeURIComponent(channel.id)}/${encodeURIComponent(channel.displayName)}`,
        membershipType: 'standard',
        tenantId: 'fake-tenant',
      }));
      return sendJson(res, 200, {
        '@odata.context': `${baseUrl}/v1.0/$metadata#teams('${team.id}')/channels`,
        '@odata.count': rows.length,
        value: rows,
      });
    }
    const channel = teamPath?.[2] ? team?.channels.find((c) => c.id === decodeURIComponent(teamPath[2])) : undefined;
    if (team && channel) {
      if (state.failChannelIds.has(channel.id)) return graphError(res, 403, 'Forbidden', 'Forbidden');
      const delta = !!teamPath?.[3];
      // Channel messages: $top only; their delta also takes `$filter=lastModifiedDateTime gt …`, never $orderby.
      if (url.searchParams.has('$orderby')) return graphError(res, 400, 'BadRequest', 'Query option OrderBy is not supported.');
      const filter = url.searchParams.get('$filter');
      if (filter && (!delta || !/^lastModifiedDateTime gt \S+$/.test(filter)))
        return graphError(res, 400, 'BadRequest', `Unsupported filter: ${filter}`);
      const rows = channel.messages.map((message) => graphChannelMessage(team, channel, message));
      return collection(res, url, rows, {
        context: `Collection(chatMessage)`,
        defaultTop: 20,
        maxTop: 50,
        skipParam: '$skiptoken',
        dateField: 'lastModifiedDateTime',
        delta,
      });
    }
    const chatId = /^\/chats\/([^/]+)\/messages$/.exec(path)?.[1];
    const chat = chatId ? state.chats.find((c) => c.id === decodeURIComponent(chatId)) : undefined;
    if (chat && state.failChatIds.has(chat.id)) return graphError(res, 403, 'Forbidden', 'Forbidden');
    if (chat) {
      const rows = chat.messages.map((message) => graphChatMessage(chat, message));
      return collection(res, url, rows, {
        context: `chats('${chat.id}')/messages`,
        defaultTop: 20,
        maxTop: 50,
        skipParam: '$skiptoken',
        dateField: 'createdDateTime',
      });
    }
    return graphError(res, 404, chatId ? 'NotFound' : 'UnknownError', `Resource not found for the segment '${path}'.`);
  };

  const server = await listen((req, res, url, body) => {
    const entry = record(req, url, body);
    requests.push(entry);
    const tokenPath = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(url.pathname);
    if (req.method === 'POST' && tokenPath) return token(res, req, entry.form ?? {}, decodeURIComponent(tokenPath[1]));
    if (req.method === 'GET' && url.pathname.startsWith('/v1.0/')) return graph(res, req, url);
    if (req.method === 'GET' && /^\/[^/]+\/oauth2\/v2\.0\/authorize$/.test(url.pathname))
      return consent(res, url, (o) => authority.issueCode(o));
    return graphError(res, 404, 'UnknownError', `No route ${req.method} ${url.pathname}`);
  });
  baseUrl = server.url;

  return {
    url: server.url,
    tenant,
    clientId,
    clientSecret,
    requests,
    get mailbox() {
      return state.mailbox;
    },
    set mailbox(mails: FakeMail[]) {
      state.mailbox = mails;
    },
    get chats() {
      return state.chats;
    },
    set chats(chats: FakeChat[]) {
      state.chats = chats;
    },
    failChatIds: state.failChatIds,
    get teams() {
      return state.teams;
    },
    set teams(teams: FakeTeam[]) {
      state.teams = teams;
    },
    failChannelIds: state.failChannelIds,
    get forbidJoinedTeams() {
      return state.forbidJoinedTeams;
    },
    set forbidJoinedTeams(value: boolean) {
      state.forbidJoinedTeams = value;
    },
    ...tokenControls(authority),
    throttleNext: (n, retryAfterSeconds) => {
      throttled = { remaining: n, retryAfterSeconds };
    },
    close: server.close,
  };
}
