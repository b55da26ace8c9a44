import { DeviceSimulator } from '@switchboard/client/testing';
import { LEASE_RECOVERY_MS, LONG_JOB_LOCKS, recoveredAfter, useCluster } from '../support/cluster';
import { registerUser } from '../support/http';
import { waitUntil, within } from '../support/wait';
import { loggedAt } from '../support/processes';

/**
 * kill -9 of the worker running an assistant turn right after its `create_task` reached the device:
 * the new worker started next finds the dead one's lapsed worker lease and runs the job again
 * well before its lock (a minute here) could lapse, repeating the turn's calls. Each call
 * carries an idempotency key stable across re-runs (decision 0078), so the device answers the
 * repeated insert from memory: one task, not two.
 *
 */
describe('an assistant turn re-run after its worker died', () => {
  const cluster = useCluster('rerun', { ...LONG_JOB_LOCKS, DEMO_LLM_DELAY_MS: '300', LOG_LEVEL: 'info' });
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
    let killedAt = 0;
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
        killedAt = Date.now();
        killed();
      },
    });
    const final = new Promise<{ response: string }>((resolve) => device!.socket.once('final', resolve));
    await device.socket.timeout(30_000).emitWithAck('chat_request', { message: 'Create a task called Buy oat milk' });
    await within(workerKilled, 60_000, 'the insert reached the device');
    const replacement = await cluster.spawn({ SWITCHBOARD_ROLES: 'worker' });
    const replacementUpAt = Date.now();

    await within(final, 90_000, 'the re-run turn sent its final answer');
    // Resumed through the lease.
    expect(recoveredAfter(loggedAt(replacement, ['assistant turn started'])!, killedAt, replacementUpAt)).toBeLessThan(LEASE_RECOVERY_MS);
    // Two inserts at least: the dead worker's and the re-run's; any further run's insert carries the same key too.
    const inserts = device.calls.filter((call) => call.action === 'insert');
    expect(inserts.length).toBeGreaterThanOrEqual(2);
    expect(inserts[0].idempotencyKey).toEqual(expect.any(String));
    expect(new Set(inserts.map((call) => call.idempotencyKey))).toEqual(new Set([inserts[0].idempotencyKey]));
    expect(device.repeatedCalls).toHaveLength(inserts.length - 1);
    await waitUntil(() => device!.store.rows('tasks').length > 0, 30_000);
    expect(device.store.rows('tasks').map((row) => row.title)).toHaveLength(1);
  }, 180_000);
});
