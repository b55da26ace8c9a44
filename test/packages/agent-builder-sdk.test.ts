import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { demoResponder } from '../../src/demo-model';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { eventually } from '../support/wait';

const run = promisify(execFile);
const ROOT = resolve(__dirname, '../..');
const SAMPLES = join(ROOT, 'test/support/seed-clients');

interface SampleOutput {
  workflows: unknown;
  result: { executionId: string };
  response: { sessionId: string; response: string; usage: unknown };
}

/**
 * The agent-builder SDK's samples, as written for that SDK (`AgenticRAGClient(APIConfig)`,
 * `workflows.list/execute`, `chatflows.chat`), run against a real server through the thin aliases
 * of `@switchboard/client` (imported as `agenticrag-client`) and of the generated Python client
 * (`agenticrag_client`). Only the samples' placeholders change: the URL, the API key, the workflow id.
 */
describe('the agent-builder SDK samples', () => {
  let t: TestApp;
  let user: TestUser;
  let apiKey: string;
  let flowId: string;
  let dir: string;

  beforeAll(async () => {
    t = await startTestApp({ responder: demoResponder });
    user = await registerUser(t.api, 'Builder');
    const key = await request('POST', `${t.api}/api-keys`, { token: user.accessToken, body: { name: 'sdk sample' } });
    apiKey = key.body.secret as string;
    const flow = await request('POST', `${t.api}/flows`, {
      token: user.accessToken,
      body: { type: 'agentflow', name: 'Echo input', definition: { nodes: [{ id: 'a', prompt: 'Repeat {{input.input}}' }], output: 'a' } },
    });
    flowId = flow.body.flow.id as string;
    dir = await mkdtemp(join(tmpdir(), 'sb-agenticrag-'));
  });

  afterAll(async () => {
    await t?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** The sample's text with its placeholders replaced. */
  const sample = async (file: string) =>
    (await readFile(join(SAMPLES, file), 'utf8'))
      .replace('http://localhost:8000', t.url)
      .replace('your-api-key', apiKey)
      .replace('workflow-id', flowId);

  /** What the sample did, as the server saw it: the execution ran with the sample's input, the chat is the key owner's. */
  async function expectSampleEffects(out: SampleOutput) {
    const execution = await eventually(
      () => request('GET', `${t.api}/flows/${flowId}/executions/${out.result.executionId}`, { token: user.accessToken }),
      (read) => read.body.execution.status === 'completed',
    );
    expect(execution.body.execution.input).toEqual({ input: 'data' });
    const history = await request('GET', `${t.api}/chat/sessions/${out.response.sessionId}/history`, { token: user.accessToken });
    expect(history.status).toBe(200);
    expect(history.body.messages[0]).toMatchObject({ role: 'user', content: 'Hello!' });
    expect(out.response.response).toEqual(expect.any(String));
  }

  test('TypeScript: the sample runs as written with AgenticRAGClient from @switchboard/client', async () => {
    const alias = join(dir, 'node_modules/agenticrag-client');
    await mkdir(alias, { recursive: true });
    await writeFile(join(alias, 'package.json'), JSON.stringify({ name: 'agenticrag-client', type: 'module', main: 'index.js' }));
    await writeFile(
      join(alias, 'index.js'),
      `export { AgenticRAGClient } from ${JSON.stringify(join(ROOT, 'packages/client/dist/index.js'))};\n`,
    );
    await writeFile(join(dir, 'sample.mjs'), await sample('agent-builder-sample.mjs'));

    const { stdout } = await run(process.execPath, [join(dir, 'sample.mjs')], { cwd: dir, timeout: 30_000 });
    const out = JSON.parse(stdout) as SampleOutput & { workflows: Array<{ id: string }> };

    expect(out.workflows.map((workflow) => workflow.id)).toEqual([flowId]);
    expect(out.result.executionId).toEqual(expect.any(String));
    await expectSampleEffects(out);
  });

  test('Python: the sample runs as written with agenticrag_client from clients/python', async () => {
    await writeFile(join(dir, 'sample.py'), await sample('agent-builder-sample.py'));

    const { stdout } = await run('python3', [join(dir, 'sample.py')], {
      cwd: dir,
      timeout: 30_000,
      env: { PATH: process.env.PATH ?? '', PYTHONPATH: join(ROOT, 'clients/python'), PYTHONDONTWRITEBYTECODE: '1' },
    });
    const out = JSON.parse(stdout) as SampleOutput & { workflows: { workflows: Array<{ id: string }>; next_cursor: null } };

    expect(out.workflows.workflows.map((workflow) => workflow.id)).toEqual([flowId]);
    expect(out.workflows.next_cursor).toBeNull();
    await expectSampleEffects(out);
  });

  test('a read-only API key may list workflows but not execute them (403, as on the native route)', async () => {
    const key = await request('POST', `${t.api}/api-keys`, { token: user.accessToken, body: { name: 'read only', scopes: ['read'] } });
    const script = (await sample('agent-builder-sample.py')).replace(apiKey, key.body.secret as string);
    await writeFile(join(dir, 'read-only.py'), script);
    const failed = await run('python3', [join(dir, 'read-only.py')], {
      cwd: dir,
      timeout: 30_000,
      env: { PATH: process.env.PATH ?? '', PYTHONPATH: join(ROOT, 'clients/python'), PYTHONDONTWRITEBYTECODE: '1' },
    }).then(
      () => undefined,
      (error: { stderr: string }) => error.stderr,
    );
    expect(failed).toMatch(/ApiError.*403/s);
    const executions = await request('GET', `${t.api}/flows/${flowId}/executions`, { token: user.accessToken });
    expect(executions.body.executions).toHaveLength(2);
  });
});
