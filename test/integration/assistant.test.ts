import { Queue } from 'bullmq';
import { demoResponder } from '../../src/demo-model';
import type { ChatRequest } from '../../src/demo-model/openai-compatible-server';
import { DeviceSimulator } from '@switchboard/client/testing';
import { createRedis, redisReady, type RedisClient } from '../../src/lib/redis';
import { bullPrefix } from '../../src/producers/registry';
import { startTestApp, type TestApp } from '../support/app';
import { testRedisTarget } from '../support/database';
import { userWithDevice as userWithDeviceOn } from '../support/user-device';
import { registerUser, request, type TestUser } from '../support/http';
import { readSse } from '../support/sse';
import { toolResultTexts } from '../support/scripted-llm';

const seed = {
  projects: [{ id: 'p-launch', name: 'Product launch', status: 'active' }],
  tasks: [
    { title: 'Write launch brief', status: 'todo', priority: 'high', projectId: 'p-launch' },
    { title: 'Book the venue', status: 'in_progress', priority: 'medium', projectId: 'p-launch' },
    { title: 'Send March invoices', status: 'todo', priority: 'low' },
  ],
};

/** Text of every message of a model request, role first, for assertions. */
const transcript = (req: ChatRequest) =>
  req.messages.map((m) => `${m.role}: ${typeof m.content === 'string' ? m.content : JSON.stringify(m.content)}`);
const toolResults = toolResultTexts;

describe('assistant chat', () => {
  let t: TestApp;
  let redis: RedisClient;
  let queue: Queue;
  const devices: DeviceSimulator[] = [];

  beforeAll(async () => {
    // Scripted turns first; when none is queued the offline demo model answers, from the tool results.
    t = await startTestApp({ responder: demoResponder, env: { DEVICE_RPC_TIMEOUT_MS: '1000' } });
    redis = createRedis(testRedisTarget('queues'), 'command');
    await redisReady(redis);
    queue = new Queue('assistant', { connection: redis, prefix: bullPrefix(t.keyPrefix) });
  });

  afterAll(async () => {
    devices.forEach((device) => device.close());
    await queue.close();
    redis.disconnect();
    await t.stop();
  });

  /** A user with a simulated desktop app holding the seed rows. */
  const userWithDevice = () => userWithDeviceOn(t.url, devices, { name: 'Chat', seed });

  /** Model requests made while `work` runs. */
  async function requestsDuring<T>(work: () => Promise<T>): Promise<{ result: T; requests: ChatRequest[] }> {
    const before = t.llm.chatRequests().length;
    const result = await work();
    return { result, requests: t.llm.chatRequests().slice(before) };
  }

  const chat = (user: TestUser, body: Record<string, unknown>) => request('POST', `${t.api}/chat`, { token: user.accessToken, body });

  test('given seeded tasks, "how many todo tasks" lists them on the device and the answer names them', async () => {
    const { user, device } = await userWithDevice();

    const { result: res, requests } = await requestsDuring(() =>
      chat(user, { message: 'How many todo tasks do I have?', deviceId: device.deviceId }),
    );

    expect(res.status).toBe(200);
    expect(device.calls).toEqual([expect.objectContaining({ action: 'select', table: 'tasks', filters: { status: 'todo' } })]);
    expect(requests).toHaveLength(2);
    expect(requests[0].tools?.map((tool) => tool.function.name)).toContain('list_tasks');
    expect(toolResults(requests[1])[0]).toMatch(/^Found 2 task\(s\):\n- Write launch brief \(status: todo, priority: high/);
    expect(res.body.response).toContain('2');
    expect(res.body.response).toContain('Write launch brief');
    expect(res.body.response).toContain('Send March invoices');
    expect(res.body).toEqual({
      sessionId: expect.any(String),
      response: expect.any(String),
      usage: expect.objectContaining({ provider: 'scripted', model: 'scripted-model' }),
    });
    expect(res.body.usage.inputTokens).toBeGreaterThan(0);

    // One llm_usage row per model call, for this user.
    const summary = await request('GET', `${t.api}/metrics/summary`, { token: user.accessToken });
    expect(summary.body.usage.last24h.calls).toBe(2);
  });

  test('create_task inserts on the device with camelCase fields and answers with the new row', async () => {
    const { user, device } = await userWithDevice();
    t.llm.push(
      {
        toolCalls: [{ name: 'create_task', args: { title: 'Buy milk', priority: 'high', due_date: '2026-03-01', project_id: 'p-launch' } }],
      },
      { text: 'Done: Buy milk is on your list.' },
    );

    const { result: res, requests } = await requestsDuring(() =>
      chat(user, { message: 'Create a task called Buy milk', deviceId: device.deviceId }),
    );

    expect(res.status).toBe(200);
    const insert = await device.waitForCall((call) => call.action === 'insert');
    expect(insert).toMatchObject({
      table: 'tasks',
      data: { title: 'Buy milk', status: 'todo', priority: 'high', dueDate: Date.parse('2026-03-01'), projectId: 'p-launch' },
    });
    const stored = device.store.rows('tasks').find((row) => row.title === 'Buy milk')!;
    expect(toolResults(requests[1])[0]).toBe(`Task created: 'Buy milk' (id: ${stored.id}, status: todo, priority: high)`);
    expect(res.body.response).toBe('Done: Buy milk is on your list.');
  });

  test('several tools in one turn and across rounds run in order, each result going back to the model', async () => {
    const { user, device } = await userWithDevice();
    t.llm.push(
      {
        toolCalls: [
          { name: 'list_tasks', args: { status: 'todo' } },
          { name: 'list_projects', args: {} },
        ],
      },
      { toolCalls: [{ name: 'get_project', args: { project_id: 'p-launch' } }] },
      { text: 'Two todo tasks, one in Product launch.' },
    );

    const { result: res, requests } = await requestsDuring(() =>
      chat(user, { message: 'Which tasks and projects do I have?', deviceId: device.deviceId }),
    );

    expect(res.status).toBe(200);
    expect(device.calls.map((call) => `${call.action} ${'table' in call ? call.table : ''}`)).toEqual([
      'select tasks',
      'select projects',
      'get projects',
    ]);
    expect(requests).toHaveLength(3);
    expect(toolResults(requests[2])).toEqual([
      expect.stringMatching(/^Found 2 task/),
      expect.stringMatching(/^Found 1 project\(s\):\n- Product launch/),
      expect.stringMatching(/^Project Product launch/),
    ]);
    expect(res.body.response).toBe('Two todo tasks, one in Product launch.');
  });

  test('after 5 tool rounds the model is asked once more without tools, and the turn completes', async () => {
    const { user, device } = await userWithDevice();
    for (let i = 0; i < 6; i += 1) t.llm.push({ toolCalls: [{ name: 'list_tasks', args: {} }] });

    const { result: res, requests } = await requestsDuring(() => chat(user, { message: 'Keep listing tasks', deviceId: device.deviceId }));

    expect(res.status).toBe(200);
    expect(requests).toHaveLength(6);
    requests.slice(0, 5).forEach((req) => expect(req.tools?.length).toBeGreaterThan(0));
    expect(requests[5].tools ?? []).toEqual([]);
    expect(device.calls).toHaveLength(5);
    expect(res.body.response).toMatch(/could not finish/);
  });

  test('a device that does not answer in time gives the model an error string, and the turn still completes', async () => {
    const { user, device } = await userWithDevice();
    device.responder = () => undefined;

    const { result: res, requests } = await requestsDuring(() =>
      chat(user, { message: 'How many todo tasks do I have?', deviceId: device.deviceId }),
    );

    expect(res.status).toBe(200);
    expect(toolResults(requests[1])[0]).toBe(`Error: Device ${device.deviceId} did not answer within 1 s`);
    expect(res.body.response).toContain('reported a problem');
  });

  test('history: the second turn sends the first turn back to the model; the owner reads the history', async () => {
    const { user, device } = await userWithDevice();
    const first = await chat(user, { message: 'How many todo tasks do I have?', deviceId: device.deviceId });
    const { sessionId } = first.body;

    const { result: second, requests } = await requestsDuring(() =>
      chat(user, { message: 'Create a task called "Plan offsite"', sessionId }),
    );

    expect(second.status).toBe(200);
    expect(second.body.sessionId).toBe(sessionId);
    expect(transcript(requests[0])).toEqual([
      expect.stringMatching(/^system: /),
      'user: How many todo tasks do I have?',
      `assistant: ${first.body.response}`,
      'user: Create a task called "Plan offsite"',
    ]);
    const history = await request('GET', `${t.api}/chat/sessions/${sessionId}/history`, { token: user.accessToken });
    expect(history.status).toBe(200);
    expect(history.body.messages.map((m: { role: string }) => m.role)).toEqual(['user', 'tool', 'assistant', 'user', 'tool', 'assistant']);
    expect(history.body.messages[4]).toMatchObject({
      toolName: 'create_task',
      content: expect.stringMatching(/^Task created: 'Plan offsite'/),
    });
    expect(history.body.session).toMatchObject({
      id: sessionId,
      deviceId: device.deviceId,
      status: 'active',
      title: 'How many todo tasks do I have?',
    });
  });

  test('a chat needing a device that is offline answers 409 device_offline and enqueues nothing', async () => {
    const { user } = await userWithDevice();
    const lonely = await registerUser(t.api, 'Lonely');
    const before = await queue.getJobCounts();

    const named = await chat(user, { message: 'How many todo tasks do I have?', deviceId: 'not-connected' });
    // Without `tools: "device"` a user with no device online gets a plain assistant (chat-modes.test.ts).
    const none = await chat(lonely, { message: 'How many todo tasks do I have?', tools: 'device' });

    expect(named.status).toBe(409);
    expect(named.body.error.code).toBe('device_offline');
    expect(none.status).toBe(409);
    expect(none.body.error.code).toBe('device_offline');
    expect(await queue.getJobCounts()).toEqual(before);
  });

  test("without deviceId the user's online device is used", async () => {
    const { user, device } = await userWithDevice();
    const res = await chat(user, { message: 'How many todo tasks do I have?' });
    expect(res.status).toBe(200);
    expect(device.calls).toHaveLength(1);
  });

  test('chat_request from a device is acked with a sessionId; text_chunk pieces concatenate to final', async () => {
    const { device } = await userWithDevice();
    const chunks: string[] = [];
    device.socket.on('text_chunk', (payload) => void chunks.push(payload.text));
    const final = new Promise<{ sessionId: string; response: string }>((resolve) => device.socket.once('final', resolve));

    const ack = await device.socket.timeout(5_000).emitWithAck('chat_request', { message: 'How many todo tasks do I have?' });

    expect(ack).toEqual({ sessionId: expect.any(String), messageId: expect.any(String) });
    const done = await final;
    expect(done.sessionId).toBe((ack as { sessionId: string }).sessionId);
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.join('')).toBe(done.response);
    expect(done.response).toContain('Write launch brief');
  });

  test('chat_request with an invalid message is refused in the ack', async () => {
    const { device } = await userWithDevice();
    const ack = await device.socket.timeout(5_000).emitWithAck('chat_request', { message: '' });
    expect(ack).toEqual({ error: expect.objectContaining({ code: 'validation_failed' }) });
  });

  test('POST /chat/stream streams text_chunk events then final; the chunks concatenate to the response', async () => {
    const { user, device } = await userWithDevice();

    const sse = await readSse(`${t.api}/chat/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { message: 'How many todo tasks do I have?', deviceId: device.deviceId },
    });

    expect(sse.status).toBe(200);
    const events = sse.messages.map((m) => m.event);
    expect(events[events.length - 1]).toBe('final');
    expect(events.filter((e) => e === 'text_chunk').length).toBeGreaterThan(1);
    const final = sse.messages[sse.messages.length - 1].data;
    const text = sse.messages
      .filter((m) => m.event === 'text_chunk')
      .map((m) => m.data.text)
      .join('');
    expect(text).toBe(final.response);
    expect(final).toMatchObject({
      type: 'final',
      sessionId: expect.any(String),
      usage: expect.objectContaining({ model: 'scripted-model' }),
    });
  });

  test('a model that cannot be reached ends the turn with llm_unavailable (503), told as chat_error to a device watching every turn', async () => {
    const { user, device } = await userWithDevice();
    // The turn is started over HTTP: its messages reach the device because it asked for every turn's.
    const hello = { deviceId: device.deviceId, agentIds: [], allTurns: true };
    expect(await device.socket.timeout(5_000).emitWithAck('device_hello', hello as never)).toEqual({ ok: true });
    const told = new Promise<{ code: string }>((resolve) => device.socket.once('chat_error', resolve));
    // 400 is not retried by the client, so the single scripted failure is the whole story.
    t.llm.push({ error: { status: 400, message: 'model rejected the request' } });

    const res = await chat(user, { message: 'How many todo tasks do I have?', deviceId: device.deviceId });

    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('llm_unavailable');
    expect((await told).code).toBe('llm_unavailable');
    expect(device.calls).toHaveLength(0);
  });

  test('messages are bounded: over 8,000 characters or empty is a 400', async () => {
    const { user, device } = await userWithDevice();
    const long = await chat(user, { message: 'x'.repeat(8_001), deviceId: device.deviceId });
    const empty = await chat(user, { message: '   ', deviceId: device.deviceId });
    expect(long.status).toBe(400);
    expect(long.body.error.code).toBe('validation_failed');
    expect(empty.status).toBe(400);
  });

  test('only the owner sees or deletes a session; others get 404', async () => {
    const { user, device } = await userWithDevice();
    const stranger = await registerUser(t.api, 'Stranger');
    const { body } = await chat(user, { message: 'How many todo tasks do I have?', deviceId: device.deviceId });
    const path = `${t.api}/chat/sessions/${body.sessionId}`;

    expect((await request('GET', `${path}/history`, { token: stranger.accessToken })).status).toBe(404);
    expect((await request('DELETE', path, { token: stranger.accessToken })).status).toBe(404);
    expect((await chat(stranger, { message: 'hello tasks', sessionId: body.sessionId })).status).toBe(404);
    expect((await request('DELETE', path, { token: user.accessToken })).status).toBe(204);
    expect((await request('GET', `${path}/history`, { token: user.accessToken })).status).toBe(404);
    expect((await request('GET', `${t.api}/chat/sessions/not-a-uuid/history`, { token: user.accessToken })).status).toBe(404);
  });
});
