import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import {
  Client as ModernClient,
  StreamableHTTPClientTransport as ModernTransport,
  UnauthorizedError as ModernUnauthorizedError,
} from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError, type OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import { messageText } from '../../src/demo-model/openai-compatible-server';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import { createLogger } from '../../src/lib/logger';
import { testConfig } from '../support/app';
import { createTestDatabase, serverPostgresUrl, type TestDatabase } from '../support/database';
import { registerUser, request, type TestUser } from '../support/http';
import { startScriptedLLM, type ScriptedLLM } from '../support/scripted-llm';
import { waitUntil, within } from '../support/wait';

/** The deployment's public URL: a load balancer in front of both nodes (the test's fetch plays it). */
const PUBLIC = 'http://switchboard.localhost';
const REDIRECT = 'http://127.0.0.1:9/callback';

/** A self-signed certificate for `localhost`, trusted by this process for the test's HTTPS server. */
function localhostCertificate(): { key: string; cert: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'cimd-'));
  try {
    execFileSync('openssl', [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1'],
      ...['-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'],
      ...['-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')],
    ]);
    return { key: readFileSync(path.join(dir, 'key.pem'), 'utf8'), cert: readFileSync(path.join(dir, 'cert.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The SDK's OAuth client provider of a client identified by its metadata document's URL. */
class DocumentClient implements OAuthClientProvider {
  authorizationUrl?: URL;
  saved?: OAuthTokens;
  private verifier = '';
  private information?: OAuthClientInformationMixed;
  constructor(readonly clientMetadataUrl: string) {}
  get redirectUrl() {
    return REDIRECT;
  }
  get clientMetadata(): OAuthClientMetadata {
    return { client_name: 'Test MCP client', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] };
  }
  clientInformation() {
    return this.information;
  }
  saveClientInformation(information: OAuthClientInformationMixed) {
    this.information = information;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens) {
    this.saved = tokens;
  }
  redirectToAuthorization(url: URL) {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(verifier: string) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
}

/**
 * `/mcp` as an OAuth 2.1 protected resource of Switchboard's own authorization server (`/oauth`),
 * on two API nodes behind one public URL: the MCP SDK's client discovers it, identifies itself by
 * a client metadata document served over HTTPS, signs in with PKCE while a person signed in to the
 * console consents, and calls a flow; revoking its grant on one node ends its call on the other.
 */
describe('MCP server: OAuth sign-in on two API nodes', () => {
  let database: TestDatabase;
  let llm: ScriptedLLM;
  let a: RunningSwitchboard;
  let b: RunningSwitchboard;
  let ada: TestUser;
  let documents: Server;
  let documentsOrigin: string;
  const defaultCas = tls.getCACertificates('default');
  const held = new Map<string, () => void>();
  const clients: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    const { key, cert } = localhostCertificate();
    tls.setDefaultCACertificates([...defaultCas, cert]);
    // Client metadata documents: each path names its own client (its redirect URI is this test's).
    documents = createHttpsServer({ key, cert }, (req, res) => {
      const clientId = `${documentsOrigin}${req.url}`;
      if (!req.url?.startsWith('/clients/')) return void res.writeHead(404).end();
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          client_id: clientId,
          client_name: 'Test MCP client',
          redirect_uris: [REDIRECT],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: 'none',
        }),
      );
    });
    await new Promise<void>((resolve) => documents.listen(0, 'localhost', resolve));
    documentsOrigin = `https://localhost:${(documents.address() as AddressInfo).port}`;

    database = await createTestDatabase({ server: serverPostgresUrl() });
    llm = await startScriptedLLM(async (req) => {
      const prompt = messageText(req.messages.at(-1)!);
      if (prompt.startsWith('hold ')) await new Promise<void>((resolve) => held.set(prompt, resolve));
      return { text: `answer to: ${prompt}` };
    });
    const keyPrefix = `mcpoauth-${randomUUID().slice(0, 8)}`;
    const env = { PUBLIC_URL: PUBLIC, FLOW_HTTP_PRIVATE_ORIGINS: documentsOrigin };
    const node = (roles: string) =>
      startSwitchboard(testConfig({ keyPrefix, databaseUrl: database.url, env: { SWITCHBOARD_ROLES: roles, ...env } }), {
        logger: createLogger({ level: 'silent' }),
        endpoint: { baseURL: llm.baseURL, apiKey: 'test', provider: 'scripted', models: ['scripted-model'] },
      });
    a = await node('api,worker,scheduler');
    b = await node('api');
    ada = await registerUser(`${a.url}/api/v1`, 'Ada');
  }, 120_000);

  afterEach(() => {
    for (const go of held.values()) go();
    held.clear();
  });

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
    await b?.stop();
    await a?.stop();
    await llm?.close();
    await database?.drop();
    await new Promise((resolve) => documents?.close(resolve));
    tls.setDefaultCACertificates(defaultCas);
  });

  /** The node a public URL is served by: `a` or `b`, or alternating. */
  const onNode = (url: string | URL, node?: RunningSwitchboard) => {
    const parsed = new URL(String(url));
    if (parsed.origin !== PUBLIC) return parsed.toString();
    return `${(node ?? a).url}${parsed.pathname}${parsed.search}`;
  };
  const balanced = (only?: RunningSwitchboard): typeof fetch => {
    let n = 0;
    return (input, init) => fetch(onNode(input instanceof Request ? input.url : String(input), only ?? (n++ % 2 ? b : a)), init);
  };
  const createFlow = async (name: string, prompt: string) => {
    const res = await request('POST', `${a.url}/api/v1/flows`, {
      token: ada.accessToken,
      body: { type: 'agentflow', name, definition: { nodes: [{ id: 'n', prompt }], output: 'n' } },
    });
    if (res.status !== 201) throw new Error(`create flow: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.flow.id as string;
  };

  /** Cookies a browser would keep (every path: the test's browser visits each once). */
  class Browser {
    private readonly cookies = new Map<string, string>();
    async go(url: string, init: RequestInit = {}) {
      const res = await fetch(onNode(url, b), {
        ...init,
        redirect: 'manual',
        headers: { ...(init.headers as Record<string, string>), cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') },
      });
      for (const line of res.headers.getSetCookie()) {
        const [pair] = line.split(';');
        const at = pair.indexOf('=');
        this.cookies.set(pair.slice(0, at), pair.slice(at + 1));
      }
      return res;
    }
  }

  /** Follows the authorization URL to the consent page; returns its HTML and where it is. */
  const openConsent = async (browser: Browser, authorizationUrl: URL) => {
    const started = await browser.go(authorizationUrl.toString());
    expect(started.status).toBe(303);
    const page = new URL(started.headers.get('location')!, PUBLIC);
    expect(page.pathname).toMatch(/^\/oauth\/interaction\//);
    const html = await (await browser.go(page.toString())).text();
    return { page, html };
  };
  /** The person's decision on the consent page, then the redirect back to the client with its code (or error). */
  const decide = async (browser: Browser, page: URL, decision: 'allow' | 'deny', bearer = ada.accessToken) => {
    const res = await browser.go(`${page}/confirm`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
      body: JSON.stringify({ decision }),
    });
    return res;
  };
  const backToClient = async (browser: Browser, redirectTo: string) => {
    let res = await browser.go(redirectTo);
    // The provider may pass through its own resume step before redirecting to the client.
    while (res.status === 303 && !res.headers.get('location')!.startsWith(REDIRECT))
      res = await browser.go(new URL(res.headers.get('location')!, PUBLIC).toString());
    expect(res.status).toBe(303);
    return new URL(res.headers.get('location')!);
  };

  /** Signs the SDK client in through the consent page; returns a connected client. */
  const signIn = async (scope?: string) => {
    const provider = new DocumentClient(`${documentsOrigin}/clients/${randomUUID()}`);
    if (scope) Object.defineProperty(provider, 'clientMetadata', { get: () => ({ ...new DocumentClient('').clientMetadata, scope }) });
    const transport = new StreamableHTTPClientTransport(new URL(`${PUBLIC}/mcp`), { authProvider: provider, fetch: balanced() });
    const first = new Client({ name: 'oauth-test', version: '1.0.0' });
    await expect(first.connect(transport)).rejects.toThrow(UnauthorizedError);
    expect(provider.authorizationUrl).toBeDefined();
    const browser = new Browser();
    const { page, html } = await openConsent(browser, provider.authorizationUrl!);
    const decided = await decide(browser, page, 'allow');
    expect(decided.status).toBe(200);
    const back = await backToClient(browser, (await decided.json()).redirectTo);
    const code = back.searchParams.get('code');
    expect(code).toBeTruthy();
    await transport.finishAuth(code!);
    const client = new Client({ name: 'oauth-test', version: '1.0.0' });
    clients.push(client);
    await client.connect(new StreamableHTTPClientTransport(new URL(`${PUBLIC}/mcp`), { authProvider: provider, fetch: balanced() }));
    return { client, provider, html };
  };

  /** Signs the 2.x SDK client in (protocol 2026-07-28) through the consent page; returns a connected client. */
  const signInModern = async () => {
    const provider = new DocumentClient(`${documentsOrigin}/clients/${randomUUID()}`);
    const modern = { versionNegotiation: { mode: { pin: '2026-07-28' } } };
    const transport = new ModernTransport(new URL(`${PUBLIC}/mcp`), { authProvider: provider, fetch: balanced() });
    const first = new ModernClient({ name: 'oauth-modern-test', version: '1.0.0' }, modern);
    await expect(first.connect(transport)).rejects.toThrow(ModernUnauthorizedError);
    expect(provider.authorizationUrl).toBeDefined();
    const browser = new Browser();
    const { page } = await openConsent(browser, provider.authorizationUrl!);
    const decided = await decide(browser, page, 'allow');
    expect(decided.status).toBe(200);
    const back = await backToClient(browser, (await decided.json()).redirectTo);
    await transport.finishAuth(back.searchParams);
    const client = new ModernClient({ name: 'oauth-modern-test', version: '1.0.0' }, modern);
    clients.push(client);
    await client.connect(new ModernTransport(new URL(`${PUBLIC}/mcp`), { authProvider: provider, fetch: balanced() }));
    return { client, provider };
  };

  test('the 2.x SDK client signs in over the 2026-07-28 revision and calls a flow with its OAuth token', async () => {
    const flowId = await createFlow('Modern octopus', 'modern facts about {{input.animal}}');
    const { client, provider } = await signInModern();
    expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28');
    const tool = (await client.listTools()).tools.find((t) => t.name.endsWith(flowId))!;
    const result = await client.callTool({ name: tool.name, arguments: { animal: 'octopus' } });
    expect(result.content).toEqual([{ type: 'text', text: 'answer to: modern facts about octopus' }]);
    // The SDK asks for offline_access, and gets a refresh token.
    expect(provider.saved!.refresh_token).toBeTruthy();
    // Revoked: the access token is refused (401) and so is its refresh (invalid_grant) in the new era too.
    const revoked = await fetch(`${a.url}/oauth/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: provider.saved!.refresh_token!, client_id: provider.clientMetadataUrl }),
    });
    expect(revoked.status).toBe(200);
    await expect(client.listTools()).rejects.toThrow(/grant request is invalid/);
  });

  test('a 401 names the protected-resource metadata, which names this deployment as the authorization server', async () => {
    const res = await fetch(`${b.url}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(
      `Bearer resource_metadata="${PUBLIC}/.well-known/oauth-protected-resource/mcp", scope="mcp:read mcp:call"`,
    );
    expect((await res.json()).error.code).toBe('unauthorized');
    const metadata = await (await fetch(`${a.url}/.well-known/oauth-protected-resource/mcp`)).json();
    expect(metadata).toMatchObject({
      resource: `${PUBLIC}/mcp`,
      authorization_servers: [`${PUBLIC}/oauth`],
      scopes_supported: ['mcp:read', 'mcp:call'],
    });
    const server = await (await fetch(`${b.url}/oauth/.well-known/openid-configuration`)).json();
    expect(server).toMatchObject({
      issuer: `${PUBLIC}/oauth`,
      client_id_metadata_document_supported: true,
      code_challenge_methods_supported: ['S256'],
      revocation_endpoint: `${PUBLIC}/oauth/token/revocation`,
    });
  });

  test('the SDK client signs in with PKCE through the consent page and calls a flow; its refresh token renews access', async () => {
    const flowId = await createFlow('Octopus facts', 'facts about {{input.animal}}');
    const { client, provider, html } = await signIn();
    // The consent page names the client and what each scope lets it do.
    expect(html).toContain('Test MCP client');
    expect(html).toContain('mcp:call — run any of your agentflows');
    const { tools } = await client.listTools();
    const tool = tools.find((t) => t.name.endsWith(flowId))!;
    const result = await client.callTool({ name: tool.name, arguments: { animal: 'octopus' } });
    expect(result.content).toEqual([{ type: 'text', text: 'answer to: facts about octopus' }]);

    // Refresh: a new access token, and the refresh token rotates.
    const refreshed = await fetch(`${b.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: provider.saved!.refresh_token!,
        client_id: provider.clientMetadataUrl,
        resource: `${PUBLIC}/mcp`,
      }),
    });
    expect(refreshed.status).toBe(200);
    const renewed = (await refreshed.json()) as OAuthTokens;
    expect(renewed.access_token).not.toBe(provider.saved!.access_token);
    expect(renewed.refresh_token).not.toBe(provider.saved!.refresh_token);
    const listed = await fetch(`${a.url}/mcp`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${renewed.access_token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    });
    expect(listed.status).toBe(200);
  });

  test('a token for another audience is refused, and so is an authorization for another resource', async () => {
    // The console's own access token is for the API, not for /mcp.
    const res = await fetch(`${a.url}/mcp`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${ada.accessToken}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');

    const other = new URL(`${PUBLIC}/oauth/auth`);
    other.search = new URLSearchParams({
      client_id: `${documentsOrigin}/clients/${randomUUID()}`,
      response_type: 'code',
      redirect_uri: REDIRECT,
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
      scope: 'mcp:call',
      resource: 'https://elsewhere.test/mcp',
    }).toString();
    const refused = await new Browser().go(other.toString());
    const location = refused.headers.get('location');
    const answer = location ? Object.fromEntries(new URL(location).searchParams) : await refused.json();
    expect(answer).toMatchObject({ error: 'invalid_target' });
  });

  test('only a person signed in to the console decides: an API key is 403, no token 401, a denial reaches the client', async () => {
    const provider = new DocumentClient(`${documentsOrigin}/clients/${randomUUID()}`);
    const transport = new StreamableHTTPClientTransport(new URL(`${PUBLIC}/mcp`), { authProvider: provider, fetch: balanced() });
    await expect(new Client({ name: 'x', version: '1' }).connect(transport)).rejects.toThrow(UnauthorizedError);
    const browser = new Browser();
    const { page } = await openConsent(browser, provider.authorizationUrl!);
    const key = await request('POST', `${a.url}/api/v1/api-keys`, { token: ada.accessToken, body: { name: 'k', scopes: ['write'] } });
    const withKey = await decide(browser, page, 'allow', key.body.secret);
    expect(withKey.status).toBe(403);
    expect((await withKey.json()).error.code).toBe('forbidden');
    const anonymous = await decide(browser, page, 'allow', '');
    expect(anonymous.status).toBe(401);
    const denied = await decide(browser, page, 'deny');
    expect(denied.status).toBe(200);
    const back = await backToClient(browser, (await denied.json()).redirectTo);
    expect(back.searchParams.get('error')).toBe('access_denied');
    expect(back.searchParams.get('code')).toBeNull();
  });

  test.each([
    ['not HTTPS', () => `http://localhost:1/clients/${randomUUID()}`],
    ['unreachable (404)', () => `${documentsOrigin}/missing/${randomUUID()}`],
    ['a private address the operator did not allow', () => `https://127.0.0.1:${new URL(documentsOrigin).port}/clients/${randomUUID()}`],
  ])('a client whose metadata document is %s is refused', async (_, clientId) => {
    const url = new URL(`${PUBLIC}/oauth/auth`);
    url.search = new URLSearchParams({
      client_id: clientId(),
      response_type: 'code',
      redirect_uri: REDIRECT,
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
      scope: 'mcp:call',
    }).toString();
    const res = await new Browser().go(url.toString());
    expect(res.status).toBe(400);
    expect((await res.json()).error).toMatch(/^invalid_client/);
  });

  test('a person lists the clients they allowed and revokes one: its call in flight on the other node ends', async () => {
    await createFlow('Listed', 'hold {{input.q}}');
    const { client, provider } = await signIn();
    const listed = await request('GET', `${a.url}/api/v1/mcp-clients`, { token: ada.accessToken });
    expect(listed.status).toBe(200);
    const mine = listed.body.clients.filter((one: { clientId: string }) => one.clientId === provider.clientMetadataUrl);
    expect(mine).toEqual([
      {
        grantId: expect.any(String),
        clientId: provider.clientMetadataUrl,
        scopes: ['mcp:read', 'mcp:call'],
        allowedAt: expect.any(String),
        expiresAt: expect.any(String),
      },
    ]);
    const { grantId } = mine[0];
    // Another person neither sees nor revokes it; an API key may not manage clients; a malformed id is 404.
    const bob = await registerUser(`${b.url}/api/v1`, 'Bob');
    expect((await request('GET', `${b.url}/api/v1/mcp-clients`, { token: bob.accessToken })).body.clients).toEqual([]);
    expect((await request('DELETE', `${b.url}/api/v1/mcp-clients/${grantId}`, { token: bob.accessToken })).status).toBe(404);
    const key = await request('POST', `${a.url}/api/v1/api-keys`, { token: ada.accessToken, body: { name: 'k', scopes: ['write'] } });
    expect((await request('DELETE', `${a.url}/api/v1/mcp-clients/${grantId}`, { token: key.body.secret })).status).toBe(403);
    expect((await request('DELETE', `${a.url}/api/v1/mcp-clients/not%20an%20id`, { token: ada.accessToken })).status).toBe(404);
    expect((await client.listTools()).tools.some((tool) => tool.title === 'Listed')).toBe(true);

    // A call in flight through node B ends when the person revokes the client on node A.
    const onB = new Client({ name: 'oauth-test', version: '1.0.0' });
    clients.push(onB);
    await onB.connect(new StreamableHTTPClientTransport(new URL(`${PUBLIC}/mcp`), { authProvider: provider, fetch: balanced(b) }));
    const tool = (await onB.listTools()).tools.find((one) => one.title === 'Listed')!;
    const prompt = `hold ${randomUUID()}`;
    const call = onB.callTool({ name: tool.name, arguments: { q: prompt.slice(5) } }).then(
      (result) => ({ result }),
      (error: Error) => ({ error }),
    );
    await waitUntil(() => held.has(prompt), 20_000);
    const revoked = await request('DELETE', `${a.url}/api/v1/mcp-clients/${grantId}`, { token: ada.accessToken });
    expect(revoked.status).toBe(200);
    expect(revoked.body.revoked.map((one: { grantId: string }) => one.grantId)).toEqual([grantId]);
    const ended = await within(call, 5_000, 'the revoked call to end');
    expect('error' in ended && ended.error.message).toMatch(/session_revoked/);
    const after = await fetch(`${b.url}/mcp`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${provider.saved!.access_token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    });
    expect(after.status).toBe(401);
    const refreshed = await fetch(`${b.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: provider.saved!.refresh_token!,
        client_id: provider.clientMetadataUrl,
      }),
    });
    expect(refreshed.status).toBe(400);
    const again = await request('GET', `${a.url}/api/v1/mcp-clients`, { token: ada.accessToken });
    expect(again.body.clients.some((one: { grantId: string }) => one.grantId === grantId)).toBe(false);
  });

  test('revoking the grant on one node ends the client’s call in flight on the other, and its tokens', async () => {
    await createFlow('Slow', 'hold {{input.q}}');
    const { client, provider } = await signIn();
    // Calls go through node B only from here.
    const onB = new Client({ name: 'oauth-test', version: '1.0.0' });
    clients.push(onB);
    await onB.connect(new StreamableHTTPClientTransport(new URL(`${PUBLIC}/mcp`), { authProvider: provider, fetch: balanced(b) }));
    const tool = (await client.listTools()).tools.find((t) => t.title === 'Slow')!;
    const prompt = `hold ${randomUUID()}`;
    const call = onB.callTool({ name: tool.name, arguments: { q: prompt.slice(5) } }).then(
      (result) => ({ result }),
      (error: Error) => ({ error }),
    );
    await waitUntil(() => held.has(prompt), 20_000);
    const revoked = await fetch(`${a.url}/oauth/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: provider.saved!.refresh_token!, client_id: provider.clientMetadataUrl }),
    });
    expect(revoked.status).toBe(200);
    const ended = await within(call, 5_000, 'the revoked call to end');
    expect('error' in ended && ended.error.message).toMatch(/session_revoked: The access token of this request was revoked/);
    const after = await fetch(`${b.url}/mcp`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${provider.saved!.access_token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    });
    expect(after.status).toBe(401);
  });
});
