import { randomUUID } from 'node:crypto';
import { DeviceSimulator } from '@switchboard/client/testing';
import { registerAgentRuns, toKernelOutcome, type AgentRuns } from '../../src/agents/agent-run';
import { CancelSignals } from '../../src/lib/cancel-signals';
import { QueueRegistry } from '../../src/producers/registry';
import { RunKernel } from '../../src/runs/run-kernel';
import { testRedisConnections } from '../support/redis';
import { messageText, type ChatRequest, type ChatTurn } from '../../src/demo-model/openai-compatible-server';
import { demoResponder } from '../../src/demo-model/responder';
import type { ToolCall } from '../../src/schemas/device-protocol';
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

  /**
   * A run kernel of the test's own with the `agent` kind registered, over the app's database and
   * Redis (its queues and signals): another process's kernel, ending the same runs.
   */
  async function otherKernel(): Promise<{ kernel: RunKernel; runs: AgentRuns; close: () => Promise<void> }> {
    const redis = testRedisConnections();
    await redis.ready();
    const logger = createLogger({ level: 'silent' });
    const queues = new QueueRegistry(redis.queues.command, t.app.config.redis.keyPrefix);
    const signals = new CancelSignals(redis.realtime.command, t.app.config.redis.keyPrefix, logger);
    const kernel = new RunKernel({ runs: t.app.repos.runs, queues, signals, logger });
    const runs = registerAgentRuns(kernel, { config: t.app.config, repos: t.app.repos, queues, logger });
    return {
      kernel,
      runs,
      close: async () => {
        await signals.close();
        await queues.close();
        await redis.quit();
      },
    };
  }

  /** A run the kernel knows, with its row `running`, as a worker would leave it. */
  async function runningRun(user: TestUser, agentId: string, runs: AgentRuns, row: { startedAt?: Date } = {}) {
    const id = randomUUID();
    await runs.create({ id, userId: user.id });
    await t.app.repos.agents.insertRun({ id, agentId, agentType: 'local', userId: user.id, trigger: 'manual', status: 'running', ...row });
    expect((await runs.start(id)).started).toBe(true);
    return id;
  }

  test('a cancel racing the natural end: of the concurrent ends exactly one is written', async () => {
    const { user, runId, agentId } = await withAgent('Racing', 'TODO: Quick one\n');
    const run = await eventually(() => runOf(user, runId), ended, 20_000);
    expect(run!.status).toBe('success');
    expect((await t.app.repos.runs.find('agent', runId))?.status).toBe('succeeded');
    // Ended on its own: nothing left to stop.
    expect((await cancel(user, runId)).body.error.code).toBe('not_running');
    const other = await otherKernel();
    try {
      // A fresh running run, ended by ten callers at once: half cancel it, half finish it.
      const raceId = await runningRun(user, agentId, other.runs);
      const counts = { itemsProcessed: 1, itemsCreated: 1, errors: [] };
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => {
          const { outcome, counts: kept } = toKernelOutcome(
            i % 2 ? { status: 'cancelled', ...counts } : { status: 'succeeded', ...counts },
          );
          return other.runs.end(raceId, outcome, { counts: kept });
        }),
      );
      expect(results.filter((result) => result.won)).toHaveLength(1);
      const winner = results.findIndex((result) => result.won);
      expect((await runOf(user, raceId))!.status).toBe(winner % 2 ? 'cancelled' : 'success');
      expect((await t.app.repos.runs.find('agent', raceId))?.status).toBe(winner % 2 ? 'cancelled' : 'succeeded');
      expect((await cancel(user, raceId)).status).toBe(409);

      // The cancel route racing the worker's end: one wins, and the row and the run agree.
      const againId = await runningRun(user, agentId, other.runs);
      const [cancelled, finished] = await Promise.all([
        cancel(user, againId),
        other.runs.end(againId, { status: 'succeeded', result: counts }, { counts }),
      ]);
      const row = await runOf(user, againId);
      const kernelRun = await t.app.repos.runs.find('agent', againId);
      if (finished.won) {
        // The end came first: the cancel found it ended (a cancel recorded first would have refused the success).
        expect(row!.status).toBe('success');
        expect(kernelRun?.status).toBe('succeeded');
        expect(kernelRun?.cancelRequestedAt).toBeNull();
        expect(cancelled.status).toBe(409);
      } else {
        expect(cancelled.status).toBe(202);
        // Recorded before the end: a success is refused, and the worker holding it ends it cancelled.
        expect(kernelRun?.cancelRequestedAt).not.toBeNull();
        const { outcome } = toKernelOutcome({ status: 'cancelled', ...counts });
        expect((await other.runs.end(againId, outcome, { counts })).won).toBe(true);
        expect((await runOf(user, againId))!.status).toBe('cancelled');
      }
    } finally {
      await other.close();
    }
  }, 60_000);

  test('recovery ends a run a stopped worker left: `cancelled` when its owner asked, `timed_out` past the run timeout, a waiting run stays', async () => {
    const user = await registerUser(t.api, 'Sweep');
    const agent = await request('POST', `${t.api}/agents/local`, { token: user.accessToken, body: agentBody('laptop-gone') });
    const other = await otherKernel();
    try {
      const longAgo = new Date(Date.now() - 3_600_000);
      // No job carries any of them: their worker was killed and its jobs are gone.
      const killed = await runningRun(user, agent.body.id, other.runs);
      const asked = await runningRun(user, agent.body.id, other.runs);
      expect(await t.app.repos.runs.requestCancel('agent', asked, user.id)).not.toBeNull();
      const overdue = await runningRun(user, agent.body.id, other.runs, { startedAt: longAgo });
      const waiting = await runningRun(user, agent.body.id, other.runs);
      await t.app.repos.agents.updateRun(waiting, { status: 'waiting_device' });

      const report = await other.kernel.recover(new Date(Date.now() + 1_000), 500);
      expect(report.agent).toBeGreaterThanOrEqual(3);
      expect(await runOf(user, killed)).toMatchObject({ status: 'error', errors: ['interrupted: the run stopped without finishing'] });
      expect(await t.app.repos.runs.find('agent', killed)).toMatchObject({ status: 'failed', errorCode: 'interrupted' });
      expect(await runOf(user, asked)).toMatchObject({ status: 'cancelled' });
      expect(await t.app.repos.runs.find('agent', asked)).toMatchObject({ status: 'cancelled' });
      const timedOut = await runOf(user, overdue);
      expect(timedOut).toMatchObject({ status: 'error' });
      expect(timedOut!.errors.at(-1)).toMatch(/^timed_out: /);
      expect(await t.app.repos.runs.find('agent', overdue)).toMatchObject({ status: 'timed_out' });
      expect(await runOf(user, waiting)).toMatchObject({ status: 'waiting_device', completedAt: null });
      expect(await t.app.repos.runs.find('agent', waiting)).toMatchObject({ status: 'running' });
      // Recovered once: a second sweep changes nothing.
      await other.kernel.recover(new Date(Date.now() + 1_000), 500);
      expect(await runOf(user, killed)).toMatchObject({ errors: ['interrupted: the run stopped without finishing'] });
      // The waiting run is still the owner's to cancel.
      expect((await cancel(user, waiting)).status).toBe(202);
      expect(await runOf(user, waiting)).toMatchObject({ status: 'cancelled' });
    } finally {
      await other.close();
    }
  }, 60_000);
});
