import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { messageText } from '../../src/demo-model/openai-compatible-server';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';

const run = promisify(execFile);

/**
 * The runnable MCP client of docs/mcp.md (`examples/mcp-client.ts`), run as a reader would against
 * a live Switchboard, in both protocol eras: it lists the user's agentflow as a tool and calls it.
 */
describe('docs/mcp.md example', () => {
  let t: TestApp;
  let user: TestUser;
  let apiKey: string;

  beforeAll(async () => {
    t = await startTestApp({
      responder: (req) => Promise.resolve({ text: `answer to: ${messageText(req.messages.at(-1)!)}` }),
    });
    user = await registerUser(t.api, 'Reader');
    apiKey = (await request('POST', `${t.api}/api-keys`, { token: user.accessToken, body: { name: 'mcp docs', scopes: ['write'] } })).body
      .secret as string;
  });
  afterAll(() => t.stop());

  const tsx = (args: string[]) => run('npx', ['tsx', ...args], { cwd: process.cwd(), timeout: 60_000 });
  const flowTool = async () => {
    const created = await request('POST', `${t.api}/flows`, {
      token: user.accessToken,
      body: {
        type: 'agentflow',
        name: `Facts ${randomUUID().slice(0, 6)}`,
        definition: { nodes: [{ id: 'n', prompt: 'facts about {{input.topic}}' }], output: 'n' },
      },
    });
    expect(created.status).toBe(201);
    return { id: created.body.flow.id as string };
  };

  for (const era of ['2025-11-25', '2026-07-28']) {
    test(`examples/mcp-client.ts lists and calls a flow over ${era}`, async () => {
      const flow = await flowTool();
      const listed = await tsx(['examples/mcp-client.ts', t.url, apiKey, era, 'none', '{}']).catch((error: { stdout: string }) => error);
      const name = /tools (.*)\n/
        .exec(listed.stdout)![1]
        .split(', ')
        .find((tool) => tool.endsWith(flow.id))!;
      expect(name).toBeDefined();
      const { stdout } = await tsx(['examples/mcp-client.ts', t.url, apiKey, era, name, JSON.stringify({ topic: 'octopuses' })]);
      expect(stdout).toContain(`tools `);
      expect(stdout).toMatch(/\nresult .*facts about octopuses.*\n$/);
    }, 90_000);
  }

  test('examples/mcp-client.ts without a valid key fails with a message', async () => {
    const failed = await tsx(['examples/mcp-client.ts', t.url, 'sb_live_not_a_key', '2026-07-28', 'x', '{}']).then(
      () => null,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr.length).toBeGreaterThan(0);
  }, 60_000);
});
