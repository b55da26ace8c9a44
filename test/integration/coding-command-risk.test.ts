import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectDevice, type DeviceConnection } from '@switchboard/client';
import { projectTools } from '@switchboard/client/node';
import type { DeviceSimulator } from '@switchboard/client/testing';
import { demoResponder } from '../../src/demo-model';
import type { ApprovalRequested } from '../../src/schemas/socket-events';
import { startTestApp, type TestApp } from '../support/app';
import { nextDeviceEvent } from '../support/device-events';
import { registerUser, request } from '../support/http';

type Final = { sessionId: string; response: string };
const next = <T>(device: DeviceConnection, event: 'approval_requested' | 'final', predicate?: (payload: T) => boolean) =>
  nextDeviceEvent<T>(device as unknown as DeviceSimulator, event, predicate, 15_000);

/**
 * The deny list reads a command's shell words: the offline demo model's `run <command>` with a
 * respelled refused command never reaches an approval, and an allowed risky command's approval
 * says what it would do.
 */
describe('coding agents: what a command would do', () => {
  let t: TestApp;
  const devices: DeviceConnection[] = [];
  const folders: string[] = [];

  beforeAll(async () => {
    t = await startTestApp({ responder: demoResponder, env: { HITL_TIMEOUT_MS: '60000', OPENAI_API_KEY: 'test' } });
  });

  afterAll(async () => {
    devices.forEach((device) => device.close());
    await t.stop();
    await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
  });

  /** A new user with a device announcing a fresh project folder that holds a build/ folder. */
  async function projectDevice() {
    const root = await mkdtemp(join(tmpdir(), 'sb-risk-project-'));
    const history = await mkdtemp(join(tmpdir(), 'sb-risk-history-'));
    folders.push(root, history);
    await mkdir(join(root, 'build'));
    await writeFile(join(root, 'build/app.js'), 'built\n');
    const user = await registerUser(t.api, 'RiskCoder');
    const device = await connectDevice({
      url: t.url,
      token: user.accessToken,
      deviceId: `dev-${randomUUID().slice(0, 8)}`,
      project: await projectTools({ root, historyDir: history, commandTimeoutMs: 5_000 }),
      reconnection: false,
    });
    devices.push(device);
    return { root, user, device };
  }

  async function ask(device: DeviceConnection, message: string) {
    const ack = (await device.chat({ message, agent: 'debug' })) as { sessionId: string };
    return { ...ack, final: next<Final>(device, 'final', (f) => f.sessionId === ack.sessionId) };
  }

  test('a respelled refused command is refused before any approval; the model reads what it would do', async () => {
    const { user, device } = await projectDevice();
    const approvals: ApprovalRequested[] = [];
    (device as unknown as DeviceSimulator).socket.on('approval_requested', (payload: ApprovalRequested) => approvals.push(payload));

    const pushed = await ask(device, 'run git push origin +HEAD:main');
    expect((await pushed.final).response).toContain(
      'That did not work: invalid arguments for execute_command: command: the command is on the deny list: ' +
        'it force-pushes or rewrites a remote branch (git push origin +HEAD:main)',
    );
    const superuser = await ask(device, 'run FOO=1 /usr/bin/sudo ls');
    expect((await superuser.final).response).toMatch(/the command is on the deny list: it runs as superuser \(\/usr\/bin\/sudo ls\)/);

    expect(approvals).toEqual([]);
    const pending = await request('GET', `${t.api}/hitl/requests?status=pending`, { token: user.accessToken });
    expect(pending.status).toBe(200);
    expect(pending.body.requests).toEqual([]);
  });

  test('an allowed risky command asks for approval and the reason says what it would do', async () => {
    const { user, root, device } = await projectDevice();
    const approval = next<ApprovalRequested>(device, 'approval_requested');
    const turn = await ask(device, 'run rm -r build > /tmp/sb-risk.log');
    const requested = await approval;
    expect(requested).toMatchObject({
      toolName: 'execute_command',
      parameters: { command: 'rm -r build > /tmp/sb-risk.log' },
      reason:
        'execute_command runs a command in your project folder. Before you approve: ' +
        'it writes outside the project folder (> /tmp/sb-risk.log); it deletes files recursively (rm -r build)',
    });
    // Nothing ran while the approval waits.
    expect(await readdir(root)).toContain('build');
    await request('PUT', `${t.api}/hitl/requests/${requested.approvalId}/reject`, { token: user.accessToken });
    await turn.final;
    expect(await readdir(root)).toContain('build');

    const plain = next<ApprovalRequested>(device, 'approval_requested');
    const test = await ask(device, 'run node --version');
    expect((await plain).reason).toBe('execute_command runs a command in your project folder');
    await request('PUT', `${t.api}/hitl/requests/${(await plain).approvalId}/reject`, { token: user.accessToken });
    await test.final;
  });
});
