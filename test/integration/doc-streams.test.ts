import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connectDevice, type DeviceConnection } from '@switchboard/client';
import { projectTools } from '@switchboard/client/node';
import { MemoryStore } from '@switchboard/client/testing';
import { demoResponder } from '../../src/demo-model';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request } from '../support/http';
import { readSse } from '../support/sse';
import { eventually } from '../support/wait';

const doc = (name: string) => readFileSync(path.resolve(__dirname, '../../docs', name), 'utf8');

/** The `# event: NAME  data: {…}` lines of a guide's examples whose data is whole JSON, by event name. */
function exampleEvents(markdown: string): Map<string, Record<string, unknown>> {
  const events = new Map<string, Record<string, unknown>>();
  for (const [, name, data] of markdown.matchAll(/^# event: (\w+)\s+data: (\{.*\})$/gm)) {
    try {
      events.set(name, JSON.parse(data) as Record<string, unknown>);
    } catch {
      // An example that elides fields ("…") shows the event's shape loosely; only whole ones are checked.
    }
  }
  return events;
}

/** The UI message chunk types the AI SDK guide's stream table names (the first word of each code span). */
function documentedChunkTypes(markdown: string): Set<string> {
  const table = markdown.slice(markdown.indexOf('| Switchboard event | UI message chunks |'));
  const rows = table.slice(0, table.indexOf('\n\n')).split('\n').slice(2);
  return new Set(rows.flatMap((row) => [...(row.split('|')[2] ?? '').matchAll(/`([a-z][a-z-]*)/g)].map((match) => match[1])));
}

const sorted = (fields: object) => Object.keys(fields).sort();

/** The guides' stream examples, checked against what the server sends: a field renamed on either side fails here. */
describe('the guides describe the streams as they are sent', () => {
  let t: TestApp;
  const devices: DeviceConnection[] = [];
  const folders: string[] = [];

  beforeAll(async () => {
    t = await startTestApp({ responder: demoResponder });
  });

  afterAll(async () => {
    devices.forEach((device) => device.close());
    await t.stop();
    await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
  });

  test("the coding agents guide's tool_call and tool_result carry the fields of the wire's", async () => {
    const examples = exampleEvents(doc('coding-agents.md'));
    expect([...examples.keys()]).toEqual(expect.arrayContaining(['tool_call', 'tool_result']));
    const user = await registerUser(t.api, 'DocCoding');
    const root = await mkdtemp(path.join(tmpdir(), 'sb-doc-'));
    folders.push(root);
    await mkdir(path.join(root, 'src'));
    await writeFile(path.join(root, 'src', 'math.js'), 'export function add(a, b) {\n  return a - b;\n}\n');
    const device = await connectDevice({
      url: t.url,
      token: user.accessToken,
      deviceId: `doc-${randomUUID().slice(0, 8)}`,
      project: await projectTools({ root }),
    });
    devices.push(device);
    await eventually(
      () => request('GET', `${t.api}/devices`, { token: user.accessToken }),
      (res) => res.body.devices?.some((d: { deviceId: string }) => d.deviceId === device.deviceId),
      10_000,
    );
    t.llm.push({ toolCalls: [{ name: 'search_files', args: { pattern: 'function add' } }] }, { text: 'add() subtracts.' });

    const sse = await readSse(`${t.api}/chat/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { message: 'Why does add() return the wrong sum?', agent: 'ask', deviceId: device.deviceId },
      until: (m) => m.event === 'final' || m.event === 'error',
      timeoutMs: 20_000,
    });

    for (const name of ['tool_call', 'tool_result']) {
      const sent = sse.messages.find((m) => m.event === name)?.data as Record<string, unknown>;
      expect({ name, fields: sorted(sent) }).toEqual({ name, fields: sorted(examples.get(name)!) });
    }
  });

  test("every UI message chunk the AI SDK edge sends for a turn with a tool is in the AI SDK guide's table", async () => {
    const documented = documentedChunkTypes(doc('ai-sdk.md'));
    expect(documented).toContain('text-delta');
    const user = await registerUser(t.api, 'DocAiSdk');
    const device = await connectDevice({
      url: t.url,
      token: user.accessToken,
      deviceId: `doc-tasks-${randomUUID().slice(0, 8)}`,
      store: new MemoryStore({ tasks: [{ id: randomUUID(), title: 'Book the venue', status: 'todo' }] }),
    });
    devices.push(device);
    await eventually(
      () => request('GET', `${t.api}/devices`, { token: user.accessToken }),
      (res) => res.body.devices?.some((d: { deviceId: string }) => d.deviceId === device.deviceId),
      10_000,
    );
    t.llm.push({ toolCalls: [{ name: 'list_tasks', args: { status: 'todo' } }] }, { text: 'You have one: Book the venue.' });

    const res = await fetch(`${t.api}/chat/stream`, {
      method: 'POST',
      headers: { authorization: `Bearer ${user.accessToken}`, 'x-vercel-ai-ui-message-stream': 'v1', 'content-type': 'application/json' },
      body: JSON.stringify({
        id: `doc-${randomUUID()}`,
        deviceId: device.deviceId,
        messages: [{ id: 'u1', role: 'user', parts: [{ type: 'text', text: 'How many todo tasks do I have?' }] }],
      }),
    });

    expect(res.status).toBe(200);
    const chunks = (await res.text())
      .split('\n')
      .filter((line) => line.startsWith('data: ') && line !== 'data: [DONE]')
      .map((line) => JSON.parse(line.slice(6)) as { type: string });
    const sent = new Set(chunks.map((chunk) => chunk.type));
    expect(sent).toContain('data-tool-call');
    expect(sent).toContain('data-tool-result');
    expect([...sent].filter((type) => !documented.has(type))).toEqual([]);
  });
});
