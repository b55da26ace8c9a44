import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectDevice, type DeviceConnection } from '@switchboard/client';
import { projectTools } from '@switchboard/client/node';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import { createLogger } from '../../src/lib/logger';
import { testConfig } from '../support/app';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { registerUser, request, type TestUser } from '../support/http';
import { WsDevice, type Frame } from '../support/ws-device';

// ---- The IDE's protocol, as its design document writes it (Client → Server, Server → Client). ----
interface ClientMessage {
  type: 'chat' | 'tool_approval' | 'cancel';
  session_id: string;
  data: {
    message?: string;
    approval_id?: string;
    approved?: boolean;
  };
}
// ---- end of the copied types ----

/** The chat message plus the coding agent it asks for (the one field the IDE adds to the seed's `data`). */
type CodingChat = ClientMessage & { data: ClientMessage['data'] & { agent?: string } };

/**
 * The CodeLab IDE's protocol reaches the coding agents: `chat` on `/api/v1/ws` and
 * `POST /api/v1/agent/chat` run coding turns on the project a device serves (the offline demo
 * model plays the agents), with `state`, `tool_call`, `tool_result` and approval frames on the IDE
 * socket, the approval decided by a person (never by an API key).
 */
describe('the IDE protocol runs the coding agents', () => {
  let database: TestDatabase;
  let app: RunningSwitchboard;
  let api: string;
  const folders: string[] = [];
  const open: Array<{ close(): void }> = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    const config = testConfig({ keyPrefix: `t-${randomUUID().slice(0, 8)}`, databaseUrl: database.url });
    app = await startSwitchboard(config, { logger: createLogger({ level: 'silent' }) });
    api = `${app.url}/api/v1`;
  }, 120_000);
  afterAll(async () => {
    open.forEach((client) => client.close());
    await app.stop();
    await database.drop();
    for (const folder of folders) await rm(folder, { recursive: true, force: true });
  });

  /** A user whose device serves an empty project folder, and a CodeLab session (its REST call). */
  async function projectUser(name: string): Promise<{ user: TestUser; root: string; deviceId: string; sessionId: string }> {
    const root = await mkdtemp(join(tmpdir(), 'sb-ide-project-'));
    const history = await mkdtemp(join(tmpdir(), 'sb-ide-history-'));
    folders.push(root, history);
    const user = await registerUser(api, name);
    const deviceId = `dev-${randomUUID().slice(0, 8)}`;
    const device: DeviceConnection = await connectDevice({
      url: app.url!,
      token: user.accessToken,
      deviceId,
      project: await projectTools({ root, historyDir: history }),
      reconnection: false,
    });
    open.push(device);
    const session = await request('POST', `${app.url}/api/v1/sessions`, { token: user.accessToken, body: {} });
    expect(session.status).toBe(201);
    return { user, root, deviceId, sessionId: session.body.session.id };
  }

  const ide = async (token: string) => {
    const client = await WsDevice.connect(app.url!, token, 10_000, '/api/v1/ws');
    open.push(client);
    return client;
  };

  test('a coder turn from the IDE: tool_call asks approval, an API key cannot decide, the person approves, the file is written', async () => {
    const { user, root, sessionId } = await projectUser('IdeCoder');
    const key = await request('POST', `${api}/api-keys`, { token: user.accessToken, body: { name: 'ci' } });
    expect(key.status).toBe(201);
    const person = await ide(user.accessToken);
    // The IDE socket opens with a person's access token only: a key is refused at the upgrade.
    await expect(WsDevice.connect(app.url!, key.body.secret as string, 10_000, '/api/v1/ws')).rejects.toThrow(/status 4\d\d/);

    const chat: CodingChat = {
      type: 'chat',
      session_id: sessionId,
      data: { message: 'create notes.md with "hello from the IDE"', agent: 'coder' },
    };
    person.send(chat);

    const asked = await person.next('tool_call', (frame) => frame.data.requires_approval === true, { timeoutMs: 20_000 });
    expect(asked).toMatchObject({ session_id: sessionId, data: { name: 'write_file', approval_id: expect.any(String) } });
    expect(asked.data.arguments).toMatchObject({ path: 'notes.md', content: 'hello from the IDE\n' });
    await person.next('state', (frame) => frame.data.state === 'waiting');
    // The coding agent at work is named on its state frames.
    expect(person.frames.some((frame: Frame) => frame.type === 'state' && frame.data.agent === 'coder')).toBe(true);

    const approval = {
      type: 'tool_approval',
      session_id: sessionId,
      data: { approval_id: asked.data.approval_id, approved: true },
    } satisfies ClientMessage;
    // The seed's REST decision with the key: refused, the request stays pending, nothing is written.
    const byKey = await request('PUT', `${app.url}/api/v1/hitl/requests/${asked.data.approval_id}/approve`, {
      token: key.body.secret as string,
      body: {},
    });
    expect(byKey.status).toBe(403);
    expect(byKey.body.error.code).toBe('person_required');
    await expect(stat(join(root, 'notes.md'))).rejects.toThrow();

    person.send(approval);
    const result = await person.next('tool_result', (frame) => frame.data.name === 'write_file', { timeoutMs: 20_000 });
    expect(result).toMatchObject({ session_id: sessionId, data: { ok: true } });
    const done = await person.next('done', () => true, { timeoutMs: 20_000 });
    expect(done.session_id).toBe(sessionId);
    await person.next('state', (frame) => frame.data.state === 'idle');
    expect(await readFile(join(root, 'notes.md'), 'utf8')).toBe('hello from the IDE\n');
  });

  test('POST /api/v1/agent/chat with an agent runs a coding turn (snake_case in and out); the IDE refuses an unknown agent', async () => {
    const { user, sessionId } = await projectUser('IdeAsker');
    const answer = await request('POST', `${app.url}/api/v1/agent/chat`, {
      token: user.accessToken,
      body: { session_id: sessionId, message: 'list files', agent: 'ask' },
    });
    expect(answer.status).toBe(200);
    expect(answer.body.session_id).toBe(sessionId);
    const history = await request('GET', `${api}/chat/sessions/${sessionId}/history`, { token: user.accessToken });
    expect(history.body.messages.map((m: { role: string; toolName: string | null }) => m.toolName ?? m.role)).toEqual([
      'user',
      'list_files',
      'assistant',
    ]);

    const client = await ide(user.accessToken);
    client.send({ type: 'chat', session_id: sessionId, data: { message: 'list files', agent: 'hacker' } });
    const refused = await client.next('error');
    expect(refused.data.code).toBe('validation_failed');
  });
});
