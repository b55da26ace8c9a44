import { sql } from 'drizzle-orm';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { AdminDirectory } from '../../src/auth/admins';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { readSse, type SseMessage } from '../support/sse';
import { eventually } from '../support/wait';
import { serveMcpTools } from '../support/mcp-tool-server';

const TOOL_KEY = `tool-key-${randomUUID()}`;

/**
 * A local MCP server (the SDK's McpServer over stateless Streamable HTTP) that wants an auth
 * header, with a safe tool, a dangerous one, one that hangs and one that answers 10 MB.
 */
async function startToolServer() {
  const calls: Array<{ tool: string; args: unknown }> = [];
  const served = await serveMcpTools(
    'shop',
    (server) => {
      server.registerTool(
        'lookup_order',
        { description: 'Finds an order by id', inputSchema: { orderId: z.string() } },
        async ({ orderId }) => {
          calls.push({ tool: 'lookup_order', args: { orderId } });
          return { content: [{ type: 'text', text: `order ${orderId} shipped` }] };
        },
      );
      server.registerTool('refund', { description: 'Refunds an order', inputSchema: { orderId: z.string() } }, async ({ orderId }) => {
        calls.push({ tool: 'refund', args: { orderId } });
        return { content: [{ type: 'text', text: `refunded ${orderId}` }] };
      });
      server.registerTool('hang', { description: 'Never answers', inputSchema: {} }, async () => {
        calls.push({ tool: 'hang', args: {} });
        return new Promise<never>(() => undefined);
      });
      server.registerTool('huge', { description: 'Answers 10 MB', inputSchema: {} }, async () => {
        calls.push({ tool: 'huge', args: {} });
        return { content: [{ type: 'text', text: 'x'.repeat(10 * 1024 * 1024) }] };
      });
    },
    { accepts: (headers) => headers['x-tool-key'] === TOOL_KEY },
  );
  const { origin } = served;
  return {
    calls,
    origin,
    close: served.close,
  };
}

describe('MCP client: registered servers lend their tools to agentflow nodes', () => {
  let t: TestApp;
  let tools: Awaited<ReturnType<typeof startToolServer>>;
  let ada: TestUser;
  let bob: TestUser;
  const logs: string[] = [];

  beforeAll(async () => {
    tools = await startToolServer();
    t = await startTestApp({
      env: {
        FLOW_HTTP_PRIVATE_ORIGINS: tools.origin,
        FLOW_HTTP_TIMEOUT_MS: '3000',
        FLOW_HTTP_MAX_RESPONSE_BYTES: '200000',
        HITL_TIMEOUT_MS: '60000',
      },
      logs: (line) => void logs.push(line),
    });
    [ada, bob] = await Promise.all([registerUser(t.api, 'Ada'), registerUser(t.api, 'Bob')]);
  }, 60_000);
  afterAll(async () => {
    await t.stop();
    await tools.close();
  });

  const register = (user: TestUser, body: Record<string, unknown>) =>
    request('POST', `${t.api}/mcp-servers`, { token: user.accessToken, body });
  const shop = (name: string, extra: Record<string, unknown> = {}) => ({
    name,
    url: `${tools.origin}/mcp`,
    authHeader: { name: 'X-Tool-Key', value: TOOL_KEY },
    allowedTools: ['lookup_order', 'refund', 'hang', 'huge'],
    safeTools: ['lookup_order', 'hang', 'huge'],
    ...extra,
  });
  const flowWith = async (user: TestUser, toolNames: string[]) => {
    const res = await request('POST', `${t.api}/flows`, {
      token: user.accessToken,
      body: {
        type: 'agentflow',
        name: 'Shop',
        definition: { nodes: [{ id: 'a', prompt: 'Help with order 42', tools: toolNames }], output: 'a' },
      },
    });
    expect(res.status).toBe(201);
    return res.body.flow.id as string;
  };
  const run = (user: TestUser, flowId: string, until?: (m: SseMessage) => boolean) =>
    readSse(`${t.api}/flows/${flowId}/execute/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { input: {} },
      timeoutMs: 30_000,
      until,
    });
  const toolEvents = (messages: SseMessage[]) => messages.filter((m) => m.event === 'tool_called').map((m) => m.data);
  type AuditLine = { action: string; details: Record<string, unknown>; target_id: string | null };
  const audits = async (executionId: string): Promise<AuditLine[]> => {
    const result = await t.app.repos.db.execute(
      sql`select action, details, target_id from system_audit where action = 'mcp.tool_call' and details->>'sessionId' = ${executionId} order by created_at`,
    );
    return (result as unknown as { rows: AuditLine[] }).rows;
  };

  test('register, list and delete a server: the auth header is sealed, never returned nor logged; owners only', async () => {
    const created = await register(ada, shop(`reg_${randomUUID().slice(0, 6)}`));
    expect(created.status).toBe(201);
    const view = created.body.mcpServer;
    expect(view).toMatchObject({ authHeader: { name: 'X-Tool-Key', stored: true }, safeTools: ['lookup_order', 'hang', 'huge'] });
    expect(JSON.stringify(created.body)).not.toContain(TOOL_KEY);
    const sealed = await t.app.repos.db.execute(sql`select auth_header_sealed from mcp_servers where id = ${view.id}`);
    const [row] = (sealed as unknown as { rows: Array<{ auth_header_sealed: string }> }).rows;
    expect(row.auth_header_sealed).toMatch(/^v1\./);
    expect(row.auth_header_sealed).not.toContain(TOOL_KEY);
    const listed = await request('GET', `${t.api}/mcp-servers`, { token: ada.accessToken });
    expect(listed.body.mcpServers.map((s: { id: string }) => s.id)).toContain(view.id);
    expect(JSON.stringify(listed.body)).not.toContain(TOOL_KEY);
    expect((await request('GET', `${t.api}/mcp-servers`, { token: bob.accessToken })).body.mcpServers).toEqual([]);
    const exported = await request('GET', `${t.api}/me/export`, { token: ada.accessToken });
    expect(exported.status).toBe(200);
    expect(exported.body.mcpServers).toContainEqual(
      expect.objectContaining({ id: view.id, authHeader: { name: 'X-Tool-Key', stored: true } }),
    );
    expect(JSON.stringify(exported.body)).not.toContain(TOOL_KEY);
    expect(JSON.stringify(exported.body)).not.toContain(row.auth_header_sealed);
    expect((await request('DELETE', `${t.api}/mcp-servers/${view.id}`, { token: bob.accessToken })).status).toBe(404);
    expect((await register(ada, shop(view.name))).body.error.code).toBe('name_taken');
    expect((await request('DELETE', `${t.api}/mcp-servers/${view.id}`, { token: ada.accessToken })).status).toBe(204);
    expect((await request('DELETE', `${t.api}/mcp-servers/${view.id}`, { token: ada.accessToken })).status).toBe(404);
    expect(logs.join('\n')).not.toContain(TOOL_KEY);
  });

  test('bad registrations are 400 and store nothing: private addresses, credentials in the URL, stray safe tools, a lone surrogate', async () => {
    const before = (await request('GET', `${t.api}/mcp-servers`, { token: bob.accessToken })).body.mcpServers.length;
    for (const url of [
      'http://10.1.2.3/mcp',
      'http://[::1]:9/mcp',
      'http://[::ffff:127.0.0.1]:9/mcp',
      'http://localhost:9/mcp',
      'http://169.254.169.254/mcp',
    ]) {
      const res = await register(bob, { name: 'evil', url, allowedTools: ['x'] });
      expect({ url, status: res.status, path: res.body.error?.details?.[0]?.path }).toEqual({ url, status: 400, path: 'url' });
      // The refusal names the setting that allows a server on the operator's own network.
      expect(res.body.error.details[0].message).toContain('FLOW_HTTP_PRIVATE_ORIGINS');
    }
    expect((await register(bob, { name: 'cred', url: 'https://u:p@example.com/mcp', allowedTools: ['x'] })).status).toBe(400);
    expect((await register(bob, { name: 'stray', url: 'https://example.com/mcp', allowedTools: ['x'], safeTools: ['y'] })).status).toBe(
      400,
    );
    expect((await register(bob, { name: 'Bad__Name', url: 'https://example.com/mcp', allowedTools: ['x'] })).status).toBe(400);
    const surrogate = await request('POST', `${t.api}/mcp-servers`, {
      token: bob.accessToken,
      rawBody: '{"name":"lone","url":"https://example.com/mcp","allowedTools":["\\ud800"]}',
    });
    expect(surrogate.status).toBe(400);
    expect((await request('GET', `${t.api}/mcp-servers`, { token: bob.accessToken })).body.mcpServers.length).toBe(before);
  });

  test('a node calls a safe MCP tool without approval; the call is an event and audited', async () => {
    const server = `safe_${randomUUID().slice(0, 6)}`;
    expect((await register(ada, shop(server))).status).toBe(201);
    const flowId = await flowWith(ada, [`mcp__${server}__lookup_order`]);
    t.llm.push({ toolCalls: [{ name: `mcp__${server}__lookup_order`, args: { orderId: '42' } }] }, { text: 'Order 42 has shipped.' });
    const { messages, headers } = await run(ada, flowId);
    const executionId = headers.get('x-execution-id')!;
    expect(messages.at(-1)?.event).toBe('execution_completed');
    expect(toolEvents(messages)).toEqual([
      expect.objectContaining({
        tool: `mcp__${server}__lookup_order`,
        kind: 'mcp',
        ok: true,
        result: 'order 42 shipped',
        args: { orderId: '42' },
      }),
    ]);
    // The model was offered the tool with the server's own input schema.
    const offered = (t.llm.chatRequests().at(-2)!.tools as Array<{ function: unknown }>).map((tool) => tool.function);
    expect(offered).toEqual([
      expect.objectContaining({ name: `mcp__${server}__lookup_order`, parameters: expect.objectContaining({ required: ['orderId'] }) }),
    ]);
    expect(await audits(executionId)).toEqual([
      {
        action: 'mcp.tool_call',
        target_id: null,
        details: { tool: `mcp__${server}__lookup_order`, outcome: 'ok', sessionId: executionId },
      },
    ]);
  });

  test('a dangerous MCP tool waits for the owner: approved it runs once, rejected it never reaches the server', async () => {
    const server = `danger_${randomUUID().slice(0, 6)}`;
    expect((await register(ada, shop(server))).status).toBe(201);
    const name = `mcp__${server}__refund`;
    const flowId = await flowWith(ada, [name]);
    const decide = async (decision: 'approve' | 'reject', orderId: string) => {
      t.llm.push({ toolCalls: [{ name, args: { orderId } }] });
      const first = await run(ada, flowId, (m) => m.event === 'approval_requested');
      const executionId = first.headers.get('x-execution-id')!;
      const asked = first.messages.find((m) => m.event === 'approval_requested')!.data;
      expect(asked).toMatchObject({ tool: name, nodeId: 'a' });
      expect(tools.calls.filter((c) => c.tool === 'refund' && (c.args as { orderId: string }).orderId === orderId)).toEqual([]);
      const pending = await request('GET', `${t.api}/hitl/requests/${asked.approvalId}`, { token: ada.accessToken });
      expect(pending.body).toMatchObject({ toolName: name, parameters: { orderId }, status: 'pending' });
      expect((await request('PUT', `${t.api}/hitl/requests/${asked.approvalId}/approve`, { token: bob.accessToken })).status).toBe(404);
      if (decision === 'approve') t.llm.push({ text: 'Refunded.' });
      expect((await request('PUT', `${t.api}/hitl/requests/${asked.approvalId}/${decision}`, { token: ada.accessToken })).status).toBe(200);
      const rest = await readSse(`${t.api}/flows/${flowId}/executions/${executionId}/events`, {
        token: ada.accessToken,
        timeoutMs: 30_000,
      });
      return { executionId, approvalId: asked.approvalId as string, messages: rest.messages };
    };

    const approved = await decide('approve', 'A1');
    expect(approved.messages.at(-1)?.event).toBe('execution_completed');
    expect(toolEvents(approved.messages)).toEqual([
      expect.objectContaining({ tool: name, kind: 'mcp', ok: true, result: 'refunded A1', approvalId: approved.approvalId }),
    ]);
    expect(tools.calls.filter((c) => c.tool === 'refund' && (c.args as { orderId: string }).orderId === 'A1')).toHaveLength(1);
    expect(await audits(approved.executionId)).toEqual([
      expect.objectContaining({
        target_id: approved.approvalId,
        details: expect.objectContaining({ outcome: 'ok', approvalId: approved.approvalId }),
      }),
    ]);

    const rejected = await decide('reject', 'R1');
    expect(rejected.messages.at(-1)?.event).toBe('execution_failed');
    expect(tools.calls.filter((c) => c.tool === 'refund' && (c.args as { orderId: string }).orderId === 'R1')).toEqual([]);
  });

  test('a tool that hangs times out, one that answers 10 MB is cut off; the node goes on', async () => {
    const server = `slow_${randomUUID().slice(0, 6)}`;
    expect((await register(ada, shop(server))).status).toBe(201);
    const flowId = await flowWith(ada, [`mcp__${server}__hang`, `mcp__${server}__huge`]);
    t.llm.push(
      { toolCalls: [{ name: `mcp__${server}__hang`, args: {} }] },
      { toolCalls: [{ name: `mcp__${server}__huge`, args: {} }] },
      { text: 'gave up' },
    );
    const began = Date.now();
    const { messages, headers } = await run(ada, flowId);
    expect(messages.at(-1)?.event).toBe('execution_completed');
    const [hang, huge] = toolEvents(messages);
    expect(hang).toMatchObject({ ok: false, result: expect.stringMatching(/did not answer within 3000 ms/) });
    expect(huge).toMatchObject({ ok: false, result: expect.stringMatching(/answered more than 200000 bytes/) });
    expect(Date.now() - began).toBeLessThan(15_000);
    const outcomes = (await audits(headers.get('x-execution-id')!)).map((row) => row.details.outcome);
    expect(outcomes).toEqual(['timeout', 'too_large']);
  }, 30_000);

  test('cancelling the execution aborts an MCP call in flight', async () => {
    const server = `cancel_${randomUUID().slice(0, 6)}`;
    expect((await register(ada, shop(server))).status).toBe(201);
    const flowId = await flowWith(ada, [`mcp__${server}__hang`]);
    t.llm.push({ toolCalls: [{ name: `mcp__${server}__hang`, args: {} }] });
    const hangsBefore = tools.calls.filter((c) => c.tool === 'hang').length;
    const started = await request('POST', `${t.api}/flows/${flowId}/execute`, { token: ada.accessToken, body: { input: {} } });
    const executionId: string = started.body.executionId;
    await eventually(
      async () => tools.calls.filter((c) => c.tool === 'hang').length,
      (n) => n > hangsBefore,
    );
    const cancel = await request('POST', `${t.api}/flows/${flowId}/executions/${executionId}/cancel`, { token: ada.accessToken });
    expect(cancel.status).toBe(202);
    const events = await readSse(`${t.api}/flows/${flowId}/executions/${executionId}/events`, {
      token: ada.accessToken,
      timeoutMs: 10_000,
    });
    expect(events.messages.at(-1)?.event).toBe('cancelled');
    // Cut by the cancel, not by the call's deadline.
    const outcomes = await eventually(
      async () => (await audits(executionId)).map((row) => row.details.outcome),
      (found) => found.length > 0,
    );
    expect(outcomes).toEqual(['aborted']);
  });

  test('a lone surrogate or NUL in a model’s MCP arguments reaches neither a 500 nor the database as such', async () => {
    const server = `odd_${randomUUID().slice(0, 6)}`;
    expect((await register(ada, shop(server))).status).toBe(201);
    const flowId = await flowWith(ada, [`mcp__${server}__refund`, `mcp__${server}__lookup_order`]);
    t.llm.push(
      { toolCalls: [{ name: `mcp__${server}__lookup_order`, args: { orderId: 'a\ud800b\u0000' } }] },
      { toolCalls: [{ name: `mcp__${server}__refund`, args: { orderId: 'x\udc00' } }] },
    );
    const first = await run(ada, flowId, (m) => m.event === 'approval_requested');
    const executionId = first.headers.get('x-execution-id')!;
    expect(toolEvents(first.messages)).toEqual([expect.objectContaining({ kind: 'mcp', ok: true })]);
    const asked = first.messages.find((m) => m.event === 'approval_requested')!.data;
    const pending = await request('GET', `${t.api}/hitl/requests/${asked.approvalId}`, { token: ada.accessToken });
    expect(pending.body).toMatchObject({ status: 'pending', parameters: { orderId: 'x\ufffd' } });
    expect((await request('PUT', `${t.api}/hitl/requests/${asked.approvalId}/reject`, { token: ada.accessToken })).status).toBe(200);
    const rest = await readSse(`${t.api}/flows/${flowId}/executions/${executionId}/events`, { token: ada.accessToken, timeoutMs: 30_000 });
    expect(rest.messages.at(-1)?.event).toBe('execution_failed');
  });

  test('an operator shares a server with every user; only admins manage it, users use it but cannot delete it', async () => {
    const admin = await registerUser(t.api, 'Operator');
    await new AdminDirectory(t.app.repos.admins).grant(admin.email);
    const user = await registerUser(t.api, 'Sharer');
    const name = `shared_${randomUUID().slice(0, 6)}`;
    const body = shop(name);
    expect((await request('POST', `${t.api}/admin/mcp-servers`, { token: user.accessToken, body })).status).toBe(403);
    const created = await request('POST', `${t.api}/admin/mcp-servers`, { token: admin.accessToken, body });
    expect(created.status).toBe(201);
    expect(created.body.mcpServer).toMatchObject({ name, shared: true, authHeader: { name: 'X-Tool-Key', stored: true } });
    const id = created.body.mcpServer.id;
    expect((await request('GET', `${t.api}/admin/mcp-servers`, { token: user.accessToken })).status).toBe(403);
    const listed = await request('GET', `${t.api}/admin/mcp-servers`, { token: admin.accessToken });
    expect(listed.body.mcpServers.map((server: { id: string }) => server.id)).toContain(id);
    expect(JSON.stringify(listed.body)).not.toContain(TOOL_KEY);
    // A user's own list holds their servers only, and a user cannot delete a shared one.
    expect((await request('GET', `${t.api}/mcp-servers`, { token: user.accessToken })).body.mcpServers).toEqual([]);
    expect((await request('DELETE', `${t.api}/mcp-servers/${id}`, { token: user.accessToken })).status).toBe(404);

    const flowId = await flowWith(user, [`mcp__${name}__lookup_order`]);
    t.llm.push({ toolCalls: [{ name: `mcp__${name}__lookup_order`, args: { orderId: 'S1' } }] }, { text: 'Shipped.' });
    const { messages } = await run(user, flowId);
    expect(toolEvents(messages)).toEqual([expect.objectContaining({ kind: 'mcp', ok: true, result: 'order S1 shipped' })]);

    expect((await request('DELETE', `${t.api}/admin/mcp-servers/${id}`, { token: admin.accessToken })).status).toBe(204);
    t.llm.push({ toolCalls: [{ name: `mcp__${name}__lookup_order`, args: { orderId: 'S2' } }] }, { text: 'Gone.' });
    const after = await run(user, flowId);
    expect(toolEvents(after.messages)).toEqual([expect.objectContaining({ ok: false, result: expect.stringMatching(/no tool called/) })]);
  });

  test('a server that is (or resolves to) a private address is refused at call time too, and another user’s server is unknown', async () => {
    // Written past the registration's check, as a server whose name later resolves privately would be.
    const name = `rebound_${randomUUID().slice(0, 6)}`;
    await t.app.repos.mcpServers.create(
      {
        id: randomUUID(),
        userId: ada.id,
        name,
        url: 'http://localhost:9/mcp',
        allowedTools: ['lookup_order'],
        safeTools: ['lookup_order'],
      },
      { actorId: ada.id, action: 'mcp_server.registered' },
    );
    const bobs = `bobs_${randomUUID().slice(0, 6)}`;
    expect((await register(bob, shop(bobs))).status).toBe(201);
    const flowId = await flowWith(ada, [`mcp__${name}__lookup_order`, `mcp__${bobs}__lookup_order`]);
    t.llm.push(
      { toolCalls: [{ name: `mcp__${name}__lookup_order`, args: { orderId: '1' } }] },
      { toolCalls: [{ name: `mcp__${bobs}__lookup_order`, args: { orderId: '2' } }] },
      { text: 'no' },
    );
    const callsBefore = tools.calls.length;
    const { messages } = await run(ada, flowId);
    expect(messages.at(-1)?.event).toBe('execution_completed');
    const [privateCall, foreign] = toolEvents(messages);
    expect(privateCall).toMatchObject({ ok: false, result: expect.stringMatching(/private address/) });
    expect(foreign).toMatchObject({ ok: false, result: expect.stringMatching(/no tool called/) });
    expect(tools.calls.length).toBe(callsBefore);
  });
  test('the assistant offers the user’s MCP tools: a safe one runs at once, a dangerous one after approval; both audited', async () => {
    const user = await registerUser(t.api, 'Chatter');
    const server = `chat_${randomUUID().slice(0, 6)}`;
    expect((await register(user, shop(server))).status).toBe(201);
    const audited = async (sessionId: string) =>
      (await audits(sessionId)).map((row) => ({ tool: row.details.tool, outcome: row.details.outcome, approvalId: row.target_id }));

    t.llm.push({ toolCalls: [{ name: `mcp__${server}__lookup_order`, args: { orderId: 'C7' } }] }, { text: 'Order C7 has shipped.' });
    const safe = await readSse(`${t.api}/chat/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { message: 'Where is order C7?' },
      timeoutMs: 20_000,
    });
    expect(safe.messages.at(-1)).toMatchObject({ event: 'final', data: { response: 'Order C7 has shipped.' } });
    const safeSession = safe.messages.at(-1)!.data.sessionId as string;
    expect(tools.calls).toContainEqual({ tool: 'lookup_order', args: { orderId: 'C7' } });
    expect(await audited(safeSession)).toEqual([{ tool: `mcp__${server}__lookup_order`, outcome: 'ok', approvalId: null }]);
    const offered = (t.llm.chatRequests().at(-2)!.tools as Array<{ function: { name: string } }>).map((tool) => tool.function.name).sort();
    expect(offered).toEqual(['hang', 'huge', 'lookup_order', 'refund'].map((tool) => `mcp__${server}__${tool}`));

    t.llm.push({ toolCalls: [{ name: `mcp__${server}__refund`, args: { orderId: 'C8' } }] }, { text: 'Refunded C8.' });
    let approvalId = '';
    const refunds = () => tools.calls.filter((c) => c.tool === 'refund' && (c.args as { orderId: string }).orderId === 'C8');
    const dangerous = await readSse(`${t.api}/chat/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { message: 'Refund order C8' },
      timeoutMs: 20_000,
      onMessage: (message) => {
        if (message.event !== 'approval_requested') return;
        approvalId = message.data.approvalId;
        expect(message.data).toMatchObject({ toolName: `mcp__${server}__refund`, parameters: { orderId: 'C8' } });
        expect(refunds()).toEqual([]);
        void request('PUT', `${t.api}/hitl/requests/${approvalId}/approve`, { token: user.accessToken });
      },
    });
    expect(dangerous.messages.at(-1)).toMatchObject({ event: 'final', data: { response: 'Refunded C8.' } });
    expect(approvalId).not.toBe('');
    expect(refunds()).toHaveLength(1);
    const session = dangerous.messages.at(-1)!.data.sessionId as string;
    expect(await audited(session)).toEqual([{ tool: `mcp__${server}__refund`, outcome: 'ok', approvalId }]);
    const approval = await request('GET', `${t.api}/hitl/requests/${approvalId}`, { token: user.accessToken });
    expect(approval.body).toMatchObject({ status: 'approved', toolName: `mcp__${server}__refund` });
  });
});
