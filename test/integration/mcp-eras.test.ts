import { randomUUID } from 'node:crypto';
import { Client as ModernClient, StreamableHTTPClientTransport as ModernTransport } from '@modelcontextprotocol/client';
import { Client as LegacyClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as LegacyTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { messageText } from '../../src/demo-model/openai-compatible-server';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import { createLogger } from '../../src/lib/logger';
import { testConfig } from '../support/app';
import { createTestDatabase, serverPostgresUrl, type TestDatabase } from '../support/database';
import { registerUser, request, type TestUser } from '../support/http';
import { startScriptedLLM, type ScriptedLLM } from '../support/scripted-llm';

const MODERN = '2026-07-28';

/**
 * `/mcp` in both protocol eras: the 2025-11-25 era (`initialize`, the 1.32 SDK client) and the
 * stateless 2026-07-28 revision (`server/discover`, a protocol version on every request, the 2.x
 * SDK client), chosen per request, on two API nodes behind a round-robin balancer.
 */
describe('MCP server: both protocol eras on /mcp', () => {
  let database: TestDatabase;
  let llm: ScriptedLLM;
  let a: RunningSwitchboard;
  let b: RunningSwitchboard;
  let ada: TestUser;
  const closing: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    database = await createTestDatabase({ server: serverPostgresUrl() });
    // A prompt `animal <name>` is answered as the JSON its node's output schema asks for.
    llm = await startScriptedLLM(async (req) => {
      const prompt = messageText(req.messages.at(-1)!);
      const animal = /^animal (\w+)/.exec(prompt);
      return { text: animal ? JSON.stringify({ name: animal[1], legs: 8 }) : `answer to: ${prompt}` };
    });
    const keyPrefix = `mcperas-${randomUUID().slice(0, 8)}`;
    const node = (roles: string) =>
      startSwitchboard(testConfig({ keyPrefix, databaseUrl: database.url, env: { SWITCHBOARD_ROLES: roles } }), {
        logger: createLogger({ level: 'silent' }),
        endpoint: { baseURL: llm.baseURL, apiKey: 'test', provider: 'scripted', models: ['scripted-model'] },
      });
    a = await node('api,worker,scheduler');
    b = await node('api');
    ada = await registerUser(`${a.url}/api/v1`, 'Ada');
  }, 120_000);

  afterAll(async () => {
    await Promise.all(closing.map((client) => client.close().catch(() => undefined)));
    await b?.stop();
    await a?.stop();
    await llm?.close();
    await database?.drop();
  });

  const api = () => `${a.url}/api/v1`;
  const createKey = async (scopes: string[]) => {
    const res = await request('POST', `${api()}/api-keys`, { token: ada.accessToken, body: { name: `eras ${randomUUID()}`, scopes } });
    if (res.status !== 201) throw new Error(`create key: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.secret as string;
  };
  const createFlow = async (name: string, prompt: string) => {
    const res = await request('POST', `${api()}/flows`, {
      token: ada.accessToken,
      body: { type: 'agentflow', name, definition: { nodes: [{ id: 'n', prompt }], output: 'n' } },
    });
    if (res.status !== 201) throw new Error(`create flow: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.flow.id as string;
  };
  const executions = async (flowId: string) =>
    (await request('GET', `${api()}/flows/${flowId}/executions`, { token: ada.accessToken })).body.executions as unknown[];

  /** Every exchange a client makes: the method it sent, its protocol version header and the answer's session id. */
  interface Exchange {
    method: string;
    version: string | null;
    session: string | null;
  }
  const balanced = (exchanges: Exchange[]): typeof fetch => {
    let n = 0;
    return async (input, init) => {
      const url = new URL(String(input instanceof Request ? input.url : input));
      const res = await fetch(`${n++ % 2 ? b.url : a.url}${url.pathname}`, init);
      const headers = new Headers(init?.headers);
      const body = typeof init?.body === 'string' ? (JSON.parse(init.body) as { method?: string }) : {};
      exchanges.push({
        method: body.method ?? init?.method ?? 'GET',
        version: headers.get('mcp-protocol-version'),
        session: res.headers.get('mcp-session-id'),
      });
      return res;
    };
  };
  const modernClient = async (bearer: string, mode: 'auto' | { pin: string } = { pin: MODERN }) => {
    const exchanges: Exchange[] = [];
    const client = new ModernClient({ name: 'modern-test', version: '1.0.0' }, { versionNegotiation: { mode } });
    closing.push(client);
    await client.connect(
      new ModernTransport(new URL(`${a.url}/mcp`), {
        fetch: balanced(exchanges),
        requestInit: { headers: { Authorization: `Bearer ${bearer}` } },
      }),
    );
    return { client, exchanges };
  };
  const legacyClient = async (bearer: string) => {
    const exchanges: Exchange[] = [];
    const client = new LegacyClient({ name: 'legacy-test', version: '1.0.0' });
    closing.push(client);
    await client.connect(
      new LegacyTransport(new URL(`${a.url}/mcp`), {
        fetch: balanced(exchanges),
        requestInit: { headers: { Authorization: `Bearer ${bearer}` } },
      }),
    );
    return { client, exchanges };
  };
  const post = (body: unknown, headers: Record<string, string>) =>
    fetch(`${b.url}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      body: JSON.stringify(body),
    });

  test('the 2.x SDK client negotiates 2026-07-28 and lists and calls a flow with no session and no initialize', async () => {
    const flowId = await createFlow('Modern facts', 'facts about {{input.animal}}');
    const { client, exchanges } = await modernClient(await createKey(['write']), 'auto');
    expect(client.getNegotiatedProtocolVersion()).toBe(MODERN);
    const { tools } = await client.listTools();
    const tool = tools.find((t) => t.name.endsWith(flowId))!;
    expect(tool).toMatchObject({ title: 'Modern facts', inputSchema: { type: 'object', required: ['animal'] } });
    const result = await client.callTool({ name: tool.name, arguments: { animal: 'octopus' } });
    expect(result.isError).toBeFalsy();
    expect(result.content).toEqual([{ type: 'text', text: 'answer to: facts about octopus' }]);
    const executionId = (result._meta as { executionId: string }).executionId;
    const stored = await request('GET', `${api()}/flows/${flowId}/executions/${executionId}`, { token: ada.accessToken });
    expect(stored.body.execution).toMatchObject({ status: 'completed', input: { animal: 'octopus' } });
    // Stateless by the protocol: a discover probe, never an initialize, and no session id in any answer.
    const methods = exchanges.map((exchange) => exchange.method);
    expect(methods).toContain('server/discover');
    expect(methods).not.toContain('initialize');
    expect(exchanges.every((exchange) => exchange.session === null)).toBe(true);
    expect(exchanges.filter((exchange) => exchange.method === 'tools/call').map((exchange) => exchange.version)).toEqual([MODERN]);
  });

  test('the 1.32 SDK client keeps the 2025-11-25 era on the same endpoint', async () => {
    const flowId = await createFlow('Legacy facts', 'legacy facts about {{input.animal}}');
    const { client, exchanges } = await legacyClient(await createKey(['write']));
    expect(exchanges[0].method).toBe('initialize');
    const tool = (await client.listTools()).tools.find((t) => t.name.endsWith(flowId))!;
    const result = await client.callTool({ name: tool.name, arguments: { animal: 'squid' } });
    expect(result.content).toEqual([{ type: 'text', text: 'answer to: legacy facts about squid' }]);
    expect(exchanges.every((exchange) => exchange.session === null)).toBe(true);
  });

  test('the modern era keeps the same rules: a read key may not call, another user sees nothing, a revoked key is 401', async () => {
    const flowId = await createFlow('Guarded', 'guarded {{input.q}}');
    const { client } = await modernClient(await createKey(['read']));
    const tool = (await client.listTools()).tools.find((t) => t.name.endsWith(flowId))!;
    await expect(client.callTool({ name: tool.name, arguments: { q: 'x' } })).rejects.toThrow(/forbidden: This API key may only read/);

    const bob = await registerUser(`${b.url}/api/v1`, 'Bob');
    const bobKey = await request('POST', `${api()}/api-keys`, { token: bob.accessToken, body: { name: 'bob', scopes: ['write'] } });
    const { client: bobs } = await modernClient(bobKey.body.secret as string);
    expect((await bobs.listTools()).tools).toEqual([]);
    await expect(bobs.callTool({ name: tool.name, arguments: { q: 'x' } })).rejects.toThrow(/Unknown tool/);
    await expect(bobs.callTool({ name: `nope-${randomUUID()}`, arguments: {} })).rejects.toThrow(/Unknown tool/);
    expect(await request('DELETE', `${api()}/api-keys/${bobKey.body.apiKey.id}`, { token: bob.accessToken })).toMatchObject({
      status: 200,
    });
    await expect(bobs.listTools()).rejects.toThrow(/401|Invalid, revoked or expired API key/);
    expect(await executions(flowId)).toEqual([]);
  });

  test('a tool declares the output schema of its flow in both eras; its arguments are checked as JSON Schema', async () => {
    const outputSchema = {
      type: 'object',
      properties: { name: { type: 'string' }, legs: { type: 'integer', minimum: 0 } },
      required: ['name', 'legs'],
    };
    const res = await request('POST', `${api()}/flows`, {
      token: ada.accessToken,
      body: {
        type: 'agentflow',
        name: 'Animal card',
        definition: { nodes: [{ id: 'n', prompt: 'animal {{input.animal}}', outputSchema }], output: 'n' },
      },
    });
    const flowId = res.body.flow.id as string;
    const key = await createKey(['write']);
    for (const connect of [modernClient, legacyClient]) {
      const { client } = await connect(key);
      const tool = (await client.listTools()).tools.find((t) => t.name.endsWith(flowId))!;
      expect(tool.outputSchema).toEqual(outputSchema);
      expect(tool.inputSchema.properties).toEqual({ animal: { type: 'string', description: expect.any(String) } });
      const result = await client.callTool({ name: tool.name, arguments: { animal: 'octopus' } });
      expect(result.structuredContent).toEqual({ name: 'octopus', legs: 8 });
      // An argument of another type than the schema says is refused before anything starts.
      const before = (await executions(flowId)).length;
      const wrong = await client.callTool({ name: tool.name, arguments: { animal: 8 } });
      expect(wrong).toMatchObject({
        isError: true,
        content: [{ type: 'text', text: 'validation_failed: arguments.animal: must be string' }],
      });
      expect((await executions(flowId)).length).toBe(before);
    }
    // A flow whose output is text declares no output schema.
    const textFlow = await createFlow('Plain text', 'plain {{input.q}}');
    const { client } = await modernClient(key);
    expect((await client.listTools()).tools.find((t) => t.name.endsWith(textFlow))!.outputSchema).toBeUndefined();
  });

  test('malformed modern requests get JSON-RPC errors and start nothing', async () => {
    const flowId = await createFlow('Untouched', 'untouched {{input.q}}');
    const key = await createKey(['write']);
    const { client } = await modernClient(key);
    const tool = (await client.listTools()).tools.find((t) => t.name.endsWith(flowId))!;
    const auth = { authorization: `Bearer ${key}` };
    const envelope = {
      'io.modelcontextprotocol/protocolVersion': MODERN,
      'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
    };

    // A modern version header without the per-request envelope.
    const noEnvelope = await post(
      { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: tool.name, arguments: { q: 'x' } } },
      { ...auth, 'mcp-protocol-version': MODERN },
    );
    expect((await noEnvelope.json()).error).toMatchObject({ code: -32602 });
    // A revision this endpoint does not serve.
    const unknownVersion = await post(
      {
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: tool.name, arguments: { q: 'x' }, _meta: { ...envelope, 'io.modelcontextprotocol/protocolVersion': '2099-01-01' } },
      },
      { ...auth, 'mcp-protocol-version': '2099-01-01' },
    );
    expect((await unknownVersion.json()).error).toBeDefined();
    // Arguments that are not an object.
    const badArguments = await post(
      { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: tool.name, arguments: 'x', _meta: envelope } },
      { ...auth, 'mcp-protocol-version': MODERN },
    );
    expect((await badArguments.json()).error).toMatchObject({ code: -32602 });
    expect(await executions(flowId)).toEqual([]);
  });
});
