import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { connectDevice, type DeviceConnection } from '@switchboard/client';
import { projectTools } from '@switchboard/client/node';
import type { DeviceSimulator } from '@switchboard/client/testing';
import type { ApprovalRequested } from '../../src/schemas/socket-events';
import { startTestApp, type TestApp } from '../support/app';
import { nextDeviceEvent } from '../support/device-events';
import { registerUser, request } from '../support/http';
import { toolResultTexts } from '../support/scripted-llm';

const next = <T>(device: DeviceConnection, event: 'approval_requested' | 'final', predicate?: (payload: T) => boolean) =>
  nextDeviceEvent<T>(device as unknown as DeviceSimulator, event, predicate, 15_000);

/** `delete_file` end to end: a Coder turn asks, a person decides, the device's folder shows the outcome. */
describe('delete_file on a project folder served by the device kit', () => {
  let t: TestApp;
  const devices: DeviceConnection[] = [];
  const folders: string[] = [];

  beforeAll(async () => {
    t = await startTestApp({ env: { DEVICE_RPC_TIMEOUT_MS: '5000', HITL_TIMEOUT_MS: '60000' } });
  }, 60_000);

  afterAll(async () => {
    devices.forEach((device) => device.close());
    await t?.stop();
    await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
  });

  /** A new user with a device serving a fresh folder holding `files`. */
  async function projectDevice(files: Record<string, string>) {
    const root = await mkdtemp(join(tmpdir(), 'sb-delete-'));
    const history = await mkdtemp(join(tmpdir(), 'sb-delete-history-'));
    folders.push(root, history);
    for (const [path, content] of Object.entries(files)) {
      await mkdir(dirname(join(root, path)), { recursive: true });
      await writeFile(join(root, path), content);
    }
    const user = await registerUser(t.api, 'Deleter');
    const project = await projectTools({ root, historyDir: history });
    const device = await connectDevice({
      url: t.url,
      token: user.accessToken,
      deviceId: `del-${randomUUID().slice(0, 8)}`,
      project,
      reconnection: false,
    });
    devices.push(device);
    return { root, user, device };
  }

  /** Asks the Coder from the device; resolves with the session id and a promise of the turn's `final`. */
  async function askCoder(device: DeviceConnection, message: string) {
    const ack = (await device.chat({ message, agent: 'coder' })) as { sessionId: string };
    return { ...ack, final: next<{ sessionId: string; response: string }>(device, 'final', (f) => f.sessionId === ack.sessionId) };
  }

  const decide = (token: string, id: string, decision: 'approve' | 'reject') =>
    request('PUT', `${t.api}/hitl/requests/${id}/${decision}`, { token });

  test('approved by a person: the file is gone from the folder, the diff showed its lines, undo brings it back', async () => {
    const { root, user, device } = await projectDevice({ 'src/old.js': 'export const old = 1;\n', 'src/keep.js': 'keep\n' });
    t.llm.push({ toolCalls: [{ name: 'delete_file', args: { path: 'src/old.js' } }] }, { text: 'Deleted src/old.js.' });
    const approval = next<ApprovalRequested>(device, 'approval_requested');
    const turn = await askCoder(device, 'Delete the unused src/old.js');
    const requested = await approval;
    expect(requested).toMatchObject({
      toolName: 'delete_file',
      parameters: { path: 'src/old.js', expectedHash: expect.stringMatching(/^[a-f0-9]{64}$/) },
    });
    expect(requested.parameters.diff).toContain('-export const old = 1;');
    // Nothing is deleted before the decision, and an API key of the same user cannot decide.
    expect(await readFile(join(root, 'src/old.js'), 'utf8')).toBe('export const old = 1;\n');
    const key = await request('POST', `${t.api}/api-keys`, { token: user.accessToken, body: { name: 'bot', scopes: ['read', 'write'] } });
    const byKey = await decide(key.body.secret, requested.approvalId, 'approve');
    expect(byKey.status).toBe(403);
    expect(byKey.body.error.code).toBe('person_required');
    expect(await readFile(join(root, 'src/old.js'), 'utf8')).toBe('export const old = 1;\n');

    expect((await decide(user.accessToken, requested.approvalId, 'approve')).status).toBe(200);
    expect((await turn.final).response).toBe('Deleted src/old.js.');
    expect((await readdir(join(root, 'src'))).sort()).toEqual(['keep.js']);

    const changes = await request('GET', `${t.api}/devices/${device.deviceId}/changes`, { token: user.accessToken });
    const [change] = changes.body.changes;
    expect(change).toMatchObject({ path: 'src/old.js', tool: 'delete_file', deleted: true });
    const undo = await request('POST', `${t.api}/devices/${device.deviceId}/changes/${change.changeId}/undo`, { token: user.accessToken });
    expect(undo.status).toBe(200);
    expect(await readFile(join(root, 'src/old.js'), 'utf8')).toBe('export const old = 1;\n');
  });

  test('rejected: the file stays and the model reads that it was not deleted', async () => {
    const { root, user, device } = await projectDevice({ 'notes.md': '# keep me\n' });
    t.llm.push({ toolCalls: [{ name: 'delete_file', args: { path: 'notes.md' } }] }, { text: 'I left notes.md.' });
    const approval = next<ApprovalRequested>(device, 'approval_requested');
    const turn = await askCoder(device, 'Delete notes.md');
    const requested = await approval;
    const before = t.llm.chatRequests().length;
    expect((await decide(user.accessToken, requested.approvalId, 'reject')).status).toBe(200);
    expect((await turn.final).response).toBe('I left notes.md.');
    expect(await readFile(join(root, 'notes.md'), 'utf8')).toBe('# keep me\n');
    expect(toolResultTexts(t.llm.chatRequests()[before])).toEqual([expect.stringMatching(/NOT run|rejected/i)]);
  });

  test('a path outside the project is refused before anyone is asked: `..`, an absolute path, a symlink out', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'sb-delete-outside-'));
    folders.push(outside);
    await writeFile(join(outside, 'precious.txt'), 'outside\n');
    const { root, device } = await projectDevice({ 'a.txt': 'a\n' });
    await symlink(join(outside, 'precious.txt'), join(root, 'link.txt'));
    const escapes = [`../${outside.split('/').pop()}/precious.txt`, join(outside, 'precious.txt'), 'link.txt'];
    t.llm.push({ toolCalls: escapes.map((path) => ({ name: 'delete_file', args: { path } })) }, { text: 'Those paths are refused.' });
    let asked = 0;
    const onApproval = () => void (asked += 1);
    (device as unknown as DeviceSimulator).socket.on('approval_requested', onApproval);
    const before = t.llm.chatRequests().length;
    const turn = await askCoder(device, 'Delete the files');
    expect((await turn.final).response).toBe('Those paths are refused.');
    (device as unknown as DeviceSimulator).socket.off('approval_requested', onApproval);
    expect(asked).toBe(0);
    const results = toolResultTexts(t.llm.chatRequests()[before + 1]);
    expect(results).toHaveLength(3);
    for (const result of results) expect(result).toMatch(/^Error:/);
    expect(await readFile(join(outside, 'precious.txt'), 'utf8')).toBe('outside\n');
    expect((await readdir(root)).sort()).toEqual(['a.txt', 'link.txt']);
  });
});
