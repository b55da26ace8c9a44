import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DeviceSimulator } from '@switchboard/client/testing';
import { sql } from 'drizzle-orm';
import { DEVICE_TOOL_NAMES } from '../../src/turns/tool-contract';
import { TOOLS_BY_NAME } from '../../src/turns/device-tools';
import { isPrivateAddress } from '../../src/flows/http-tool';
import { startTestApp, type TestApp } from '../support/app';
import { nextDeviceEvent } from '../support/device-events';
import { registerUser, request, type TestUser } from '../support/http';
import { readSse, type SseMessage } from '../support/sse';

/**
 * Agentflow nodes with tools: an HTTP tool on an allowed origin, device tools on the owner's
 * device (dangerous ones wait for approval), each call in the execution's events; private
 * addresses refused unless the operator allowed the origin; unknown tools refused on save.
 */

const TASK_ID = '3f2b8c1e-9d4a-4b6e-8f00-1234567890ab';
const seed = { tasks: [{ id: TASK_ID, title: 'Old report', status: 'done', priority: 'low' }] };

describe('agentflow node tools', () => {
  let t: TestApp;
  let ada: TestUser;
  let server: http.Server;
  let origin: string;
  const hits: string[] = [];
  const devices: DeviceSimulator[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      hits.push(req.url ?? '');
      if (req.url?.startsWith('/big')) return res.end('x'.repeat(5_000));
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ city: new URL(req.url ?? '/', 'http://x').searchParams.get('city'), temperature: 21 }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    t = await startTestApp({
      env: { FLOW_HTTP_PRIVATE_ORIGINS: origin, FLOW_HTTP_MAX_RESPONSE_BYTES: '1000', HITL_TIMEOUT_MS: '60000' },
    });
    ada = await registerUser(t.api, 'Ada');
  });
  afterAll(async () => {
    devices.forEach((device) => device.close());
    await t.stop();
    await new Promise((resolve) => server.close(resolve));
  });

  const create = (user: TestUser, definition: unknown) =>
    request('POST', `${t.api}/flows`, { token: user.accessToken, body: { type: 'agentflow', name: 'Tools', definition } });
  const run = (user: TestUser, flowId: string) =>
    readSse(`${t.api}/flows/${flowId}/execute/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { input: {} },
      timeoutMs: 30_000,
    }).then((result) => result.messages);
  const toolEvents = (messages: SseMessage[]) => messages.filter((m) => m.event === 'tool_called').map((m) => m.data);
  const weather = (url = `${origin}/weather`) => ({ name: 'weather', description: 'The weather of a city', method: 'GET', url });

  async function connect(user: TestUser): Promise<{ device: DeviceSimulator; deviceId: string }> {
    const deviceId = `laptop-${randomUUID().slice(0, 6)}`;
    const device = await DeviceSimulator.connect({ url: t.url, accessToken: user.accessToken, deviceId, seed, reconnection: false });
    devices.push(device);
    return { device, deviceId };
  }

  test('the device tool names the API checks are the catalog of device tools', () => {
    expect([...DEVICE_TOOL_NAMES].sort()).toEqual([...TOOLS_BY_NAME.keys()].sort());
  });

  test('a node calls an HTTP tool on an allowed origin; the event shows its arguments, result and time', async () => {
    const created = await create(ada, {
      nodes: [{ id: 'a', prompt: 'What is the weather in Oslo?', tools: ['weather'] }],
      output: 'a',
      httpTools: [weather()],
      allowedOrigins: [origin],
    });
    expect(created.status).toBe(201);
    t.llm.push({ toolCalls: [{ name: 'weather', args: { query: { city: 'Oslo' } } }] }, { text: 'It is 21 degrees in Oslo.' });

    const messages = await run(ada, created.body.flow.id);

    expect(messages.at(-1)?.event).toBe('execution_completed');
    expect(messages.at(-1)?.data.output).toBe('It is 21 degrees in Oslo.');
    const [call] = toolEvents(messages);
    expect(call).toMatchObject({ nodeId: 'a', tool: 'weather', kind: 'http', args: { query: { city: 'Oslo' } }, ok: true });
    expect(call.result).toContain('"temperature":21');
    expect(Date.parse(call.startedAt)).not.toBeNaN();
    expect(call.durationMs).toEqual(expect.any(Number));
    expect(hits).toContain('/weather?city=Oslo');
  });

  test('a response over the size cap is cut', async () => {
    const created = await create(ada, {
      nodes: [{ id: 'a', prompt: 'Read it', tools: ['big'] }],
      output: 'a',
      httpTools: [{ name: 'big', description: 'Big', method: 'GET', url: `${origin}/big` }],
      allowedOrigins: [origin],
    });
    t.llm.push({ toolCalls: [{ name: 'big', args: {} }] }, { text: 'read' });
    const [call] = toolEvents(await run(ada, created.body.flow.id));
    expect(call.result).toMatch(/\[response truncated\]$/);
    expect(call.result.length).toBeLessThan(1_100);
  });

  test('an origin the operator did not open to private addresses is refused (localhost)', async () => {
    const port = (server.address() as AddressInfo).port;
    const local = `http://localhost:${port}`;
    const created = await create(ada, {
      nodes: [{ id: 'a', prompt: 'Weather?', tools: ['weather'] }],
      output: 'a',
      httpTools: [weather(`${local}/weather`)],
      allowedOrigins: [local],
    });
    const before = hits.length;
    t.llm.push({ toolCalls: [{ name: 'weather', args: { query: { city: 'Oslo' } } }] }, { text: 'could not' });
    const [call] = toolEvents(await run(ada, created.body.flow.id));
    expect(call).toMatchObject({ tool: 'weather', ok: false, result: expect.stringMatching(/private address/) });
    expect(hits.length).toBe(before);
    expect(['127.0.0.1', '10.1.2.3', '192.168.0.1', '169.254.169.254', '::1', '::ffff:127.0.0.1', 'fd00::1'].every(isPrivateAddress)).toBe(
      true,
    );
    expect(isPrivateAddress('93.184.216.34')).toBe(false);
  });

  test('saving refuses an unknown tool and an HTTP tool off the allowed origins, with the path', async () => {
    const unknown = await create(ada, { nodes: [{ id: 'a', prompt: 'x', tools: ['list_tasks', 'rm_rf'] }], output: 'a', deviceId: 'd' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.details).toEqual([{ path: 'definition.nodes.0.tools.1', message: expect.stringContaining('rm_rf') }]);

    const offOrigin = await create(ada, {
      nodes: [{ id: 'a', prompt: 'x', tools: ['weather'] }],
      output: 'a',
      httpTools: [weather('https://evil.example/weather')],
      allowedOrigins: [origin],
    });
    expect(offOrigin.status).toBe(400);
    expect(offOrigin.body.error.details[0].path).toBe('definition.httpTools.0.url');

    const noDevice = await create(ada, { nodes: [{ id: 'a', prompt: 'x', tools: ['list_tasks'] }], output: 'a' });
    expect(noDevice.status).toBe(400);
    expect(noDevice.body.error.details[0].path).toBe('definition.deviceId');
  });

  test('a node runs a device tool on the flow owner device', async () => {
    const { device, deviceId } = await connect(ada);
    const created = await create(ada, { nodes: [{ id: 'a', prompt: 'List my tasks', tools: ['list_tasks'] }], output: 'a', deviceId });
    t.llm.push({ toolCalls: [{ name: 'list_tasks', args: {} }] }, { text: 'You have one task.' });

    const messages = await run(ada, created.body.flow.id);

    expect(messages.at(-1)?.event).toBe('execution_completed');
    const [call] = toolEvents(messages);
    expect(call).toMatchObject({ tool: 'list_tasks', kind: 'device', ok: true, result: expect.stringContaining('Old report') });
    expect(device.calls.length).toBeGreaterThan(0);
  });

  const deleting = async (decision: 'approve' | 'reject') => {
    const { device, deviceId } = await connect(ada);
    const created = await create(ada, {
      nodes: [{ id: 'a', prompt: 'Delete the old task', tools: ['delete_task'] }],
      output: 'a',
      deviceId,
    });
    t.llm.push({ toolCalls: [{ name: 'delete_task', args: { task_id: TASK_ID } }] });
    const asked = nextDeviceEvent<{ approvalId: string; toolName: string }>(device, 'approval_requested');
    const stream = run(ada, created.body.flow.id);
    const approval = await asked;
    expect(approval.toolName).toBe('delete_task');
    expect(device.calls.filter((c) => c.action === 'delete')).toEqual([]);
    if (decision === 'approve') t.llm.push({ text: 'Deleted.' });
    const decided = await request('PUT', `${t.api}/hitl/requests/${approval.approvalId}/${decision}`, { token: ada.accessToken });
    expect(decided.status).toBe(200);
    return { messages: await stream, device, approvalId: approval.approvalId };
  };

  test('a dangerous device tool waits for approval and runs after approve', async () => {
    const { messages, device, approvalId } = await deleting('approve');
    expect(messages.map((m) => m.event)).toContain('approval_requested');
    expect(messages.at(-1)?.event).toBe('execution_completed');
    expect(toolEvents(messages)).toEqual([expect.objectContaining({ tool: 'delete_task', ok: true, approvalId })]);
    expect(device.calls.filter((c) => c.action === 'delete')).toHaveLength(1);
  });

  test('a rejected dangerous call never reaches the device; the node fails with approval_rejected', async () => {
    const requestsBefore = t.llm.chatRequests().length;
    const { messages, device, approvalId } = await deleting('reject');
    expect(messages.find((m) => m.event === 'node_failed')?.data).toMatchObject({ nodeId: 'a', error: { code: 'approval_rejected' } });
    expect(messages.at(-1)?.event).toBe('execution_failed');
    expect(device.calls.filter((c) => c.action === 'delete')).toEqual([]);
    expect(toolEvents(messages)).toEqual([]);
    // The model was asked once (the call it made), never again after the rejection.
    expect(t.llm.chatRequests().length).toBe(requestsBefore + 1);
    const approval = await request('GET', `${t.api}/hitl/requests/${approvalId}`, { token: ada.accessToken });
    expect(approval.body).toMatchObject({ status: 'rejected', decisionReason: 'user' });
  });

  test('an approval that expires fails its node with approval_expired; the call never runs', async () => {
    const { device, deviceId } = await connect(ada);
    const created = await create(ada, { nodes: [{ id: 'a', prompt: 'Delete it', tools: ['delete_task'] }], output: 'a', deviceId });
    t.llm.push({ toolCalls: [{ name: 'delete_task', args: { task_id: TASK_ID } }] });
    const asked = nextDeviceEvent<{ approvalId: string }>(device, 'approval_requested');
    const stream = run(ada, created.body.flow.id);
    const { approvalId } = await asked;
    await t.app.repos.db.execute(sql`update hitl_requests set expires_at = now() - interval '1 second' where id = ${approvalId}`);

    const late = await request('PUT', `${t.api}/hitl/requests/${approvalId}/approve`, { token: ada.accessToken });
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('expired');

    const messages = await stream;
    expect(messages.find((m) => m.event === 'node_failed')?.data.error.code).toBe('approval_expired');
    expect(messages.at(-1)?.event).toBe('execution_failed');
    expect(device.calls.filter((c) => c.action === 'delete')).toEqual([]);
  });

  test('cancelling an execution whose node waits for approval rejects the request; nothing runs', async () => {
    const { device, deviceId } = await connect(ada);
    const created = await create(ada, { nodes: [{ id: 'a', prompt: 'Delete it', tools: ['delete_task'] }], output: 'a', deviceId });
    t.llm.push({ toolCalls: [{ name: 'delete_task', args: { task_id: TASK_ID } }] });
    const asked = nextDeviceEvent<{ approvalId: string; sessionId: string }>(device, 'approval_requested');
    const stream = run(ada, created.body.flow.id);
    const approval = await asked;
    const resolved = nextDeviceEvent<{ approvalId: string; status: string }>(device, 'approval_resolved');

    const flowId = created.body.flow.id;
    // The execution's own log has the request too (its node's job has ended by then).
    const logged = await readSse(`${t.api}/flows/${flowId}/executions/${approval.sessionId}/events`, {
      token: ada.accessToken,
      until: (m) => m.event === 'approval_requested',
    });
    expect(logged.messages.at(-1)?.data).toMatchObject({ nodeId: 'a', approvalId: approval.approvalId, tool: 'delete_task' });
    const cancel = await request('POST', `${t.api}/flows/${flowId}/executions/${approval.sessionId}/cancel`, { token: ada.accessToken });
    expect(cancel.status).toBe(202);

    expect((await stream).at(-1)?.event).toBe('cancelled');
    expect(await resolved).toMatchObject({ approvalId: approval.approvalId, status: 'rejected' });
    const row = await request('GET', `${t.api}/hitl/requests/${approval.approvalId}`, { token: ada.accessToken });
    expect(row.body).toMatchObject({ status: 'rejected', decisionReason: 'cancelled', sessionId: approval.sessionId });
    const late = await request('PUT', `${t.api}/hitl/requests/${approval.approvalId}/approve`, { token: ada.accessToken });
    expect(late.status).toBe(409);
    expect(device.calls.filter((c) => c.action === 'delete')).toEqual([]);
  });
});
