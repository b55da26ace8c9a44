import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import { demoResponder } from '../../src/demo-model';
import { DeviceSimulator } from '@switchboard/client/testing';
import { bullPrefix } from '../../src/producers/registry';
import type { ApprovalRequested } from '../../src/schemas/socket-events';
import { startTestApp, type TestApp } from '../support/app';
import { createCanvas, registerUser, request, type TestUser } from '../support/http';
import { TestQueue } from '../support/redis';
import { readSse } from '../support/sse';
import { eventually } from '../support/wait';
import { nextDeviceEvent, type AwaitedDeviceEvent } from '../support/device-events';

const TASK_ID = '3f2b8c1e-9d4a-4b6e-8f00-1234567890ab';
const seed = { tasks: [{ id: TASK_ID, title: 'Old report', status: 'done', priority: 'low' }] };

/** The first `event` the device receives that satisfies `predicate` (a slow crash path: 20 s). */
const next = <T>(device: DeviceSimulator, event: AwaitedDeviceEvent, predicate?: (payload: T) => boolean) =>
  nextDeviceEvent<T>(device, event, predicate, 20_000);

/**
 * Work parked on a person or on a queue must not be lost to a crash: an approval holds
 * only until expiresAt (by timestamp, not by a delayed job that a crash may have lost), a decided
 * approval whose resume was never queued is resumed, and deleting a canvas ends its generations.
 */
describe('parked work survives lost jobs', () => {
  let t: TestApp;
  let queue: Queue;
  let gate: () => void = () => undefined;
  const devices: DeviceSimulator[] = [];

  beforeAll(async () => {
    t = await startTestApp({
      env: {
        HITL_TIMEOUT_MS: '1500',
        REAPER_INTERVAL_MS: '300',
        REAPER_GRACE_MS: '200',
        DEVICE_RPC_TIMEOUT_MS: '5000',
        TIER_LIMITS: JSON.stringify({ free: { concurrentGenerations: 1 } }),
      },
      responder: async (req) => {
        // A generation that holds its model call until the test opens the gate.
        if (JSON.stringify(req.messages).includes('hold for the deletion')) await new Promise<void>((resolve) => (gate = resolve));
        return demoResponder(req);
      },
    });
    queue = new TestQueue('assistant', bullPrefix(t.keyPrefix));
  });

  afterAll(async () => {
    gate();
    devices.forEach((device) => device.close());
    await queue.close();
    await t.stop();
  });

  async function parkedDelete(): Promise<{
    user: TestUser;
    device: DeviceSimulator;
    approval: ApprovalRequested;
    final: Promise<{ response: string }>;
  }> {
    const user = await registerUser(t.api, 'Parked');
    const device = await DeviceSimulator.connect({
      url: t.url,
      accessToken: user.accessToken,
      deviceId: `laptop-${randomUUID().slice(0, 6)}`,
      seed,
      reconnection: false,
    });
    devices.push(device);
    const requested = next<ApprovalRequested>(device, 'approval_requested');
    const final = next<{ response: string }>(device, 'final');
    await device.socket.timeout(5_000).emitWithAck('chat_request', { message: `Delete task ${TASK_ID}` });
    return { user, device, approval: await requested, final };
  }
  /** The approval's waitpoint, whose deadline is its expiry. */
  const deadlineOf = async (user: TestUser, approvalId: string) =>
    (await t.app.repos.waitpoints.findByKey(user.id, `approval:${approvalId}`))!;
  const deletes = (device: DeviceSimulator) => device.calls.filter((call) => call.action === 'delete');
  const status = async (user: TestUser, id: string) =>
    (await request('GET', `${t.api}/hitl/requests/${id}`, { token: user.accessToken })).body.status;

  test('approving after expiresAt is 409 `expired` even when its deadline job is gone; the tool never runs and the turn ends', async () => {
    const { user, device, approval, final } = await parkedDelete();
    // A crash lost the delayed deadline job.
    await queue.remove(`waitpoint-deadline-${(await deadlineOf(user, approval.approvalId)).id}`);
    await eventually(
      async () => Date.now(),
      (now) => now > Date.parse(approval.expiresAt) + 50,
      10_000,
    );

    const late = await request('PUT', `${t.api}/hitl/requests/${approval.approvalId}/approve`, { token: user.accessToken });
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('expired');
    const ack = await device.socket.timeout(5_000).emitWithAck('tool_approval', { approvalId: approval.approvalId, approved: true });
    expect(ack).toMatchObject({ error: { code: 'expired' } });

    expect(await status(user, approval.approvalId)).toBe('timeout');
    await final;
    expect(deletes(device)).toEqual([]);
    expect(device.store.rows('tasks').map((row) => row.id)).toContain(TASK_ID);
  }, 30_000);

  test('a pending approval past expiresAt whose deadline job is gone is timed out by the reaper and its turn ends', async () => {
    const { user, device, approval, final } = await parkedDelete();
    await queue.remove(`waitpoint-deadline-${(await deadlineOf(user, approval.approvalId)).id}`);

    await final;
    expect(await status(user, approval.approvalId)).toBe('timeout');
    expect(deletes(device)).toEqual([]);
  }, 30_000);

  test('a decision committed without its resume job (the enqueue failed) is resumed by the reaper, once', async () => {
    const { user, device, approval, final } = await parkedDelete();
    // Exactly what a failed enqueue after the commit leaves: the row decided, no resume job.
    await t.app.repos.hitl.decide(approval.approvalId, 'approved', user.id);

    const answered = await final;
    expect(answered.response).toMatch(/delet/i);
    expect(deletes(device)).toHaveLength(1);
    expect(device.store.rows('tasks').map((row) => row.id)).not.toContain(TASK_ID);
    expect(await status(user, approval.approvalId)).toBe('approved');
  }, 30_000);

  test('deleting a canvas while its generation runs ends the stream with `canvas_deleted` and frees the concurrency slot', async () => {
    const user = await registerUser(t.api, 'Deleter');
    const canvasId = await createCanvas(t.api, user);
    const before = t.llm.chatRequests().length;
    const stream = readSse(`${t.api}/canvases/${canvasId}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt: 'A paragraph: hold for the deletion' },
      timeoutMs: 20_000,
      until: (m) => m.event === 'complete' || m.event === 'error',
    });
    await eventually(
      async () => t.llm.chatRequests().length,
      (n) => n > before,
    );

    expect((await request('DELETE', `${t.api}/canvases/${canvasId}`, { token: user.accessToken })).status).toBe(204);
    const sse = await stream;
    expect(sse.messages.at(-1)).toMatchObject({ event: 'error', data: { code: 'canvas_deleted' } });
    gate();

    const other = await createCanvas(t.api, user);
    const next = await readSse(`${t.api}/canvases/${other}/ai/generate-stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { prompt: 'A heading and a paragraph about what comes next' },
      timeoutMs: 20_000,
      until: (m) => m.event === 'complete' || m.event === 'error',
    });
    expect(next.status).toBe(200);
    expect(next.messages.at(-1)!.event).toBe('complete');
    expect((await request('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: user.accessToken })).status).toBe(404);
  }, 40_000);
});
