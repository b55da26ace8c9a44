import { randomUUID } from 'node:crypto';
import { Chat } from '@ai-sdk/react';
import { DefaultChatTransport, lastAssistantMessageIsCompleteWithApprovalResponses, type UIMessage } from 'ai';
import type { DeviceSimulator } from '@switchboard/client/testing';
import { demoResponder } from '../../src/demo-model';
import { messageText } from '../../src/demo-model/openai-compatible-server';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { userWithDevice } from '../support/user-device';
import { waitUntil } from '../support/wait';

/**
 * The AI SDK's UI message stream, read by the real client: `Chat` of `@ai-sdk/react` (the state
 * `useChat` renders) over `DefaultChatTransport` of `ai`, against a live Switchboard. A turn with
 * a dangerous tool stops at its approval request, the client's `addToolApprovalResponse` decides
 * it and the answer streams on; a turn the client left is resumed by a new client; a chatflow
 * streams too; another user gets nothing of it.
 */

const TASK_ID = '3f2b8c1e-9d4a-4b6e-8f00-1234567890ab';
const seed = { tasks: [{ id: TASK_ID, title: 'Old report', status: 'done', priority: 'low' }] };

describe('useChat (AI SDK) against Switchboard', () => {
  let t: TestApp;
  const devices: DeviceSimulator[] = [];
  /** `[hold]` turns wait here until the test lets them answer. */
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
          return { text: 'The held answer, at last.' };
        }
        return demoResponder(req);
      },
    });
  });
  afterAll(async () => {
    devices.forEach((device) => device.close());
    await t.stop();
  });

  const transport = (user: TestUser, api = `${t.api}/chat/stream`, body: Record<string, unknown> = {}) =>
    new DefaultChatTransport({
      api,
      headers: { authorization: `Bearer ${user.accessToken}`, 'x-vercel-ai-ui-message-stream': 'v1' },
      body,
    });
  const textOf = (message: UIMessage | undefined) =>
    (message?.parts ?? [])
      .filter((part) => part.type === 'text')
      .map((part) => (part as { text: string }).text)
      .join('');
  const toolPart = (message: UIMessage | undefined) =>
    message?.parts.find((part) => part.type === 'tool-delete_task') as
      { state: string; toolCallId: string; input: unknown; approval?: { id: string; approved?: boolean } } | undefined;

  test('a dangerous tool stops the stream at its approval; addToolApprovalResponse decides it and the answer streams on', async () => {
    const { user, device } = await userWithDevice(t.url, devices, { name: 'Ada', seed });
    const errors: Error[] = [];
    const chat = new Chat({
      id: `chat-${randomUUID()}`,
      transport: transport(user, `${t.api}/chat/stream`, { tools: 'device' }),
      sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses,
      onError: (error) => errors.push(error),
    });

    await chat.sendMessage({ text: `Delete task ${TASK_ID}` });

    expect(errors).toEqual([]);
    expect(chat.status).toBe('ready');
    const asked = chat.messages.at(-1);
    expect(asked?.role).toBe('assistant');
    const part = toolPart(asked);
    expect(part).toMatchObject({ state: 'approval-requested', input: { task_id: TASK_ID } });
    const approvalId = part!.approval!.id;
    expect(part!.toolCallId).toBe(approvalId);
    const sessionPart = asked?.parts.find((p) => p.type === 'data-session') as { data: { sessionId: string } } | undefined;
    const sessionId = sessionPart!.data.sessionId;
    expect(device.calls.filter((call) => call.action === 'delete')).toEqual([]);
    const pending = await request('GET', `${t.api}/hitl/requests/${approvalId}`, { token: user.accessToken });
    expect(pending.body).toMatchObject({ status: 'pending', sessionId });

    await chat.addToolApprovalResponse({ id: approvalId, approved: true });
    await waitUntil(() => chat.status === 'ready' && /delet/i.test(textOf(chat.messages.at(-1))), 20_000);

    expect(errors).toEqual([]);
    expect(chat.messages.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(toolPart(chat.messages[1])).toMatchObject({ state: 'output-available', approval: { id: approvalId, approved: true } });
    expect(device.calls.filter((call) => call.action === 'delete')).toEqual([expect.objectContaining({ data: { id: TASK_ID } })]);
    const decided = await request('GET', `${t.api}/hitl/requests/${approvalId}`, { token: user.accessToken });
    expect(decided.body).toMatchObject({ status: 'approved', decidedBy: user.id });
    // One conversation: the next message of the same chat goes on in the same session.
    await chat.sendMessage({ text: 'Thanks' });
    const history = await request('GET', `${t.api}/chat/sessions/${sessionId}/history`, { token: user.accessToken });
    expect(history.body.messages.filter((m: { role: string }) => m.role === 'user').map((m: { content: string }) => m.content)).toEqual([
      `Delete task ${TASK_ID}`,
      'Thanks',
    ]);
  });

  test('a rejection denies the tool call: the device is never called and the tool part ends output-denied', async () => {
    const { user, device } = await userWithDevice(t.url, devices, { name: 'Ada', seed });
    const chat = new Chat({
      id: `chat-${randomUUID()}`,
      transport: transport(user, `${t.api}/chat/stream`, { tools: 'device' }),
      sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses,
    });
    await chat.sendMessage({ text: `Delete task ${TASK_ID}` });
    const approvalId = toolPart(chat.messages.at(-1))!.approval!.id;
    await chat.addToolApprovalResponse({ id: approvalId, approved: false });
    await waitUntil(() => chat.status === 'ready' && toolPart(chat.messages.at(-1))?.state === 'output-denied', 20_000);
    expect(device.calls.filter((call) => call.action === 'delete')).toEqual([]);
    // The client does not send again on its own: the denied call is complete.
    expect(chat.messages).toHaveLength(2);
  });

  test('a turn the client left is resumed by a new client with the same chat id (GET …/:id/stream), without repeating text', async () => {
    const user = await registerUser(t.api, 'Resumer');
    const id = `chat-${randomUUID()}`;
    holding = false;
    const first = new Chat({ id, transport: transport(user) });
    const sent = first.sendMessage({ text: '[hold] tell me something' });
    await waitUntil(() => holding, 20_000);
    await first.stop();
    await sent;

    const second = new Chat({ id, transport: transport(user) });
    const resumed = second.resumeStream();
    await waitUntil(() => second.status === 'streaming' || second.status === 'submitted', 10_000);
    release();
    await resumed;

    expect(second.status).toBe('ready');
    expect(second.messages).toHaveLength(1);
    expect(second.messages[0].role).toBe('assistant');
    expect(textOf(second.messages[0])).toBe('The held answer, at last.');
    // Nothing runs any more: a resume answers 204 and the client stays as it is.
    const after = await fetch(`${t.api}/chat/stream/${id}/stream`, { headers: { authorization: `Bearer ${user.accessToken}` } });
    expect(after.status).toBe(204);
  });

  test('the wire: the header, data-only SSE chunks the client schema accepts, ending with [DONE]', async () => {
    const user = await registerUser(t.api, 'Wire');
    const res = await fetch(`${t.api}/chat/stream`, {
      method: 'POST',
      headers: { authorization: `Bearer ${user.accessToken}`, 'x-vercel-ai-ui-message-stream': 'v1', 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'wire', messages: [{ id: 'u1', role: 'user', parts: [{ type: 'text', text: 'Hello there' }] }] }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-vercel-ai-ui-message-stream')).toBe('v1');
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await res.text();
    const data = text
      .split('\n')
      .filter((line) => line.startsWith('data: '))
      .map((line) => line.slice(6));
    expect(data.at(-1)).toBe('[DONE]');
    const types = data.slice(0, -1).map((line) => (JSON.parse(line) as { type: string }).type);
    expect(types.slice(0, 3)).toEqual(['start', 'data-session', 'start-step']);
    expect(types).toContain('text-delta');
    expect(types.slice(-3)).toEqual(['data-usage', 'finish-step', 'finish']);
    expect(text).not.toMatch(/^event:/m);
  });

  test('a chatflow streams to useChat on its own path; without the header the native stream is unchanged', async () => {
    const user = await registerUser(t.api, 'Flow');
    const created = await request('POST', `${t.api}/flows`, {
      token: user.accessToken,
      body: { type: 'chatflow', name: 'Helper', definition: { systemPrompt: 'You are a helper.' } },
    });
    const flowId = created.body.flow.id;
    const chat = new Chat({ id: `flow-${randomUUID()}`, transport: transport(user, `${t.api}/flows/${flowId}/chat/stream`) });
    await chat.sendMessage({ text: 'Hello flow' });
    expect(chat.status).toBe('ready');
    expect(textOf(chat.messages.at(-1)).length).toBeGreaterThan(0);

    const native = await fetch(`${t.api}/flows/${flowId}/chat/stream`, {
      method: 'POST',
      headers: { authorization: `Bearer ${user.accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ message: 'Hello again' }),
    });
    expect(native.headers.get('x-vercel-ai-ui-message-stream')).toBeNull();
    expect(await native.text()).toMatch(/^event: final$/m);
  });

  test("a chatflow's public embed streams to useChat with only its token; its resume is the embed's own", async () => {
    const owner = await registerUser(t.api, 'Owner');
    const created = await request('POST', `${t.api}/flows`, {
      token: owner.accessToken,
      body: { type: 'chatflow', name: 'Widget', definition: { systemPrompt: 'You are a widget.' } },
    });
    const embed = await request('POST', `${t.api}/flows/${created.body.flow.id}/embeds`, {
      token: owner.accessToken,
      body: { allowedOrigins: ['https://shop.example'] },
    });
    const api = `${t.api}/embed/public/${embed.body.embedToken}/chat/stream`;
    const visitor = new DefaultChatTransport({ api, headers: { 'x-vercel-ai-ui-message-stream': 'v1' } });
    const id = `visitor-${randomUUID()}`;
    const chat = new Chat({ id, transport: visitor });
    await chat.sendMessage({ text: 'Hello widget' });
    expect(chat.status).toBe('ready');
    expect(textOf(chat.messages.at(-1)).length).toBeGreaterThan(0);
    await chat.sendMessage({ text: 'And again' });
    const sessionPart = chat.messages.at(-1)?.parts.find((p) => p.type === 'data-session') as { data: { sessionId: string } };
    const first = chat.messages[1].parts.find((p) => p.type === 'data-session') as { data: { sessionId: string } };
    expect(sessionPart.data.sessionId).toBe(first.data.sessionId);

    expect((await fetch(`${api}/${id}/stream`)).status).toBe(204);
    const unknown = await fetch(`${t.api}/embed/public/sbe_unknown/chat/stream`, {
      method: 'POST',
      headers: { 'x-vercel-ai-ui-message-stream': 'v1', 'content-type': 'application/json' },
      body: JSON.stringify({ id, messages: [{ role: 'user', parts: [{ type: 'text', text: 'hi' }] }] }),
    });
    expect(unknown.status).toBe(404);
  });

  describe('as an attacker would try it', () => {
    test('another user can neither resume a chat nor answer its approval; bad bodies are 400s', async () => {
      const { user: ada } = await userWithDevice(t.url, devices, { name: 'Ada', seed });
      const bob = await registerUser(t.api, 'Bob');
      const id = `chat-${randomUUID()}`;
      const chat = new Chat({ id, transport: transport(ada, `${t.api}/chat/stream`, { tools: 'device' }) });
      await chat.sendMessage({ text: `Delete task ${TASK_ID}` });
      const approvalId = toolPart(chat.messages.at(-1))!.approval!.id;

      const resume = await fetch(`${t.api}/chat/stream/${id}/stream`, { headers: { authorization: `Bearer ${bob.accessToken}` } });
      expect(resume.status).toBe(204);
      const answered = {
        ...chat.messages.at(-1)!,
        parts: chat.messages
          .at(-1)!
          .parts.map((p) => ({ ...p, state: 'approval-responded', approval: { id: approvalId, approved: true } })),
      };
      const steal = await request('POST', `${t.api}/chat/stream`, {
        token: bob.accessToken,
        headers: { 'x-vercel-ai-ui-message-stream': 'v1' },
        body: { id, messages: [answered] },
      });
      expect(steal.status).toBe(404);
      const still = await request('GET', `${t.api}/hitl/requests/${approvalId}`, { token: ada.accessToken });
      expect(still.body.status).toBe('pending');

      const ui = (body: unknown) =>
        request('POST', `${t.api}/chat/stream`, { token: bob.accessToken, headers: { 'x-vercel-ai-ui-message-stream': 'v1' }, body });
      for (const body of [
        {},
        { id: 'x', messages: [] },
        { id: 'x', messages: [{ role: 'user', parts: [] }] },
        { id: 'x', messages: [{ role: 'user', parts: [{ type: 'text', text: '\ud800' }] }], extra: true },
        { id: 'x', messages: [{ role: 'user', parts: [{ type: 'text', text: 'x'.repeat(40_000) }] }] },
      ]) {
        const res = await ui(body);
        expect(res.status).toBe(400);
        expect(res.body.error.code).toBe('validation_failed');
      }
      const noToken = await fetch(`${t.api}/chat/stream/${id}/stream`);
      expect(noToken.status).toBe(401);
    });
  });
});
