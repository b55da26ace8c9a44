import { sql } from 'drizzle-orm';
import { randomBytes, randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { z } from 'zod';
import { AdminDirectory } from '../../src/auth/admins';
import { SecretBox } from '../../src/connectors/secret-box';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { serveOAuthMcpTools } from '../support/mcp-oauth-server';
import { readSse, type SseMessage } from '../support/sse';

/** A local MCP server that accepts only OAuth, with one safe tool that names the account whose token called it. */
async function startOAuthServer() {
  return serveOAuthMcpTools('shop', (server, account) => {
    server.registerTool(
      'lookup_order',
      { description: 'Finds an order by id', inputSchema: { orderId: z.string() } },
      async ({ orderId }) => ({
        content: [{ type: 'text', text: `order ${orderId} shipped (account ${account()})` }],
      }),
    );
  });
}

/** A server that wants OAuth but points its challenge at a private address no operator allowed, and publishes no metadata itself. */
async function startMisleadingServer() {
  const app = express();
  app.post('/mcp', (_req, res) => {
    res.setHeader('WWW-Authenticate', 'Bearer resource_metadata="http://10.0.0.1/.well-known/oauth-protected-resource"');
    res.status(401).json({ error: 'invalid_token' });
  });
  const http: Server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  const origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  return { origin, url: `${origin}/mcp`, close: () => new Promise<void>((resolve) => http.close(() => resolve())) };
}

const KEY = randomBytes(32).toString('base64');

describe('MCP client: OAuth sign-in to registered MCP servers', () => {
  let t: TestApp;
  let shop: Awaited<ReturnType<typeof startOAuthServer>>;
  let misleading: Awaited<ReturnType<typeof startMisleadingServer>>;
  let ada: TestUser;
  let bob: TestUser;

  beforeAll(async () => {
    [shop, misleading] = await Promise.all([startOAuthServer(), startMisleadingServer()]);
    t = await startTestApp({
      env: { FLOW_HTTP_PRIVATE_ORIGINS: `${shop.origin},${misleading.origin}`, FLOW_HTTP_TIMEOUT_MS: '5000', OAUTH_ENCRYPTION_KEY: KEY },
    });
    [ada, bob] = await Promise.all([registerUser(t.api, 'Ada'), registerUser(t.api, 'Bob')]);
  }, 60_000);
  afterAll(async () => {
    await t.stop();
    await Promise.all([shop.close(), misleading.close()]);
  });
  afterEach(() => {
    shop.state.expiresIn = 3600;
  });

  const uniqueName = (prefix: string) => `${prefix}_${randomUUID().replace(/-/g, '').slice(0, 6)}`;
  const body = (name: string) => ({ name, url: shop.url, allowedTools: ['lookup_order'], safeTools: ['lookup_order'] });
  /** The `name=value` of the binding cookie a response set. */
  const bindingOf = (res: { headers: Headers }) => {
    const cookie = res.headers.getSetCookie().find((line) => line.startsWith('sb_mcp_'));
    expect(cookie).toMatch(/HttpOnly/i);
    return cookie!.split(';')[0];
  };
  /** The person opens the authorization URL and signs in as `account`: where the server sends the browser back, at this app. */
  const authorize = async (authorizationUrl: string, account: string) => {
    const url = new URL(authorizationUrl);
    url.searchParams.set('login', account);
    const res = await fetch(url, { redirect: 'manual' });
    expect(res.status).toBe(302);
    const back = new URL(res.headers.get('location')!);
    expect(back.pathname).toBe('/api/v1/mcp-oauth/callback');
    return `${new URL(t.api).origin}${back.pathname}${back.search}`;
  };
  const callback = (url: string, cookie?: string) => request('GET', url, { headers: cookie ? { cookie } : {} });
  /** Registers `name` for `user` and signs them in as `account`. */
  const registerSignedIn = async (user: TestUser, name: string, account: string) => {
    const created = await request('POST', `${t.api}/mcp-servers`, { token: user.accessToken, body: body(name) });
    expect(created.status).toBe(201);
    const back = await callback(await authorize(created.body.signIn.authorizationUrl, account), bindingOf(created));
    expect(back.status).toBe(200);
    return created.body.mcpServer.id as string;
  };
  const grantOf = async (serverId: string, userId: string) => {
    const result = await t.app.repos.db.execute(
      sql`select status, sealed, state_hash, expires_at from mcp_oauth_grants where server_id = ${serverId} and user_id = ${userId}`,
    );
    return (result as unknown as { rows: Array<{ status: string; sealed: string; state_hash: string | null; expires_at: Date | null }> })
      .rows[0];
  };
  /**
   * Runs an agentflow node that names `tool`; the scripted model calls it when it is offered. The
   * tool events of the run, and whether the model was offered the tool.
   */
  const runFlow = async (user: TestUser, tool: string) => {
    const flow = await request('POST', `${t.api}/flows`, {
      token: user.accessToken,
      body: {
        type: 'agentflow',
        name: 'Shop',
        definition: { nodes: [{ id: 'a', prompt: 'Where is order 42?', tools: [tool] }], output: 'a' },
      },
    });
    expect(flow.status).toBe(201);
    const asked = t.llm.chatRequests().length;
    // The model calls the tool if offered (else the call is refused as unknown), then answers.
    t.llm.push({ toolCalls: [{ name: tool, args: { orderId: '42' } }] }, { text: 'Done.' });
    const { messages } = await readSse(`${t.api}/flows/${flow.body.flow.id}/execute/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { input: {} },
      timeoutMs: 30_000,
    });
    expect(messages.at(-1)?.event).toBe('execution_completed');
    const first = t.llm.chatRequests()[asked];
    const offered = ((first?.tools ?? []) as Array<{ function: { name: string } }>).some((spec) => spec.function.name === tool);
    const calls = messages
      .filter((m: SseMessage) => m.event === 'tool_called')
      .map((m) => m.data as { tool: string; ok: boolean; result?: string });
    return { offered, calls };
  };

  test('register → sign in through the authorization server → an agentflow node calls the OAuth-only server’s tool', async () => {
    const name = uniqueName('oa');
    const created = await request('POST', `${t.api}/mcp-servers`, { token: ada.accessToken, body: body(name) });
    expect(created.status).toBe(201);
    expect(created.body.mcpServer.oauth).toEqual({ status: 'pending', expiresAt: null });
    const authorizationUrl = new URL(created.body.signIn.authorizationUrl);
    expect(authorizationUrl.origin).toBe(shop.origin);
    expect(authorizationUrl.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorizationUrl.searchParams.get('resource')).toBe(shop.url);
    expect(authorizationUrl.searchParams.get('redirect_uri')).toMatch(/\/api\/v1\/mcp-oauth\/callback$/);
    const cookie = bindingOf(created);
    const id = created.body.mcpServer.id as string;

    const back = await callback(await authorize(authorizationUrl.href, 'ada-at-shop'), cookie);
    expect(back.status).toBe(200);
    expect(back.body).toEqual({ signedIn: true, mcpServerId: id, name });
    expect(JSON.stringify(back.body)).not.toMatch(/at-|rt-/);

    const listed = await request('GET', `${t.api}/mcp-servers`, { token: ada.accessToken });
    const view = listed.body.mcpServers.find((s: { id: string }) => s.id === id);
    expect(view.oauth.status).toBe('signed_in');
    expect(JSON.stringify(listed.body)).not.toMatch(/"(at|rt)-[0-9a-f]{32}"/);
    const grant = await grantOf(id, ada.id);
    expect(grant.sealed).toMatch(/^v1\./);
    expect(grant.sealed).not.toMatch(/at-[0-9a-f]{32}/);

    const tools = await request('GET', `${t.api}/mcp-servers/${id}/tools`, { token: ada.accessToken });
    expect(tools.body.tools).toEqual([expect.objectContaining({ name: 'lookup_order', state: 'pinned', offered: true })]);

    const { offered, calls } = await runFlow(ada, `mcp__${name}__lookup_order`);
    expect(offered).toBe(true);
    expect(calls).toEqual([expect.objectContaining({ tool: `mcp__${name}__lookup_order`, ok: true })]);
    expect(calls[0].result).toBe('order 42 shipped (account ada-at-shop)');
  }, 60_000);

  test('a refused or forged callback writes nothing; the real one from the same browser still completes once', async () => {
    const name = uniqueName('cb');
    const created = await request('POST', `${t.api}/mcp-servers`, { token: ada.accessToken, body: body(name) });
    const id = created.body.mcpServer.id as string;
    const cookie = bindingOf(created);
    const real = await authorize(created.body.signIn.authorizationUrl, 'ada-at-shop');
    const before = await grantOf(id, ada.id);
    const state = new URL(real).searchParams.get('state')!;
    const code = new URL(real).searchParams.get('code')!;
    const callbackUrl = `${new URL(t.api).origin}/api/v1/mcp-oauth/callback`;

    // A made-up state, the real state from another browser (no binding cookie, or Bob's guess), a declined consent.
    const forged = await callback(`${callbackUrl}?code=${code}&state=${randomUUID()}`, cookie);
    expect(forged.status).toBe(400);
    expect(forged.body.error.code).toBe('invalid_state');
    const otherBrowser = await callback(real);
    expect(otherBrowser.body.error.code).toBe('invalid_state');
    const wrongCookie = await callback(real, `${cookie.split('=')[0]}=${randomUUID()}`);
    expect(wrongCookie.body.error.code).toBe('invalid_state');
    const denied = await callback(`${callbackUrl}?error=access_denied&state=${state}`, cookie);
    expect(denied.body.error.code).toBe('oauth_denied');
    const missing = await callback(`${callbackUrl}?state=${state}`, cookie);
    expect(missing.status).toBe(400);
    expect(await grantOf(id, ada.id)).toEqual(before);

    // A browser that navigated here is sent back to the console with the error.
    const browser = await fetch(`${callbackUrl}?code=x&state=${randomUUID()}`, { headers: { accept: 'text/html' }, redirect: 'manual' });
    expect(browser.status).toBe(303);
    expect(browser.headers.get('location')).toBe('/#/flows?mcpOAuthError=invalid_state');

    expect((await callback(real, cookie)).status).toBe(200);
    expect((await grantOf(id, ada.id)).status).toBe('signed_in');
    // Replayed: the state was used.
    expect((await callback(real, cookie)).body.error.code).toBe('invalid_state');
  }, 60_000);

  test('tokens are refreshed before they expire; a refused refresh asks for a new sign-in, which restores the tools', async () => {
    const name = uniqueName('rf');
    shop.state.expiresIn = 30; // within the refresh margin: every use refreshes first
    const id = await registerSignedIn(ada, name, 'ada-at-shop');
    const sealedBefore = (await grantOf(id, ada.id)).sealed;
    const refreshes = shop.state.refreshes;
    const { calls } = await runFlow(ada, `mcp__${name}__lookup_order`);
    expect(calls[0]).toMatchObject({ ok: true });
    expect(shop.state.refreshes).toBeGreaterThan(refreshes);
    expect((await grantOf(id, ada.id)).sealed).not.toBe(sealedBefore);

    // The server ends the tokens early: the 401 is met with one refresh and the call goes through.
    shop.state.expiresIn = 3600;
    await runFlow(ada, `mcp__${name}__lookup_order`); // leaves a long-lived token stored
    shop.revokeAccessTokens();
    const afterRevoke = shop.state.refreshes;
    expect((await runFlow(ada, `mcp__${name}__lookup_order`)).calls[0]).toMatchObject({ ok: true });
    expect(shop.state.refreshes).toBe(afterRevoke + 1);

    // The refresh tokens end too: the node is told, the server view says sign in again.
    shop.revokeAccessTokens();
    shop.revokeRefreshTokens();
    const refused = await runFlow(ada, `mcp__${name}__lookup_order`);
    expect(refused.offered).toBe(false);
    const view = (await request('GET', `${t.api}/mcp-servers`, { token: ada.accessToken })).body.mcpServers.find(
      (s: { id: string }) => s.id === id,
    );
    expect(view.oauth.status).toBe('sign_in_required');

    const again = await request('POST', `${t.api}/mcp-servers/${id}/oauth/authorize`, { token: ada.accessToken });
    expect(again.status).toBe(200);
    const registrations = shop.state.registrations;
    expect((await callback(await authorize(again.body.signIn.authorizationUrl, 'ada-at-shop'), bindingOf(again))).status).toBe(200);
    expect(shop.state.registrations).toBe(registrations); // the client registered at the first sign-in is reused
    expect((await runFlow(ada, `mcp__${name}__lookup_order`)).calls[0]).toMatchObject({ ok: true });
  }, 90_000);

  test('each user signs in to a shared server with their own account; nobody uses another’s tokens', async () => {
    const admin = await registerUser(t.api, 'Operator');
    await new AdminDirectory(t.app.repos.admins).grant(admin.email);
    const name = uniqueName('sh');
    const shared = await request('POST', `${t.api}/admin/mcp-servers`, { token: admin.accessToken, body: body(name) });
    expect(shared.status).toBe(201);
    const id = shared.body.mcpServer.id as string;
    const adminBack = await callback(await authorize(shared.body.signIn.authorizationUrl, 'operator-at-shop'), bindingOf(shared));
    expect(adminBack.status).toBe(200);

    // Ada signs in with her own account; Bob has not: he is offered nothing and the server sees no request of his.
    const signIn = await request('POST', `${t.api}/mcp-servers/${id}/oauth/authorize`, { token: ada.accessToken });
    expect(signIn.status).toBe(200);
    expect((await callback(await authorize(signIn.body.signIn.authorizationUrl, 'ada-at-shop'), bindingOf(signIn))).status).toBe(200);
    const tool = `mcp__${name}__lookup_order`;
    expect((await runFlow(ada, tool)).calls[0].result).toBe('order 42 shipped (account ada-at-shop)');
    const seen = shop.state.requests.length;
    const bobs = await runFlow(bob, tool);
    expect(bobs.offered).toBe(false);
    expect(bobs.calls.every((call) => !call.ok)).toBe(true);
    expect(shop.state.requests.slice(seen)).toEqual([]);

    // Bob cannot complete Ada's sign-in (no binding), nor start one for a server he cannot use.
    const adaAgain = await request('POST', `${t.api}/mcp-servers/${id}/oauth/authorize`, { token: ada.accessToken });
    const adaReturn = await authorize(adaAgain.body.signIn.authorizationUrl, 'bob-at-shop');
    expect((await callback(adaReturn, `${bindingOf(adaAgain).split('=')[0]}=stolen`)).body.error.code).toBe('invalid_state');
    const own = await registerSignedIn(ada, uniqueName('own'), 'ada-at-shop');
    expect((await request('POST', `${t.api}/mcp-servers/${own}/oauth/authorize`, { token: bob.accessToken })).status).toBe(404);
    // A sealed grant opens only for its own user and server: Ada's row put under Bob's name does not open.
    const adaGrant = await grantOf(id, ada.id);
    const box = new SecretBox(KEY);
    expect(box.open(adaGrant.sealed, `mcp_oauth:${id}:${ada.id}`).plaintext).toContain('access_token');
    expect(() => box.open(adaGrant.sealed, `mcp_oauth:${id}:${bob.id}`)).toThrow();
  }, 90_000);

  test('bad input: a server without usable authorization is refused and nothing is stored; the client metadata document', async () => {
    const refusedName = uniqueName('ssrf');
    const refused = await request('POST', `${t.api}/mcp-servers`, {
      token: ada.accessToken,
      body: { ...body(refusedName), url: misleading.url },
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe('oauth_unsupported');
    const stored = await t.app.repos.db.execute(sql`select count(*)::int as n from mcp_servers where name = ${refusedName}`);
    expect((stored as unknown as { rows: Array<{ n: number }> }).rows[0].n).toBe(0);

    const name = uniqueName('no');
    // A server that is not OAuth (no challenge) and takes no sign-in: 409 oauth_not_used.
    const plain = await request('POST', `${t.api}/mcp-servers`, {
      token: ada.accessToken,
      body: { ...body(name), url: `${shop.origin}/not-mcp` },
    });
    expect(plain.status).toBe(201);
    expect(plain.body.mcpServer.oauth).toBeNull();
    const notUsed = await request('POST', `${t.api}/mcp-servers/${plain.body.mcpServer.id}/oauth/authorize`, { token: ada.accessToken });
    expect(notUsed.status).toBe(409);
    expect(notUsed.body.error.code).toBe('oauth_not_used');

    const metadata = await request('GET', `${new URL(t.api).origin}/api/v1/mcp-oauth/client-metadata.json`);
    expect(metadata.status).toBe(200);
    expect(metadata.body).toMatchObject({
      client_name: 'Switchboard',
      redirect_uris: [expect.stringMatching(/\/api\/v1\/mcp-oauth\/callback$/)],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'none',
    });
  }, 60_000);
});
