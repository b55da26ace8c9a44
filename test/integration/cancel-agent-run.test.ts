import { randomUUID } from 'node:crypto';
import { DeviceSimulator } from '@switchboard/client/testing';
import { endAgentRun, endStaleAgentRuns } from '../../src/agents/agent-run-cancel';
import { messageText, type ChatRequest, type ChatTurn } from '../../src/ai/openai-compatible/server';
import { demoResponder } from '../../src/ai/demo-llm/responder';
import type { ToolCall } from '../../src/devices/protocol';
import { createLogger } from '../../src/lib/logger';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { eventually, waitUntil } from '../support/wait';

/** Sixty words, each its own streamed piece: with the model's pause per piece, seconds of streaming. */
const LONG_ANSWER = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');

/** A document that says `SLOW` keeps the model streaming; anything else gets the demo model's items. */
function responder(request: ChatRequest): ChatTurn {
  const prompt = request.messages.map((m) => messageText(m)).join('\n');
  if (/SLOW/.test(prompt)) return { text: LONG_ANSWER };
  return demoResponder(request);
}

const agentBody = (deviceId: string) => ({
  name: 'Notes',
  deviceId,
  directoryPaths: ['/Users/ana/Notes'],
  dataTypes: ['tasks'],
  promptTemplate: 'Extract tasks. Lines starting with TODO are tasks.',
  fileExtensions: ['.txt'],
});

/**
 * Cancelling agent runs in one process (every role): a run whose model is streaming, a run waiting
 * on a device call, a run waiting for its device, ownership, the 409 after the end, and the one
 * conditional end when a cancel races the natural end. Across processes: cancel-cluster.test.ts.
 */
describe('cancelling an agent run', () => {
  let t: TestApp;
  const devices: DeviceSimulator[] = [];

  beforeAll(async () => {
    // A device call could wait 20 s and a run 60 s: a cancel must not.
    t = await startTestApp({
      responder,
      llmDelayMs: 40,
      env: { DEVICE_RPC_TIMEOUT_MS: '20000', AGENT_RUN_TIMEOUT_MS: '60000', SWITCHBOARD_ROLES: 'api,worker' },
    });
  }, 120_000);

  afterEach(() => {
    for (const device of devices.splice(0)) device.close();
  });

  afterAll(async () => {
    await t.stop();
  });

  const cancel = (user: TestUser, runId: string) => request('POST', `${t.api}/agents/runs/${runId}/cancel`, { token: user.accessToken });
  const runOf = async (user: TestUser, runId: string) =>
    ((await request('GET', `${t.api}/agents/runs`, { token: user.accessToken })).body.runs as Array<Record<string, any>>).find(
      (run) => run.id === runId,
    );
  const ended = (run: Record<string, any> | undefined) => run !== undefined && run.completedAt !== null;

  async function withAgent(name: string, content: string, options: { connect?: boolean } = {}) {
    const user = await registerUser(t.api, name);
    const deviceId = `laptop-${randomUUID().slice(0, 6)}`;
    const created = await request('POST', `${t.api}/agents/local`, { token: user.accessToken, body: agentBody(deviceId) });
    expect(created.status).toBe(201);
    let device: DeviceSimulator | undefined;
    if (options.connect !== false) {
      device = await DeviceSimulator.connect({
        url: t.url,
        accessToken: user.accessToken,
        deviceId,
        reconnection: false,
        readAgentFiles: async () => ({ files: [{ path: '/Users/ana/Notes/a.txt', name: 'a.txt', content }] }),
      });
      devices.push(device);
    }
    const started = await request('POST', `${t.api}/agents/${created.body.id}/run`, { token: user.accessToken });
    expect(started.status).toBe(202);
    return { user, device, deviceId, agentId: created.body.id as string, runId: started.body.runId as string };
  }

  test('a run whose model is streaming: 202, the model request closes, the run ends `cancelled`; a stranger gets 404, a second cancel 409', async () => {
    const before = t.llm.requests.length;
    const { user, runId } = await withAgent('Streaming', 'SLOW notes\nTODO: never reached\n');
    await waitUntil(() => t.llm.requests.slice(before).some((r) => r.kind === 'chat'), 20_000);

    const stranger = await registerUser(t.api, 'Stranger');
    expect((await cancel(stranger, runId)).status).toBe(404);
    const answer = await cancel(user, runId);
    expect(answer.status).toBe(202);
    expect(answer.body).toEqual({ runId, status: 'cancelling' });

    await waitUntil(() => t.llm.requests.slice(before).some((r) => r.kind === 'chat' && r.closedEarlyAt !== undefined), 10_000);
    const run = await eventually(() => runOf(user, runId), ended);
    expect(run).toMatchObject({ status: 'cancelled', itemsCreated: 0 });

    const again = await cancel(user, runId);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('not_running');
  }, 60_000);

  test('a run waiting on a device call that is never answered ends at once, keeping what it processed', async () => {
    const { user, device, runId } = await withAgent('Holding', 'TODO: Send the quote\n');
    const held: ToolCall[] = [];
    device!.responder = (call) => {
      held.push(call);
      return new Promise(() => undefined);
    };
    await waitUntil(() => held.some((call) => call.action === 'insert'), 20_000);
    const asked = Date.now();
    expect((await cancel(user, runId)).status).toBe(202);
    const run = await eventually(() => runOf(user, runId), ended, 10_000);
    // Well inside the 20 s the device call would have waited.
    expect(Date.now() - asked).toBeLessThan(5_000);
    expect(run).toMatchObject({ status: 'cancelled', itemsProcessed: 1, itemsCreated: 0 });
  }, 60_000);

  test("the device stops a run over the socket: `agent_cancel {runId}` acks ok, then not_running; another user's run is not_found", async () => {
    const before = t.llm.requests.length;
    const { user, device, runId } = await withAgent('Socket', 'SLOW notes\nTODO: never reached\n');
    await waitUntil(() => t.llm.requests.slice(before).some((r) => r.kind === 'chat'), 20_000);
    const other = await withAgent('Other', 'TODO: mine\n', { connect: false });

    const emit = (payload: unknown) => device!.socket.timeout(10_000).emitWithAck('agent_cancel', payload as { runId: string });
    expect(await emit({ runId: other.runId })).toEqual({ ok: false, error: expect.objectContaining({ code: 'not_found' }) });
    expect(await emit({ runId: 'nope' })).toEqual({ ok: false, error: expect.objectContaining({ code: 'validation_failed' }) });
    expect(await emit({ runId })).toEqual({ ok: true });
    await waitUntil(() => t.llm.requests.slice(before).some((r) => r.kind === 'chat' && r.closedEarlyAt !== undefined), 10_000);
    expect(await eventually(() => runOf(user, runId), ended)).toMatchObject({ status: 'cancelled' });
    expect(await emit({ runId })).toEqual({ ok: false, error: expect.objectContaining({ code: 'not_running' }) });
  }, 60_000);

  test('a run waiting for its device ends at once, and the device coming back does not start it', async () => {
    const { user, deviceId, runId } = await withAgent('Offline', 'TODO: Anything\n', { connect: false });
    await eventually(
      () => runOf(user, runId),
      (run) => run?.status === 'waiting_device',
    );
    expect((await cancel(user, runId)).status).toBe(202);
    expect(await runOf(user, runId)).toMatchObject({ status: 'cancelled' });
    expect(ended(await runOf(user, runId))).toBe(true);

    const readRequests: string[] = [];
    const device = await DeviceSimulator.connect({
      url: t.url,
      accessToken: user.accessToken,
      deviceId,
      reconnection: false,
      readAgentFiles: async (req) => {
        readRequests.push(req.runId);
        return { files: [] };
      },
    });
    devices.push(device);
    // A new run of the agent is served once the device's hello was handled; the cancelled run never is.
    const agents = (await request('GET', `${t.api}/agents/local`, { token: user.accessToken })).body.agents;
    const next = await request('POST', `${t.api}/agents/${agents[0].id}/run`, { token: user.accessToken });
    await eventually(() => runOf(user, next.body.runId), ended, 20_000);
    expect(readRequests).toEqual([next.body.runId]);
    expect(await runOf(user, runId)).toMatchObject({ status: 'cancelled' });
  }, 60_000);

  test('a cancel racing the natural end: of the concurrent ends exactly one is written', async () => {
    const { user, runId, agentId } = await withAgent('Racing', 'TODO: Quick one\n');
    const run = await eventually(() => runOf(user, runId), ended, 20_000);
    expect(run!.status).toBe('success');
    // Ended on its own: nothing left to stop.
    expect((await cancel(user, runId)).body.error.code).toBe('not_running');
    // A fresh running row, ended by ten callers at once: half cancel it, half finish it.
    const raceId = randomUUID();
    await t.app.repos.agents.insertRun({ id: raceId, agentId, agentType: 'local', userId: user.id, trigger: 'manual', status: 'running' });
    const deps = { repos: t.app.repos, logger: createLogger({ level: 'silent' }) };
    const counts = { itemsProcessed: 1, itemsCreated: 1, errors: [] };
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        endAgentRun(
          deps,
          { id: raceId, agentId, agentType: 'local' },
          i % 2 ? { status: 'cancelled', ...counts } : { status: 'succeeded', ...counts },
        ),
      ),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    const winner = results.findIndex(Boolean);
    expect((await runOf(user, raceId))!.status).toBe(winner % 2 ? 'cancelled' : 'success');
    expect((await cancel(user, raceId)).status).toBe(409);
  }, 60_000);

  test('the sweep of runs a stopped worker left running ends them `cancelled` when their owner asked, else `error`', async () => {
    const user = await registerUser(t.api, 'Sweep');
    const agent = await request('POST', `${t.api}/agents/local`, { token: user.accessToken, body: agentBody('laptop-gone') });
    const longAgo = new Date(Date.now() - 3_600_000);
    const [asked, forgotten, fresh] = [randomUUID(), randomUUID(), randomUUID()];
    const row = {
      agentId: agent.body.id,
      agentType: 'local' as const,
      userId: user.id,
      trigger: 'manual' as const,
      status: 'running' as const,
    };
    await t.app.repos.agents.insertRun({ ...row, id: asked, startedAt: longAgo, cancelRequestedAt: longAgo });
    await t.app.repos.agents.insertRun({ ...row, id: forgotten, startedAt: longAgo });
    await t.app.repos.agents.insertRun({ ...row, id: fresh });

    const deps = { repos: t.app.repos, logger: createLogger({ level: 'silent' }) };
    const ended = await endStaleAgentRuns(deps, new Date(Date.now() - 60_000), 'interrupted: the run stopped without finishing');
    expect(ended).toBeGreaterThanOrEqual(2);
    expect(await runOf(user, asked)).toMatchObject({ status: 'cancelled' });
    expect(await runOf(user, forgotten)).toMatchObject({ status: 'error', errors: ['interrupted: the run stopped without finishing'] });
    expect(await runOf(user, fresh)).toMatchObject({ status: 'running', completedAt: null });
    // Swept once: a second sweep finds nothing of this user's left.
    await endStaleAgentRuns(deps, new Date(Date.now() - 60_000), 'again');
    expect(await runOf(user, forgotten)).toMatchObject({ errors: ['interrupted: the run stopped without finishing'] });
  }, 30_000);
});
