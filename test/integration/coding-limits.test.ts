import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectDevice, type DeviceConnection } from '@switchboard/client';
import { projectTools } from '@switchboard/client/node';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request } from '../support/http';
import { toolResultTexts } from '../support/scripted-llm';

const toolResults = toolResultTexts;

describe("the coding agents' hourly tier limits", () => {
  let t: TestApp;
  const devices: DeviceConnection[] = [];
  const folders: string[] = [];

  beforeAll(async () => {
    t = await startTestApp({
      env: {
        HITL_TIMEOUT_MS: '60000',
        TIER_LIMITS: JSON.stringify({ free: { codingTurnsPerHour: 3, codeFileOpsPerHour: 2, codeApprovalsPerHour: 1 } }),
      },
    });
  });

  afterAll(async () => {
    devices.forEach((device) => device.close());
    await t.stop();
    await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
  });

  async function projectUser() {
    const root = await mkdtemp(join(tmpdir(), 'sb-limits-'));
    const history = await mkdtemp(join(tmpdir(), 'sb-limits-history-'));
    folders.push(root, history);
    await writeFile(join(root, 'a.txt'), 'alpha\n');
    const user = await registerUser(t.api, 'Limited');
    const deviceId = `dev-${randomUUID().slice(0, 8)}`;
    const device = await connectDevice({
      url: t.url,
      token: user.accessToken,
      deviceId,
      project: await projectTools({ root, historyDir: history }),
      reconnection: false,
    });
    devices.push(device);
    const chat = (message: string, agent?: string) =>
      request('POST', `${t.api}/chat`, { token: user.accessToken, body: { message, deviceId, ...(agent ? { agent } : {}) } });
    return { root, user, deviceId, chat };
  }

  test("file operations: past the hour's limit a read is not run and the model is told why", async () => {
    const { chat } = await projectUser();
    t.llm.push(
      {
        toolCalls: [
          { name: 'read_file', args: { path: 'a.txt' } },
          { name: 'list_files', args: {} },
          { name: 'read_file', args: { path: 'a.txt' } },
        ],
      },
      { text: 'Two of three.' },
    );
    const before = t.llm.chatRequests().length;
    const res = await chat('Read a.txt three times', 'ask');
    expect(res.status).toBe(200);
    const results = toolResults(t.llm.chatRequests()[before + 1]);
    expect(results.filter((r) => r.startsWith('Error: read_file was NOT run: Too many code file operation requests'))).toHaveLength(1);
    expect(results.filter((r) => !r.startsWith('Error:'))).toHaveLength(2);
  });

  test("approvals: past the hour's limit a change asks nobody and writes nothing", async () => {
    const { user, root, chat } = await projectUser();
    // The first change asks (and is rejected); the second, in another turn, is over the limit.
    t.llm.push({ toolCalls: [{ name: 'write_file', args: { path: 'b.txt', content: 'beta\n' } }] }, { text: 'Asked.' });
    const first = chat('Create b.txt', 'coder');
    const pending = await eventuallyPending(user.accessToken);
    expect(pending).toHaveLength(1);
    await request('PUT', `${t.api}/hitl/requests/${pending[0].id}/reject`, { token: user.accessToken });
    expect((await first).status).toBe(200);

    t.llm.push({ toolCalls: [{ name: 'write_file', args: { path: 'c.txt', content: 'gamma\n' } }] }, { text: 'Over the limit.' });
    const before = t.llm.chatRequests().length;
    const second = await chat('Create c.txt', 'coder');
    expect(second.status).toBe(200);
    expect(second.body.response).toBe('Over the limit.');
    expect(toolResults(t.llm.chatRequests()[before + 1])).toEqual([
      expect.stringMatching(
        /^Error: write_file was NOT run and no approval was asked: Too many code approval requests \(limit 1 per 3600 s\)/,
      ),
    ]);
    const all = await request('GET', `${t.api}/hitl/requests`, { token: user.accessToken });
    expect(all.body.requests).toHaveLength(1);
    expect(await readdir(root)).toEqual(['a.txt']);
  });

  test('coding turns: the fourth in an hour is 429 with Retry-After; a plain turn still runs', async () => {
    const { chat } = await projectUser();
    for (let i = 0; i < 3; i += 1) {
      t.llm.push({ text: `answer ${i}` });
      expect((await chat(`question ${i}`, 'ask')).status).toBe(200);
    }
    const refused = await chat('one more', 'ask');
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('rate_limited');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(60);
    t.llm.push({ text: 'plain answer' });
    expect((await chat('a plain question')).status).toBe(200);
  });

  /** The user's pending approval requests, once there is one. */
  async function eventuallyPending(token: string): Promise<Array<{ id: string }>> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const res = await request('GET', `${t.api}/hitl/requests?status=pending`, { token });
      const rows = (res.body.requests ?? []) as Array<{ id: string; status: string }>;
      const pending = rows.filter((row) => row.status === 'pending');
      if (pending.length || Date.now() > deadline) return pending;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
});
