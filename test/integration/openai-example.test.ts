import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request } from '../support/http';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');
const EXAMPLE = 'examples/openai-chat.ts';

/**
 * The runnable example of docs/openai-compatible.md, run as a reader would
 * (`npx tsx examples/openai-chat.ts $BASE $API_KEY`) against a live Switchboard, and the guide
 * showing that very file.
 */
describe('docs/openai-compatible.md example', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ responder: () => ({ text: 'A fact about octopuses.' }) });
  });
  afterAll(async () => {
    await t.stop();
  });

  test('the guide shows the example file as it is', () => {
    const example = readFileSync(path.join(ROOT, EXAMPLE), 'utf8');
    const guide = readFileSync(path.join(ROOT, 'docs/openai-compatible.md'), 'utf8');
    expect(guide).toContain('```ts\n' + example + '```');
  });

  test('it lists the models, streams a chatflow completion with usage and continues a response', async () => {
    const user = await registerUser(t.api, 'Reader');
    const key = await request('POST', `${t.api}/api-keys`, { token: user.accessToken, body: { name: `example ${randomUUID()}` } });
    const flow = await request('POST', `${t.api}/flows`, {
      token: user.accessToken,
      body: { type: 'chatflow', name: 'Ocean Guide', definition: { systemPrompt: 'You know the ocean.' } },
    });
    const flowId = flow.body.flow.id as string;

    const { stdout } = await run(process.execPath, [path.join(ROOT, 'node_modules/tsx/dist/cli.mjs'), EXAMPLE, t.url, key.body.secret], {
      cwd: ROOT,
      timeout: 60_000,
    });

    expect(stdout).toContain(`models: switchboard-assistant, ocean-guide-${flowId}`);
    expect(stdout).toMatch(/^usage: \d+ in, [1-9]\d* out$/m);
    expect(stdout).toContain('answer: A fact about octopuses.');
    expect(stdout).toContain('response: A fact about octopuses.');
    expect(stdout).toContain('follow-up: A fact about octopuses.');
    const sessions = (await request('GET', `${t.api}/chat/sessions`, { token: user.accessToken })).body.sessions as Array<{ id: string }>;
    // The completion's session and the response's, continued once by previous_response_id.
    expect(sessions).toHaveLength(2);
  });
});
