import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectDevice, type DeviceConnection } from '@switchboard/client';
import { projectTools } from '@switchboard/client/node';
import type { DeviceSimulator } from '@switchboard/client/testing';
import { startTestApp, type TestApp } from '../support/app';
import { nextDeviceEvent } from '../support/device-events';
import { registerUser, request } from '../support/http';
import { waitUntil } from '../support/wait';

/** Each scripted piece waits this long: the first text arrives after it, and the turn ends after the last. */
const PIECE_DELAY_MS = 40;

/** What a coding turn leaves behind: the agent on the session, and the turn's log line with its timings. */
describe('a coding turn is recorded on its session and in its log line', () => {
  let t: TestApp;
  const lines: Array<Record<string, unknown>> = [];
  const devices: DeviceConnection[] = [];
  const folders: string[] = [];

  beforeAll(async () => {
    t = await startTestApp({
      llmDelayMs: PIECE_DELAY_MS,
      logLevel: 'info',
      logs: (line) => lines.push(JSON.parse(line) as Record<string, unknown>),
    });
  }, 60_000);

  afterAll(async () => {
    devices.forEach((device) => device.close());
    await t?.stop();
    await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
  });

  async function projectDevice() {
    const root = await mkdtemp(join(tmpdir(), 'sb-record-'));
    folders.push(root);
    await writeFile(join(root, 'math.js'), 'export const add = (a, b) => a - b;\n');
    const user = await registerUser(t.api, 'Recorder');
    const project = await projectTools({ root, historyDir: await mkdtemp(join(tmpdir(), 'sb-record-history-')) });
    const device = await connectDevice({
      url: t.url,
      token: user.accessToken,
      deviceId: `rec-${randomUUID().slice(0, 8)}`,
      project,
      reconnection: false,
    });
    devices.push(device);
    return { user, device };
  }

  async function turn(device: DeviceConnection, payload: Parameters<DeviceConnection['chat']>[0]) {
    const ack = (await device.chat(payload)) as { sessionId: string; messageId: string };
    await nextDeviceEvent<{ sessionId: string }>(
      device as unknown as DeviceSimulator,
      'final',
      (f) => f.sessionId === ack.sessionId,
      15_000,
    );
    return ack;
  }

  async function completedLine(messageId: string) {
    const find = () => lines.find((line) => line.msg === 'assistant turn completed' && line.messageId === messageId);
    await waitUntil(() => find() !== undefined, 5_000);
    return find()!;
  }

  test('the session names the agent the Orchestrator routed to, then the next turn’s agent; the list shows it too', async () => {
    const { user, device } = await projectDevice();
    t.llm.push({ toolCalls: [{ name: 'read_file', args: { path: 'math.js' } }] }, { text: 'add subtracts: it should add.' });
    // "fix" points the Orchestrator to the Coder.
    const first = await turn(device, { message: 'fix the add function in math.js', agent: 'orchestrator' });
    const session = await request('GET', `${t.api}/chat/sessions/${first.sessionId}`, { token: user.accessToken });
    expect(session.status).toBe(200);
    expect(session.body.session.agent).toBe('coder');

    t.llm.push({ text: 'It adds two numbers.' });
    await turn(device, { message: 'explain what add does', agent: 'ask', sessionId: first.sessionId });
    const again = await request('GET', `${t.api}/chat/sessions/${first.sessionId}`, { token: user.accessToken });
    expect(again.body.session.agent).toBe('ask');
    const listed = await request('GET', `${t.api}/chat/sessions`, { token: user.accessToken });
    expect(listed.body.sessions.find((s: { id: string }) => s.id === first.sessionId)).toMatchObject({ agent: 'ask' });

    // A turn without an agent leaves no agent on a new session; another user never sees the session.
    t.llm.push({ text: 'Hello.' });
    const plain = await turn(device, { message: 'hello there' });
    expect((await request('GET', `${t.api}/chat/sessions/${plain.sessionId}`, { token: user.accessToken })).body.session.agent).toBeNull();
    const stranger = await registerUser(t.api, 'Stranger');
    expect((await request('GET', `${t.api}/chat/sessions/${first.sessionId}`, { token: stranger.accessToken })).status).toBe(404);
  });

  test('the turn’s log line carries agent, duration_ms and response_time_ms (time to the first token)', async () => {
    const { device } = await projectDevice();
    t.llm.push({ toolCalls: [{ name: 'read_file', args: { path: 'math.js' } }] }, { text: 'It subtracts. It should add.' });
    const asked = await turn(device, { message: 'what does add do in math.js?', agent: 'ask' });
    const line = await completedLine(asked.messageId);
    expect(line).toMatchObject({ agent: 'ask', sessionId: asked.sessionId, toolCalls: 1 });
    const duration = line.duration_ms as number;
    const firstToken = line.response_time_ms as number;
    expect(Number.isInteger(duration) && Number.isInteger(firstToken)).toBe(true);
    // Two model calls, each streamed in delayed pieces: the first text comes after the first call and one piece of the second.
    expect(firstToken).toBeGreaterThanOrEqual(2 * PIECE_DELAY_MS - 5);
    // The answer streams on after its first piece.
    expect(duration).toBeGreaterThan(firstToken);

    // A turn that is not a coding turn logs its timings too, without an agent.
    t.llm.push({ text: 'Hi.' });
    const plain = await turn(device, { message: 'hi' });
    const plainLine = await completedLine(plain.messageId);
    expect(plainLine.agent).toBeUndefined();
    expect(plainLine.response_time_ms).toEqual(expect.any(Number));
    expect(plainLine.duration_ms).toBeGreaterThanOrEqual(plainLine.response_time_ms as number);
  });
});
