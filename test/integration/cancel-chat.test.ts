import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { messageText, type ChatRequest, type ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { DeviceSimulator } from '@switchboard/client/testing';
import type { ToolCall } from '../../src/schemas/device-protocol';
import { rowsOf } from '../../src/models/migrate';
import type { ApprovalRequested } from '../../src/schemas/socket-events';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { readSse, type SseMessage } from '../support/sse';
import { eventually, waitUntil } from '../support/wait';
import { nextDeviceEvent } from '../support/device-events';

const TASK_ID = '3f2b8c1e-9d4a-4b6e-8f00-1234567890ab';
const LONG_ANSWER = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');

/** The scripted model: a long answer, a tool call, or a delete, chosen by the user's words. */
function responder(request: ChatRequest): ChatTurn {
  const lastUser = [...request.messages].reverse().find((m) => m.role === 'user');
  const asked = lastUser ? messageText(lastUser) : '';
  const toolDone = request.messages.some((m) => m.role === 'tool');
  if (/long/i.test(asked)) return { text: LONG_ANSWER };
  if (/how many/i.test(asked) && !toolDone && request.tools?.length)
    return { toolCalls: [{ name: 'list_tasks', args: { status: 'todo' } }] };
  if (/delete task/i.test(asked) && !toolDone && request.tools?.length)
    return { toolCalls: [{ name: 'delete_task', args: { task_id: TASK_ID } }] };
  return { text: 'All done.' };
}

const ended = (m: SseMessage) => ['final', 'error', 'cancelled'].includes(m.event ?? '');

const next = nextDeviceEvent;

/**
 * Cancelling chat turns, in one process: HTTP cancel of a streaming turn (SSE and JSON), the
 * device's `chat_cancel` abandoning a tool call the device has not answered, and a cancel of a turn
 * parked for an approval. The cross-node case is in cancel-cluster.test.ts.
 */
describe('cancelling a chat turn', () => {
  let t: TestApp;
  const devices: DeviceSimulator[] = [];

  beforeAll(async () => {
    // A device call could wait 20 s: a cancel must not.
    t = await startTestApp({ responder, llmDelayMs: 40, env: { DEVICE_RPC_TIMEOUT_MS: '20000', HITL_TIMEOUT_MS: '60000' } });
  }, 120_000);

  afterAll(async () => {
    devices.forEach((device) => device.close());
    await t.stop();
  });

  const cancel = (user: TestUser, sessionId: string) =>
    request('POST', `${t.api}/chat/sessions/${sessionId}/cancel`, { token: user.accessToken });
  const history = async (user: TestUser, sessionId: string) =>
    (await request('GET', `${t.api}/chat/sessions/${sessionId}/history`, { token: user.accessToken })).body.messages;

  async function withDevice(name: string, hold = false) {
    const user = await registerUser(t.api, name);
    const device = await DeviceSimulator.connect({
      url: t.url,
      accessToken: user.accessToken,
      deviceId: `laptop-${randomUUID().slice(0, 6)}`,
      reconnection: false,
      seed: { tasks: [{ id: TASK_ID, title: 'Old report', status: 'todo', priority: 'low' }] },
    });
    devices.push(device);
    const held: Array<{ call: ToolCall; release: () => void }> = [];
    if (hold) {
      const original = device.responder;
      device.responder = (call, store) => new Promise((resolve) => held.push({ call, release: () => resolve(original(call, store)) }));
    }
    return { user, device, held };
  }

  test('a streaming turn stopped over HTTP: the model request closes, /chat/stream ends `cancelled` with the partial answer, kept in history as cancelled', async () => {
    const user = await registerUser(t.api, 'Streamer');
    const stranger = await registerUser(t.api, 'Stranger');
    const before = t.llm.requests.length;
    let answer: ReturnType<typeof cancel> | undefined;
    let chunks = 0;
    const sse = await readSse(`${t.api}/chat/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { message: 'Tell me a long story', tools: 'none' },
      onMessage: (m) => {
        if (m.event === 'text_chunk' && ++chunks === 3) answer = cancel(user, m.data.sessionId);
      },
      until: ended,
    });
    const sessionId = sse.headers.get('x-chat-session-id')!;
    expect((await answer!).status).toBe(202);
    expect((await answer!).body).toEqual({ sessionId, status: 'cancelling' });

    const last = sse.messages.at(-1)!;
    expect(last.event).toBe('cancelled');
    const streamed = sse.messages
      .filter((m) => m.event === 'text_chunk')
      .map((m) => m.data.text)
      .join('');
    expect(last.data).toEqual(expect.objectContaining({ type: 'cancelled', sessionId, response: streamed }));
    expect(streamed.length).toBeGreaterThan(0);
    expect(LONG_ANSWER.startsWith(streamed)).toBe(true);
    expect(streamed.length).toBeLessThan(LONG_ANSWER.length);
    await waitUntil(() => t.llm.requests.slice(before).some((r) => r.kind === 'chat' && r.closedEarlyAt !== undefined));

    const messages = await history(user, sessionId);
    expect(messages.map((m: { role: string; status: string }) => [m.role, m.status])).toEqual([
      ['user', 'completed'],
      ['assistant', 'cancelled'],
    ]);
    expect(messages[1].content).toBe(streamed);
    const usage = rowsOf<{ estimated: boolean; output_tokens: number }>(
      await t.app.repos.db.execute(sql`select estimated, output_tokens from llm_usage where session_id = ${sessionId}`),
    );
    expect(usage).toEqual([expect.objectContaining({ estimated: true })]);
    expect(usage[0].output_tokens).toBeGreaterThan(0);

    const again = await cancel(user, sessionId);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('not_running');
    expect((await cancel(stranger, sessionId)).status).toBe(404);
    expect((await cancel(user, 'not-a-uuid')).status).toBe(404);
  }, 60_000);

  test('a cancelled POST /chat (JSON) answers 200 with the partial response, cancelled: true and the usage', async () => {
    const user = await registerUser(t.api, 'Jsoner');
    const before = t.llm.chatRequests().length;
    const pending = request('POST', `${t.api}/chat`, {
      token: user.accessToken,
      body: { message: 'Another long one please', tools: 'none' },
    });
    await waitUntil(() => t.llm.chatRequests().length > before);
    const sessions = await eventually(
      () => request('GET', `${t.api}/chat/sessions`, { token: user.accessToken }),
      (r) => r.body.sessions.length === 1,
    );
    const sessionId = sessions.body.sessions[0].id;
    expect((await cancel(user, sessionId)).status).toBe(202);

    const answer = await pending;
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({
      sessionId,
      response: expect.any(String),
      cancelled: true,
      usage: expect.objectContaining({ inputTokens: expect.any(Number) }),
    });
    expect(LONG_ANSWER.startsWith(answer.body.response)).toBe(true);
    expect((await history(user, sessionId)).at(-1)).toEqual(
      expect.objectContaining({ role: 'assistant', status: 'cancelled', content: answer.body.response }),
    );
  }, 60_000);

  test('chat_cancel from the device (no sessionId) abandons a tool call the device has not answered; its late answer is ignored', async () => {
    const { user, device, held } = await withDevice('Holder', true);
    const cancelled = next<{ sessionId: string }>(device, 'cancelled');
    const finals: unknown[] = [];
    device.socket.on('final', (payload) => void finals.push(payload));
    const ack = (await device.socket.timeout(5_000).emitWithAck('chat_request', { message: 'How many todo tasks do I have?' })) as {
      sessionId: string;
    };
    await waitUntil(() => held.length === 1);
    const requestsBefore = t.llm.chatRequests().length;

    const cancelAck = await device.socket.timeout(5_000).emitWithAck('chat_cancel', {});
    expect(cancelAck).toEqual({ ok: true });
    expect(await cancelled).toEqual({ sessionId: ack.sessionId });

    held[0].release();
    // The late answer changes nothing: no new model request, and the stored answer stays cancelled.
    const messages = await eventually(
      () => history(user, ack.sessionId),
      (m) => m.some((x: { role: string }) => x.role === 'assistant'),
    );
    expect(messages.filter((m: { role: string }) => m.role === 'assistant')).toEqual([expect.objectContaining({ status: 'cancelled' })]);
    expect(await device.socket.timeout(5_000).emitWithAck('chat_cancel', { sessionId: ack.sessionId })).toEqual({
      ok: false,
      error: expect.objectContaining({ code: 'not_running' }),
    });
    expect(t.llm.chatRequests().length).toBe(requestsBefore);
    expect(await device.socket.timeout(5_000).emitWithAck('chat_cancel', { sessionId: 'nope' })).toEqual({
      ok: false,
      error: expect.objectContaining({ code: 'validation_failed' }),
    });
    expect(finals).toEqual([]);
  }, 60_000);

  test('a turn parked for an approval: the cancel rejects the approval with decisionReason "cancelled" (reason stays the policy’s) and ends the turn', async () => {
    const { user, device } = await withDevice('Parker');
    const approval = next<ApprovalRequested>(device, 'approval_requested');
    const ack = (await device.socket.timeout(5_000).emitWithAck('chat_request', { message: `Delete task ${TASK_ID}` })) as {
      sessionId: string;
    };
    const requested = await approval;
    const cancelled = next<{ sessionId: string }>(device, 'cancelled');

    expect((await cancel(user, ack.sessionId)).status).toBe(202);
    expect(await cancelled).toEqual({ sessionId: ack.sessionId });
    const row = await request('GET', `${t.api}/hitl/requests/${requested.approvalId}`, { token: user.accessToken });
    expect(row.body).toEqual(expect.objectContaining({ status: 'rejected', decisionReason: 'cancelled', reason: requested.reason }));
    const late = await request('PUT', `${t.api}/hitl/requests/${requested.approvalId}/approve`, { token: user.accessToken });
    expect(late.status).toBe(409);
    expect(device.calls.filter((call) => call.action === 'delete')).toEqual([]);
    expect((await history(user, ack.sessionId)).at(-1)).toEqual(expect.objectContaining({ role: 'assistant', status: 'cancelled' }));
  }, 60_000);
});
