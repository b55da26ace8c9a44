import { DeviceSimulator } from '@switchboard/client/testing';
import type { AgentFile } from '../../src/schemas/device-protocol';
import { LEASE_RECOVERY_MS, LONG_JOB_LOCKS, recoveredAfter, useCluster } from '../support/cluster';
import { registerUser, request } from '../support/http';
import { eventually, within } from '../support/wait';

const FILES: AgentFile[] = [
  {
    path: '/Users/ana/Notes/acme.txt',
    name: 'acme.txt',
    content: 'Call with ACME\nTODO: Send the revised quote\nTODO: Book the kickoff room\n',
  },
  { path: '/Users/ana/Notes/bob.md', name: 'bob.md', content: '# Bob\nAction: Ask Bob for the brand assets\n' },
];

/**
 * kill -9 of the workers while an agent run delivers its suggestions to the device: the fresh
 * worker started next finds their lapsed worker leases and runs the `agent-runs` job again, and the
 * run ends well before the job's lock (a minute here) could lapse. The re-run must not deliver the
 * suggestions a second time: it ends the run as `error` ("interrupted"), and the device holds only
 * what the first run inserted.
 */
describe('an agent run re-run after its worker died', () => {
  const cluster = useCluster('agent-rerun', { ...LONG_JOB_LOCKS, LOG_LEVEL: 'info' });
  let device: DeviceSimulator | undefined;

  afterAll(() => device?.close());

  test('ends as error instead of inserting the suggestions twice', async () => {
    const [api, workerA, workerB] = await Promise.all([
      cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0' }),
      cluster.spawn({ SWITCHBOARD_ROLES: 'worker' }),
      cluster.spawn({ SWITCHBOARD_ROLES: 'worker' }),
    ]);
    const base = `${api.url}/api/v1`;
    const user = await registerUser(base, 'AgentRerun');
    const created = await request('POST', `${base}/agents/local`, {
      token: user.accessToken,
      body: {
        name: 'Inbox folder',
        deviceId: 'laptop-agent-rerun',
        directoryPaths: ['/Users/ana/Notes'],
        dataTypes: ['tasks'],
        promptTemplate: 'Extract tasks. Lines starting with TODO or Action: are tasks.',
        fileExtensions: ['.txt', '.md'],
      },
    });
    expect(created.status).toBe(201);
    let crashed = false;
    let killedAt = 0;
    // The replacement worker's start, settled either way: a failed start is reported below as this
    // test's failure instead of surfacing as a stray rejection.
    let respawned: Promise<{ error?: Error; upAt?: number }> | undefined;
    let onCrash!: () => void;
    const crash = new Promise<void>((resolve) => (onCrash = resolve));
    device = await DeviceSimulator.connect({
      url: api.url!,
      accessToken: user.accessToken,
      deviceId: 'laptop-agent-rerun',
      connectTimeoutMs: 30_000,
      readAgentFiles: async () => ({ files: FILES }),
      onCall: (call) => {
        if (crashed || call.action !== 'insert') return;
        // The first suggestion reached the device: the worker delivering it dies (both are killed).
        crashed = true;
        workerA.child.kill('SIGKILL');
        workerB.child.kill('SIGKILL');
        killedAt = Date.now();
        respawned = cluster.spawn({ SWITCHBOARD_ROLES: 'worker' }).then(
          () => ({ upAt: Date.now() }),
          (error: unknown) => ({ error: error instanceof Error ? error : new Error(String(error)) }),
        );
        onCrash();
      },
    });

    const started = await request('POST', `${base}/agents/${created.body.id}/run`, { token: user.accessToken });
    expect(started.status).toBe(202);
    await within(crash, 60_000, 'the first suggestion reached the device');
    const restart = await respawned!;
    if (restart.error) throw restart.error;
    const runs = await eventually(
      async () =>
        (await request('GET', `${base}/agents/runs?agentId=${created.body.id}`, { token: user.accessToken })).body.runs as Array<
          Record<string, any>
        >,
      (list) => list.length > 0 && list.every((run) => run.completedAt !== null),
      90_000,
    );

    expect(crashed).toBe(true);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ id: started.body.runId, status: 'error' });
    expect(runs[0].errors).toEqual(expect.arrayContaining([expect.stringMatching(/^interrupted: the worker running this run stopped/)]));
    // Ended through the lease.
    expect(recoveredAfter(Date.parse(runs[0].completedAt), killedAt, restart.upAt!)).toBeLessThan(LEASE_RECOVERY_MS);
    expect(device.calls.filter((call) => call.action === 'insert')).toHaveLength(1);
    expect(device.store.rows('tasks')).toHaveLength(1);
  }, 240_000);
});
