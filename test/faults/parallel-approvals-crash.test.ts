import type { ToolCall } from '@switchboard/client';
import { DeviceSimulator } from '@switchboard/client/testing';
import type { ApprovalRequested } from '../../src/schemas/socket-events';
import { useCluster } from '../support/cluster';
import { registerUser, request, type TestUser } from '../support/http';
import { untilPrinted, type SwitchboardProcess } from '../support/processes';
import { within } from '../support/wait';

/**
 * A turn parked on two approvals (the demo model's "Delete task A; delete task B") outlives its
 * worker: kill -9 of the only worker while both wait, a new worker, both approved. The parked round
 * lives in PostgreSQL, so the new worker resumes it once: each delete reaches the device once, and
 * the model reads the two results in the order of its calls.
 */

const TASK_A = '3f2b8c1e-9d4a-4b6e-8f00-1234567890ab';
const TASK_B = '7c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f';
const seed = {
  tasks: [
    { id: TASK_A, title: 'Old report', status: 'done', priority: 'low' },
    { id: TASK_B, title: 'Stale draft', status: 'done', priority: 'low' },
  ],
};

describe('a turn parked on two approvals when its worker dies', () => {
  const cluster = useCluster('parallel-approvals', { WORKER_LOCK_MS: '2000', HITL_TIMEOUT_MS: '120000', LOG_LEVEL: 'info' });
  const devices: DeviceSimulator[] = [];

  afterAll(() => devices.forEach((device) => device.close()));
  // Each test's workers are its own: a worker an earlier test started would take the resume.
  afterEach(() => cluster.stopAll());

  async function parkedOnTwo(api: SwitchboardProcess, deviceId: string, onCall?: (call: ToolCall) => void) {
    const user = await registerUser(`${api.url}/api/v1`, 'Crash');
    const device = await DeviceSimulator.connect({
      url: api.url!,
      accessToken: user.accessToken,
      deviceId,
      connectTimeoutMs: 30_000,
      seed,
      reconnection: false,
      onCall,
    });
    devices.push(device);
    const requested: ApprovalRequested[] = [];
    const both = new Promise<void>((resolve) =>
      device.socket.on('approval_requested', (payload: ApprovalRequested) => {
        requested.push(payload);
        if (requested.length === 2) resolve();
      }),
    );
    await device.socket.timeout(30_000).emitWithAck('chat_request', { message: `Delete task ${TASK_A}; delete task ${TASK_B}` });
    await within(both, 60_000, 'two approval requests');
    expect(requested.map((r) => r.parameters)).toEqual([{ task_id: TASK_A }, { task_id: TASK_B }]);
    return { user, device, requested };
  }

  const approve = (api: SwitchboardProcess, user: TestUser, id: string) =>
    request('PUT', `${api.url}/api/v1/hitl/requests/${id}/approve`, { token: user.accessToken });

  test('kill -9 of the worker while both wait; a new worker resumes once, each delete runs once, results in call order', async () => {
    const [api, worker] = await Promise.all([
      cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0' }),
      cluster.spawn({ SWITCHBOARD_ROLES: 'worker' }),
    ]);
    const { user, device, requested } = await parkedOnTwo(api, 'laptop-crash');
    expect(device.calls.filter((call) => call.action === 'delete')).toEqual([]);

    await worker.stop('SIGKILL');
    const replacement = await cluster.spawn({ SWITCHBOARD_ROLES: 'worker' });
    const final = new Promise<{ response: string }>((resolve) => device.socket.once('final', resolve));
    expect((await approve(api, user, requested[1].approvalId)).status).toBe(200);
    expect((await approve(api, user, requested[0].approvalId)).status).toBe(200);

    const { response } = await within(final, 60_000, 'the resumed turn answered');
    const deletes = device.calls.filter((call) => call.action === 'delete');
    expect(deletes.map((call) => (call as { data: { id: string } }).data.id).sort()).toEqual([TASK_A, TASK_B].sort());
    expect(device.repeatedCalls).toEqual([]);
    expect(device.store.rows('tasks')).toEqual([]);
    expect(response.indexOf(`Task ${TASK_A} deleted.`)).toBeGreaterThanOrEqual(0);
    expect(response.indexOf(`Task ${TASK_A} deleted.`)).toBeLessThan(response.indexOf(`Task ${TASK_B} deleted.`));
    await untilPrinted(replacement, 'assistant turn resumed');
  }, 180_000);

  test('kill -9 of the worker mid-resume (the first delete reached the device): the re-run repeats no write', async () => {
    const [api, worker] = await Promise.all([
      cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0' }),
      cluster.spawn({ SWITCHBOARD_ROLES: 'worker' }),
    ]);
    // The first delete of the resume reached the device (and was answered): the only worker, which
    // runs the resume, dies at once; a new one re-runs the stalled job.
    let killed!: () => void;
    const workerKilled = new Promise<void>((resolve) => (killed = resolve));
    let kills = 0;
    const { user, device, requested } = await parkedOnTwo(api, 'laptop-midway', (call) => {
      if (kills > 0 || call.action !== 'delete') return;
      kills += 1;
      worker.child.kill('SIGKILL');
      killed();
    });
    const final = new Promise<{ response: string }>((resolve) => device.socket.once('final', resolve));
    expect((await approve(api, user, requested[0].approvalId)).status).toBe(200);
    expect((await approve(api, user, requested[1].approvalId)).status).toBe(200);
    await within(workerKilled, 60_000, 'the first delete of the resume reached the device');
    await cluster.spawn({ SWITCHBOARD_ROLES: 'worker' });

    // The re-run waits for the lapsed lock and the stall check: a generous deadline.
    const { response } = await within(final, 90_000, 'the re-run resume answered');
    const deletes = device.calls.filter((call) => call.action === 'delete');
    // Two deletes, each with its own key; whatever the re-run sent again carried the same key and
    // was answered from memory.
    expect(new Set(deletes.map((call) => call.idempotencyKey)).size).toBe(2);
    expect(device.repeatedCalls.length).toBeGreaterThan(0);
    expect(deletes).toHaveLength(2 + device.repeatedCalls.length);
    expect(device.store.rows('tasks')).toEqual([]);
    expect(response.indexOf(`Task ${TASK_A} deleted.`)).toBeLessThan(response.indexOf(`Task ${TASK_B} deleted.`));
  }, 180_000);
});
