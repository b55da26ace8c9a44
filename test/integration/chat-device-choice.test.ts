import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connectDevice, type DeviceConnection, type ToolCall } from '@switchboard/client';
import { projectTools } from '@switchboard/client/node';
import { MemoryStore } from '@switchboard/client/testing';
import { demoResponder } from '../../src/demo-model';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { eventually } from '../support/wait';

/**
 * The assistant's "Automatic" device choice: the task and note tools go to a device that holds local
 * tables, never to one that serves only a project folder (`switchboard device --project`).
 */
describe('which device a chat turn uses when none is named', () => {
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

  /** A device of `user` serving a fresh project folder and no tables; every call it gets lands in `calls`. */
  async function projectOnly(user: TestUser, calls: ToolCall[]) {
    const root = await mkdtemp(path.join(tmpdir(), 'sb-choice-'));
    folders.push(root);
    await writeFile(path.join(root, 'README.md'), '# A project\n');
    const device = await connectDevice({
      url: t.url,
      token: user.accessToken,
      deviceId: `project-${randomUUID().slice(0, 8)}`,
      project: await projectTools({ root }),
      onCall: (call) => calls.push(call),
    });
    devices.push(device);
    return device;
  }

  const online = (user: TestUser, deviceId: string) =>
    eventually(
      () => request('GET', `${t.api}/devices`, { token: user.accessToken }),
      (res) => res.body.devices?.some((d: { deviceId: string }) => d.deviceId === deviceId),
      10_000,
    );

  test('with only a project-folder device online, the turn answers as the plain assistant and sends it no call', async () => {
    const user = await registerUser(t.api, 'ProjectOnly');
    const calls: ToolCall[] = [];
    const device = await projectOnly(user, calls);
    await online(user, device.deviceId);

    const res = await request('POST', `${t.api}/chat`, { token: user.accessToken, body: { message: 'How many todo tasks do I have?' } });

    expect(res.status).toBe(200);
    expect(res.body.response).not.toContain('no local tables');
    expect(calls).toEqual([]);
    const session = await request('GET', `${t.api}/chat/sessions/${res.body.sessionId}`, { token: user.accessToken });
    expect(session.body.session.mode).toBe('none');
    // Asking for the device tools by name says why none can serve them.
    const forced = await request('POST', `${t.api}/chat`, { token: user.accessToken, body: { message: 'List my tasks', tools: 'device' } });
    expect(forced.status).toBe(409);
    expect(forced.body.error).toMatchObject({ code: 'device_offline', message: expect.stringContaining('holds local tables') });
  });

  test('with a project-folder device and a device with tables online, the task tools go to the one with tables', async () => {
    const user = await registerUser(t.api, 'TwoDevices');
    const projectCalls: ToolCall[] = [];
    const project = await projectOnly(user, projectCalls);
    const tableCalls: ToolCall[] = [];
    const store = new MemoryStore();
    store.seed('tasks', [{ id: randomUUID(), title: 'Water the plants', status: 'todo' }]);
    const desktop = await connectDevice({
      url: t.url,
      token: user.accessToken,
      deviceId: `desktop-${randomUUID().slice(0, 8)}`,
      store,
      onCall: (call) => tableCalls.push(call),
    });
    devices.push(desktop);
    await online(user, project.deviceId);
    await online(user, desktop.deviceId);

    const res = await request('POST', `${t.api}/chat`, { token: user.accessToken, body: { message: 'How many todo tasks do I have?' } });

    expect(res.status).toBe(200);
    expect(projectCalls).toEqual([]);
    expect(tableCalls.map((call) => call.action)).toContain('select');
    expect(res.body.response).toContain('Water the plants');
  });
});
