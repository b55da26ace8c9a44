import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { connectDevice, createSwitchboardClient, isApiError, type DeviceConnection } from '@switchboard/client';
import { projectTools, type ProjectToolsOptions } from '@switchboard/client/node';
import { MemoryStore, type DeviceSimulator } from '@switchboard/client/testing';
import type { ChatRequest } from '../../src/demo-model/openai-compatible-server';
import type { ApprovalRequested } from '../../src/schemas/socket-events';
import { startTestApp, type TestApp } from '../support/app';
import { demoResponder } from '../../src/demo-model';
import { nextDeviceEvent } from '../support/device-events';
import { registerUser, request, type TestUser } from '../support/http';
import { readSse } from '../support/sse';
import { eventually, waitUntil } from '../support/wait';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { toolResultTexts } from '../support/scripted-llm';

const toolResults = toolResultTexts;
const offeredTools = (req: ChatRequest) =>
  ((req as { tools?: Array<{ function: { name: string } }> }).tools ?? []).map((t) => t.function.name);
const next = <T>(
  device: DeviceConnection,
  event: 'approval_requested' | 'final',
  predicate?: (payload: T) => boolean,
  timeoutMs = 15_000,
) => nextDeviceEvent<T>(device as unknown as DeviceSimulator, event, predicate, timeoutMs);

const FILES = {
  'package.json': '{ "name": "demo", "scripts": { "test": "node test.js" } }\n',
  'src/math.js': 'export function add(a, b) {\n  return a - b;\n}\n',
  'src/util/strings.js': 'export const shout = (s) => s.toUpperCase();\n',
  'test.js': "console.log('tests: 1 failing'); process.exit(1);\n",
  '.env': 'SECRET=hunter2\n',
};

describe('coding agents on a project folder served by the device kit', () => {
  let t: TestApp;
  const devices: DeviceConnection[] = [];
  const folders: string[] = [];

  beforeAll(async () => {
    // Past the scripted turns the offline demo model answers (its own test below).
    t = await startTestApp({
      responder: demoResponder,
      env: {
        DEVICE_RPC_TIMEOUT_MS: '5000',
        HITL_TIMEOUT_MS: '60000',
        OPENAI_API_KEY: 'test',
        LLM_MODEL: 'primary-model',
        LLM_FALLBACK_MODELS: 'planning-model',
        // An operator's overrides: the Architect's own model, the Ask agent's own prompt.
        CODING_AGENTS: JSON.stringify({
          architect: { model: { provider: 'scripted', model: 'planning-model' } },
          ask: { prompt: 'You are the Ask agent of ACME. Read before answering.' },
        }),
      },
    });
  });

  afterAll(async () => {
    devices.forEach((device) => device.close());
    await t.stop();
    await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
  });

  /** A new user with a device serving a fresh project folder holding `files`. */
  async function projectDevice(files: Record<string, string> = FILES, options: Partial<ProjectToolsOptions> = {}) {
    const root = await mkdtemp(join(tmpdir(), 'sb-project-'));
    const history = await mkdtemp(join(tmpdir(), 'sb-history-'));
    folders.push(root, history);
    for (const [path, content] of Object.entries(files)) {
      await mkdir(dirname(join(root, path)), { recursive: true });
      await writeFile(join(root, path), content);
    }
    const user = await registerUser(t.api, 'Coder');
    const project = await projectTools({ root, historyDir: history, commandTimeoutMs: 5_000, ...options });
    const device = await connectDevice({
      url: t.url,
      token: user.accessToken,
      deviceId: `dev-${randomUUID().slice(0, 8)}`,
      project,
      reconnection: false,
    });
    devices.push(device);
    return { root, history, user, device };
  }

  /** Asks `agent` from the device; resolves with the session id and the turn's `final`. */
  async function ask(device: DeviceConnection, agent: string, message: string) {
    const ack = (await device.chat({ message, agent: agent as never })) as { sessionId: string; messageId: string };
    expect(ack.sessionId).toEqual(expect.any(String));
    return { ...ack, final: next<{ sessionId: string; response: string }>(device, 'final', (f) => f.sessionId === ack.sessionId) };
  }

  /** Asks from the device without waiting for the answer on it (the test follows the history instead). */
  async function askOnly(device: DeviceConnection, agent: string, message: string) {
    const ack = (await device.chat({ message, agent: agent as never })) as { sessionId: string; messageId: string };
    expect(ack.sessionId).toEqual(expect.any(String));
    return ack;
  }

  const decide = (user: TestUser, id: string, decision: 'approve' | 'reject') =>
    request('PUT', `${t.api}/hitl/requests/${id}/${decision}`, { token: user.accessToken });

  test('the device announces its project; GET /devices shows it', async () => {
    const { user, device, root } = await projectDevice();
    const res = await request('GET', `${t.api}/devices`, { token: user.accessToken });
    expect(res.status).toBe(200);
    const view = res.body.devices.find((d: { deviceId: string }) => d.deviceId === device.deviceId);
    expect(view.project).toEqual({ name: root.split('/').pop() });
  });

  test('Ask answers from read_file and search_files without any approval; the stream shows the agent and its tools', async () => {
    const { user, device } = await projectDevice();
    t.llm.push(
      {
        toolCalls: [
          { name: 'search_files', args: { pattern: 'a - b' } },
          { name: 'read_file', args: { path: 'src/math.js' } },
        ],
      },
      { text: 'add() subtracts: src/math.js:2 returns a - b.' },
    );
    const before = t.llm.chatRequests().length;
    const sse = await readSse(`${t.api}/chat/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { message: 'Where is add defined and what does it return?', deviceId: device.deviceId, agent: 'ask' },
      until: (m) => m.event === 'final' || m.event === 'error',
    });
    expect(sse.status).toBe(200);
    const events = sse.messages.map((m) => m.data as { type: string; [key: string]: unknown });
    expect(events.filter((e) => e.type === 'approval_requested')).toEqual([]);
    expect(events.find((e) => e.type === 'agent')).toMatchObject({ agent: 'ask', state: 'processing' });
    expect(events.filter((e) => e.type === 'tool_call').map((e) => e.name)).toEqual(['search_files', 'read_file']);
    // The two reads run at once: their results come in either order.
    const results = events.filter((e) => e.type === 'tool_result').sort((a, b) => String(b.name).localeCompare(String(a.name)));
    expect(results).toEqual([
      expect.objectContaining({
        name: 'search_files',
        agent: 'ask',
        ok: true,
        content: expect.stringContaining('src/math.js:2: return a - b;'),
      }),
      expect.objectContaining({ name: 'read_file', agent: 'ask', ok: true, content: expect.stringContaining('export function add(a, b)') }),
    ]);
    expect(events.at(-1)).toMatchObject({ type: 'final', response: 'add() subtracts: src/math.js:2 returns a - b.' });
    expect(events.at(-2)).toMatchObject({ type: 'agent', agent: 'ask', state: 'idle' });

    const [first, second] = t.llm.chatRequests().slice(before);
    // Ask is offered the read-only tools only.
    expect(offeredTools(first).sort()).toEqual(['list_files', 'read_file', 'search_files']);
    expect(toolResults(second)[1]).toContain('src/math.js (lines 1-3 of 3)');
  });

  test('agents are data: the Orchestrator hands a request to the agent its words point to; an operator override gives the Architect its model and Ask its prompt', async () => {
    const { user, device } = await projectDevice();
    const stream = (message: string, agent: string) =>
      readSse(`${t.api}/chat/stream`, {
        method: 'POST',
        token: user.accessToken,
        body: { message, deviceId: device.deviceId, agent },
        until: (m) => m.event === 'final' || m.event === 'error',
      });
    const agentsOf = (messages: Array<{ data: { type: string; agent?: string } }>) => [
      ...new Set(messages.filter((m) => m.data.type === 'agent').map((m) => m.data.agent)),
    ];

    t.llm.push({ text: 'Step 1: split math.js.' });
    let before = t.llm.chatRequests().length;
    const plan = await stream('Plan the architecture of a calculator module', 'orchestrator');
    expect(agentsOf(plan.messages)).toEqual(['architect']);
    const [planning] = t.llm.chatRequests().slice(before);
    expect(planning.model).toBe('planning-model');
    expect(offeredTools(planning).sort()).toEqual(['list_files', 'read_file', 'search_files']);
    expect(String(planning.messages[0].content)).toContain('Architect');

    t.llm.push({ text: 'It adds numbers.' });
    before = t.llm.chatRequests().length;
    await stream('What does add do?', 'ask');
    const [asking] = t.llm.chatRequests().slice(before);
    expect(asking.model).toBe('primary-model');
    expect(String(asking.messages[0].content)).toContain('You are the Ask agent of ACME.');

    t.llm.push({ text: 'Coder here.' });
    before = t.llm.chatRequests().length;
    const fix = await stream('Implement a multiply function', 'orchestrator');
    expect(agentsOf(fix.messages)).toEqual(['coder']);
    expect(offeredTools(t.llm.chatRequests()[before]).sort()).toEqual([
      'delete_file',
      'edit_file',
      'execute_command',
      'list_files',
      'read_file',
      'search_files',
      'write_file',
    ]);

    // Words for no specialist (or for two at once): the Orchestrator answers itself, read-only.
    t.llm.push({ text: 'Hello.' });
    const hello = await stream('Hello there', 'orchestrator');
    expect(agentsOf(hello.messages)).toEqual(['orchestrator']);
  });

  test("the Orchestrator's plan: two steps for two agents, the stream shows the plan and who works at each moment", async () => {
    const { user, device, root } = await projectDevice();
    t.llm.push(
      {
        toolCalls: [
          {
            name: 'plan_steps',
            args: {
              steps: [
                { agent: 'architect', task: 'Design a multiply function' },
                { agent: 'coder', task: 'Add multiply to src/math.js' },
              ],
            },
          },
        ],
      },
      { text: 'The architect designs it, then the coder adds it.' },
      { text: 'multiply(a, b) returns a * b, beside add.' },
      {
        toolCalls: [
          {
            name: 'edit_file',
            args: { path: 'src/math.js', edits: [{ search: '}\n', replace: '}\n\nexport const multiply = (a, b) => a * b;\n' }] },
          },
        ],
      },
      { text: 'Added multiply.' },
    );
    const before = t.llm.chatRequests().length;
    const sse = await readSse(`${t.api}/chat/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { message: 'Plan and implement a multiply function', deviceId: device.deviceId, agent: 'orchestrator' },
      onMessage: (m) => {
        if (m.data?.type === 'approval_requested') void decide(user, m.data.approvalId, 'approve');
      },
      until: (m) => m.event === 'final' || m.event === 'error' || m.event === 'cancelled',
      timeoutMs: 20_000,
    });
    const events = sse.messages.map((m) => m.data as { type: string; [key: string]: unknown });
    const working = events.filter((e) => e.type === 'agent').map((e) => e.agent);
    expect(working.filter((agent, i) => agent !== working[i - 1])).toEqual(['orchestrator', 'architect', 'coder']);
    const plans = events.filter((e) => e.type === 'plan').map((e) => (e.steps as Array<{ status: string }>).map((step) => step.status));
    expect(plans).toEqual([
      ['running', 'pending'],
      ['done', 'running'],
      ['done', 'done'],
    ]);
    // The architect works before the coder, and the coder's edit waits for the approval.
    const order = events.map((e) => (e.type === 'agent' ? `agent:${String(e.agent)}` : e.type));
    expect(order.indexOf('agent:architect')).toBeLessThan(order.indexOf('approval_requested'));
    const final = events.at(-1)!;
    expect(final).toMatchObject({
      type: 'final',
      response: 'The architect designs it, then the coder adds it.\n\nmultiply(a, b) returns a * b, beside add.\n\nAdded multiply.',
    });
    expect(
      events
        .filter((e) => e.type === 'text_chunk')
        .map((e) => e.text)
        .join(''),
    ).toBe(final.response);
    expect(await readFile(join(root, 'src/math.js'), 'utf8')).toContain('export const multiply = (a, b) => a * b;');

    const requests = t.llm.chatRequests().slice(before);
    expect(offeredTools(requests[0])).toContain('plan_steps');
    expect(String(requests[2].messages[0].content)).toContain('step 1 of 2');
    expect(offeredTools(requests[2]).sort()).toEqual(['list_files', 'read_file', 'search_files']);
    expect(String(requests[3].messages[0].content)).toContain('step 2 of 2');
    expect(String(requests[3].messages[1].content)).toContain('multiply(a, b) returns a * b, beside add.');
    expect(offeredTools(requests[3])).toContain('edit_file');
  });

  test('cancel stops a running plan: the waiting step is rejected, no later step runs, nothing is written', async () => {
    const { user, device, root } = await projectDevice();
    t.llm.push(
      {
        toolCalls: [
          {
            name: 'plan_steps',
            args: {
              steps: [
                { agent: 'architect', task: 'Design it' },
                { agent: 'coder', task: 'Write it' },
                { agent: 'debug', task: 'Run the tests' },
              ],
            },
          },
        ],
      },
      { text: 'Three steps.' },
      { text: 'Design done.' },
      { toolCalls: [{ name: 'write_file', args: { path: 'src/plan.js', content: 'export {};\n' } }] },
    );
    let sessionId = '';
    let cancelled = false;
    const sse = await readSse(`${t.api}/chat/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { message: 'Plan and implement and test it', deviceId: device.deviceId, agent: 'orchestrator' },
      onMessage: (m) => {
        if (m.data?.sessionId) sessionId = m.data.sessionId;
        if (m.data?.type === 'approval_requested' && !cancelled) {
          cancelled = true;
          void request('POST', `${t.api}/chat/sessions/${sessionId}/cancel`, { token: user.accessToken });
        }
      },
      until: (m) => m.event === 'final' || m.event === 'error' || m.event === 'cancelled',
      timeoutMs: 20_000,
    });
    const requestsAfter = t.llm.chatRequests().length;
    const events = sse.messages.map((m) => m.data as { type: string; [key: string]: unknown });
    expect(events.at(-1)).toMatchObject({ type: 'cancelled', response: 'Three steps.\n\nDesign done.' });
    expect(events.find((e) => e.type === 'approval_resolved')).toMatchObject({ status: 'rejected' });
    expect(events.filter((e) => e.type === 'agent').map((e) => e.agent)).not.toContain('debug');
    expect(await readdir(join(root, 'src'))).not.toContain('plan.js');
    // Nothing runs after the cancel: no more model calls.
    const pending = await request('GET', `${t.api}/hitl/requests?status=pending`, { token: user.accessToken });
    expect(pending.body.requests).toEqual([]);
    expect(t.llm.chatRequests().length).toBe(requestsAfter);
  });

  test('the offline demo model drives them too: Ask reads, Coder edits after approval, Debug runs after approval', async () => {
    const { user, device, root } = await projectDevice();
    const asked = await ask(device, 'ask', 'read src/math.js');
    expect((await asked.final).response).toContain('export function add(a, b)');

    const approval = next<ApprovalRequested>(device, 'approval_requested');
    const edit = await ask(device, 'coder', 'replace "a - b" with "a + b" in src/math.js');
    const requested = await approval;
    expect(requested.parameters.diff).toContain('+  return a + b;');
    await decide(user, requested.approvalId, 'approve');
    expect((await edit.final).response).toContain('Edited src/math.js');
    expect(await readFile(join(root, 'src/math.js'), 'utf8')).toContain('a + b');

    const command = next<ApprovalRequested>(device, 'approval_requested');
    const run = await ask(device, 'debug', 'run node test.js');
    const runRequest = await command;
    expect(runRequest).toMatchObject({ toolName: 'execute_command', parameters: { command: 'node test.js' } });
    await decide(user, runRequest.approvalId, 'approve');
    expect((await run.final).response).toContain('tests: 1 failing');
  });

  test('Coder: the edit waits with its diff, is approved from a second client, changes the file; undo restores it', async () => {
    const { user, device, root } = await projectDevice();
    t.llm.push(
      {
        toolCalls: [
          { name: 'edit_file', args: { path: 'src/math.js', edits: [{ search: '  return a - b;', replace: '  return a + b;' }] } },
        ],
      },
      { text: 'Fixed add().' },
    );
    const approval = next<ApprovalRequested>(device, 'approval_requested');
    const turn = await ask(device, 'coder', 'Fix the add function');
    const requested = await approval;
    expect(requested).toMatchObject({ toolName: 'edit_file', reason: expect.stringContaining('changes a file') });
    expect(requested.parameters.diff).toBe(
      '--- a/src/math.js\n+++ b/src/math.js\n@@ -1,3 +1,3 @@\n export function add(a, b) {\n-  return a - b;\n+  return a + b;\n }\n',
    );
    expect(requested.parameters.expectedHash).toMatch(/^[a-f0-9]{64}$/);
    // Nothing is written before the decision.
    expect(await readFile(join(root, 'src/math.js'), 'utf8')).toContain('a - b');

    // The second client: the same user through the SDK over HTTP.
    const sdk = createSwitchboardClient({ baseUrl: t.url });
    sdk.setTokens({ accessToken: user.accessToken });
    expect(await sdk.approvals.approve(requested.approvalId)).toMatchObject({ status: 'approved' });
    expect((await turn.final).response).toBe('Fixed add().');
    expect(await readFile(join(root, 'src/math.js'), 'utf8')).toBe('export function add(a, b) {\n  return a + b;\n}\n');

    const history = await request('GET', `${t.api}/chat/sessions/${turn.sessionId}/history`, { token: user.accessToken });
    const toolMessage = history.body.messages.find((m: { role: string }) => m.role === 'tool');
    const changeId = /Change id (\S+?):/.exec(toolMessage.content)?.[1];
    expect(changeId).toEqual(expect.any(String));

    const changes = await sdk.devices.changes(device.deviceId);
    expect(changes.changes[0]).toMatchObject({ changeId, path: 'src/math.js', tool: 'edit_file', undoneBy: null });

    const outsider = await registerUser(t.api, 'Outsider');
    const stranger = await request('POST', `${t.api}/devices/${device.deviceId}/changes/${changeId}/undo`, { token: outsider.accessToken });
    expect(stranger.status).toBe(409);
    expect(await readFile(join(root, 'src/math.js'), 'utf8')).toContain('a + b');

    const undone = await sdk.devices.undoChange(device.deviceId, changeId!);
    expect(undone).toMatchObject({ path: 'src/math.js', change: { tool: 'undo_change' } });
    expect(undone.diff).toContain('-  return a + b;\n+  return a - b;');
    expect(await readFile(join(root, 'src/math.js'), 'utf8')).toBe(FILES['src/math.js']);
    const again = await sdk.devices.undoChange(device.deviceId, changeId!).catch((error: unknown) => error);
    expect(isApiError(again) && again.status === 409 && again.code === 'undo_refused').toBe(true);
    expect((await sdk.devices.changes(device.deviceId)).changes.map((c) => [c.tool, c.undoneBy ?? null])).toEqual([
      ['undo_change', null],
      ['edit_file', undone.change!.changeId],
    ]);

    // A file changed after the change is never overwritten by its undo.
    t.llm.push(
      { toolCalls: [{ name: 'write_file', args: { path: 'src/new.js', content: 'export const n = 1;\n' } }] },
      { text: 'Created it.' },
    );
    const created = next<ApprovalRequested>(device, 'approval_requested');
    const turn2 = await ask(device, 'coder', 'Create new.js');
    const approval2 = await created;
    expect(approval2.parameters).toMatchObject({ expectedHash: null, diff: expect.stringContaining('--- /dev/null') });
    await sdk.approvals.approve(approval2.approvalId);
    await turn2.final;
    const [newest] = (await sdk.devices.changes(device.deviceId)).changes;
    expect(newest).toMatchObject({ path: 'src/new.js', created: true });
    await writeFile(join(root, 'src/new.js'), 'edited by hand\n');
    const refused = await sdk.devices.undoChange(device.deviceId, newest.changeId).catch((error: unknown) => error);
    expect(isApiError(refused) && refused.code === 'undo_refused' && /changed after/.test(refused.message)).toBe(true);
    expect(await readFile(join(root, 'src/new.js'), 'utf8')).toBe('edited by hand\n');
  });

  test('Debug runs the test command only after approval, in the project root; a rejection runs nothing', async () => {
    const { user, device, root } = await projectDevice({
      ...FILES,
      'test.js': "require('fs').writeFileSync('ran.txt', process.cwd()); process.exit(3);\n",
    });
    t.llm.push({ toolCalls: [{ name: 'execute_command', args: { command: 'node test.js' } }] }, { text: 'The tests fail with code 3.' });
    const approval = next<ApprovalRequested>(device, 'approval_requested');
    const turn = await ask(device, 'debug', 'Why do the tests fail? Run them.');
    const requested = await approval;
    expect(requested).toMatchObject({ toolName: 'execute_command', parameters: { command: 'node test.js' } });
    expect(await readdir(root)).not.toContain('ran.txt');
    const before = t.llm.chatRequests().length;
    expect((await decide(user, requested.approvalId, 'approve')).status).toBe(200);
    expect((await turn.final).response).toBe('The tests fail with code 3.');
    expect(await readFile(join(root, 'ran.txt'), 'utf8')).toBe(root);
    expect(toolResults(t.llm.chatRequests()[before])).toEqual([expect.stringContaining('exit code 3')]);

    // Rejected: the command never runs.
    await rm(join(root, 'ran.txt'));
    t.llm.push({ toolCalls: [{ name: 'execute_command', args: { command: 'node test.js' } }] }, { text: 'Not run.' });
    const second = next<ApprovalRequested>(device, 'approval_requested');
    const again = await ask(device, 'debug', 'Run the tests again');
    expect((await decide(user, (await second).approvalId, 'reject')).status).toBe(200);
    expect((await again.final).response).toBe('Not run.');
    expect(await readdir(root)).not.toContain('ran.txt');

    // Metrics: each tool's time by agent, and how coding turns end (a park, then the answer).
    const metrics = await fetch(`${t.url}/metrics`).then((res) => res.text());
    expect(metrics).toMatch(/switchboard_code_tool_seconds_count\{tool="execute_command",agent="debug",outcome="ok"\} [1-9]/);
    expect(metrics).toMatch(/switchboard_coding_turns_total\{agent="debug",outcome="parked"\} [2-9]/);
    expect(metrics).toMatch(/switchboard_coding_turns_total\{agent="debug",outcome="completed"\} [2-9]/);
    // Approval decisions by outcome and tool: the rate is approved / (approved + rejected + timeout).
    const approvals = (outcome: string) =>
      Number(new RegExp(`switchboard_approvals_total\\{outcome="${outcome}",tool="execute_command"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
    expect(approvals('requested')).toBeGreaterThanOrEqual(2);
    expect(approvals('approved')).toBeGreaterThanOrEqual(1);
    expect(approvals('rejected')).toBeGreaterThanOrEqual(1);
    expect(approvals('approved') + approvals('rejected') + approvals('timeout')).toBeLessThanOrEqual(approvals('requested'));
  });

  test('refusals: a path out of the root, a symlink out, a hidden file, a binary file, an oversized file, a deny-listed command', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'sb-outside-'));
    folders.push(outside);
    await writeFile(join(outside, 'secret.txt'), 'outside secret\n');
    const { device, root } = await projectDevice(FILES, { maxReadBytes: 1_024 });
    await symlink(join(outside, 'secret.txt'), join(root, 'link.txt'));
    await symlink(outside, join(root, 'linked-dir'));
    await writeFile(join(root, 'image.bin'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0x01, 0x02]));
    await writeFile(join(root, 'big.txt'), 'x'.repeat(2_048));
    const big = 'y'.repeat(1024 * 1024);

    t.llm.push(
      {
        toolCalls: [
          { name: 'read_file', args: { path: '../secret.txt' } },
          { name: 'read_file', args: { path: 'link.txt' } },
          { name: 'read_file', args: { path: 'linked-dir/secret.txt' } },
          { name: 'read_file', args: { path: '.env' } },
          { name: 'read_file', args: { path: 'image.bin' } },
          { name: 'read_file', args: { path: 'big.txt' } },
          { name: 'read_file', args: { path: '/etc/passwd' } },
          { name: 'search_files', args: { pattern: 'secret', path: 'linked-dir' } },
        ],
      },
      { text: 'Some reads were refused.' },
    );
    const before = t.llm.chatRequests().length;
    const turn = await ask(device, 'ask', 'Read these files');
    expect((await turn.final).response).toBe('Some reads were refused.');
    const results = toolResults(t.llm.chatRequests()[before + 1]);
    expect(results).toEqual([
      expect.stringMatching(/^Error: invalid arguments for read_file: path: the path may not contain \.\./),
      expect.stringMatching(/^Error: .*link\.txt leads outside the project through a symbolic link/),
      expect.stringMatching(/^Error: .*linked-dir\/secret\.txt leads outside the project through a symbolic link/),
      expect.stringMatching(/^Error: invalid arguments for read_file: path: hidden files and folders are not reachable/),
      expect.stringMatching(/^Error: .*image\.bin is a binary file/),
      expect.stringMatching(/^Error: .*big\.txt is 2048 bytes, over the limit of 1024/),
      expect.stringMatching(/^Error: invalid arguments for read_file: path: the path must be relative/),
      expect.stringMatching(/^Error: .*linked-dir leads outside the project through a symbolic link/),
    ]);
    expect(results.join('\n')).not.toContain('outside secret');

    // Writes: the model's oversized content and deny-listed command never reach an approval.
    t.llm.push(
      {
        toolCalls: [
          { name: 'write_file', args: { path: 'huge.txt', content: big } },
          { name: 'execute_command', args: { command: 'sudo rm -rf /' } },
          { name: 'write_file', args: { path: 'link.txt', content: 'overwrite through the link' } },
          { name: 'edit_file', args: { path: 'src/math.js', edits: [{ search: 'not in the file', replace: 'x' }] } },
        ],
      },
      { text: 'Nothing was changed.' },
    );
    const writes = t.llm.chatRequests().length;
    const second = await ask(device, 'coder', 'Make these changes');
    expect((await second.final).response).toBe('Nothing was changed.');
    const refused = toolResults(t.llm.chatRequests()[writes + 1]);
    expect(refused).toEqual([
      expect.stringMatching(/^Error: invalid arguments for write_file: content/),
      expect.stringMatching(/^Error: invalid arguments for execute_command: command: the command is on the deny list/),
      expect.stringMatching(/^Error: write_file was NOT run: .*link\.txt leads outside the project through a symbolic link/),
      expect.stringMatching(/^Error: edit_file was NOT run: .*the search text was not found in src\/math\.js/),
    ]);
    expect(await readFile(join(outside, 'secret.txt'), 'utf8')).toBe('outside secret\n');
    expect(await readdir(root)).not.toContain('huge.txt');
    expect(await readFile(join(root, 'src/math.js'), 'utf8')).toBe(FILES['src/math.js']);
  });

  test('a device that goes away mid-edit leaves the file whole: no half-written file, no temporary file, no change recorded', async () => {
    let connection: DeviceConnection | undefined;
    const { user, device, root, history } = await projectDevice(FILES, {
      // The device stops between writing the new content aside and putting it in place.
      beforeRename: () => {
        connection!.socket.disconnect();
        throw new Error('the device stopped');
      },
    });
    connection = device;
    t.llm.push(
      { toolCalls: [{ name: 'write_file', args: { path: 'src/math.js', content: 'export const add = (a, b) => a + b;\n' } }] },
      { text: 'The device went away; nothing was written.' },
    );
    const approval = next<ApprovalRequested>(device, 'approval_requested');
    // The device is gone when the turn ends: its `final` never reaches it.
    const turn = await askOnly(device, 'coder', 'Rewrite math.js');
    const requested = await approval;
    expect(requested.parameters.diff).toContain('+export const add = (a, b) => a + b;');
    const before = t.llm.chatRequests().length;
    expect((await decide(user, requested.approvalId, 'approve')).status).toBe(200);
    const history2 = await eventually(
      () => request('GET', `${t.api}/chat/sessions/${turn.sessionId}/history`, { token: user.accessToken }),
      (res) => res.body.messages?.some((m: { role: string }) => m.role === 'assistant'),
    );
    const toolMessage = history2.body.messages.find((m: { role: string }) => m.role === 'tool');
    expect(toolMessage.content).toMatch(/^Error: Device \S+ (disconnected before answering|is not connected)/);
    expect(toolResults(t.llm.chatRequests()[before])[0]).toBe(toolMessage.content);
    expect(await readFile(join(root, 'src/math.js'), 'utf8')).toBe(FILES['src/math.js']);
    expect((await readdir(join(root, 'src'))).sort()).toEqual(['math.js', 'util']);
    expect(await readdir(history)).not.toContain('changes.json');
  });

  test('cancel stops a command running on the device: the device is told and kills it', async () => {
    const { user, device, root } = await projectDevice(FILES, { commandTimeoutMs: 120_000 });
    const command =
      "node -e \"require('fs').writeFileSync('pid.txt', String(process.pid)); setTimeout(() => require('fs').writeFileSync('late.txt', 'x'), 60000)\"";
    t.llm.push({ toolCalls: [{ name: 'execute_command', args: { command } }] });
    let sessionId = '';
    let cancelling: Promise<unknown> | undefined;
    const sse = await readSse(`${t.api}/chat/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { message: 'Run the slow script', deviceId: device.deviceId, agent: 'debug' },
      onMessage: (m) => {
        if (m.data?.sessionId) sessionId = m.data.sessionId;
        if (m.data?.type === 'approval_requested') void decide(user, m.data.approvalId, 'approve');
        // Once the command runs (it wrote its pid), the turn is cancelled.
        if (m.data?.type === 'tool_call' && !cancelling)
          cancelling = eventually(
            () => readFile(join(root, 'pid.txt'), 'utf8').catch(() => ''),
            (pid) => pid !== '',
          ).then(() => request('POST', `${t.api}/chat/sessions/${sessionId}/cancel`, { token: user.accessToken }));
      },
      until: (m) => m.event === 'final' || m.event === 'error' || m.event === 'cancelled',
      timeoutMs: 30_000,
    });
    expect(sse.messages.at(-1)?.event).toBe('cancelled');
    const pid = Number(await readFile(join(root, 'pid.txt'), 'utf8'));
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    // Killed by the cancel, long before the device's own 120 s limit.
    await eventually(
      async () => alive(),
      (running) => !running,
      10_000,
    );
    expect(await readdir(root)).not.toContain('late.txt');
  });

  test('a device refuses a command on its own deny list even when approved', async () => {
    const { user, device, root } = await projectDevice(FILES, { denyCommands: [/\bnode\b/] });
    t.llm.push({ toolCalls: [{ name: 'execute_command', args: { command: 'node test.js > out.txt' } }] }, { text: 'Refused.' });
    const approval = next<ApprovalRequested>(device, 'approval_requested');
    const turn = await ask(device, 'debug', 'Run the tests');
    const { approvalId } = await approval;
    const before = t.llm.chatRequests().length;
    expect((await decide(user, approvalId, 'approve')).status).toBe(200);
    expect((await turn.final).response).toBe('Refused.');
    expect(toolResults(t.llm.chatRequests()[before])[0]).toMatch(/^Error: .*the command is on the deny list/);
    expect(await readdir(root)).not.toContain('out.txt');
  });

  test('over the plain WebSocket transport too: the hello carries the project and the reads reach the folder', async () => {
    const root = await mkdtemp(join(tmpdir(), 'sb-ws-project-'));
    folders.push(root);
    await writeFile(join(root, 'notes.txt'), 'served over the plain WebSocket\n');
    const user = await registerUser(t.api, 'Ws');
    const deviceId = `ws-${randomUUID().slice(0, 8)}`;
    const ws = await connectDevice({
      transport: 'ws',
      url: t.url,
      token: user.accessToken,
      deviceId,
      project: await projectTools({ root, historyDir: join(root, '..', `${deviceId}-history`) }),
      reconnection: false,
    });
    try {
      await eventually(
        () => request('GET', `${t.api}/devices`, { token: user.accessToken }),
        (res) => res.body.devices?.some((d: { deviceId: string; project: unknown }) => d.deviceId === deviceId && d.project),
      );
      t.llm.push({ toolCalls: [{ name: 'search_files', args: { pattern: 'plain websocket' } }] }, { text: 'Found it.' });
      const before = t.llm.chatRequests().length;
      const res = await request('POST', `${t.api}/chat`, {
        token: user.accessToken,
        body: { message: 'Find the websocket note', deviceId, agent: 'ask' },
      });
      expect(res.status).toBe(200);
      expect(toolResults(t.llm.chatRequests()[before + 1])).toEqual(['notes.txt:1: served over the plain WebSocket']);

      // The app's own chat_request names the agent too.
      t.llm.push({ toolCalls: [{ name: 'read_file', args: { path: 'notes.txt' } }] }, { text: 'Read it over the WebSocket.' });
      // The device also hears the first turn's `final`, which may reach it only now: that one is not this turn's.
      const firstSession = res.body.sessionId as string;
      const final = new Promise<Record<string, unknown>>((resolve) => {
        const off = ws.on('final', (frame) => {
          const session =
            (frame as { session_id?: unknown; sessionId?: unknown }).session_id ?? (frame as { sessionId?: unknown }).sessionId;
          if (session === firstSession) return;
          off();
          resolve(frame);
        });
      });
      ws.chat({ message: 'Read the note', agent: 'ask' });
      expect(await final).toMatchObject({ response: 'Read it over the WebSocket.' });
    } finally {
      ws.close();
    }
  });

  test('a coding agent needs a device that serves a project: tools "none" is 400, an unknown agent 400, no device or no project 409', async () => {
    const user = await registerUser(t.api, 'NoDevice');
    const none = await request('POST', `${t.api}/chat`, { token: user.accessToken, body: { message: 'hi', agent: 'ask', tools: 'none' } });
    expect(none.status).toBe(400);
    const unknown = await request('POST', `${t.api}/chat`, { token: user.accessToken, body: { message: 'hi', agent: 'hacker' } });
    expect(unknown.status).toBe(400);
    const offline = await request('POST', `${t.api}/chat`, { token: user.accessToken, body: { message: 'hi', agent: 'coder' } });
    expect(offline.status).toBe(409);
    expect(offline.body.error.code).toBe('device_offline');

    // A device that serves no project: 409 no_project, over HTTP and from its own socket; nothing stored.
    const plain = await connectDevice({
      url: t.url,
      token: user.accessToken,
      deviceId: `plain-${randomUUID().slice(0, 6)}`,
      store: new MemoryStore(),
      reconnection: false,
    });
    devices.push(plain);
    const named = await request('POST', `${t.api}/chat`, {
      token: user.accessToken,
      body: { message: 'hi', agent: 'ask', deviceId: plain.deviceId },
    });
    expect(named.status).toBe(409);
    expect(named.body.error.code).toBe('no_project');
    const any = await request('POST', `${t.api}/chat`, { token: user.accessToken, body: { message: 'hi', agent: 'ask' } });
    expect(any.body.error.code).toBe('no_project');
    expect(await plain.chat({ message: 'hi', agent: 'coder' })).toEqual({ error: expect.objectContaining({ code: 'no_project' }) });
    const sessions = await request('GET', `${t.api}/chat/sessions`, { token: user.accessToken });
    expect(sessions.body.sessions).toEqual([]);
  });

  test('`switchboard device --project <dir>` serves the folder: an Ask turn over HTTP reads its files', async () => {
    const root = await mkdtemp(join(tmpdir(), 'sb-cli-project-'));
    folders.push(root);
    await writeFile(join(root, 'README.md'), '# CLI project\nServed by the command line.\n');
    const user = await registerUser(t.api, 'Cli');
    const deviceId = `cli-${randomUUID().slice(0, 8)}`;
    const child = spawn(
      process.execPath,
      [path.resolve(__dirname, '../../bin/switchboard.mjs'), 'device', '--project', root, '--device-id', deviceId],
      {
        env: { PATH: process.env.PATH ?? '', HOME: root, SWITCHBOARD_TOKEN: user.accessToken, SWITCHBOARD_URL: t.url },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (data: Buffer) => (output += data.toString()));
    child.stderr.on('data', (data: Buffer) => (output += data.toString()));
    try {
      const devices = await eventually(
        () => request('GET', `${t.api}/devices`, { token: user.accessToken }),
        (res) => res.body.devices?.some((d: { deviceId: string; project: unknown }) => d.deviceId === deviceId && d.project),
        30_000,
      );
      expect(devices.body.devices[0].project).toEqual({ name: path.basename(root) });
      // The command prints its line once its connect resolves, which can be just after the server lists the device.
      await waitUntil(() => output.includes(`as device ${deviceId}`), 10_000);
      t.llm.push({ toolCalls: [{ name: 'read_file', args: { path: 'README.md' } }] }, { text: 'It is the CLI project.' });
      const before = t.llm.chatRequests().length;
      const res = await request('POST', `${t.api}/chat`, {
        token: user.accessToken,
        body: { message: 'What is this project?', deviceId, agent: 'ask' },
      });
      expect(res.status).toBe(200);
      expect(res.body.response).toBe('It is the CLI project.');
      expect(toolResults(t.llm.chatRequests()[before + 1])[0]).toContain('Served by the command line.');
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
  });
});
