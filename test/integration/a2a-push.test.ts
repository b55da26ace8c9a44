import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DeviceSimulator } from '@switchboard/client/testing';
import { Role, StreamResponse, TaskState, type Message, type Task, type TaskPushNotificationConfig } from '@a2a-js/sdk';
import { ClientFactory, ClientFactoryOptions, DefaultAgentCardResolver, JsonRpcTransportFactory, type Client } from '@a2a-js/sdk/client';
import { TaskNotFoundError } from '@a2a-js/sdk/errors';
import { demoResponder } from '../../src/demo-model';
import { messageText } from '../../src/demo-model/openai-compatible-server';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { userWithDevice } from '../support/user-device';
import { waitUntil } from '../support/wait';

/**
 * A2A push notifications, set with the A2A SDK's own client against a live Switchboard and
 * received by a local HTTP receiver: a config stored per task (owner only), the task POSTed as an
 * A2A stream response with the config's token when the turn ends, retried through the webhook
 * queue, a private URL refused with nothing stored, another user's task not found.
 */

interface Received {
  path: string;
  token: string | undefined;
  contentType: string | undefined;
  body: Record<string, unknown>;
}

describe('A2A push notifications', () => {
  let t: TestApp;
  let server: http.Server;
  let origin = '';
  const received: Received[] = [];
  /** Paths whose next N POSTs the receiver refuses with a 500 (to see the retry). */
  const failuresLeft = new Map<string, number>();
  const releases = new Map<string, () => void>();
  const devices: DeviceSimulator[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const path = req.url ?? '/';
        received.push({
          path,
          token: req.headers['x-a2a-notification-token'] as string | undefined,
          contentType: req.headers['content-type'],
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>,
        });
        const left = failuresLeft.get(path) ?? 0;
        if (left > 0) {
          failuresLeft.set(path, left - 1);
          return void res.writeHead(500).end('boom');
        }
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    t = await startTestApp({
      env: {
        HITL_TIMEOUT_MS: '60000',
        WEBHOOK_PRIVATE_ORIGINS: origin,
        WEBHOOK_BACKOFF_MS: '50',
        WEBHOOK_ATTEMPTS: '3',
        WEBHOOK_TIMEOUT_MS: '2000',
      },
      responder: async (req) => {
        const last = req.messages.filter((m) => m.role === 'user').at(-1);
        const hold = last ? /\[hold:([\w-]+)\]/.exec(messageText(last)) : null;
        if (hold) {
          await new Promise<void>((resolve) => releases.set(hold[1], resolve));
          return { text: `The held answer ${hold[1]}.` };
        }
        return demoResponder(req);
      },
    });
  });
  afterAll(async () => {
    releases.forEach((release) => release());
    devices.forEach((device) => device.close());
    await t.stop();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const apiKeyOf = async (user: TestUser) => {
    const created = await request('POST', `${t.api}/api-keys`, {
      token: user.accessToken,
      body: { name: `push-${randomUUID().slice(0, 6)}` },
    });
    expect(created.status).toBe(201);
    return created.body.secret as string;
  };
  const clientFor = (key: string): Promise<Client> => {
    const fetchImpl: typeof fetch = (input, init) => {
      const headers = new Headers(init?.headers);
      headers.set('authorization', `Bearer ${key}`);
      return fetch(input, { ...init, headers });
    };
    const factory = new ClientFactory(
      ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
        transports: [new JsonRpcTransportFactory({ fetchImpl })],
        cardResolver: new DefaultAgentCardResolver({ fetchImpl }),
      }),
    );
    return factory.createFromUrl(`${t.url}/.well-known/agent-card.json`, '');
  };
  const userMessage = (text: string): Message => ({
    messageId: randomUUID(),
    contextId: '',
    taskId: '',
    role: Role.ROLE_USER,
    parts: [{ content: { $case: 'text', value: text }, metadata: undefined, filename: '', mediaType: 'text/plain' }],
    metadata: undefined,
    extensions: [],
    referenceTaskIds: [],
  });
  const send = (message: Message, returnImmediately: boolean, push?: TaskPushNotificationConfig) => ({
    tenant: '',
    message,
    configuration: { acceptedOutputModes: [], taskPushNotificationConfig: push, returnImmediately },
    metadata: undefined,
  });
  const config = (taskId: string, url: string, id: string = randomUUID(), token = `tok-${randomUUID()}`): TaskPushNotificationConfig => ({
    tenant: '',
    id,
    taskId,
    url,
    token,
    authentication: undefined,
  });
  /** A task waiting in its model call until `release(tag)`. */
  const heldTask = async (client: Client) => {
    const tag = randomUUID();
    const task = (await client.sendMessage(send(userMessage(`Please [hold:${tag}]`), true))) as Task;
    await waitUntil(() => releases.has(tag), 15_000);
    return { task, tag, release: () => releases.get(tag)!() };
  };
  const taskOf = (entry: Received) => StreamResponse.fromJSON(entry.body).payload;

  test('the card offers push notifications', async () => {
    const card = await (await fetch(`${t.url}/.well-known/agent-card.json`)).json();
    expect(card.capabilities).toMatchObject({ pushNotifications: true });
  });

  test('a config set on a task gets the completed task with its token; get, list and delete answer for it', async () => {
    const user = await registerUser(t.api, 'Pusher');
    const client = await clientFor(await apiKeyOf(user));
    const { task, release, tag } = await heldTask(client);
    const path = `/push/${randomUUID()}`;
    const set = config(task.id, `${origin}${path}`);
    const stored = await client.createTaskPushNotificationConfig(set);
    expect(stored).toMatchObject({ id: set.id, taskId: task.id, url: set.url, token: set.token });
    expect(await client.getTaskPushNotificationConfig({ tenant: '', taskId: task.id, id: set.id })).toMatchObject({
      id: set.id,
      url: set.url,
      token: set.token,
    });
    const listed = await client.listTaskPushNotificationConfig({ tenant: '', taskId: task.id, pageSize: 10, pageToken: '' });
    expect(listed.configs.map((c) => c.id)).toEqual([set.id]);

    release();
    await waitUntil(() => received.some((entry) => entry.path === path), 15_000);
    const push = received.filter((entry) => entry.path === path);
    expect(push).toHaveLength(1);
    expect(push[0].token).toBe(set.token);
    expect(push[0].contentType).toContain('application/a2a+json');
    const payload = taskOf(push[0]);
    expect(payload?.$case).toBe('task');
    const pushed = payload?.$case === 'task' ? payload.value : undefined;
    expect(pushed).toMatchObject({ id: task.id, contextId: task.contextId, status: { state: TaskState.TASK_STATE_COMPLETED } });
    const answer = pushed!.artifacts.flatMap((a) => a.parts).map((p) => (p.content?.$case === 'text' ? p.content.value : ''));
    expect(answer.join('')).toBe(`The held answer ${tag}.`);

    await client.deleteTaskPushNotificationConfig({ tenant: '', taskId: task.id, id: set.id });
    await expect(client.getTaskPushNotificationConfig({ tenant: '', taskId: task.id, id: set.id })).rejects.toBeInstanceOf(
      TaskNotFoundError,
    );
    await expect(client.deleteTaskPushNotificationConfig({ tenant: '', taskId: task.id, id: set.id })).rejects.toBeInstanceOf(
      TaskNotFoundError,
    );
  });

  test('a config sent with the message is pushed, and a refused POST is retried through the webhook queue', async () => {
    const user = await registerUser(t.api, 'Retrier');
    const client = await clientFor(await apiKeyOf(user));
    const path = `/push/${randomUUID()}`;
    failuresLeft.set(path, 1);
    const result = (await client.sendMessage(
      send(userMessage('Hello there'), false, config('', `${origin}${path}`, '', 'inline-token')),
    )) as Task;
    expect(result.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    await waitUntil(() => received.filter((entry) => entry.path === path).length >= 2, 15_000);
    const pushes = received.filter((entry) => entry.path === path);
    expect(pushes.every((entry) => entry.token === 'inline-token')).toBe(true);
    const ids = pushes.map((entry) => {
      const payload = taskOf(entry);
      return payload?.$case === 'task' ? `${payload.value.id} ${payload.value.status?.state}` : '';
    });
    expect(new Set(ids)).toEqual(new Set([`${result.id} ${TaskState.TASK_STATE_COMPLETED}`]));
    // The config took the task's id as its own.
    const listed = await client.listTaskPushNotificationConfig({ tenant: '', taskId: result.id, pageSize: 10, pageToken: '' });
    expect(listed.configs.map((c) => c.id)).toEqual([result.id]);
  });

  test('a turn waiting for an approval is pushed as input-required, then as completed once approved', async () => {
    const taskId = '3f2b8c1e-9d4a-4b6e-8f00-1234567890ab';
    const seed = { tasks: [{ id: taskId, title: 'Old report', status: 'done', priority: 'low' }] };
    const { user } = await userWithDevice(t.url, devices, { name: 'Approver', seed });
    const client = await clientFor(await apiKeyOf(user));
    const path = `/push/${randomUUID()}`;
    const task = (await client.sendMessage(
      send(userMessage(`Delete task ${taskId}`), false, config('', `${origin}${path}`, 'approvals')),
    )) as Task;
    expect(task.status?.state).toBe(TaskState.TASK_STATE_INPUT_REQUIRED);
    await waitUntil(() => received.some((entry) => entry.path === path), 15_000);
    const first = taskOf(received.find((entry) => entry.path === path)!);
    const waiting = first?.$case === 'task' ? first.value : undefined;
    expect(waiting).toMatchObject({ id: task.id, status: { state: TaskState.TASK_STATE_INPUT_REQUIRED } });
    const data = waiting!.status!.message!.parts.find((p) => p.content?.$case === 'data')!.content as { value: { approvalId: string } };
    const decided = await request('PUT', `${t.api}/hitl/requests/${data.value.approvalId}/approve`, { token: user.accessToken, body: {} });
    expect(decided.status).toBe(200);
    await waitUntil(() => received.filter((entry) => entry.path === path).length >= 2, 20_000);
    const states = received
      .filter((entry) => entry.path === path)
      .map((entry) => {
        const payload = taskOf(entry);
        return payload?.$case === 'task' ? payload.value.status?.state : undefined;
      });
    expect(states).toEqual([TaskState.TASK_STATE_INPUT_REQUIRED, TaskState.TASK_STATE_COMPLETED]);
  });

  test('0.3 clients use the tasks/pushNotificationConfig/* methods', async () => {
    const user = await registerUser(t.api, 'Legacy');
    const key = await apiKeyOf(user);
    const { task, release } = await heldTask(await clientFor(key));
    const path = `/push/${randomUUID()}`;
    const legacy = (method: string, params: unknown) =>
      fetch(`${t.url}/a2a`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
      }).then((res) => res.json());
    try {
      const set = await legacy('tasks/pushNotificationConfig/set', {
        taskId: task.id,
        pushNotificationConfig: { id: 'legacy', url: `${origin}${path}`, token: 'legacy-token' },
      });
      expect(set.error).toBeUndefined();
      expect(set.result).toMatchObject({ taskId: task.id, pushNotificationConfig: { id: 'legacy', url: `${origin}${path}` } });
      const listed = await legacy('tasks/pushNotificationConfig/list', { id: task.id });
      expect(listed.result).toEqual([
        expect.objectContaining({ taskId: task.id, pushNotificationConfig: expect.objectContaining({ id: 'legacy' }) }),
      ]);
      const got = await legacy('tasks/pushNotificationConfig/get', { id: task.id, pushNotificationConfigId: 'legacy' });
      expect(got.result).toMatchObject({ pushNotificationConfig: { id: 'legacy', token: 'legacy-token' } });
    } finally {
      release();
    }
    await waitUntil(() => received.some((entry) => entry.path === path), 15_000);
    expect(received.find((entry) => entry.path === path)!.token).toBe('legacy-token');
    const deleted = await legacy('tasks/pushNotificationConfig/delete', { id: task.id, pushNotificationConfigId: 'legacy' });
    expect(deleted.error).toBeUndefined();
    const after = await legacy('tasks/pushNotificationConfig/list', { id: task.id });
    expect(after.result).toEqual([]);
  });

  test('a private URL is refused as a JSON-RPC error and nothing is stored', async () => {
    const user = await registerUser(t.api, 'Private');
    const key = await apiKeyOf(user);
    const client = await clientFor(key);
    const { task, release } = await heldTask(client);
    try {
      for (const url of ['http://10.1.2.3/hook', 'http://169.254.169.254/latest', 'ftp://example.com/x', 'http://user:pw@example.com/']) {
        const error = await client.createTaskPushNotificationConfig(config(task.id, url)).then(
          () => null,
          (e: unknown) => e as Error,
        );
        expect(error?.message).toMatch(/refused/i);
      }
      for (const tooLong of [config(task.id, `${origin}/${'x'.repeat(3000)}`), config(task.id, `${origin}/ok`, 'x'.repeat(300))]) {
        const error = await client.createTaskPushNotificationConfig(tooLong).then(
          () => null,
          (e: unknown) => e as Error,
        );
        expect(error?.message).toMatch(/invalid request body/i);
      }
      // The raw answer is a JSON-RPC error (invalid params), not an HTTP failure.
      const raw = await fetch(`${t.url}/a2a`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'A2A-Version': '1.0' },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 7,
          method: 'CreateTaskPushNotificationConfig',
          params: { taskId: task.id, id: 'x', url: 'http://10.1.2.3/hook', token: 't' },
        }),
      });
      expect(raw.status).toBe(200);
      const body = await raw.json();
      expect(body).toMatchObject({ jsonrpc: '2.0', id: 7, error: { code: -32602 } });
      const listed = await client.listTaskPushNotificationConfig({ tenant: '', taskId: task.id, pageSize: 10, pageToken: '' });
      expect(listed.configs).toEqual([]);
    } finally {
      release();
    }
  });

  test('a task keeps at most 10 configs; replacing one of them is allowed', async () => {
    const user = await registerUser(t.api, 'Flooder');
    const client = await clientFor(await apiKeyOf(user));
    const { task, release } = await heldTask(client);
    try {
      for (let i = 0; i < 10; i += 1) await client.createTaskPushNotificationConfig(config(task.id, `${origin}/push/flood-${i}`, `c${i}`));
      const refused = await client.createTaskPushNotificationConfig(config(task.id, `${origin}/push/flood-x`, 'c10')).then(
        () => null,
        (e: unknown) => e as Error,
      );
      expect(refused?.message).toMatch(/at most 10/);
      await client.createTaskPushNotificationConfig(config(task.id, `${origin}/push/flood-again`, 'c3'));
      const listed = await client.listTaskPushNotificationConfig({ tenant: '', taskId: task.id, pageSize: 50, pageToken: '' });
      expect(listed.configs).toHaveLength(10);
      expect(listed.configs.find((c) => c.id === 'c3')?.url).toBe(`${origin}/push/flood-again`);
    } finally {
      release();
    }
  });

  test("another user's task and its configs are not found", async () => {
    const [owner, other] = await Promise.all([registerUser(t.api, 'Owner'), registerUser(t.api, 'Other')]);
    const ownerClient = await clientFor(await apiKeyOf(owner));
    const otherClient = await clientFor(await apiKeyOf(other));
    const { task, release } = await heldTask(ownerClient);
    const path = `/push/${randomUUID()}`;
    try {
      const set = config(task.id, `${origin}/push/owner-${randomUUID()}`);
      await ownerClient.createTaskPushNotificationConfig(set);
      await expect(otherClient.getTaskPushNotificationConfig({ tenant: '', taskId: task.id, id: set.id })).rejects.toBeInstanceOf(
        TaskNotFoundError,
      );
      await expect(
        otherClient.listTaskPushNotificationConfig({ tenant: '', taskId: task.id, pageSize: 10, pageToken: '' }),
      ).rejects.toBeInstanceOf(TaskNotFoundError);
      await expect(otherClient.createTaskPushNotificationConfig(config(task.id, `${origin}${path}`))).rejects.toBeInstanceOf(
        TaskNotFoundError,
      );
      await expect(otherClient.deleteTaskPushNotificationConfig({ tenant: '', taskId: task.id, id: set.id })).rejects.toBeInstanceOf(
        TaskNotFoundError,
      );
      const listed = await ownerClient.listTaskPushNotificationConfig({ tenant: '', taskId: task.id, pageSize: 10, pageToken: '' });
      expect(listed.configs.map((c) => c.id)).toEqual([set.id]);
    } finally {
      release();
    }
    await waitUntil(() => received.some((entry) => entry.path.startsWith('/push/owner-')), 15_000);
    expect(received.some((entry) => entry.path === path)).toBe(false);
  });
});
