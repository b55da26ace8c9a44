import { randomUUID } from 'node:crypto';
import { EventType, HttpAgent, type BaseEvent } from '@ag-ui/client';
import type { DeviceSimulator } from '@switchboard/client/testing';
import { demoResponder } from '../../src/demo-model';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { userWithDevice } from '../support/user-device';

/**
 * AG-UI, read by AG-UI's own client (`HttpAgent` of `@ag-ui/client`) against a live Switchboard:
 * the client renders a chat (its messages and the events it applied), a thread goes on in one
 * session, a dangerous tool call finishes the run as an interrupt, a chatflow answers too, and bad
 * input is a 400 that writes nothing.
 */

const TASK_ID = '3f2b8c1e-9d4a-4b6e-8f00-1234567890ab';
const seed = { tasks: [{ id: TASK_ID, title: 'Old report', status: 'done', priority: 'low' }] };

describe('AG-UI HttpAgent against Switchboard', () => {
  let t: TestApp;
  const devices: DeviceSimulator[] = [];

  beforeAll(async () => {
    t = await startTestApp({ env: { HITL_TIMEOUT_MS: '60000' }, responder: demoResponder });
  });
  afterAll(async () => {
    devices.forEach((device) => device.close());
    await t.stop();
  });

  const agentFor = (user: TestUser, url = `${t.api}/chat/ag-ui`) =>
    new HttpAgent({ url, headers: { authorization: `Bearer ${user.accessToken}` }, threadId: `thread-${randomUUID()}` });
  /** Sends `text` as the user and runs the agent, collecting the events it applied. */
  const say = async (agent: HttpAgent, text: string) => {
    const events: BaseEvent[] = [];
    agent.addMessage({ id: randomUUID(), role: 'user', content: text });
    const result = await agent.runAgent({}, { onEvent: ({ event }) => void events.push(event) });
    return { events, result };
  };
  const assistantText = (agent: HttpAgent) =>
    agent.messages
      .filter((m) => m.role === 'assistant')
      .map((m) => (typeof m.content === 'string' ? m.content : ''))
      .join('');

  test('a chat renders: run, text message and the run’s end; the thread goes on in one session', async () => {
    const user = await registerUser(t.api, 'Renderer');
    const agent = agentFor(user);
    const { events, result } = await say(agent, 'Hello there');
    const types = events.map((e) => e.type);
    expect(types[0]).toBe('RUN_STARTED');
    expect(types).toEqual(expect.arrayContaining(['TEXT_MESSAGE_START', 'TEXT_MESSAGE_CONTENT', 'TEXT_MESSAGE_END']));
    expect(types.at(-1)).toBe('RUN_FINISHED');
    expect(agent.messages.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(assistantText(agent).length).toBeGreaterThan(0);
    const { sessionId } = result.result as { sessionId: string };

    await say(agent, 'And again');
    expect(agent.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    const history = await request('GET', `${t.api}/chat/sessions/${sessionId}/history`, { token: user.accessToken });
    expect(history.body.messages.filter((m: { role: string }) => m.role === 'user').map((m: { content: string }) => m.content)).toEqual([
      'Hello there',
      'And again',
    ]);
  });

  test('a dangerous tool call is a tool call, and the run finishes as an interrupt while a person decides', async () => {
    const { user, device } = await userWithDevice(t.url, devices, { name: 'Interrupted', seed });
    const agent = agentFor(user);
    const { events } = await say(agent, `Delete task ${TASK_ID}`);
    const start = events.find((e) => e.type === EventType.TOOL_CALL_START) as { toolCallId: string; toolCallName: string } | undefined;
    expect(start?.toolCallName).toBe('delete_task');
    const finished = events.at(-1) as { type: string; outcome?: { type: string; interrupts?: Array<{ id: string; toolCallId?: string }> } };
    expect(finished).toMatchObject({ type: 'RUN_FINISHED', outcome: { type: 'interrupt' } });
    expect(finished.outcome!.interrupts![0]).toMatchObject({ id: start!.toolCallId, toolCallId: start!.toolCallId });
    const toolCalls = agent.messages.flatMap((m) => (m.role === 'assistant' ? (m.toolCalls ?? []) : []));
    expect(toolCalls).toEqual([
      expect.objectContaining({ id: start!.toolCallId, function: expect.objectContaining({ name: 'delete_task' }) }),
    ]);
    expect(JSON.parse(toolCalls[0].function.arguments)).toMatchObject({ task_id: TASK_ID });
    const pending = await request('GET', `${t.api}/hitl/requests/${start!.toolCallId}`, { token: user.accessToken });
    expect(pending.body).toMatchObject({ status: 'pending' });
    expect(device.calls.filter((call) => call.action === 'delete')).toEqual([]);
  });

  test("a chatflow answers over AG-UI; another user's flow is 404", async () => {
    const owner = await registerUser(t.api, 'FlowOwner');
    const other = await registerUser(t.api, 'FlowOther');
    const created = await request('POST', `${t.api}/flows`, {
      token: owner.accessToken,
      body: { type: 'chatflow', name: 'Pirate', definition: { systemPrompt: 'You are a pirate.' } },
    });
    const url = `${t.api}/flows/${created.body.flow.id}/chat/ag-ui`;
    const agent = agentFor(owner, url);
    const { result } = await say(agent, 'Ahoy');
    expect(assistantText(agent).length).toBeGreaterThan(0);
    const { sessionId } = result.result as { sessionId: string };
    const history = await request('GET', `${t.api}/chat/sessions/${sessionId}/history`, { token: owner.accessToken });
    expect(history.body.session).toMatchObject({ mode: 'flow', flowId: created.body.flow.id });

    const theirs = await request('POST', url, {
      token: other.accessToken,
      body: { threadId: 't', runId: 'r', messages: [{ id: 'm', role: 'user', content: 'Hi' }], tools: [], context: [] },
    });
    expect(theirs.status).toBe(404);
  });

  test('bad input is a 400 in the API’s error shape and writes nothing', async () => {
    const user = await registerUser(t.api, 'Bad');
    const post = (body: unknown) => request('POST', `${t.api}/chat/ag-ui`, { token: user.accessToken, body });
    const input = (messages: unknown[]) => ({ threadId: 't1', runId: 'r1', messages, tools: [], context: [] });
    expect((await post({ threadId: 't1' })).status).toBe(400);
    expect((await post(input([]))).body).toMatchObject({ error: { code: 'validation_failed' } });
    expect((await post(input([{ id: 'a', role: 'assistant', content: 'hi' }]))).status).toBe(400);
    expect((await post(input([{ id: 'u', role: 'user', content: '   ' }]))).status).toBe(400);
    expect((await post(input([{ id: 'u', role: 'user', content: 'x'.repeat(8_001) }]))).status).toBe(400);
    const sessions = await request('GET', `${t.api}/chat/sessions`, { token: user.accessToken });
    expect(sessions.body.sessions).toEqual([]);
    const anonymous = await request('POST', `${t.api}/chat/ag-ui`, { body: input([{ id: 'u', role: 'user', content: 'Hi' }]) });
    expect(anonymous.status).toBe(401);
  });
});
