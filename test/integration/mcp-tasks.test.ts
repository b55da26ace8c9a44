import { randomUUID } from 'node:crypto';
import { Client as ModernClient, StreamableHTTPClientTransport as ModernTransport } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema, CreateTaskResultSchema, type GetTaskResult } from '@modelcontextprotocol/sdk/types.js';
import { DeviceSimulator } from '@switchboard/client/testing';
import { startTestApp, type TestApp } from '../support/app';
import { nextDeviceEvent } from '../support/device-events';
import { registerUser, request, type TestUser } from '../support/http';
import { eventually } from '../support/wait';

const TASK_ID = '3f2b8c1e-9d4a-4b6e-8f00-1234567890ab';
const seed = { tasks: [{ id: TASK_ID, title: 'Old report', status: 'done', priority: 'low' }] };

/**
 * A flow's `tools/call` as an MCP task (the 1.32 SDK client's task support): the call answers at
 * once with a task whose id is the execution's; `tasks/get` reads the execution (`input_required`
 * while a node waits for an approval), `tasks/result` waits for its end, `tasks/cancel` cancels it.
 */
describe('MCP server: flow calls as tasks', () => {
  let t: TestApp;
  let ada: TestUser;
  let bob: TestUser;
  const clients: { close(): Promise<void> }[] = [];
  const devices: DeviceSimulator[] = [];

  beforeAll(async () => {
    t = await startTestApp({ env: { HITL_TIMEOUT_MS: '60000' } });
    [ada, bob] = await Promise.all([registerUser(t.api, 'Ada'), registerUser(t.api, 'Bob')]);
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
    devices.forEach((device) => device.close());
    await t.stop();
  });

  const connect = async (user: TestUser) => {
    const key = await request('POST', `${t.api}/api-keys`, {
      token: user.accessToken,
      body: { name: `tasks ${randomUUID()}`, scopes: ['write'] },
    });
    const client = new Client({ name: 'tasks-test', version: '1.0.0' });
    clients.push(client);
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${t.url}/mcp`), {
        requestInit: { headers: { Authorization: `Bearer ${key.body.secret}` } },
      }),
    );
    return client;
  };
  const createFlow = async (definition: unknown) => {
    const res = await request('POST', `${t.api}/flows`, {
      token: ada.accessToken,
      body: { type: 'agentflow', name: `Task ${randomUUID().slice(0, 6)}`, definition },
    });
    if (res.status !== 201) throw new Error(`create flow: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.flow.id as string;
  };
  const toolOf = async (client: Client, flowId: string) => (await client.listTools()).tools.find((tool) => tool.name.endsWith(flowId))!;

  test('a call as a task answers with its task at once; tasks/result waits for the output, tasks/get reads it', async () => {
    const flowId = await createFlow({ nodes: [{ id: 'n', prompt: 'facts about {{input.animal}}' }], output: 'n' });
    t.llm.push({ text: 'Octopuses have three hearts.' });
    const client = await connect(ada);
    const tool = await toolOf(client, flowId);
    expect(tool.execution).toEqual({ taskSupport: 'optional' });
    const messages = [];
    for await (const message of client.experimental.tasks.callToolStream(
      { name: tool.name, arguments: { animal: 'octopus' } },
      CallToolResultSchema,
      { task: { ttl: 60_000 } },
    ))
      messages.push(message);
    expect(messages[0]).toMatchObject({ type: 'taskCreated', task: { status: 'working' } });
    const taskId = (messages[0] as { task: { taskId: string } }).task.taskId;
    expect(messages.at(-1)).toMatchObject({
      type: 'result',
      result: { content: [{ type: 'text', text: 'Octopuses have three hearts.' }] },
    });
    // The task is the execution.
    const execution = await request('GET', `${t.api}/flows/${flowId}/executions/${taskId}`, { token: ada.accessToken });
    expect(execution.body.execution).toMatchObject({ status: 'completed', input: { animal: 'octopus' } });
    expect(await client.experimental.tasks.getTask(taskId)).toMatchObject({ taskId, status: 'completed' });
    // Another user's client does not find it; nor does an id that is no execution's.
    const bobs = await connect(bob);
    await expect(bobs.experimental.tasks.getTask(taskId)).rejects.toThrow(/not found/i);
    await expect(bobs.experimental.tasks.cancelTask(taskId)).rejects.toThrow(/not found/i);
    await expect(client.experimental.tasks.getTask('not-a-task')).rejects.toThrow(/not found/i);
  });

  test('in the 2026-07-28 era a waiting approval is an input_required result; the call goes on once a person decides', async () => {
    const deviceId = `laptop-${randomUUID().slice(0, 6)}`;
    const device = await DeviceSimulator.connect({ url: t.url, accessToken: ada.accessToken, deviceId, seed, reconnection: false });
    devices.push(device);
    const flowId = await createFlow({ nodes: [{ id: 'a', prompt: 'Delete the old task', tools: ['delete_task'] }], output: 'a', deviceId });
    t.llm.push({ toolCalls: [{ name: 'delete_task', args: { task_id: TASK_ID } }] }, { text: 'Deleted.' });
    const key = await request('POST', `${t.api}/api-keys`, {
      token: ada.accessToken,
      body: { name: `modern ${randomUUID()}`, scopes: ['write'] },
    });
    const client = new ModernClient(
      { name: 'modern-tasks', version: '1.0.0' },
      { capabilities: { elicitation: { url: {} } }, versionNegotiation: { mode: { pin: '2026-07-28' } } },
    );
    clients.push(client);
    // The host shows the URL to its user, who decides in the console; here the test decides as Ada.
    const asked: { message: string; url: string }[] = [];
    client.setRequestHandler('elicitation/create', async (elicit) => {
      const params = elicit.params as { message: string; url: string };
      asked.push(params);
      const approvalId = /request ([0-9a-f-]{36})/.exec(params.message)![1];
      // An API key may not decide; a person signed in to the console does.
      expect((await request('PUT', `${t.api}/hitl/requests/${approvalId}/approve`, { token: key.body.secret })).status).toBe(403);
      expect((await request('PUT', `${t.api}/hitl/requests/${approvalId}/approve`, { token: ada.accessToken })).status).toBe(200);
      return { action: 'accept' };
    });
    await client.connect(
      new ModernTransport(new URL(`${t.url}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${key.body.secret}` } } }),
    );
    const tool = (await client.listTools()).tools.find((one) => one.name.endsWith(flowId))!;
    const result = await client.callTool({ name: tool.name, arguments: {} });
    expect(result.content).toEqual([{ type: 'text', text: 'Deleted.' }]);
    expect(asked).toHaveLength(1);
    const executionId = (result._meta as { executionId: string }).executionId;
    expect(asked[0].url).toMatch(new RegExp(`/#/flows/${flowId}/executions/${executionId}$`));
    // One execution: the retry followed the same one.
    const listed = await request('GET', `${t.api}/flows/${flowId}/executions`, { token: ada.accessToken });
    expect(listed.body.executions.map((one: { id: string }) => one.id)).toEqual([executionId]);

    // A request state naming another user's execution (or none) is refused.
    const bobKey = await request('POST', `${t.api}/api-keys`, { token: bob.accessToken, body: { name: 'b', scopes: ['write'] } });
    const forged = await fetch(`${t.url}/mcp`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${bobKey.body.secret}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2026-07-28',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: {
          name: tool.name,
          arguments: {},
          requestState: JSON.stringify({ executionId, seq: 0 }),
          _meta: {
            'io.modelcontextprotocol/protocolVersion': '2026-07-28',
            'io.modelcontextprotocol/clientInfo': { name: 'x', version: '1' },
          },
        },
      }),
    });
    expect(JSON.stringify(await forged.json())).toMatch(/requestState names no execution of this tool of yours|-32602/);
  });

  test('a node waiting for an approval is input_required; tasks/cancel cancels the execution and its approval', async () => {
    const deviceId = `laptop-${randomUUID().slice(0, 6)}`;
    const device = await DeviceSimulator.connect({ url: t.url, accessToken: ada.accessToken, deviceId, seed, reconnection: false });
    devices.push(device);
    const flowId = await createFlow({ nodes: [{ id: 'a', prompt: 'Delete the old task', tools: ['delete_task'] }], output: 'a', deviceId });
    t.llm.push({ toolCalls: [{ name: 'delete_task', args: { task_id: TASK_ID } }] });
    const client = await connect(ada);
    const tool = await toolOf(client, flowId);
    const asked = nextDeviceEvent<{ approvalId: string }>(device, 'approval_requested');
    const { task } = await client.request(
      { method: 'tools/call', params: { name: tool.name, arguments: {}, task: {} } },
      CreateTaskResultSchema,
    );
    const { approvalId } = await asked;
    const waiting = await eventually<GetTaskResult>(
      () => client.experimental.tasks.getTask(task.taskId),
      (read) => read.status === 'input_required',
    );
    expect(waiting.statusMessage).toContain(approvalId);

    const cancelled = await client.experimental.tasks.cancelTask(task.taskId);
    expect(cancelled).toMatchObject({ taskId: task.taskId, status: 'cancelled' });
    expect(await client.experimental.tasks.getTask(task.taskId)).toMatchObject({ status: 'cancelled' });
    const execution = await request('GET', `${t.api}/flows/${flowId}/executions/${task.taskId}`, { token: ada.accessToken });
    expect(execution.body.execution.status).toBe('cancelled');
    const approval = await eventually(
      () => request('GET', `${t.api}/hitl/requests/${approvalId}`, { token: ada.accessToken }),
      (res) => res.body.status !== 'pending',
    );
    expect(approval.body.status).not.toBe('approved');
    // Cancelling an ended task is a JSON-RPC error.
    await expect(client.experimental.tasks.cancelTask(task.taskId)).rejects.toThrow(/terminal status/);
  });
});
