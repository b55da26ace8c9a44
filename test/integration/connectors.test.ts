import { loadConfig } from '../../config';
import {
  ConnectorError,
  ProviderNotConfiguredError,
  ProviderRateLimitedError,
  ReauthRequiredError,
  authorizeUrl,
  exchangeCode,
  fetchItems,
  type ConnectorItem,
  type FetchContext,
  type FetchResult,
  type OAuthSettings,
  type OAuthTokens,
} from '../../src/connectors';
import { gmailQuery } from '../../src/connectors/gmail';
import { startFakeGoogle, seedInbox, TODO_LINES, type FakeGoogle, type FakeMail, type FakeRequest } from '../support/fake-google';
import { seedChats, seedTeams, startFakeMicrosoft, type FakeMicrosoft } from '../support/fake-microsoft';
import { providerEnv } from '../support/provider-env';

let google: FakeGoogle;
let microsoft: FakeMicrosoft;
let settings: OAuthSettings;

beforeEach(async () => {
  [google, microsoft] = await Promise.all([startFakeGoogle(), startFakeMicrosoft()]);
  // The real config path: the same env variables a deployment sets.
  settings = loadConfig(providerEnv(google, microsoft)).oauth;
});

afterEach(async () => {
  await Promise.all([google.close(), microsoft.close()]);
});

/** Runs a fetch to the end, recording every onTokens call. */
async function collect(ctx: Partial<FetchContext> & Pick<FetchContext, 'provider' | 'tokens'>) {
  const stored: OAuthTokens[] = [];
  const results: FetchResult[] = [];
  for await (const result of fetchItems({ settings, filter: {}, onTokens: async (tokens) => void stored.push(tokens), ...ctx }))
    results.push(result);
  const items = results.flatMap((r) => ('item' in r ? [r.item] : []));
  const errors = results.flatMap((r) => ('error' in r ? [r.error] : []));
  return { results, items, errors, stored };
}

const ids = (items: ConnectorItem[]) => items.map((item) => item.id);
const apiRequests = (fake: { requests: FakeRequest[] }, prefix: string) => fake.requests.filter((r) => r.path.startsWith(prefix));
const newestFirst = (mails: FakeMail[]) =>
  [...mails].sort((a, b) => new Date(b.date).getTime() - new Date(a.date).getTime()).map((m) => m.id);

describe('Gmail', () => {
  test('given 10 mails and a page size of 4, every page is followed and every mail decoded', async () => {
    google.mailbox = seedInbox({ count: 10, todos: 3 });
    const tokens = google.issueTokens();

    const { items, errors, stored } = await collect({ provider: 'gmail', tokens, pageSize: 4 });

    expect(errors).toEqual([]);
    expect(ids(items)).toEqual(newestFirst(google.mailbox));
    const lists = apiRequests(google, '/gmail/v1/users/me/messages').filter((r) => r.path.endsWith('/messages'));
    expect(lists.map((r) => r.query.maxResults)).toEqual(['4', '4', '4']);
    expect(lists[0].query.pageToken).toBeUndefined();
    expect(lists.slice(1).every((r) => r.query.pageToken)).toBe(true);
    expect(apiRequests(google, '/gmail/v1/users/me/messages/').map((r) => r.query.format)).toEqual(Array(10).fill('full'));
    expect(apiRequests(google, '/gmail/').every((r) => r.auth === `Bearer ${tokens.accessToken}`)).toBe(true);
    expect(apiRequests(google, '/gmail/v1/users/me/labels')).toHaveLength(1);

    const invoice = items.find((item) => item.text.includes(TODO_LINES[0]));
    expect(invoice).toEqual({
      id: 'm002',
      provider: 'gmail',
      kind: 'email',
      subject: 'Action needed #2',
      sender: 'Bob Stone <bob@globex.example>',
      date: '2025-03-03T09:01:00.000Z',
      text: `Hi,\n\n${TODO_LINES[0]} before Friday.\n\nThanks`,
      labels: ['INBOX', 'Work'],
    });
    expect(items.filter((item) => /TODO:/.test(item.text))).toHaveLength(3);
    expect(stored).toEqual([]);
  });

  test('given a filter and a last run, the search asks for those labels, senders and window only', async () => {
    google.mailbox = seedInbox({ count: 10, todos: 3 });
    const since = new Date('2025-03-03T09:03:30.000Z');
    const filter = { labels: ['Work'], senders: ['alice@acme.example', 'bob@globex.example'], dateRange: { to: '2025-03-03' } };

    const { items } = await collect({ provider: 'gmail', tokens: google.issueTokens(), filter, since });

    const endOfDay = Date.parse('2025-03-04T00:00:00.000Z') / 1000;
    const q = `label:Work from:(alice@acme.example OR bob@globex.example) after:${since.getTime() / 1000} before:${endOfDay}`;
    expect(apiRequests(google, '/gmail/v1/users/me/messages')[0].query.q).toBe(q);
    // Work mails are m002, m005, m008 (all from Bob); only those after 09:03:30 remain.
    expect(ids(items)).toEqual(['m008', 'm005']);
  });

  test('given several labels, they are searched as alternatives', async () => {
    google.mailbox = seedInbox({ count: 6, todos: 1 }).map((mail, index) => (index === 3 ? { ...mail, labels: ['Clients/ACME'] } : mail));

    const { items } = await collect({ provider: 'gmail', tokens: google.issueTokens(), filter: { labels: ['Work', 'Clients/ACME'] } });

    expect(gmailQuery({ labels: ['Work', 'Clients/ACME'] })).toBe('{label:Work label:Clients/ACME}');
    expect(ids(items)).toEqual(['m004', 'm002']);
  });

  test('given an HTML-only body inside a mixed multipart, the text comes from the stripped HTML and attachments are skipped', async () => {
    const html =
      '<html><head><style>p{color:red}</style></head><body><p>TODO: Call&nbsp;Dana &amp; Evan</p><ul><li>agenda</li></ul></body></html>';
    const b64 = (text: string) => Buffer.from(text).toString('base64url');
    google.mailbox = [
      {
        ...seedInbox({ count: 1 })[0],
        payload: {
          mimeType: 'multipart/mixed',
          parts: [
            {
              mimeType: 'multipart/alternative',
              parts: [
                {
                  mimeType: 'text/html',
                  headers: [{ name: 'Content-Type', value: 'text/html; charset=UTF-8' }],
                  body: { size: html.length, data: b64(html) },
                },
              ],
            },
            { mimeType: 'text/plain', filename: 'notes.txt', body: { size: 12, attachmentId: 'att-1' } },
          ],
        },
      },
    ];

    const { items } = await collect({ provider: 'gmail', tokens: google.issueTokens() });

    expect(items.map((item) => item.text)).toEqual(['TODO: Call Dana & Evan\n- agenda']);
  });

  test('given an expired access token, it is refreshed once, stored through onTokens, and the fetch completes', async () => {
    google.mailbox = seedInbox({ count: 10 });
    const tokens = google.issueTokens();
    google.expireAccessTokens();

    const { items, stored } = await collect({ provider: 'gmail', tokens, pageSize: 4 });

    expect(items).toHaveLength(10);
    const refreshes = google.requests.filter((r) => r.path === '/token');
    expect(refreshes).toHaveLength(1);
    expect(refreshes[0].form).toMatchObject({
      grant_type: 'refresh_token',
      refresh_token: tokens.refreshToken,
      client_id: google.clientId,
    });
    expect(stored).toHaveLength(1);
    expect(stored[0].accessToken).not.toBe(tokens.accessToken);
    expect(stored[0].refreshToken).toBe(tokens.refreshToken);
    expect(stored[0].expiresAt).toBeGreaterThan(Date.now());
    const gmailCalls = apiRequests(google, '/gmail/');
    expect(gmailCalls[0].auth).toBe(`Bearer ${tokens.accessToken}`);
    expect(gmailCalls.slice(1).every((r) => r.auth === `Bearer ${stored[0].accessToken}`)).toBe(true);
  });

  test('given the token expiring under concurrent message requests, they share one refresh', async () => {
    google.mailbox = seedInbox({ count: 8 });
    google.expireAccessTokensAfter(1); // the list call succeeds; the 4 parallel gets all meet a 401

    const { items, stored } = await collect({ provider: 'gmail', tokens: google.issueTokens() });

    expect(items).toHaveLength(8);
    expect(google.requests.filter((r) => r.path === '/token')).toHaveLength(1);
    expect(stored).toHaveLength(1);
  });

  test('given tokens whose expiresAt has passed, they are refreshed before the first call', async () => {
    google.mailbox = seedInbox({ count: 2 });
    const tokens = { ...google.issueTokens(), expiresAt: Date.now() - 1000 };

    const { items, stored } = await collect({ provider: 'gmail', tokens });

    expect(items).toHaveLength(2);
    expect(google.requests[0].path).toBe('/token');
    expect(stored).toHaveLength(1);
    expect(apiRequests(google, '/gmail/').every((r) => r.auth === `Bearer ${stored[0].accessToken}`)).toBe(true);
  });

  test('given a revoked refresh token, the fetch fails with ReauthRequiredError and nothing is stored', async () => {
    google.mailbox = seedInbox({ count: 3 });
    const tokens = google.issueTokens();
    google.expireAccessTokens();
    google.revokeRefreshTokens();

    const run = collect({ provider: 'gmail', tokens });

    await expect(run).rejects.toBeInstanceOf(ReauthRequiredError);
    const error = await run.catch((e: Error) => e);
    expect(String((error as Error).message)).not.toContain(tokens.refreshToken);
    expect(google.requests.filter((r) => r.path === '/token')).toHaveLength(1);
  });

  test('given one message that keeps failing, it yields an error and every other message still arrives', async () => {
    google.mailbox = seedInbox({ count: 10 });
    google.failMessageIds.add('m005');
    const tokens = google.issueTokens();

    const { items, errors } = await collect({ provider: 'gmail', tokens, pageSize: 4 });

    expect(ids(items)).toEqual(newestFirst(google.mailbox).filter((id) => id !== 'm005'));
    expect(errors).toEqual([{ id: 'm005', message: 'Gmail API answered 500 (backendError)' }]);
    // The SDK retried the failing message before giving up on it; the rest were fetched once.
    expect(apiRequests(google, '/gmail/v1/users/me/messages/m005')).toHaveLength(3);
    expect(apiRequests(google, '/gmail/v1/users/me/messages/m004')).toHaveLength(1);
  });

  test('given Gmail rate limiting, the fetch fails with ProviderRateLimitedError carrying Retry-After', async () => {
    google.mailbox = seedInbox({ count: 3 });
    google.throttleNext(1, 7);

    await expect(collect({ provider: 'gmail', tokens: google.issueTokens() })).rejects.toMatchObject({
      name: 'ProviderRateLimitedError',
      retryAfterMs: 7000,
    });
    expect(apiRequests(google, '/gmail/')).toHaveLength(1);
  });

  test('given an aborted signal mid-run, the fetch stops', async () => {
    google.mailbox = seedInbox({ count: 10 });
    const controller = new AbortController();
    const seen: FetchResult[] = [];

    const run = (async () => {
      for await (const result of fetchItems({
        provider: 'gmail',
        settings,
        tokens: google.issueTokens(),
        filter: {},
        onTokens: async () => {},
        signal: controller.signal,
        pageSize: 4,
      })) {
        seen.push(result);
        controller.abort();
      }
    })();

    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    expect(seen).toHaveLength(1);
  });
});

describe('Outlook', () => {
  test('given 10 mails and a page size of 4, the client follows each absolute @odata.nextLink', async () => {
    microsoft.mailbox = seedInbox({ count: 10, todos: 3 });
    const tokens = microsoft.issueTokens();

    const { items, errors } = await collect({ provider: 'outlook', tokens, pageSize: 4 });

    expect(errors).toEqual([]);
    expect(ids(items)).toEqual(newestFirst(microsoft.mailbox));
    const pages = apiRequests(microsoft, '/v1.0/me/messages');
    expect(pages.map((r) => [r.query.$top, r.query.$skip])).toEqual([
      ['4', undefined],
      ['4', '4'],
      ['4', '8'],
    ]);
    expect(
      pages.every(
        (r) => r.auth === `Bearer ${tokens.accessToken}` && r.query.$select === 'id,subject,from,receivedDateTime,body,categories',
      ),
    ).toBe(true);
    expect(items.find((item) => item.id === 'm002')).toEqual({
      id: 'm002',
      provider: 'outlook',
      kind: 'email',
      subject: 'Action needed #2',
      sender: 'Bob Stone <bob@globex.example>',
      date: '2025-03-03T09:01:00.000Z',
      text: `Hi,\n\n${TODO_LINES[0]} before Friday.\n\nThanks`,
      labels: ['Work'],
    });
  });

  test('given a filter and a last run, $filter carries the window, senders and categories', async () => {
    microsoft.mailbox = seedInbox({ count: 10, todos: 3 });
    const since = new Date('2025-03-03T09:03:30.000Z');

    const { items } = await collect({
      provider: 'outlook',
      tokens: microsoft.issueTokens(),
      since,
      pageSize: 1,
      filter: { senders: ['Bob@Globex.example'], labels: ['Work'] },
    });

    const filters = apiRequests(microsoft, '/v1.0/me/messages').map((r) => r.query.$filter);
    expect(filters[0]).toBe(
      "receivedDateTime ge 2025-03-03T09:03:30.000Z and (from/emailAddress/address eq 'bob@globex.example') and (categories/any(c:c eq 'Work'))",
    );
    expect(new Set(filters).size).toBe(1); // nextLinks keep the filter
    expect(ids(items)).toEqual(['m008', 'm005']);
  });

  test('given an expired access token, the rotated refresh token reaches onTokens', async () => {
    microsoft.mailbox = seedInbox({ count: 5 });
    const tokens = microsoft.issueTokens();
    microsoft.expireAccessTokens();

    const { items, stored } = await collect({ provider: 'outlook', tokens, pageSize: 2 });

    expect(items).toHaveLength(5);
    const refreshes = microsoft.requests.filter((r) => r.path === `/${microsoft.tenant}/oauth2/v2.0/token`);
    expect(refreshes.map((r) => r.form?.grant_type)).toEqual(['refresh_token']);
    expect(refreshes[0].form?.scope).toBe('offline_access Mail.Read');
    expect(stored).toHaveLength(1);
    expect(stored[0].refreshToken).not.toBe(tokens.refreshToken);
  });

  test('given a revoked refresh token, the fetch fails with ReauthRequiredError', async () => {
    const tokens = microsoft.issueTokens();
    microsoft.expireAccessTokens();
    microsoft.revokeRefreshTokens();

    await expect(collect({ provider: 'outlook', tokens })).rejects.toBeInstanceOf(ReauthRequiredError);
  });

  test('given Graph answers 429, the fetch fails at once with ProviderRateLimitedError from Retry-After', async () => {
    microsoft.mailbox = seedInbox({ count: 3 });
    microsoft.throttleNext(1, 12);

    const error = await collect({ provider: 'outlook', tokens: microsoft.issueTokens() }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ProviderRateLimitedError);
    expect(error).toMatchObject({ retryAfterMs: 12_000, provider: 'outlook' });
    // No retry by the SDK: the worker turns this into queue rate limiting.
    expect(apiRequests(microsoft, '/v1.0/')).toHaveLength(1);
  });

  test('given a 429 on a later page, the items already read were yielded before the error', async () => {
    microsoft.mailbox = seedInbox({ count: 4 });
    const seen: FetchResult[] = [];
    const tokens = microsoft.issueTokens();

    const run = (async () => {
      for await (const result of fetchItems({ provider: 'outlook', settings, tokens, filter: {}, onTokens: async () => {}, pageSize: 2 })) {
        seen.push(result);
        if (seen.length === 2) microsoft.throttleNext(1, 3);
      }
    })();

    await expect(run).rejects.toMatchObject({ retryAfterMs: 3000 });
    expect(seen).toHaveLength(2);
  });
});

describe('Teams', () => {
  test('given two chats, every chat and every page of its messages is read, HTML stripped', async () => {
    microsoft.chats = seedChats({ chats: 2, perChat: 3, todos: 1 });
    microsoft.chats[0].messages.push({
      id: '99',
      from: 'System',
      html: '<systemEventMessage/>',
      createdDateTime: '2025-03-03T11:00:00Z',
      messageType: 'systemEventMessage',
    });

    const { items, errors } = await collect({ provider: 'teams', tokens: microsoft.issueTokens(), pageSize: 2 });

    expect(errors).toEqual([]);
    expect(items).toHaveLength(6);
    expect(items.find((item) => item.text.startsWith('TODO'))).toEqual({
      id: `19:chat1@thread.v2/${microsoft.chats[0].messages[1].id}`,
      provider: 'teams',
      kind: 'chat_message',
      sender: 'Evan Cho',
      date: '2025-03-03T10:01:00.000Z',
      text: 'TODO: Prepare the demo for chat 1',
      channel: 'Project A',
    });
    expect(items.filter((item) => item.channel === 'Project B').map((item) => item.text)).toEqual([
      'Message 3 in chat 2 & more',
      'Message 2 in chat 2 & more',
      'Message 1 in chat 2 & more',
    ]);
    const chat1Pages = apiRequests(microsoft, `/v1.0/chats/${encodeURIComponent('19:chat1@thread.v2')}/messages`);
    expect(chat1Pages.length).toBe(2);
    expect(chat1Pages[1].query.$skiptoken).toBeTruthy();
  });

  test('given a last run, only messages changed since then are asked for and returned', async () => {
    microsoft.chats = seedChats({ chats: 2, perChat: 3 });
    const since = new Date('2025-03-03T10:03:30.000Z');

    const { items } = await collect({ provider: 'teams', tokens: microsoft.issueTokens(), since });

    const messageRequests = microsoft.requests.filter((r) => /\/chats\/.+\/messages$/.test(r.path));
    expect(messageRequests.map((r) => [r.query.$filter, r.query.$orderby])).toEqual(
      Array(2).fill(['lastModifiedDateTime gt 2025-03-03T10:03:30.000Z', 'lastModifiedDateTime desc']),
    );
    expect(items.map((item) => item.date)).toEqual(['2025-03-03T10:05:00.000Z', '2025-03-03T10:04:00.000Z']);
  });

  test('given one chat that cannot be read, it yields an error and the other chats still arrive', async () => {
    microsoft.chats = seedChats({ chats: 3, perChat: 2 });
    microsoft.failChatIds.add('19:chat2@thread.v2');

    const { items, errors } = await collect({ provider: 'teams', tokens: microsoft.issueTokens() });

    expect(errors).toEqual([
      { id: '19:chat2@thread.v2', message: 'Teams chat could not be read: Microsoft Graph answered 403 (Forbidden)' },
    ]);
    expect([...new Set(items.map((item) => item.channel))].sort()).toEqual(['Project A', 'Project C']);
    expect(items).toHaveLength(4);
  });

  test('given senders, only their messages are returned', async () => {
    microsoft.chats = seedChats({ chats: 1, perChat: 4 });

    const { items } = await collect({ provider: 'teams', tokens: microsoft.issueTokens(), filter: { senders: ['dana lee'] } });

    expect(items.map((item) => item.sender)).toEqual(['Dana Lee', 'Dana Lee']);
  });
});

describe('Teams channels', () => {
  const channelPath = (teamId: string, channelId: string) =>
    `/v1.0/teams/${encodeURIComponent(teamId)}/channels/${encodeURIComponent(channelId)}/messages/delta`;

  test('given channels, every joined team, channel and page of channel messages is read after the chats', async () => {
    microsoft.chats = seedChats({ chats: 1, perChat: 1 });
    microsoft.teams = seedTeams({ teams: 2, channels: 2, perChannel: 3 });
    const [team] = microsoft.teams;
    const [general] = team.channels;
    general.messages.push({
      id: '1',
      from: 'Bot',
      html: '<systemEventMessage/>',
      createdDateTime: '2025-03-04T12:00:00Z',
      messageType: 'systemEventMessage',
    });
    general.messages.push({ id: '2', from: 'Dana Lee', html: '<p>gone</p>', createdDateTime: '2025-03-04T12:01:00Z', deleted: true });

    const { items, errors } = await collect({
      provider: 'teams',
      tokens: microsoft.issueTokens(),
      pageSize: 2,
      filter: { channels: true },
    });

    expect(errors).toEqual([]);
    expect(items[0].kind).toBe('chat_message');
    const channelItems = items.filter((item) => item.kind === 'channel_message');
    expect(channelItems).toHaveLength(12);
    expect(channelItems.find((item) => item.text.startsWith('Action'))).toEqual({
      id: `${team.id}/${general.id}/${general.messages[0].id}`,
      provider: 'teams',
      kind: 'channel_message',
      sender: 'Dana Lee',
      date: new Date(general.messages[0].createdDateTime).toISOString(),
      text: 'Action: ship the release of team 1',
      channel: 'Team 1 / General',
    });
    expect([...new Set(channelItems.map((item) => item.channel))]).toEqual([
      'Team 1 / General',
      'Team 1 / Channel 2',
      'Team 2 / General',
      'Team 2 / Channel 2',
    ]);
    // Five rows (three posts, a system event, a deleted post) at two a page: three pages, the last with a deltaLink.
    const generalPages = apiRequests(microsoft, channelPath(team.id, general.id));
    expect(generalPages).toHaveLength(3);
    expect(generalPages[1].query.$skiptoken).toBeTruthy();
  });

  test('given a last run, each channel delta asks only for messages changed since then, without $orderby', async () => {
    microsoft.teams = seedTeams({ teams: 1, channels: 2, perChannel: 3 });
    const [team] = microsoft.teams;
    const since = new Date(team.channels[1].messages[0].createdDateTime);
    team.channels[0].messages[0].lastModifiedDateTime = new Date(since.getTime() + 3_600_000);

    const { items, errors } = await collect({ provider: 'teams', tokens: microsoft.issueTokens(), since, filter: { channels: true } });

    expect(errors).toEqual([]);
    const deltaRequests = microsoft.requests.filter((r) => r.path.endsWith('/messages/delta'));
    expect(deltaRequests.map((r) => [r.query.$filter, r.query.$orderby])).toEqual(
      Array(2).fill([`lastModifiedDateTime gt ${since.toISOString()}`, undefined]),
    );
    // The edited post of the first channel and the two later posts of the second.
    expect(items.map((item) => item.text).sort()).toEqual([
      'Action: ship the release of team 1',
      'Post 2 in channel 2',
      'Post 3 in channel 2',
    ]);
  });

  test('given a channel that cannot be read, it yields one error and the other channels still arrive', async () => {
    microsoft.teams = seedTeams({ teams: 1, channels: 3, perChannel: 1 });
    const [team] = microsoft.teams;
    microsoft.failChannelIds.add(team.channels[1].id);

    const { items, errors } = await collect({ provider: 'teams', tokens: microsoft.issueTokens(), filter: { channels: true } });

    expect(errors).toEqual([
      { id: `${team.id}/${team.channels[1].id}`, message: 'Teams channel could not be read: Microsoft Graph answered 403 (Forbidden)' },
    ]);
    expect(items.map((item) => item.channel)).toEqual(['Team 1 / General', 'Team 1 / Channel 3']);
  });

  test('given a token without the channel scopes, the team list is one error and the chats still arrive', async () => {
    microsoft.chats = seedChats({ chats: 1, perChat: 2 });
    microsoft.teams = seedTeams();
    microsoft.forbidJoinedTeams = true;

    const { items, errors } = await collect({ provider: 'teams', tokens: microsoft.issueTokens(), filter: { channels: true } });

    expect(items.map((item) => item.kind)).toEqual(['chat_message', 'chat_message']);
    expect(errors).toEqual([
      { id: 'joinedTeams', message: 'Teams channels could not be listed: Microsoft Graph answered 403 (Forbidden)' },
    ]);
  });

  test('given an agent that does not ask for channels, no team is listed', async () => {
    microsoft.chats = seedChats({ chats: 1, perChat: 1 });
    microsoft.teams = seedTeams();

    const { items } = await collect({ provider: 'teams', tokens: microsoft.issueTokens() });

    expect(items).toHaveLength(1);
    expect(apiRequests(microsoft, '/v1.0/me/joinedTeams')).toEqual([]);
    expect(apiRequests(microsoft, '/v1.0/teams/')).toEqual([]);
  });

  test('given channels, consent, code exchange and refresh ask for the channel scopes; a chats-only credential never does', async () => {
    const redirectUri = 'http://127.0.0.1:3000/api/v1/oauth/teams/callback';
    const channelScopes = 'offline_access Chat.Read Team.ReadBasic.All Channel.ReadBasic.All ChannelMessage.Read.All';

    const consent = new URL(authorizeUrl('teams', { settings, state: 's', redirectUri, channels: true }));
    const tokens = await exchangeCode('teams', { settings, code: microsoft.issueCode({ redirectUri }), redirectUri, channels: true });
    microsoft.expireAccessTokens();
    microsoft.teams = seedTeams({ teams: 1, channels: 1, perChannel: 1 });
    const { items, stored } = await collect({ provider: 'teams', tokens, filter: { channels: true } });
    const chatsOnly = await exchangeCode('teams', { settings, code: microsoft.issueCode({ redirectUri }), redirectUri });

    expect(consent.searchParams.get('scope')).toBe(channelScopes);
    expect(tokens.scope).toBe(channelScopes);
    const tokenForms = microsoft.requests.filter((r) => r.form).map((r) => [r.form!.grant_type, r.form!.scope]);
    expect(tokenForms).toEqual([
      ['authorization_code', channelScopes],
      ['refresh_token', channelScopes],
      ['authorization_code', 'offline_access Chat.Read'],
    ]);
    expect(stored).toHaveLength(1);
    expect(items.map((item) => item.kind)).toEqual(['channel_message']);
    expect(chatsOnly.scope).toBe('offline_access Chat.Read');
  });
});

describe('OAuth clients', () => {
  const redirectUri = 'http://127.0.0.1:3000/api/v1/oauth/gmail/callback';

  test('authorizeUrl for Gmail asks for read-only mail, offline access and consent, with our state and redirect', () => {
    const url = new URL(authorizeUrl('gmail', { settings, state: 'state-123', redirectUri }));

    expect(`${url.origin}${url.pathname}`).toBe(`${google.url}/o/oauth2/v2/auth`);
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      client_id: google.clientId,
      redirect_uri: redirectUri,
      response_type: 'code',
      scope: 'https://www.googleapis.com/auth/gmail.readonly',
      access_type: 'offline',
      prompt: 'consent',
      state: 'state-123',
    });
  });

  test.each([
    ['outlook', 'offline_access Mail.Read'],
    ['teams', 'offline_access Chat.Read'],
  ] as const)('authorizeUrl for %s points at the tenant authorize endpoint with its scopes', (provider, scope) => {
    const url = new URL(authorizeUrl(provider, { settings, state: 's', redirectUri }));

    expect(`${url.origin}${url.pathname}`).toBe(`${microsoft.url}/common/oauth2/v2.0/authorize`);
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      client_id: microsoft.clientId,
      scope,
      state: 's',
      redirect_uri: redirectUri,
      response_type: 'code',
    });
  });

  test('exchangeCode for Gmail trades a code once for tokens with a refresh token', async () => {
    const code = google.issueCode({ redirectUri });

    const tokens = await exchangeCode('gmail', { settings, code, redirectUri });

    expect(tokens).toMatchObject({
      accessToken: expect.stringMatching(/^ya29-at-/),
      refreshToken: expect.stringMatching(/^ya29-rt-/),
      tokenType: 'Bearer',
      scope: 'https://www.googleapis.com/auth/gmail.readonly',
    });
    expect(tokens.expiresAt).toBeGreaterThan(Date.now() + 3500_000);
    expect(google.requests.at(-1)?.form).toMatchObject({
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUri,
      client_id: google.clientId,
      client_secret: google.clientSecret,
    });
    await expect(exchangeCode('gmail', { settings, code, redirectUri })).rejects.toBeInstanceOf(ReauthRequiredError);
  });

  test('exchangeCode for Teams sends the scopes and returns tokens that Graph accepts', async () => {
    const code = microsoft.issueCode({ redirectUri });
    microsoft.chats = seedChats({ chats: 1, perChat: 1 });

    const tokens = await exchangeCode('teams', { settings, code, redirectUri });
    const { items } = await collect({ provider: 'teams', tokens });

    expect(microsoft.requests[0].form).toMatchObject({ grant_type: 'authorization_code', scope: 'offline_access Chat.Read' });
    expect(tokens.refreshToken).toBeTruthy();
    expect(items).toHaveLength(1);
  });

  test('given a wrong client secret, exchangeCode fails naming the error code but no secret', async () => {
    const code = google.issueCode({ redirectUri });
    const wrong = { ...settings, google: { ...settings.google, clientSecret: 'not-the-secret' } };

    const error = await exchangeCode('gmail', { settings: wrong, code, redirectUri }).catch((e: Error) => e);

    expect(error).toBeInstanceOf(ConnectorError);
    expect((error as Error).message).toBe('Google token endpoint answered 401 (invalid_client)');
  });

  test('given no client id, the provider is reported as not configured', () => {
    const bare = { ...settings, microsoft: { ...settings.microsoft, clientId: undefined } };

    expect(() => authorizeUrl('outlook', { settings: bare, state: 's', redirectUri })).toThrow(ProviderNotConfiguredError);
  });
});
