import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Progress } from '@modelcontextprotocol/sdk/types.js';
import { messageText } from '../../src/demo-model/openai-compatible-server';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import { createLogger } from '../../src/lib/logger';
import { testConfig } from '../support/app';
import { createTestDatabase, serverPostgresUrl, type TestDatabase } from '../support/database';
import { registerUser, request, type TestUser } from '../support/http';
import { startScriptedLLM, type ScriptedLLM } from '../support/scripted-llm';
import { eventually, waitUntil, within } from '../support/wait';

/** This deployment's public URL and the one other browser origin it allows. */
const ORIGINS = { PUBLIC_URL: 'https://switchboard.test/', CORS_ORIGINS: 'https://app.switchboard.test' };

/**
 * The MCP server at `/mcp`, driven by the SDK's own client over Streamable HTTP against two API
 * nodes (node A also runs the workers) behind a round-robin "load balancer": every MCP message
 * goes to the other node than the one before, so initialize, list and call land on different nodes.
 */
describe('MCP server: flows as tools on two API nodes', () => {
  let database: TestDatabase;
  let llm: ScriptedLLM;
  let a: RunningSwitchboard;
  let b: RunningSwitchboard;
  let ada: TestUser;
  let bob: TestUser;
  const clients: Client[] = [];
  const logs: string[] = [];
  /** Prompts that start with `hold ` wait here, by prompt, until their test lets them go. */
  const held = new Map<string, () => void>();
  const release = () => {
    for (const go of held.values()) go();
    held.clear();
  };

  beforeAll(async () => {
    database = await createTestDatabase({ server: serverPostgresUrl() });
    // Each node answers with its prompt, slowly enough for a two-node flow to report progress.
    llm = await startScriptedLLM(
      async (req) => {
        const prompt = messageText(req.messages.at(-1)!);
        if (prompt.startsWith('hold ')) await new Promise<void>((resolve) => held.set(prompt, resolve));
        return { text: `answer to: ${prompt}` };
      },
      { delayMs: 5 },
    );
    const keyPrefix = `mcp-${randomUUID().slice(0, 8)}`;
    const node = (roles: string, logger = createLogger({ level: 'silent' })) =>
      startSwitchboard(testConfig({ keyPrefix, databaseUrl: database.url, env: { SWITCHBOARD_ROLES: roles, ...ORIGINS } }), {
        logger,
        endpoint: { baseURL: llm.baseURL, apiKey: 'test', provider: 'scripted', models: ['scripted-model'] },
      });
    a = await node(
      'api,worker,scheduler',
      createLogger({ level: 'debug', destination: { write: (line: string) => void logs.push(line) } }),
    );
    b = await node('api');
    [ada, bob] = await Promise.all([registerUser(`${a.url}/api/v1`, 'Ada'), registerUser(`${b.url}/api/v1`, 'Bob')]);
  }, 120_000);

  afterEach(release);

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
    await b?.stop();
    await a?.stop();
    await llm?.close();
    await database?.drop();
  });

  const api = () => `${a.url}/api/v1`;
  const createKey = async (user: TestUser, scopes: string[]) => {
    const res = await request('POST', `${api()}/api-keys`, { token: user.accessToken, body: { name: `mcp ${randomUUID()}`, scopes } });
    if (res.status !== 201) throw new Error(`create key: ${res.status} ${JSON.stringify(res.body)}`);
    return { id: res.body.apiKey.id as string, secret: res.body.secret as string };
  };
  const createFlow = async (user: TestUser, name: string, definition: unknown) => {
    const res = await request('POST', `${api()}/flows`, { token: user.accessToken, body: { type: 'agentflow', name, definition } });
    if (res.status !== 201) throw new Error(`create flow: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.flow.id as string;
  };
  const executions = async (user: TestUser, flowId: string) =>
    (await request('GET', `${api()}/flows/${flowId}/executions`, { token: user.accessToken })).body.executions as unknown[];
  const executionsUntil = (user: TestUser, flowId: string, status: string) =>
    eventually(
      () => executions(user, flowId) as Promise<{ status: string }[]>,
      (list) => list.length === 1 && list[0].status === status,
    );

  /**
   * An SDK client whose requests alternate between the two nodes, or all go to `only`; `hits` counts
   * the requests each node got.
   */
  const connect = async (secret: string, only?: 'a' | 'b') => {
    const hits = { a: 0, b: 0 };
    let n = 0;
    const balanced: typeof fetch = (input, init) => {
      const onA = only ? only === 'a' : n++ % 2 === 0;
      hits[onA ? 'a' : 'b'] += 1;
      const url = new URL(String(input instanceof Request ? input.url : input));
      return fetch(`${onA ? a.url : b.url}${url.pathname}`, init);
    };
    const transport = new StreamableHTTPClientTransport(new URL(`${a.url}/mcp`), {
      fetch: balanced,
      requestInit: { headers: { Authorization: `Bearer ${secret}` } },
    });
    const client = new Client({ name: 'test-client', version: '1.0.0' });
    clients.push(client);
    await client.connect(transport);
    return { client, hits };
  };

  test('the SDK client lists a flow with its input schema and calls it across nodes, with progress and the result', async () => {
    const flowId = await createFlow(ada, 'Octopus facts!', {
      description: 'Facts about an animal, then a summary',
      nodes: [
        { id: 'facts', prompt: 'facts about {{input.animal}} in {{input.style}}' },
        { id: 'summary', prompt: 'summarize {{nodes.facts.output}}', dependsOn: ['facts'] },
      ],
      output: 'summary',
    });
    const key = await createKey(ada, ['write']);
    const { client, hits } = await connect(key.secret);

    const { tools } = await client.listTools();
    const tool = tools.find((t) => t.name.endsWith(flowId))!;
    expect(tool).toMatchObject({
      name: `Octopus_facts-${flowId}`,
      title: 'Octopus facts!',
      description: 'Facts about an animal, then a summary',
      inputSchema: { type: 'object', required: ['animal', 'style'] },
    });
    expect(Object.keys(tool.inputSchema.properties!)).toEqual(['animal', 'style']);
    // Each input says its type, so a client can render and check it.
    expect(Object.values(tool.inputSchema.properties!).map((property) => (property as { type?: string }).type)).toEqual([
      'string',
      'string',
    ]);

    const progress: Progress[] = [];
    const result = await client.callTool({ name: tool.name, arguments: { animal: 'octopus', style: 'haiku' } }, undefined, {
      onprogress: (p) => void progress.push(p),
      resetTimeoutOnProgress: true,
    });
    expect(result.isError).toBeFalsy();
    expect(result.content).toEqual([{ type: 'text', text: 'answer to: summarize answer to: facts about octopus in haiku' }]);
    const executionId = (result._meta as { executionId: string }).executionId;
    expect(progress.map((p) => p.message)).toEqual([
      `execution ${executionId} started`,
      'node facts started',
      'node facts completed',
      'node summary started',
      'node summary completed',
    ]);
    expect(progress.map((p) => p.progress)).toEqual([1, 2, 3, 4, 5]);
    // initialize, initialized, list and call went to both nodes.
    expect(hits.a).toBeGreaterThanOrEqual(2);
    expect(hits.b).toBeGreaterThanOrEqual(2);
    const stored = await request('GET', `${api()}/flows/${flowId}/executions/${executionId}`, { token: ada.accessToken });
    expect(stored.body.execution).toMatchObject({ status: 'completed', input: { animal: 'octopus', style: 'haiku' } });
    // The key never reaches a log line.
    expect(logs.join('\n')).not.toContain(key.secret.slice(8));
  });

  test("another user's flows are never listed nor callable", async () => {
    const flowId = await createFlow(ada, 'Private', { nodes: [{ id: 'n', prompt: 'secret {{input.q}}' }], output: 'n' });
    const { client: adaClient } = await connect((await createKey(ada, ['write'])).secret);
    const adaTool = (await adaClient.listTools()).tools.find((t) => t.name.endsWith(flowId))!;
    const { client } = await connect((await createKey(bob, ['write'])).secret);
    expect((await client.listTools()).tools).toEqual([]);
    await expect(client.callTool({ name: adaTool.name, arguments: { q: 'x' } })).rejects.toThrow(/Unknown tool/);
    await expect(client.callTool({ name: flowId, arguments: { q: 'x' } })).rejects.toThrow(/Unknown tool/);
    expect(await executions(ada, flowId)).toEqual([]);
  });

  test('a read key lists but may not call; a revoked key and an access token get 401', async () => {
    const flowId = await createFlow(ada, 'Read only', { nodes: [{ id: 'n', prompt: 'hi {{input.q}}' }], output: 'n' });
    const reader = await createKey(ada, ['read']);
    const { client } = await connect(reader.secret);
    const tool = (await client.listTools()).tools.find((t) => t.name.endsWith(flowId))!;
    await expect(client.callTool({ name: tool.name, arguments: { q: 'x' } })).rejects.toThrow(/forbidden: This API key may only read/);
    expect(await executions(ada, flowId)).toEqual([]);

    const writer = await createKey(ada, ['write']);
    const { client: writing } = await connect(writer.secret);
    expect((await writing.listTools()).tools.some((t) => t.name === tool.name)).toBe(true);
    expect((await request('DELETE', `${api()}/api-keys/${writer.id}`, { token: ada.accessToken })).status).toBe(200);
    await expect(writing.listTools()).rejects.toThrow(/401|Invalid, revoked or expired API key/);
    await expect(writing.callTool({ name: tool.name, arguments: { q: 'x' } })).rejects.toThrow(/401|Invalid, revoked or expired/);
    expect(await executions(ada, flowId)).toEqual([]);

    const withToken = await fetch(`${b.url}/mcp`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${ada.accessToken}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(withToken.status).toBe(401);
    expect((await withToken.json()).error.code).toBe('unauthorized');
    const get = await fetch(`${b.url}/mcp`, { headers: { authorization: `Bearer ${reader.secret}` } });
    expect(get.status).toBe(405);
  });

  test('missing input is a tool error (the input schema, checked as JSON Schema); a lone surrogate in arguments is a 400 that starts nothing', async () => {
    const flowId = await createFlow(ada, 'Needs input', { nodes: [{ id: 'n', prompt: 'echo {{input.q}}' }], output: 'n' });
    const key = await createKey(ada, ['write']);
    const { client } = await connect(key.secret);
    const name = (await client.listTools()).tools.find((t) => t.name.endsWith(flowId))!.name;
    const missing = await client.callTool({ name, arguments: {} });
    expect(missing.isError).toBe(true);
    expect(missing.content).toEqual([{ type: 'text', text: "validation_failed: arguments: must have required property 'q'" }]);
    const badKey = await client.callTool({ name, arguments: { q: 'x', 'no spaces': 1 } });
    expect(badKey).toMatchObject({ isError: true, content: [{ type: 'text', text: expect.stringMatching(/^validation_failed/) }] });

    const raw = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"${name}","arguments":{"q":"\\ud800"}}}`;
    const res = await fetch(`${b.url}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key.secret}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: raw,
    });
    expect(res.status).toBe(400);
    expect((await res.json()).error).toMatchObject({ code: 'validation_failed', details: [{ path: 'params.arguments.q' }] });
    expect(await executions(ada, flowId)).toEqual([]);
  });

  test('a flood of calls is held to the tier’s executions per minute', async () => {
    const user = await registerUser(api(), 'Flood');
    const flowId = await createFlow(user, 'Flood', { nodes: [{ id: 'n', prompt: 'flood {{input.i}}' }], output: 'n' });
    const { client } = await connect((await createKey(user, ['write'])).secret);
    const name = (await client.listTools()).tools[0].name;
    const results = await Promise.all(Array.from({ length: 24 }, (_, i) => client.callTool({ name, arguments: { i: String(i) } })));
    const limited = results.filter((r) => r.isError);
    expect(limited.length).toBe(4);
    for (const r of limited) expect(r.content).toEqual([{ type: 'text', text: expect.stringMatching(/^rate_limited: /) }]);
    expect((await executions(user, flowId)).length).toBe(20);
  }, 60_000);

  /** A flow whose one prompt waits at the model until the test releases it, started over MCP on `serving`. */
  const callHeld = async (user: TestUser, serving: 'a' | 'b') => {
    const flowId = await createFlow(user, 'Slow', { nodes: [{ id: 'n', prompt: 'hold {{input.q}}' }], output: 'n' });
    const key = await createKey(user, ['write']);
    const { client, hits } = await connect(key.secret, serving);
    const name = (await client.listTools()).tools[0].name;
    const prompt = `hold ${randomUUID()}`;
    const call = client.callTool({ name, arguments: { q: prompt.slice(5) } }).then(
      (result) => ({ result }),
      (error: Error) => ({ error }),
    );
    await waitUntil(() => held.has(prompt), 20_000);
    return { flowId, key, call, hits };
  };

  test.each([
    ['the node serving the call', 'a', 'a'],
    ['another node', 'a', 'b'],
    ['another node, while the serving node runs no worker', 'b', 'a'],
  ] as const)('a call in flight ends with session_revoked when its key is revoked through %s', async (_, serving, revoking) => {
    const user = await registerUser(api(), 'Revoked');
    const { flowId, key, call, hits } = await callHeld(user, serving);
    const node = revoking === 'a' ? a : b;
    expect((await request('DELETE', `${node.url}/api/v1/api-keys/${key.id}`, { token: user.accessToken })).status).toBe(200);

    const ended = await within(call, 5_000, 'the revoked call to end');
    expect('error' in ended && ended.error.message).toMatch(/session_revoked: The API key of this request was revoked/);
    expect(hits[serving === 'a' ? 'b' : 'a']).toBe(0);
    // The execution itself runs on and finishes; its result never reached the client.
    release();
    const [execution] = await executionsUntil(user, flowId, 'completed');
    expect(execution).toMatchObject({ status: 'completed' });
  });

  test("a call in flight ends with session_revoked when its user's account is deleted", async () => {
    const user = await registerUser(api(), 'Deleted');
    const { call } = await callHeld(user, 'b');
    const res = await request('DELETE', `${a.url}/api/v1/me`, { token: user.accessToken, body: { confirm: user.email } });
    expect(res.status).toBe(200);
    const ended = await within(call, 5_000, "the deleted user's call to end");
    expect('error' in ended && ended.error.message).toMatch(/session_revoked/);
  });

  /** A raw `initialize` POST to node A with the given extra headers. */
  const initialize = (secret: string, headers: Record<string, string>) =>
    new Promise<{ status: number; body: any }>((resolve, reject) => {
      const body = JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'origin-test', version: '1' } },
      });
      const req = httpRequest(
        `${a.url}/mcp`,
        {
          method: 'POST',
          headers: {
            authorization: `Bearer ${secret}`,
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            ...headers,
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  test('a foreign, null or rebinding Origin is 403 with a JSON-RPC error and touches nothing; allowed ones and none work', async () => {
    const user = await registerUser(api(), 'Origins');
    const key = await createKey(user, ['write']);
    const lastUsed = async () =>
      (
        (await request('GET', `${api()}/api-keys`, { token: user.accessToken })).body.apiKeys as { id: string; lastUsedAt: string | null }[]
      ).find((k) => k.id === key.id)!.lastUsedAt;
    const { host, port } = new URL(`${a.url}`);
    const refused: Record<string, string>[] = [
      { origin: 'https://evil.example' },
      { origin: 'null' },
      // DNS rebinding: the attacker's name resolves to this server, so Host and Origin both carry it.
      { origin: `http://rebind.evil.example:${port}`, host: `rebind.evil.example:${port}` },
      // The address the client dialled is no origin of this deployment's either.
      { origin: `http://${host}` },
    ];
    for (const headers of refused) {
      const res = await initialize(key.secret, headers);
      expect(res.status).toBe(403);
      expect(JSON.parse(res.body)).toEqual({
        jsonrpc: '2.0',
        id: null,
        error: { code: -32000, message: expect.stringMatching(/^origin_not_allowed: /), data: { status: 403 } },
      });
    }
    // The key was never read: it shows no use.
    expect(await lastUsed()).toBeNull();

    const allowed: Record<string, string>[] = [{ origin: 'https://switchboard.test' }, { origin: 'https://app.switchboard.test' }, {}];
    for (const headers of allowed) {
      const res = await initialize(key.secret, headers);
      expect(res.status).toBe(200);
      expect(res.body).toContain('"serverInfo":{"name":"switchboard"');
    }
    await eventually(lastUsed, (at) => at !== null);
  });
});
