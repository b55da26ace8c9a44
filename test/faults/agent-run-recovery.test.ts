import { DeviceSimulator } from '@switchboard/client/testing';
import { Client } from 'pg';
import { bullPrefix } from '../../src/producers/registry';
import { useCluster } from '../support/cluster';
import { registerUser, request } from '../support/http';
import { TestQueue } from '../support/redis';
import { eventually, within } from '../support/wait';

/**
 * kill -9 of the only worker while an agent run waits on its device, and its job then lost (Redis
 * lost it, or it failed past the stall limit): the next worker's reaper recovers the run through
 * the run kernel. The run ends `failed` (`interrupted`) on the kernel and `error` on its row, once.
 */
describe('an agent run whose worker was killed', () => {
  const cluster = useCluster('agent-recovery', { WORKER_LOCK_MS: '2000', REAPER_GRACE_MS: '500', REAPER_INTERVAL_MS: '300' });
  let device: DeviceSimulator | undefined;

  afterAll(() => device?.close());

  test('is recovered through the run kernel: `failed`/`interrupted` on its run, `error` on its row', async () => {
    const [api, worker] = await Promise.all([
      cluster.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0' }),
      cluster.spawn({ SWITCHBOARD_ROLES: 'worker' }),
    ]);
    const base = `${api.url}/api/v1`;
    const user = await registerUser(base, 'AgentRecovery');
    const created = await request('POST', `${base}/agents/local`, {
      token: user.accessToken,
      body: {
        name: 'Notes',
        deviceId: 'laptop-agent-recovery',
        directoryPaths: ['/Users/ana/Notes'],
        dataTypes: ['tasks'],
        promptTemplate: 'Extract tasks. Lines starting with TODO are tasks.',
        fileExtensions: ['.txt'],
      },
    });
    expect(created.status).toBe(201);
    let onRead!: () => void;
    const read = new Promise<void>((resolve) => (onRead = resolve));
    device = await DeviceSimulator.connect({
      url: api.url!,
      accessToken: user.accessToken,
      deviceId: 'laptop-agent-recovery',
      connectTimeoutMs: 30_000,
      // The run's worker waits here for the files: it is killed meanwhile.
      readAgentFiles: () => {
        onRead();
        return new Promise(() => undefined);
      },
    });

    const started = await request('POST', `${base}/agents/${created.body.id}/run`, { token: user.accessToken });
    expect(started.status).toBe(202);
    const runId = started.body.runId as string;
    await within(read, 60_000, 'the worker asked the device for its files');
    worker.child.kill('SIGKILL');

    // The job is lost: once its lock has expired (no worker renews it) it can be removed.
    const queue = new TestQueue('agent-runs', bullPrefix(cluster.keyPrefix));
    const db = new Client({ connectionString: cluster.databaseUrl() });
    await db.connect();
    try {
      const lose = () =>
        queue.remove(`run-${runId}`).then(
          (removed) => removed === 1,
          (error: unknown) => {
            // Still locked by the dead worker until its lock expires: asked again.
            if (/locked/i.test(String(error))) return false;
            throw error;
          },
        );
      await eventually(lose, Boolean, 30_000);
      const before = await db.query('select status from runs where kind = $1 and id = $2', ['agent', runId]);
      expect(before.rows[0]).toMatchObject({ status: 'running' });

      await cluster.spawn({ SWITCHBOARD_ROLES: 'worker' });
      const run = await eventually(
        async () =>
          (
            (await request('GET', `${base}/agents/runs?agentId=${created.body.id}`, { token: user.accessToken })).body.runs as Array<
              Record<string, any>
            >
          ).find((row) => row.id === runId),
        (row) => row?.completedAt != null,
        60_000,
      );
      expect(run).toMatchObject({ status: 'error', errors: ['interrupted: the run stopped without finishing'] });
      const after = await db.query('select status, error_code from runs where kind = $1 and id = $2', ['agent', runId]);
      expect(after.rows[0]).toMatchObject({ status: 'failed', error_code: 'interrupted' });
      // Ended once: the owner's cancel now finds it ended.
      expect((await request('POST', `${base}/agents/runs/${runId}/cancel`, { token: user.accessToken })).status).toBe(409);
    } finally {
      await db.end();
      await queue.close();
    }
  }, 240_000);
});
