import { randomUUID } from 'node:crypto';
import { Role, TaskState, type Message, type Task } from '@a2a-js/sdk';
import { ClientFactory, ClientFactoryOptions, DefaultAgentCardResolver, JsonRpcTransportFactory, type Client } from '@a2a-js/sdk/client';
import { TaskNotFoundError } from '@a2a-js/sdk/errors';
import type { DeviceSimulator } from '@switchboard/client/testing';
import { demoResponder } from '../../src/demo-model';
import { messageText } from '../../src/demo-model/openai-compatible-server';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { userWithDevice } from '../support/user-device';
import { eventually, waitUntil } from '../support/wait';

/**
 * The Agent2Agent protocol, spoken by the A2A SDK's own client (`@a2a-js/sdk/client`) against a
 * live Switchboard: the agent cards, `SendMessage` / `message/send`, the stream, `GetTask`,
 * `CancelTask`, a turn waiting for an approval as `input-required`, another user's task, and
 * malformed JSON-RPC answered as JSON-RPC errors with nothing written.
 */

const TASK_ID = '3f2b8c1e-9d4a-4b6e-8f00-1234567890ab';
const seed = { tasks: [{ id: TASK_ID, title: 'Old report', status: 'done', priority: 'low' }] };

describe('A2A against Switchboard', () => {
  let t: TestApp;
  const devices: DeviceSimulator[] = [];
  let release: () => void = () => undefined;
  let holding = false;

  beforeAll(async () => {
    t = await startTestApp({
      env: { HITL_TIMEOUT_MS: '60000' },
      responder: async (req) => {
        const last = req.messages.filter((m) => m.role === 'user').at(-1);
        if (last && messageText(last).includes('[hold]')) {
          await new Promise<void>((resolve) => {
            release = resolve;
            holding = true;
          });
          return { text: 'The held answer.' };
        }
        return demoResponder(req);
      },
    });
  });
  afterAll(async () => {
    release();
    devices.forEach((device) => device.close());
    await t.stop();
  });

  const apiKeyOf = async (user: TestUser) => {
    const created = await request('POST', `${t.api}/api-keys`, {
      token: user.accessToken,
      body: { name: `a2a-${randomUUID().slice(0, 6)}` },
    });
    expect(created.status).toBe(201);
    return created.body.secret as string;
  };
  const withKey =
    (key: string): typeof fetch =>
    (input, init) => {
      const headers = new Headers(init?.headers);
      headers.set('authorization', `Bearer ${key}`);
      return fetch(input, { ...init, headers });
    };
  /** A client of the agent whose card is at `cardUrl` (default: the assistant's). */
  const clientFor = async (key: string, cardUrl = `${t.url}/.well-known/agent-card.json`, legacy = false): Promise<Client> => {
    const fetchImpl = withKey(key);
    const factory = new ClientFactory(
      ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
        transports: [new JsonRpcTransportFactory({ fetchImpl, legacyCompat: { enabled: true } })],
        cardResolver: new DefaultAgentCardResolver({ fetchImpl }),
      }),
    );
    if (!legacy) return factory.createFromUrl(cardUrl, '');
    const card = await new DefaultAgentCardResolver({ fetchImpl }).resolve(cardUrl, '');
    return factory.createFromAgentCard({
      ...card,
      supportedInterfaces: card.supportedInterfaces.filter((i) => i.protocolVersion === '0.3'),
    });
  };
  const userMessage = (text: string, more: Partial<Message> = {}): Message => ({
    messageId: randomUUID(),
    contextId: '',
    taskId: '',
    role: Role.ROLE_USER,
    parts: [{ content: { $case: 'text', value: text }, metadata: undefined, filename: '', mediaType: 'text/plain' }],
    metadata: undefined,
    extensions: [],
    referenceTaskIds: [],
    ...more,
  });
  const send = (message: Message, returnImmediately = false) => ({
    tenant: '',
    message,
    configuration: { acceptedOutputModes: [], taskPushNotificationConfig: undefined, returnImmediately },
    metadata: undefined,
  });
  const answerOf = (task: Task) =>
    task.artifacts
      .flatMap((artifact) => artifact.parts)
      .map((part) => (part.content?.$case === 'text' ? part.content.value : ''))
      .join('');
  const rpc = (key: string | undefined, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${t.url}/a2a`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const sessionsOf = async (user: TestUser) =>
    (await request('GET', `${t.api}/chat/sessions`, { token: user.accessToken })).body.sessions as Array<{ id: string }>;

  test('the assistant card is public and names the JSON-RPC endpoint in both protocol versions', async () => {
    const res = await fetch(`${t.url}/.well-known/agent-card.json`);
    expect(res.status).toBe(200);
    const card = await res.json();
    expect(card.capabilities).toMatchObject({ streaming: true });
    const urls = (card.supportedInterfaces as Array<{ url: string; protocolVersion: string }>).map((i) => `${i.protocolVersion} ${i.url}`);
    expect(urls.sort()).toEqual([`0.3 ${t.url}/a2a`, `1.0 ${t.url}/a2a`].sort());
  });

  test('SendMessage answers with the completed task; GetTask reads it; a contextId continues the session', async () => {
    const user = await registerUser(t.api, 'Sender');
    const client = await clientFor(await apiKeyOf(user));
    const result = (await client.sendMessage(send(userMessage('Hello there')))) as Task;
    expect(result.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(answerOf(result).length).toBeGreaterThan(0);
    const read = await client.getTask({ tenant: '', id: result.id });
    expect(read).toMatchObject({ id: result.id, contextId: result.contextId, status: { state: TaskState.TASK_STATE_COMPLETED } });
    expect(answerOf(read)).toBe(answerOf(result));

    const next = (await client.sendMessage(send(userMessage('And again', { contextId: result.contextId })))) as Task;
    expect(next.contextId).toBe(result.contextId);
    expect(next.id).not.toBe(result.id);
    const history = await request('GET', `${t.api}/chat/sessions/${result.contextId}/history`, { token: user.accessToken });
    expect(history.body.messages.filter((m: { role: string }) => m.role === 'user').map((m: { content: string }) => m.content)).toEqual([
      'Hello there',
      'And again',
    ]);
  });

  test('a v0.3 client (message/send, tasks/get) is served too', async () => {
    const user = await registerUser(t.api, 'Legacy');
    const client = await clientFor(await apiKeyOf(user), undefined, true);
    expect(client.protocolVersion).toBe('0.3');
    const result = (await client.sendMessage(send(userMessage('Hello from 0.3')))) as Task;
    expect(result.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect((await client.getTask({ tenant: '', id: result.id })).status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
  });

  test('SendStreamingMessage streams the task, the answer as artifact chunks, and completed', async () => {
    const user = await registerUser(t.api, 'Streamer');
    const client = await clientFor(await apiKeyOf(user));
    const cases: string[] = [];
    let text = '';
    let taskId = '';
    for await (const response of client.sendMessageStream(send(userMessage('Tell me a story')))) {
      const payload = response.payload!;
      cases.push(payload.$case === 'statusUpdate' ? `status:${TaskState[payload.value.status!.state]}` : payload.$case);
      if (payload.$case === 'task') taskId = payload.value.id;
      if (payload.$case === 'artifactUpdate')
        text += payload.value.artifact!.parts.map((p) => (p.content?.$case === 'text' ? p.content.value : '')).join('');
    }
    expect(cases[0]).toBe('task');
    expect(cases).toContain('artifactUpdate');
    expect(cases.at(-1)).toBe('status:TASK_STATE_COMPLETED');
    const read = await client.getTask({ tenant: '', id: taskId });
    expect(answerOf(read)).toBe(text);
  });

  test('CancelTask stops a running turn: the task ends canceled', async () => {
    const user = await registerUser(t.api, 'Canceller');
    const client = await clientFor(await apiKeyOf(user));
    holding = false;
    const started = (await client.sendMessage(send(userMessage('[hold] a long one'), true))) as Task;
    expect([TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING]).toContain(started.status?.state);
    await waitUntil(() => holding, 20_000);
    const cancelled = await client.cancelTask({ tenant: '', id: started.id, metadata: undefined });
    expect(cancelled.status?.state).toBe(TaskState.TASK_STATE_CANCELED);
    release();
    expect((await client.getTask({ tenant: '', id: started.id })).status?.state).toBe(TaskState.TASK_STATE_CANCELED);
    await expect(client.cancelTask({ tenant: '', id: started.id, metadata: undefined })).rejects.toThrow(/already ended/);
  });

  test('a turn waiting for an approval is input-required until a person decides it', async () => {
    const { user } = await userWithDevice(t.url, devices, { name: 'Approver', seed });
    const client = await clientFor(await apiKeyOf(user));
    const task = (await client.sendMessage(send(userMessage(`Delete task ${TASK_ID}`)))) as Task;
    expect(task.status?.state).toBe(TaskState.TASK_STATE_INPUT_REQUIRED);
    // Still input-required once the turn is parked and no worker holds it.
    await eventually(
      () => t.app.repos.runs.find('chat', task.id),
      (run) => run?.status === 'waiting',
      20_000,
    );
    expect((await client.getTask({ tenant: '', id: task.id })).status?.state).toBe(TaskState.TASK_STATE_INPUT_REQUIRED);
    const data = task.status!.message!.parts.find((p) => p.content?.$case === 'data')!.content as { value: { approvalId: string } };
    const approvalId = data.value.approvalId;
    const decided = await request('PUT', `${t.api}/hitl/requests/${approvalId}/approve`, { token: user.accessToken, body: {} });
    expect(decided.status).toBe(200);
    const done = await eventually(
      () => client.getTask({ tenant: '', id: task.id }),
      (read) => read.status?.state === TaskState.TASK_STATE_COMPLETED,
      20_000,
    );
    expect(answerOf(done).length).toBeGreaterThan(0);
  });

  test("another user's task is not found, and its context cannot be continued", async () => {
    const owner = await registerUser(t.api, 'Owner');
    const other = await registerUser(t.api, 'Other');
    const mine = (await (await clientFor(await apiKeyOf(owner))).sendMessage(send(userMessage('Mine')))) as Task;
    const theirs = await clientFor(await apiKeyOf(other));
    await expect(theirs.getTask({ tenant: '', id: mine.id })).rejects.toBeInstanceOf(TaskNotFoundError);
    await expect(theirs.cancelTask({ tenant: '', id: mine.id, metadata: undefined })).rejects.toBeInstanceOf(TaskNotFoundError);
    await expect(theirs.sendMessage(send(userMessage('Hijack', { contextId: mine.contextId })))).rejects.toThrow(/No such context/);
    expect(await sessionsOf(other)).toEqual([]);
  });

  test('malformed JSON-RPC is a JSON-RPC error and writes nothing; no credential is 401', async () => {
    const user = await registerUser(t.api, 'Malformed');
    const key = await apiKeyOf(user);
    const parse = await rpc(key, '{"jsonrpc": "2.0", "id": 1, "method": ');
    expect(await parse.json()).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32700 } });
    const invalid = await rpc(key, { id: 2, method: 'message/send' });
    expect(await invalid.json()).toMatchObject({ id: 2, error: { code: -32600 } });
    const unknown = await rpc(key, { jsonrpc: '2.0', id: 3, method: 'tasks/explode', params: {} });
    expect(await unknown.json()).toMatchObject({ id: 3, error: { code: -32601 } });
    const noMessage = await rpc(key, { jsonrpc: '2.0', id: 4, method: 'message/send', params: {} });
    expect((await noMessage.json()).error).toBeDefined();
    const empty = await rpc(key, {
      jsonrpc: '2.0',
      id: 5,
      method: 'message/send',
      params: { message: { kind: 'message', messageId: 'm1', role: 'user', parts: [{ kind: 'text', text: '   ' }] } },
    });
    expect(await empty.json()).toMatchObject({ id: 5, error: { code: -32602 } });
    const badTask = await rpc(key, { jsonrpc: '2.0', id: 6, method: 'tasks/get', params: { id: 'not-a-task' } });
    expect(await badTask.json()).toMatchObject({ id: 6, error: { code: -32001 } });
    expect(await sessionsOf(user)).toEqual([]);

    const anonymous = await rpc(undefined, { jsonrpc: '2.0', id: 7, method: 'tasks/get', params: { id: randomUUID() } });
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toMatchObject({ jsonrpc: '2.0', id: 7, error: { code: -32000 } });
  });

  test("a chatflow is an agent of its own: its card and turns are its owner's", async () => {
    const owner = await registerUser(t.api, 'FlowOwner');
    const other = await registerUser(t.api, 'FlowOther');
    const created = await request('POST', `${t.api}/flows`, {
      token: owner.accessToken,
      body: { type: 'chatflow', name: 'Pirate', definition: { systemPrompt: 'You are a pirate.' } },
    });
    expect(created.status).toBe(201);
    const base = `${t.url}/a2a/flows/${created.body.flow.id}`;
    const client = await clientFor(await apiKeyOf(owner), `${base}/.well-known/agent-card.json`);
    expect((await client.getAgentCard()).name).toBe('Pirate');
    const task = (await client.sendMessage(send(userMessage('Ahoy')))) as Task;
    expect(task.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    const session = await request('GET', `${t.api}/chat/sessions/${task.contextId}/history`, { token: owner.accessToken });
    expect(session.body.session).toMatchObject({ mode: 'flow', flowId: created.body.flow.id });
    // The assistant's endpoint does not see the flow's task, and another user does not see the flow.
    const assistant = await clientFor(await apiKeyOf(owner));
    await expect(assistant.getTask({ tenant: '', id: task.id })).rejects.toBeInstanceOf(TaskNotFoundError);
    const card = await fetch(`${base}/.well-known/agent-card.json`, { headers: { authorization: `Bearer ${await apiKeyOf(other)}` } });
    expect(card.status).toBe(404);
  });
});
