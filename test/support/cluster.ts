import { randomUUID } from 'node:crypto';
import { createTestDatabase, serverPostgresUrl, testRedisEnv, type TestDatabase } from './database';
import { createCanvas, registerUser } from './http';
import { spawnSwitchboard, type SwitchboardProcess } from './processes';
import { connectCanvas, join, record, type CanvasClient } from './sockets';
import { readSse, type SseResult } from './sse';

/**
 * Several Switchboard processes sharing one fresh PostgreSQL database (PGlite lives inside one
 * process, so clusters use the server) and one Redis key prefix. Call inside a `describe`: it
 * registers the hooks that create the database and, whatever happens, kill every process and drop it.
 */
export function useCluster(
  name: string,
  env: Record<string, string> = {},
  options: {
    /** The processes' Redis settings (read at each spawn): default the run's Redis (or its cluster, see testRedisEnv). */
    redis?: () => Record<string, string>;
  } = {},
) {
  let database: TestDatabase | undefined;
  const processes: SwitchboardProcess[] = [];
  const prefix = `${name}-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    database = await createTestDatabase({ server: serverPostgresUrl(), migrated: true });
  });

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await database?.drop();
  });

  return {
    /**
     * Stops (kill -9) every process started so far: a test that counts on which processes run
     * starts from none, whatever an earlier test of the file left running.
     */
    async stopAll(): Promise<void> {
      await Promise.all(processes.splice(0).map((p) => p.stop('SIGKILL')));
    },
    /** The shared database's URL (for tests that read or set rows directly). */
    databaseUrl: () => database!.url,
    /** The shared Redis key prefix. */
    keyPrefix: prefix,
    /** Starts one process with the cluster's shared settings plus `extra`; resolves on its banner. */
    async spawn(extra: Record<string, string>): Promise<SwitchboardProcess> {
      const started = await spawnSwitchboard({
        ...(options.redis ?? testRedisEnv)(),
        REDIS_KEY_PREFIX: prefix,
        DATABASE_URL: database!.url,
        JWT_SECRET: `${name}-cluster-secret-0123456789-0123456789`,
        ...env,
        ...extra,
      });
      processes.push(started);
      return started;
    },
    /**
     * The given of the worker fault tests: an API node and two worker processes, a user with a
     * canvas, and two clients in its room recording every `blocks_bulk_added_chunk`. The caller
     * closes the clients.
     */
    async apiWorkersAndWatchers(userName: string) {
      const [api, workerA, workerB] = await Promise.all([
        this.spawn({ SWITCHBOARD_ROLES: 'api', PORT: '0' }),
        this.spawn({ SWITCHBOARD_ROLES: 'worker' }),
        this.spawn({ SWITCHBOARD_ROLES: 'worker' }),
      ]);
      const base = `${api.url}/api/v1`;
      const user = await registerUser(base, userName);
      const canvasId = await createCanvas(base, user);
      const clients: CanvasClient[] = await Promise.all([
        connectCanvas(api.url!, user.accessToken),
        connectCanvas(api.url!, user.accessToken),
      ]);
      await Promise.all(clients.map((client) => join(client, canvasId)));
      const received = clients.map((client) => record(client, 'blocks_bulk_added_chunk'));
      return { api, workerA, workerB, base, user, canvasId, clients, received };
    },
  };
}

/**
 * Asks for a generation over SSE and, at its first `tool_output`, kills with SIGKILL the worker
 * that logged its start. Returns the stream as it ended (on `complete` or `error`), the worker
 * killed (undefined when none matched), when (epoch ms) and the other one.
 */
export async function generateKillingItsWorker(
  base: string,
  token: string,
  canvasId: string,
  workers: [SwitchboardProcess, SwitchboardProcess],
  prompt: string,
): Promise<{ sse: SseResult; killed: SwitchboardProcess | undefined; killedAt: number; survivor: SwitchboardProcess }> {
  let killed: SwitchboardProcess | undefined;
  let killedAt = 0;
  const sse = await readSse(`${base}/canvases/${canvasId}/ai/generate-stream`, {
    method: 'POST',
    token,
    body: { prompt },
    timeoutMs: 60_000,
    until: (m) => m.event === 'complete' || m.event === 'error',
    onMessage: (message) => {
      if (killed || message.event !== 'tool_output') return;
      const generationId = message.data.generationId;
      killed = workers.find((w) => w.output().includes('generation started') && w.output().includes(generationId));
      killed?.child.kill('SIGKILL');
      if (killed) killedAt = Date.now();
    },
  });
  return { sse, killed, killedAt, survivor: killed === workers[0] ? workers[1] : workers[0] };
}

/**
 * How long a run took to come back after its worker's kill -9: counted from the kill, or from the
 * replacement worker being up when booting it took longer (a supervisor's restart on a host that
 * two test workers keep busy; the benchmark's recovery scenario times the whole path on a quiet one).
 */
export function recoveredAfter(at: number, killedAt: number, replacementUpAt: number): number {
  return at - Math.max(killedAt, replacementUpAt);
}

/**
 * The job locks of the worker kill tests: a minute. A worker renews its jobs' locks every half
 * lock, so a killed worker's locks lapse no sooner than 30 s after the kill, and a job back within
 * {@link LEASE_RECOVERY_MS} came back through the dead process's lapsed worker lease, not through
 * its lock and BullMQ's stall check.
 */
export const LONG_JOB_LOCKS = { WORKER_LOCK_MS: '60000' };
/**
 * How soon after a kill -9 the worker kill tests want the job back: the lease (6 s) and a beat,
 * plus what a host that runs the whole suite on two cores adds to each step.
 */
export const LEASE_RECOVERY_MS = 25_000;
