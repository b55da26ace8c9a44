import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { demoResponder } from '../../src/demo-model';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request } from '../support/http';

const run = promisify(execFile);

/** The runnable examples of docs/agent-protocols.md, run as a reader would, against a live Switchboard. */
describe('docs/agent-protocols.md examples', () => {
  let t: TestApp;
  let apiKey: string;

  beforeAll(async () => {
    t = await startTestApp({ responder: demoResponder });
    const user = await registerUser(t.api, 'Reader');
    apiKey = (await request('POST', `${t.api}/api-keys`, { token: user.accessToken, body: { name: 'docs' } })).body.secret;
  });
  afterAll(() => t.stop());

  const tsx = (args: string[]) => run('npx', ['tsx', ...args], { cwd: process.cwd(), timeout: 60_000 });

  test('examples/a2a-client.ts streams an answer and prints the completed task', async () => {
    const { stdout } = await tsx(['examples/a2a-client.ts', `${t.url}/.well-known/agent-card.json`, apiKey, 'Hello']);
    expect(stdout).toMatch(/\ntask [0-9a-f-]{36} TASK_STATE_COMPLETED\n$/);
  }, 60_000);

  test('examples/ag-ui-chat.ts renders the chat', async () => {
    const { stdout } = await tsx(['examples/ag-ui-chat.ts', t.url, apiKey, 'Hello']);
    expect(stdout).toContain('event RUN_STARTED\n');
    expect(stdout).toContain('event RUN_FINISHED\n');
    expect(stdout).toMatch(/user: Hello\nassistant: .+\n$/);
  }, 60_000);
});
