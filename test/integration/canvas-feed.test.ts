import { createSwitchboardClient, type CanvasFeedEvent } from '@switchboard/client';
import { resolveJwtSecret } from '../../src/auth/jwt-secret';
import { signAccessToken, type AccessClaims } from '../../src/auth/tokens';
import { startTestApp, type TestApp } from '../support/app';
import { addMember, createCanvas, registerUser, request, type TestUser } from '../support/http';
import { readSse, type SseMessage } from '../support/sse';

/**
 * `GET /canvases/:id/events`: a canvas room's events over SSE, for clients without Socket.IO. A
 * member reads every sequenced room event with its seq as the id, resumes after `Last-Event-ID`,
 * and is cut off (`closed`) when signed out or removed; anyone else gets the 404 a join gets.
 */
describe('the canvas room feed', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ env: { STREAM_CHECK_INTERVAL_MS: '200' } });
  });
  afterAll(() => t?.stop());

  const feedUrl = (canvasId: string) => `${t.api}/canvases/${canvasId}/events`;
  const addText = async (user: TestUser, canvasId: string, text: string) => {
    const res = await request('POST', `${t.api}/canvases/${canvasId}/blocks`, {
      token: user.accessToken,
      body: { type: 'text', content: { text } },
    });
    expect(res.status).toBe(201);
    return res.body.block.id as string;
  };

  test('a member reads ready, then each room event as it happens, with its seq as the id', async () => {
    const owner = await registerUser(t.api, 'FeedOwner');
    const canvasId = await createCanvas(t.api, owner);
    let blockId: Promise<string> | undefined;
    const result = await readSse(feedUrl(canvasId), {
      token: owner.accessToken,
      onMessage: (message) => {
        if (message.event === 'ready') blockId = addText(owner, canvasId, 'seen on the feed');
      },
      until: (message) => message.event === 'block_added',
    });
    expect(result.status).toBe(200);
    const [ready, added] = result.messages;
    expect(ready).toMatchObject({ event: 'ready', data: { type: 'ready', canvasId } });
    expect(added.event).toBe('block_added');
    expect(added.data).toMatchObject({ canvasId, block: { id: await blockId, content: { text: 'seen on the feed' } } });
    expect(Number(added.id)).toBe(added.data.seq);
    expect(Number(added.id)).toBeGreaterThan(Number(ready.id));
  });

  test('after Last-Event-ID it first sends what the client missed, in order', async () => {
    const owner = await registerUser(t.api, 'FeedResume');
    const canvasId = await createCanvas(t.api, owner);
    const first = await readSse(feedUrl(canvasId), { token: owner.accessToken, until: (m) => m.event === 'ready' });
    const missed = [await addText(owner, canvasId, 'one'), await addText(owner, canvasId, 'two')];
    const resumed = await readSse(feedUrl(canvasId), {
      token: owner.accessToken,
      headers: { 'Last-Event-ID': first.messages[0].id! },
      until: (m) => m.event === 'block_added' && m.data.block.id === missed[1],
    });
    const added = resumed.messages.filter((m) => m.event === 'block_added');
    expect(added.map((m) => m.data.block.id)).toEqual(missed);
    // The query parameter does the same for clients that cannot set headers.
    const byQuery = await readSse(`${feedUrl(canvasId)}?lastEventId=${first.messages[0].id!}`, {
      token: owner.accessToken,
      until: (m) => m.event === 'block_added' && m.data.block.id === missed[1],
    });
    expect(byQuery.messages.filter((m) => m.event === 'block_added').map((m) => m.data.block.id)).toEqual(missed);
  });

  test('a Last-Event-ID the log cannot answer (ahead of it) says resync', async () => {
    const owner = await registerUser(t.api, 'FeedResync');
    const canvasId = await createCanvas(t.api, owner);
    await addText(owner, canvasId, 'something');
    const result = await readSse(feedUrl(canvasId), {
      token: owner.accessToken,
      headers: { 'Last-Event-ID': '999999' },
      until: (m) => m.event === 'resync',
    });
    expect(result.messages.at(-1)).toMatchObject({ event: 'resync', data: { canvasId } });
    expect(Number(result.messages.at(-1)!.id)).toBe(result.messages.at(-1)!.data.lastSeq);
  });

  test('a stranger, a malformed id and no credential are refused before anything streams', async () => {
    const owner = await registerUser(t.api, 'FeedPrivate');
    const stranger = await registerUser(t.api, 'FeedStranger');
    const canvasId = await createCanvas(t.api, owner);
    const asStranger = await readSse(feedUrl(canvasId), { token: stranger.accessToken });
    expect(asStranger).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    const malformed = await readSse(feedUrl('not-a-uuid'), { token: owner.accessToken });
    expect(malformed.status).toBe(404);
    const anonymous = await readSse(feedUrl(canvasId), {});
    expect(anonymous.status).toBe(401);
    const forged = await readSse(feedUrl(canvasId), { token: `${owner.accessToken.slice(0, -4)}AAAA` });
    expect(forged.status).toBe(401);
  });

  test('signing out ends an open feed with closed session_revoked', async () => {
    const owner = await registerUser(t.api, 'FeedSignOut');
    const canvasId = await createCanvas(t.api, owner);
    const result = await readSse(feedUrl(canvasId), {
      token: owner.accessToken,
      onMessage: (message) => {
        if (message.event === 'ready') void request('POST', `${t.api}/auth/logout`, { body: { refreshToken: owner.refreshToken } });
      },
      timeoutMs: 10_000,
    });
    expect(result.messages.at(-1)).toMatchObject({ event: 'closed', data: { canvasId, reason: 'session_revoked' } });
  });

  test('a member removed while reading is cut off with closed not_a_member, and sees nothing after', async () => {
    const owner = await registerUser(t.api, 'FeedRemover');
    const member = await registerUser(t.api, 'FeedRemoved');
    const canvasId = await createCanvas(t.api, owner);
    await addMember(t.api, owner, canvasId, member, 'viewer');
    const result = await readSse(feedUrl(canvasId), {
      token: member.accessToken,
      onMessage: (message) => {
        if (message.event !== 'ready') return;
        void request('DELETE', `${t.api}/canvases/${canvasId}/members/${member.id}`, { token: owner.accessToken }).then(() =>
          addText(owner, canvasId, 'after the removal'),
        );
      },
      timeoutMs: 10_000,
    });
    const last: SseMessage = result.messages.at(-1)!;
    expect(last).toMatchObject({ event: 'closed', data: { reason: 'not_a_member' } });
    expect(result.messages.some((m) => m.event === 'block_added' && m.data.block.content.text === 'after the removal')).toBe(false);
  });

  test('an access token that expires mid-feed ends the connection with token_expired', async () => {
    const owner = await registerUser(t.api, 'FeedExpiry');
    const canvasId = await createCanvas(t.api, owner);
    const shortLived = await shortLivedToken(owner.accessToken, 2);
    const result = await readSse(feedUrl(canvasId), { token: shortLived, timeoutMs: 10_000 });
    expect(result.messages.at(-1)).toMatchObject({ event: 'closed', data: { reason: 'token_expired' } });
  });

  test('the TypeScript client follows the feed and reconnects with a fresh token when its token expires', async () => {
    const owner = await registerUser(t.api, 'FeedClient');
    const canvasId = await createCanvas(t.api, owner);
    const sb = createSwitchboardClient({ baseUrl: t.url });
    sb.setTokens({ accessToken: await shortLivedToken(owner.accessToken, 2), refreshToken: owner.refreshToken });
    const controller = new AbortController();
    const seen: CanvasFeedEvent[] = [];
    const texts = ['before expiry', 'after expiry'];
    const reconnects: string[] = [];
    const feed = sb.canvases.feed(canvasId, {
      signal: controller.signal,
      onReconnect: (info) => reconnects.push(info.lastEventId ?? ''),
    });
    const timer = setTimeout(() => controller.abort(new Error('feed timed out')), 20_000);
    try {
      for await (const event of feed) {
        seen.push(event);
        const added = seen.filter((e) => e.event === 'block_added').length;
        if (event.event === 'ready' && added === 0 && seen.length === 1) await addText(owner, canvasId, texts[0]);
        // The second ready comes after the reconnection the expiry caused.
        if (event.event === 'ready' && seen.length > 1) await addText(owner, canvasId, texts[1]);
        if (added === 2) break;
      }
    } finally {
      clearTimeout(timer);
    }
    const added = seen.filter((e): e is Extract<CanvasFeedEvent, { event: 'block_added' }> => e.event === 'block_added');
    expect(added.map((e) => (e.payload.block.content as { text: string }).text)).toEqual(texts);
    expect(reconnects.length).toBeGreaterThanOrEqual(1);
    expect(sb.tokens().accessToken).not.toBe(owner.accessToken);
  }, 30_000);

  /** The user's own access token, signed again to expire in `seconds` (same session). */
  async function shortLivedToken(token: string, seconds: number): Promise<string> {
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as AccessClaims & Record<string, unknown>;
    const { config } = t.app;
    return signAccessToken(
      {
        secret: resolveJwtSecret(config.auth.jwtSecret, config.data.dir),
        issuer: config.auth.issuer,
        audience: config.auth.audience,
        accessTokenTtlSeconds: seconds,
      },
      { sub: claims.sub, email: claims.email, name: claims.name, tier: claims.tier, role: claims.role, sid: claims.sid },
    );
  }
});
