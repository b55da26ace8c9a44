import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectDevice, type DeviceConnection } from '@switchboard/client';
import { projectTools } from '@switchboard/client/node';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import { createLogger } from '../../src/lib/logger';
import { testConfig } from '../support/app';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { registerUser, request } from '../support/http';

/**
 * With no model configured the app answers with its own offline demo model: an Ask turn still reads
 * a real project folder that a device serves through the device kit.
 */
describe('the offline demo model as a coding agent on a served folder', () => {
  let database: TestDatabase;
  let app: RunningSwitchboard;
  let api: string;
  const folders: string[] = [];
  const devices: DeviceConnection[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    const config = testConfig({ keyPrefix: `t-${randomUUID().slice(0, 8)}`, databaseUrl: database.url });
    app = await startSwitchboard(config, { logger: createLogger({ level: 'silent' }) });
    api = `${app.url}/api/v1`;
  });
  afterAll(async () => {
    for (const device of devices) device.close();
    await app.stop();
    await database.drop();
    for (const folder of folders) await rm(folder, { recursive: true, force: true });
  });

  test('Ask reads the file from the device over HTTP, and a path out of the root is refused', async () => {
    const root = await mkdtemp(join(tmpdir(), 'sb-demo-project-'));
    const history = await mkdtemp(join(tmpdir(), 'sb-demo-history-'));
    const outside = await mkdtemp(join(tmpdir(), 'sb-demo-outside-'));
    folders.push(root, history, outside);
    const marker = `marker-${randomUUID()}`;
    await mkdir(join(root, 'src'), { recursive: true });
    await writeFile(join(root, 'src/notes.md'), `# Notes\n${marker}\n`);
    await writeFile(join(outside, 'secret.txt'), 'outside-secret\n');

    const user = await registerUser(api, 'DemoCoder');
    const deviceId = `dev-${randomUUID().slice(0, 8)}`;
    const device = await connectDevice({
      url: app.url!,
      token: user.accessToken,
      deviceId,
      project: await projectTools({ root, historyDir: history }),
      reconnection: false,
    });
    devices.push(device);

    const res = await request('POST', `${api}/chat`, {
      token: user.accessToken,
      body: { message: 'read src/notes.md', deviceId, agent: 'ask' },
    });
    expect(res.status).toBe(200);
    expect(res.body.response).toContain(marker);
    const messages = (await request('GET', `${api}/chat/sessions/${res.body.sessionId}/history`, { token: user.accessToken })).body
      .messages as Array<{ role: string; toolName: string | null; content: string }>;
    expect(messages.map((m) => m.role)).toEqual(['user', 'tool', 'assistant']);
    expect(messages[1]).toMatchObject({ toolName: 'read_file', content: expect.stringContaining(marker) });

    const escape = await request('POST', `${api}/chat`, {
      token: user.accessToken,
      body: { message: `read ../${join('..', outside.split('/').pop()!, 'secret.txt')}`, deviceId, agent: 'ask' },
    });
    expect(escape.status).toBe(200);
    expect(escape.body.response).not.toContain('outside-secret');
    const refused = (await request('GET', `${api}/chat/sessions/${escape.body.sessionId}/history`, { token: user.accessToken })).body
      .messages as Array<{ role: string; toolName: string | null; content: string }>;
    // The server refuses the path before any device call: the model reads why, never the file.
    expect(refused[1]).toMatchObject({ role: 'tool', toolName: 'read_file' });
    expect(refused[1].content).not.toContain('outside-secret');
    expect(refused[1].content).toMatch(/^Error: invalid arguments for read_file: path: the path may not contain \.\./);
  });
});
