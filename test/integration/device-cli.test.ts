import { randomUUID } from 'node:crypto';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { demoResponder } from '../../src/demo-model';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { readSse } from '../support/sse';
import { waitUntil } from '../support/wait';

const BIN = path.resolve(__dirname, '../../bin/switchboard.mjs');

/** `switchboard device --project root` as a user runs it; its stdout and stderr as they come. */
function runDevice(root: string, env: Record<string, string>) {
  const child = spawn(process.execPath, [BIN, 'device', '--project', root], {
    env: { PATH: process.env.PATH ?? '', HOME: root, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { stdout: '', stderr: '' };
  child.stdout.on('data', (data: Buffer) => (output.stdout += data.toString()));
  child.stderr.on('data', (data: Buffer) => (output.stderr += data.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { child, output, exited };
}

describe('`switchboard device` says what it does', () => {
  let t: TestApp;
  const folders: string[] = [];
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    t = await startTestApp({ responder: demoResponder, env: { HITL_TIMEOUT_MS: '60000' } });
  });

  afterAll(async () => {
    const running = children.filter((child) => child.exitCode === null && child.signalCode === null);
    await Promise.all(
      running.map((child) => {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        return exited;
      }),
    );
    await t.stop();
    await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
  });

  async function project() {
    const root = await mkdtemp(path.join(tmpdir(), 'sb-device-cli-'));
    folders.push(root);
    await writeFile(path.join(root, 'README.md'), '# Served\n');
    return root;
  }

  /** A coding turn of `agent` on the CLI's device whose approvals the user (signed in) grants. */
  const approvedTurn = (user: TestUser, deviceId: string, agent: string, message: string) =>
    readSse(`${t.api}/chat/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { message, deviceId, agent },
      onMessage: (m) => {
        if (m.data?.type === 'approval_requested')
          void request('PUT', `${t.api}/hitl/requests/${m.data.approvalId}/approve`, { token: user.accessToken });
      },
      until: (m) => m.event === 'final' || m.event === 'error' || m.event === 'cancelled',
      timeoutMs: 30_000,
    });

  test('each applied write and each command is one line as it happens; reads and previews are none', async () => {
    const root = await project();
    const user = await registerUser(t.api, 'DeviceCli');
    const deviceId = `cli-${randomUUID().slice(0, 8)}`;
    const run = runDevice(root, { SWITCHBOARD_TOKEN: user.accessToken, SWITCHBOARD_URL: t.url, SWITCHBOARD_DEVICE_ID: deviceId });
    children.push(run.child);
    await waitUntil(() => run.output.stdout.includes(`as device ${deviceId}`), 30_000);

    t.llm.push({ toolCalls: [{ name: 'write_file', args: { path: 'notes.md', content: '# Notes\n' } }] }, { text: 'Wrote the notes.' });
    await approvedTurn(user, deviceId, 'coder', 'Write notes.md');
    await waitUntil(() => run.output.stdout.includes('Created notes.md'), 10_000);
    t.llm.push({ toolCalls: [{ name: 'execute_command', args: { command: 'echo hello' } }] }, { text: 'It said hello.' });
    await approvedTurn(user, deviceId, 'debug', 'Run echo hello');
    await waitUntil(() => run.output.stdout.includes('Ran echo hello (exit 0'), 10_000);

    expect(await readFile(path.join(root, 'notes.md'), 'utf8')).toBe('# Notes\n');
    const said = run.output.stdout.trim().split('\n');
    expect(said.slice(1).map((line) => line.replace(/\(exit 0, [\d.]+ s\)/, '(exit 0)'))).toEqual([
      'Created notes.md',
      'Ran echo hello (exit 0)',
    ]);
    expect(run.output.stderr).toBe('');
  });

  test("the Orchestrator hands the demo model's replace command to the Coder: the device's file changes after approval", async () => {
    const root = await project();
    await mkdir(path.join(root, 'src'));
    await writeFile(path.join(root, 'src/math.js'), 'export function add(a, b) {\n  return a - b;\n}\n');
    const user = await registerUser(t.api, 'DeviceCliRoute');
    const deviceId = `cli-${randomUUID().slice(0, 8)}`;
    const run = runDevice(root, { SWITCHBOARD_TOKEN: user.accessToken, SWITCHBOARD_URL: t.url, SWITCHBOARD_DEVICE_ID: deviceId });
    children.push(run.child);
    await waitUntil(() => run.output.stdout.includes(`as device ${deviceId}`), 30_000);

    // "fix" points to the Coder and "bug" to Debug alike; the replace command needs the Coder's tool.
    const fixed = await approvedTurn(user, deviceId, 'orchestrator', 'fix the bug: replace "a - b" with "a + b" in src/math.js');
    const agents = fixed.messages.filter((m) => m.data?.type === 'agent').map((m) => m.data.agent);
    expect([...new Set(agents)]).toEqual(['coder']);
    expect(fixed.messages.find((m) => m.data?.type === 'approval_requested')?.data).toMatchObject({ toolName: 'edit_file' });
    expect(fixed.messages.at(-1)?.event).toBe('final');
    await waitUntil(() => run.output.stdout.includes('Edited src/math.js'), 10_000);
    expect(await readFile(path.join(root, 'src/math.js'), 'utf8')).toBe('export function add(a, b) {\n  return a + b;\n}\n');

    // Words alone that tie: the Orchestrator keeps it, changes nothing, and its answer says so and how to choose.
    const kept = await approvedTurn(user, deviceId, 'orchestrator', 'fix the bug in src/math.js');
    const final = kept.messages.at(-1)!;
    expect(final.event).toBe('final');
    expect(final.data.response).toContain('No specialist agent was chosen for this request (its words point to coder and debug alike)');
    expect(final.data.response).toContain('send it again with "agent" set to "coder"');
    const chunks = kept.messages.filter((m) => m.data?.type === 'text_chunk').map((m) => m.data.text as string);
    expect(chunks.join('')).toBe(final.data.response);
    expect(kept.messages.some((m) => m.data?.type === 'approval_requested')).toBe(false);
    expect(await readFile(path.join(root, 'src/math.js'), 'utf8')).toContain('a + b');
  });

  test('a wrong key is one line naming the URL and the cause: exit 1, no stack trace', async () => {
    const run = runDevice(await project(), { SWITCHBOARD_TOKEN: `sb_live_${'x'.repeat(40)}`, SWITCHBOARD_URL: t.url });
    children.push(run.child);

    expect(await run.exited).toBe(1);
    expect(run.output.stderr.trim().split('\n')).toEqual([
      `switchboard device: cannot connect to ${t.url}: the server refused SWITCHBOARD_TOKEN (a wrong, revoked or expired key or token)`,
    ]);
  });

  test('installed as the operations guide says (npm install --global <checkout>), `switchboard` runs from any folder', async () => {
    const prefix = await mkdtemp(path.join(tmpdir(), 'sb-global-'));
    folders.push(prefix);
    const checkout = path.resolve(__dirname, '../..');
    await promisify(execFile)('npm', ['install', '--global', '--prefix', prefix, '--no-audit', '--no-fund', checkout], { timeout: 60_000 });

    const { stdout } = await promisify(execFile)(path.join(prefix, 'bin', 'switchboard'), ['--help'], { cwd: await project() });

    expect(stdout).toContain('device --project <dir>');
  }, 90_000);

  test('a URL nobody answers is one line too', async () => {
    const run = runDevice(await project(), { SWITCHBOARD_TOKEN: `sb_live_${'x'.repeat(40)}`, SWITCHBOARD_URL: 'http://127.0.0.1:9' });
    children.push(run.child);

    expect(await run.exited).toBe(1);
    expect(run.output.stderr.trim().split('\n')).toEqual([
      'switchboard device: cannot connect to http://127.0.0.1:9: connection refused (is Switchboard running at that address?)',
    ]);
  });
});
