import { DeviceSimulator } from '@switchboard/client/testing';
import { useCluster } from '../support/cluster';
import { registerUser } from '../support/http';
import { waitUntil, within } from '../support/wait';

/**
 * kill -9 of the worker running an assistant turn right after its `create_task` reached the device:
 * BullMQ runs the stalled job again on a new worker, which repeats the turn's calls. Each call
 * carries an idempotency key stable across re-runs (decision 0078), so the device answers the
 * repeated insert from memory: one task, not two.
 *
 * The lock is 2 s, not less: a live worker renews it every half lock, and on a loaded machine a
 * renewal can come late; the job then runs once more with no crash, a third insert with the same key.
 */
describe('an assistant turn re-run after its worker died', () => {
  const cluster = useCluster('rerun', { WORKER_LOCK_MS: '2000', DEMO_LLM_DELAY_MS: '300', LOG_LEVEL: 'info' });
  let device: DeviceSimulator | undefined;

  afterAll(() => device?.close());

  test('repeats no device write: the second create_task carries the same key and is answered from memory', async () => {
    const [api, worker] = await Promise.all([
      cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0' }),
      cluster.spawn({ SWITCHBOARD_ROLES: 'worker' }),
    ]);
    const user = await registerUser(`${api.url}/api/v1`, 'Rerun');
    // The insert reached the device (and was answered): the only worker, which runs the turn, dies
    // at once; a new one re-runs the stalled job.
    let killed!: () => void;
    const workerKilled = new Promise<void>((resolve) => (killed = resolve));
    let kills = 0;
    device = await DeviceSimulator.connect({
      url: api.url!,
      accessToken: user.accessToken,
      deviceId: 'laptop-rerun',
      connectTimeoutMs: 30_000,
      seed: { tasks: [] },
      onCall: (call) => {
        if (kills > 0 || call.action !== 'insert') return;
        kills += 1;
        worker.child.kill('SIGKILL');
        killed();
      },
    });
    const final = new Promise<{ response: string }>((resolve) => device!.socket.once('final', resolve));
    await device.socket.timeout(30_000).emitWithAck('chat_request', { message: 'Create a task called Buy oat milk' });
    await within(workerKilled, 60_000, 'the insert reached the device');
    await cluster.spawn({ SWITCHBOARD_ROLES: 'worker' });

    // The re-run waits for the lapsed lock and the stall check: a generous deadline.
    await within(final, 90_000, 'the re-run turn sent its final answer');
    // Two inserts: the dead worker's and the re-run's. The new worker's lock renewal that comes late on
    // a loaded machine runs the job once more; that run's insert carries the same key too.
    const inserts = device.calls.filter((call) => call.action === 'insert');
    expect(inserts.length).toBeGreaterThanOrEqual(2);
    expect(inserts[0].idempotencyKey).toEqual(expect.any(String));
    expect(new Set(inserts.map((call) => call.idempotencyKey))).toEqual(new Set([inserts[0].idempotencyKey]));
    expect(device.repeatedCalls).toHaveLength(inserts.length - 1);
    await waitUntil(() => device!.store.rows('tasks').length > 0, 30_000);
    expect(device.store.rows('tasks').map((row) => row.title)).toHaveLength(1);
  }, 180_000);
});
