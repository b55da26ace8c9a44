import { randomUUID } from 'node:crypto';
import { demoResponder } from '../../src/demo-model';
import { DeviceSimulator } from '@switchboard/client/testing';
import type { ApprovalRequested, ApprovalResolved } from '../../src/schemas/socket-events';
import { startTestApp, type TestApp } from '../support/app';
import { registerUser, request, type TestUser } from '../support/http';
import { connectCanvas, record, waitFor, type CanvasClient } from '../support/sockets';
import { readSse, type SseMessage } from '../support/sse';
import { waitUntil } from '../support/wait';

/**
 * An approval request reaches every surface of its owner at once — the device, the
 * turn's `/chat/stream`, the owner's `/canvas` sockets (in a canvas room or not) — and never
 * another user's; the first decision wins everywhere; a timeout resolves it like a decision.
 */
const TASK_ID = '8c1d7e2a-4b3f-4a5e-9d60-abcdefabcdef';
const seed = { tasks: [{ id: TASK_ID, title: 'Old report', status: 'done', priority: 'low' }] };

/** The device's next payload of `event`. */
function deviceEvent<T>(device: DeviceSimulator, event: 'approval_requested' | 'approval_resolved', timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`device: timed out waiting for ${event}`)), timeoutMs);
    device.socket.once(event, ((payload: T) => (clearTimeout(timer), resolve(payload))) as never);
  });
}

describe('approvals reach every surface of their owner', () => {
  let t: TestApp;
  const closers: Array<() => void> = [];

  beforeAll(async () => {
    t = await startTestApp({ responder: demoResponder, env: { HITL_TIMEOUT_MS: '60000' } });
  });

  afterAll(async () => {
    closers.forEach((close) => close());
    await t.stop();
  });

  async function owner(): Promise<{ user: TestUser; device: DeviceSimulator; browser: CanvasClient }> {
    const user = await registerUser(t.api, 'Owner');
    const device = await DeviceSimulator.connect({
      url: t.url,
      accessToken: user.accessToken,
      deviceId: `laptop-${randomUUID().slice(0, 6)}`,
      seed,
      reconnection: false,
    });
    // A browser tab that joined no canvas.
    const browser = await connectCanvas(t.url, user.accessToken);
    closers.push(
      () => device.close(),
      () => browser.close(),
    );
    return { user, device, browser };
  }

  test('a turn on /chat/stream: the request and its decision reach the stream, the device and the owner’s browser; another user’s browser hears nothing; a second decision is 409', async () => {
    const { user, device, browser } = await owner();
    const stranger = await registerUser(t.api, 'Stranger');
    const strangerBrowser = await connectCanvas(t.url, stranger.accessToken);
    closers.push(() => strangerBrowser.close());
    const strangerHeard = [...record(strangerBrowser, 'approval_requested'), ...record(strangerBrowser, 'approval_resolved')];
    const browserRequested = waitFor(browser, 'approval_requested');
    const browserResolved = waitFor(browser, 'approval_resolved');
    const deviceRequested = deviceEvent<ApprovalRequested>(device, 'approval_requested');
    const deviceResolved = deviceEvent<ApprovalResolved>(device, 'approval_resolved');

    let decided: Promise<unknown> | undefined;
    const onMessage = (message: SseMessage) => {
      // Decided from the device the moment the stream shows the request.
      if (message.event === 'approval_requested')
        decided = device.socket.timeout(5_000).emitWithAck('tool_approval', { approvalId: message.data.approvalId, approved: true });
    };
    const stream = await readSse(`${t.api}/chat/stream`, {
      method: 'POST',
      token: user.accessToken,
      body: { message: `Delete task ${TASK_ID}`, deviceId: device.deviceId },
      onMessage,
      timeoutMs: 20_000,
    });

    expect({ status: stream.status, body: stream.body }).toEqual({ status: 200, body: undefined });
    const events = stream.messages.map((m) => m.event);
    expect(events.indexOf('approval_requested')).toBeGreaterThanOrEqual(0);
    expect(events.indexOf('approval_resolved')).toBeGreaterThan(events.indexOf('approval_requested'));
    expect(events.at(-1)).toBe('final');
    const requested = stream.messages.find((m) => m.event === 'approval_requested')!.data;
    expect(requested).toMatchObject({
      type: 'approval_requested',
      toolName: 'delete_task',
      parameters: { task_id: TASK_ID },
      reason: expect.any(String),
      expiresAt: expect.any(String),
    });
    const approvalId: string = requested.approvalId;
    const resolved = { approvalId, status: 'approved', decidedBy: user.id };
    expect(stream.messages.find((m) => m.event === 'approval_resolved')!.data).toEqual({
      type: 'approval_resolved',
      sessionId: requested.sessionId,
      ...resolved,
    });
    expect(await decided).toEqual({ ok: true, status: 'approved' });

    const { type: _type, ...payload } = requested;
    expect(await browserRequested).toEqual(payload);
    expect(await deviceRequested).toEqual(payload);
    expect(await browserResolved).toEqual(resolved);
    expect(await deviceResolved).toEqual(resolved);
    expect(device.calls.filter((call) => call.action === 'delete')).toHaveLength(1);

    const again = await request('PUT', `${t.api}/hitl/requests/${approvalId}/reject`, { token: user.accessToken });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('already_decided');
    expect(strangerHeard).toEqual([]);
  });

  test('a decision over HTTP clears the request on every surface; the POST /chat JSON answer is the final one', async () => {
    const { user, device, browser } = await owner();
    const browserRequested = waitFor(browser, 'approval_requested');
    const browserResolved = waitFor(browser, 'approval_resolved');
    const deviceResolved = deviceEvent<ApprovalResolved>(device, 'approval_resolved');
    const answer = request('POST', `${t.api}/chat`, {
      token: user.accessToken,
      body: { message: `Delete task ${TASK_ID}`, deviceId: device.deviceId },
    });

    const { approvalId } = await browserRequested;
    const rejected = await request('PUT', `${t.api}/hitl/requests/${approvalId}/reject`, { token: user.accessToken });
    expect(rejected.status).toBe(200);

    const resolved = { approvalId, status: 'rejected', decidedBy: user.id };
    expect(await browserResolved).toEqual(resolved);
    expect(await deviceResolved).toEqual(resolved);
    const final = await answer;
    expect(final.status).toBe(200);
    expect(final.body).toMatchObject({ response: expect.any(String) });
    expect(device.calls.filter((call) => call.action === 'delete')).toEqual([]);
  });
});

describe('an approval that times out', () => {
  test('resolves on every surface with status timeout and decidedBy null', async () => {
    const t = await startTestApp({ responder: demoResponder, env: { HITL_TIMEOUT_MS: '400' } });
    try {
      const user = await registerUser(t.api, 'Away');
      const device = await DeviceSimulator.connect({
        url: t.url,
        accessToken: user.accessToken,
        deviceId: 'laptop-away',
        seed,
        reconnection: false,
      });
      const browser = await connectCanvas(t.url, user.accessToken);
      try {
        const browserResolved = record(browser, 'approval_resolved');
        const deviceResolved = deviceEvent<ApprovalResolved>(device, 'approval_resolved');
        const stream = await readSse(`${t.api}/chat/stream`, {
          method: 'POST',
          token: user.accessToken,
          body: { message: `Delete task ${TASK_ID}`, deviceId: device.deviceId },
          timeoutMs: 20_000,
        });

        const approvalId = stream.messages.find((m) => m.event === 'approval_requested')!.data.approvalId;
        const resolved = { approvalId, status: 'timeout', decidedBy: null };
        expect(stream.messages.find((m) => m.event === 'approval_resolved')?.data).toMatchObject(resolved);
        expect(stream.messages.at(-1)?.event).toBe('final');
        expect(await deviceResolved).toEqual(resolved);
        await waitUntil(() => browserResolved.length > 0);
        expect(browserResolved).toEqual([resolved]);
        expect(device.calls.filter((call) => call.action === 'delete')).toEqual([]);
      } finally {
        device.close();
        browser.close();
      }
    } finally {
      await t.stop();
    }
  });
});
