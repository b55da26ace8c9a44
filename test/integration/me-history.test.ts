import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { demoResponder } from '../../src/demo-model';
import { DeviceSimulator } from '@switchboard/client/testing';
import type { ApprovalRequested } from '../../src/schemas/socket-events';
import { startTestApp, type TestApp } from '../support/app';
import { nextDeviceEvent } from '../support/device-events';
import { createCanvas, registerUser, request, type TestUser } from '../support/http';
import { readSse } from '../support/sse';
import { eventually } from '../support/wait';

/**
 * `GET /me/history`: a user reads everything they did (device tool calls with tool, outcome and
 * approval; generations; undo; flow executions; agent runs), their own rows only, in pages.
 */

const TASK_ID = '6b2d3f40-5c6e-4d7f-9081-92a3b4c5d6e7';
type Entry = { id: string; kind: string; action: string; at: string; details: Record<string, any> };

describe('GET /me/history', () => {
  let t: TestApp;
  const devices: DeviceSimulator[] = [];

  beforeAll(async () => {
    t = await startTestApp({ responder: demoResponder, env: { HITL_TIMEOUT_MS: '60000' } });
  });
  afterAll(async () => {
    devices.forEach((device) => device.close());
    await t.stop();
  });

  const history = (user: TestUser, query: Record<string, string> = {}) =>
    request('GET', `${t.api}/me/history?${new URLSearchParams(query).toString()}`, { token: user.accessToken });

  /** Every entry of the user's history, following the cursors with pages of `limit`. */
  async function allPages(user: TestUser, limit: number): Promise<Entry[]> {
    const entries: Entry[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 50; page++) {
      const res = await history(user, { limit: String(limit), ...(cursor ? { cursor } : {}) });
      expect(res.status).toBe(200);
      expect(res.body.history.length).toBeLessThanOrEqual(limit);
      entries.push(...res.body.history);
      cursor = res.body.nextCursor;
      if (!cursor) return entries;
    }
    throw new Error('the history never ended');
  }

  /** A generation on a new canvas of `user`, then its undo; answers the generation id. */
  async function generateAndUndo(user: TestUser): Promise<string> {
    const canvasId = await createCanvas(t.api, user, `History ${randomUUID().slice(0, 6)}`);
    const sse = await readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt: 'two paragraphs about tides' },
      until: (m) => m.event === 'complete' || m.event === 'error',
    });
    const { generationId } = sse.messages.at(-1)!.data as { generationId: string };
    const undo = await request('POST', `${t.api}/canvases/${canvasId}/ai/generations/${generationId}/undo`, { token: user.accessToken });
    expect(undo.status).toBe(200);
    return generationId;
  }

  /** A flow execution and an agent run of `user`, arranged as rows (their runners are tested elsewhere). */
  async function arrangeRuns(user: TestUser): Promise<{ executionId: string; runId: string }> {
    const [executionId, runId, flowId, agentId] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    await t.app.repos.db.execute(
      sql`insert into flows (id, user_id, type, name, definition) values (${flowId}::uuid, ${user.id}::uuid, 'agentflow', 'F', '{}'::jsonb)`,
    );
    await t.app.repos.db.execute(
      sql`insert into flow_executions (id, flow_id, user_id, status, definition, input)
        values (${executionId}::uuid, ${flowId}::uuid, ${user.id}::uuid, 'completed', '{}'::jsonb, '{}'::jsonb)`,
    );
    await t.app.repos.db.execute(
      sql`insert into local_agents (id, user_id, device_id, name, directory_paths, data_types, prompt_template, file_extensions)
        values (${agentId}::uuid, ${user.id}::uuid, 'laptop', 'A', '[]'::jsonb, '[]'::jsonb, 'p', '[]'::jsonb)`,
    );
    await t.app.repos.db.execute(
      sql`insert into agent_runs (id, agent_id, agent_type, user_id, trigger, status, items_processed, items_created)
        values (${runId}::uuid, ${agentId}::uuid, 'local', ${user.id}::uuid, 'manual', 'success', 3, 2)`,
    );
    return { executionId, runId };
  }

  test('shows device tool calls with tool, outcome and approval, generations, undo, flow executions and agent runs, newest first', async () => {
    const user = await registerUser(t.api, 'Historian');
    const deviceId = `laptop-${randomUUID().slice(0, 6)}`;
    const device = await DeviceSimulator.connect({
      url: t.url,
      accessToken: user.accessToken,
      deviceId,
      seed: { tasks: [{ id: TASK_ID, title: 'Old report', status: 'done', priority: 'low' }] },
      reconnection: false,
    });
    devices.push(device);

    const requested = nextDeviceEvent<ApprovalRequested>(device, 'approval_requested');
    t.llm.push({ toolCalls: [{ name: 'delete_task', args: { task_id: TASK_ID } }] }, { text: 'Deleted.' });
    const ack = (await device.socket.timeout(5_000).emitWithAck('chat_request', { message: `Delete task ${TASK_ID}` })) as {
      sessionId: string;
    };
    const { approvalId } = await requested;
    const finished = nextDeviceEvent<{ sessionId: string }>(device, 'final', (f) => f.sessionId === ack.sessionId, 15_000);
    expect((await request('PUT', `${t.api}/hitl/requests/${approvalId}/approve`, { token: user.accessToken })).status).toBe(200);
    await finished;
    const generationId = await generateAndUndo(user);
    const { executionId, runId } = await arrangeRuns(user);

    const entries = (
      await eventually(
        () => history(user),
        (res) => (res.body.history as Entry[] | undefined)?.some((e) => e.kind === 'device_tool_call') === true,
      )
    ).body.history as Entry[];

    expect(entries.find((e) => e.kind === 'device_tool_call')).toMatchObject({
      action: 'device.tool_call',
      details: { tool: 'delete_task', outcome: 'ok', approvalId, sessionId: ack.sessionId, deviceId },
    });
    expect(entries.find((e) => e.action === 'hitl.approved')).toMatchObject({ kind: 'action', details: { targetId: approvalId } });
    expect(entries.find((e) => e.kind === 'generation')).toMatchObject({ id: generationId, details: { status: 'undone' } });
    expect(entries.find((e) => e.action === 'ai.generation.undone')).toMatchObject({ kind: 'action', details: { targetId: generationId } });
    expect(entries.find((e) => e.kind === 'flow_execution')).toMatchObject({ id: executionId, details: { status: 'completed' } });
    expect(entries.find((e) => e.kind === 'agent_run')).toMatchObject({
      id: runId,
      details: { status: 'success', itemsProcessed: 3, itemsCreated: 2 },
    });
    const times = entries.map((e) => Date.parse(e.at));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
  });

  test("pages of one walk the whole history once; another user's rows never appear", async () => {
    const owner = await registerUser(t.api, 'Owner');
    const other = await registerUser(t.api, 'Other');
    await generateAndUndo(owner);
    await arrangeRuns(owner);
    const otherGeneration = await generateAndUndo(other);
    const otherRuns = await arrangeRuns(other);

    const whole = (await history(owner, { limit: '200' })).body.history as Entry[];
    const paged = await allPages(owner, 1);
    expect(paged.map((e) => e.id)).toEqual(whole.map((e) => e.id));
    expect(new Set(paged.map((e) => e.id)).size).toBe(paged.length);
    expect(paged.length).toBeGreaterThanOrEqual(4);

    const othersIds = [otherGeneration, otherRuns.executionId, otherRuns.runId];
    for (const entry of paged) {
      expect(othersIds).not.toContain(entry.id);
      expect(entry.details.targetId).not.toBe(otherGeneration);
    }
    // The other user's cursor, used by the owner, still reads only the owner's rows.
    const theirs = await history(other, { limit: '1' });
    const crossed = await history(owner, { limit: '200', cursor: theirs.body.nextCursor });
    expect(crossed.status).toBe(200);
    for (const entry of crossed.body.history as Entry[]) expect(othersIds).not.toContain(entry.id);
  });

  test('a bad cursor or limit is a 400 and a request without a session 401', async () => {
    const user = await registerUser(t.api, 'Cursor');
    const forged = Buffer.from(JSON.stringify(['1; drop table users', randomUUID()])).toString('base64url');
    for (const cursor of ['not-a-cursor', forged, Buffer.from('[1,2,3]').toString('base64url'), '\ud800']) {
      const res = await history(user, { cursor });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toMatch(/invalid_cursor|validation_failed/);
    }
    expect((await history(user, { limit: '0' })).status).toBe(400);
    expect((await history(user, { limit: '201' })).status).toBe(400);
    expect((await history(user, { extra: '1' })).status).toBe(400);
    expect((await request('GET', `${t.api}/me/history`)).status).toBe(401);
  });
});
