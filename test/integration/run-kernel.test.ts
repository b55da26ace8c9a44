import { randomUUID } from 'node:crypto';
import path from 'node:path';
import os from 'node:os';
import { Worker } from 'bullmq';
import { CancelSignals } from '../../src/lib/cancel-signals';
import { createLogger } from '../../src/lib/logger';
import { duplicateRedis, type RedisConnections } from '../../src/lib/redis';
import { createRepositories, type Repositories } from '../../src/models';
import { openDatabase, type Database } from '../../src/models/database';
import type { RunRow } from '../../src/models/schema';
import { bullPrefix, QueueRegistry } from '../../src/producers/registry';
import type { RunOutcome } from '../../src/runs/outcome';
import { RunKernel, type RunHandle } from '../../src/runs/run-kernel';
import { allowedFrom, canMove, TRANSITIONS, type RunStatus } from '../../src/runs/transitions';
import { createTestDatabase, serverPostgresUrl, type TestDatabase } from '../support/database';
import { testRedisConnections } from '../support/redis';

/** What a test kind saw: its persists, terminal events and releases, in order. */
interface Seen {
  persisted: Array<{ id: string; status: RunStatus }>;
  announced: Array<{ id: string; outcome: RunOutcome<string, number> }>;
  released: string[];
}

const STATUSES = Object.keys(TRANSITIONS) as RunStatus[];

describe('the run state machine', () => {
  test('a terminal status has no way out, and an open run can reach every terminal status', () => {
    for (const terminal of ['succeeded', 'failed', 'cancelled', 'timed_out'] as const) {
      for (const to of STATUSES) expect(canMove(terminal, to)).toBe(false);
      expect(allowedFrom(terminal).sort()).toEqual(terminal === 'succeeded' ? ['queued', 'running'] : ['queued', 'running', 'waiting']);
    }
    expect(canMove('queued', 'running')).toBe(true);
    expect(canMove('running', 'queued')).toBe(false);
    // A run waits only from running, and goes on from waiting only to queued (its new job starts it).
    expect(allowedFrom('waiting')).toEqual(['running']);
    expect(allowedFrom('queued')).toEqual(['waiting']);
    expect(canMove('waiting', 'running')).toBe(false);
    expect(canMove('waiting', 'succeeded')).toBe(false);
  });
});

/**
 * The kernel over a real PostgreSQL server (two ends race on separate connections), real Redis and
 * BullMQ. Each test registers the `agent` kind on a kernel of its own, with hooks that record what
 * they were asked to do, and uses its own key prefix and run ids.
 */
describe('the run kernel', () => {
  let testDb: TestDatabase;
  let database: Database;
  let repos: Repositories;
  let redis: RedisConnections;
  const opened: Array<{ queues: QueueRegistry; signals: CancelSignals }> = [];
  const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

  beforeAll(async () => {
    testDb = await createTestDatabase({ server: serverPostgresUrl() });
    database = await openDatabase({ url: testDb.url, dataDir: path.join(os.tmpdir(), 'switchboard-run-kernel-test') });
    repos = createRepositories(database.db);
    // Queues, cancel signals and event logs each on its concern's Redis, as in the app.
    redis = testRedisConnections();
    await redis.ready();
  }, 60_000);

  afterAll(async () => {
    for (const { queues, signals } of opened) {
      await signals.close();
      await queues.close();
    }
    await redis?.quit();
    await database?.close();
    await testDb?.drop();
  });

  /** A kernel with the `agent` kind registered, under a key prefix of its own. */
  function kernelWithKind(): {
    runs: RunHandle<string, number, never, string>;
    kernel: RunKernel;
    queues: QueueRegistry;
    seen: Seen;
    keyPrefix: string;
  } {
    const keyPrefix = `run-kernel-${randomUUID().slice(0, 8)}`;
    const queues = new QueueRegistry(redis.queues.command, keyPrefix);
    const signals = new CancelSignals(redis.realtime.command, keyPrefix, logger);
    opened.push({ queues, signals });
    const kernel = new RunKernel({ runs: repos.runs, queues, signals, logger });
    const seen: Seen = { persisted: [], announced: [], released: [] };
    const runs = kernel.register<string, number, never, string>({
      kind: 'agent',
      queue: 'agent-runs',
      jobId: (id) => `run-${id}`,
      interrupted: { code: 'interrupted', message: 'The run stopped with its worker' },
      releases: [{ name: 'slot', release: async (run: RunRow) => void seen.released.push(run.id) }],
      authorizeCancel: async (_id, actor) => {
        if (actor.userId === 'not-the-owner') throw new Error('not yours');
        return { status: 'running' };
      },
      persist: async (_tx, run) => {
        seen.persisted.push({ id: run.id, status: run.status });
        return `persisted ${run.status}`;
      },
      announce: async (run, outcome) => void seen.announced.push({ id: run.id, outcome }),
    });
    return { runs, kernel, queues, seen, keyPrefix };
  }

  const newRun = async (runs: RunHandle<string, number, never, string>) => {
    const id = randomUUID();
    const userId = randomUUID();
    await runs.create({ id, userId });
    return { id, userId };
  };

  test('given an ended run, every later move is refused and nothing is persisted, released or announced again', async () => {
    const { runs, seen } = kernelWithKind();
    const { id } = await newRun(runs);
    await expect(runs.start(id)).resolves.toMatchObject({ started: true, run: { status: 'running' } });

    const first = await runs.end(id, { status: 'succeeded', result: 'done' });
    expect(first).toMatchObject({ won: true, run: { status: 'succeeded' }, persisted: 'persisted succeeded' });

    for (const outcome of [
      { status: 'failed', code: 'x', message: 'late' },
      { status: 'cancelled' },
      { status: 'timed_out', message: 'late' },
      { status: 'succeeded', result: 'again' },
    ] as const) {
      const later = await runs.end(id, outcome);
      expect(later).toMatchObject({ won: false, run: { status: 'succeeded' } });
    }
    await expect(runs.start(id)).resolves.toMatchObject({ started: false, run: { status: 'succeeded' } });
    expect(seen.persisted).toEqual([{ id, status: 'succeeded' }]);
    expect(seen.released).toEqual([id]);
    expect(seen.announced).toEqual([{ id, outcome: { status: 'succeeded', result: 'done' } }]);
  });

  test('given two processes ending the same run at once, exactly one wins and exactly one terminal event is emitted', async () => {
    const { runs, queues, seen } = kernelWithKind();
    // A second connection pool stands for the other node.
    const other = await openDatabase({ url: testDb.url, dataDir: path.join(os.tmpdir(), 'switchboard-run-kernel-test') });
    try {
      const otherKernel = new RunKernel({
        runs: createRepositories(other.db).runs,
        queues,
        signals: { request: async () => undefined },
        logger,
      });
      const otherRuns = otherKernel.register({ ...runs.spec });
      for (let round = 0; round < 10; round++) {
        const { id } = await newRun(runs);
        await runs.start(id);
        const results = await Promise.all([
          runs.end(id, { status: 'succeeded', result: 'mine' }),
          otherRuns.end(id, { status: 'cancelled', usage: 3 }),
        ]);
        expect(results.filter((result) => result.won)).toHaveLength(1);
        expect(seen.announced.filter((event) => event.id === id)).toHaveLength(1);
        expect(seen.released.filter((released) => released === id)).toHaveLength(1);
        const row = await repos.runs.find('agent', id);
        expect(row?.status).toBe(seen.announced.find((event) => event.id === id)?.outcome.status);
      }
    } finally {
      await other.close();
    }
  });

  test('given a cancel requested while the run ran, it cannot succeed: the success is refused and a cancel end wins', async () => {
    const { runs, seen } = kernelWithKind();
    const { id, userId } = await newRun(runs);
    await runs.start(id);

    const requested = await repos.runs.requestCancel('agent', id, userId);
    expect(requested?.cancelRequestedAt).toBeInstanceOf(Date);

    await expect(runs.end(id, { status: 'succeeded', result: 'too late' })).resolves.toMatchObject({
      won: false,
      run: { status: 'running' },
    });
    await expect(runs.end(id, { status: 'cancelled', usage: 12 })).resolves.toMatchObject({ won: true, run: { status: 'cancelled' } });
    expect(seen.announced).toEqual([{ id, outcome: { status: 'cancelled', usage: 12 } }]);
  });

  test('given a run whose job still waits in its queue, cancel takes the job off and ends the run there, without a worker', async () => {
    const { runs, queues, seen } = kernelWithKind();
    const { id, userId } = await newRun(runs);
    await queues.get('agent-runs').add('run', { id }, { jobId: `run-${id}` });

    const requested = await runs.cancel(id, { userId });

    expect(requested.status).toBe('queued');
    await expect(queues.job('agent-runs', `run-${id}`)).resolves.toBeUndefined();
    await expect(repos.runs.find('agent', id)).resolves.toMatchObject({ status: 'cancelled', cancelRequestedBy: userId });
    expect(seen.announced).toEqual([{ id, outcome: { status: 'cancelled' } }]);
    expect(seen.released).toEqual([id]);
    // Asked again once ended: 409 `not_running`, nothing ends twice.
    await expect(runs.cancel(id, { userId })).rejects.toMatchObject({ status: 409, code: 'not_running' });
    expect(seen.announced).toHaveLength(1);
  });

  test('given a run a worker holds, cancel records the request and leaves the end to that worker', async () => {
    const { runs, queues, seen, keyPrefix } = kernelWithKind();
    const { id, userId } = await newRun(runs);
    let finish = () => undefined as void;
    const held = new Promise<void>((resolve) => (finish = resolve));
    let taken = () => undefined as void;
    const active = new Promise<void>((resolve) => (taken = resolve));
    const connection = duplicateRedis(redis.queues.command, { maxRetriesPerRequest: null, enableOfflineQueue: true });
    const worker = new Worker(
      'agent-runs',
      async () => {
        await runs.start(id);
        taken();
        await held;
      },
      { connection, prefix: bullPrefix(keyPrefix) },
    );
    try {
      await queues.get('agent-runs').add('run', { id }, { jobId: `run-${id}` });
      await active;

      await runs.cancel(id, { userId });

      await expect(repos.runs.find('agent', id)).resolves.toMatchObject({ status: 'running' });
      expect(seen.announced).toEqual([]);
      await expect(runs.end(id, { status: 'cancelled' })).resolves.toMatchObject({ won: true });
    } finally {
      finish();
      await worker.close();
      connection.disconnect();
    }
  });

  test('given a caller the kind does not authorize, cancel refuses before recording anything', async () => {
    const { runs } = kernelWithKind();
    const { id } = await newRun(runs);

    await expect(runs.cancel(id, { userId: 'not-the-owner' })).rejects.toThrow('not yours');

    await expect(repos.runs.find('agent', id)).resolves.toMatchObject({ status: 'queued', cancelRequestedAt: null });
  });

  test('given a subject that runs again, reopen starts a new run only once the last one has ended', async () => {
    const { runs } = kernelWithKind();
    const { id, userId } = await newRun(runs);

    await expect(runs.reopen({ id, userId })).resolves.toBe(false);
    await runs.end(id, { status: 'failed', code: 'broken', message: 'it broke' });
    await expect(runs.reopen({ id, userId })).resolves.toBe(true);

    await expect(repos.runs.find('agent', id)).resolves.toMatchObject({ status: 'queued', errorCode: null, endedAt: null });
  });

  test('given runs whose jobs are gone, recovery ends them (cancelled when asked, else failed `interrupted`) and leaves live ones', async () => {
    const { runs, kernel, queues, seen } = kernelWithKind();
    const lost = await newRun(runs);
    await runs.start(lost.id);
    const cancelledLost = await newRun(runs);
    await repos.runs.requestCancel('agent', cancelledLost.id, cancelledLost.userId);
    const live = await newRun(runs);
    await queues.get('agent-runs').add('run', { id: live.id }, { jobId: `run-${live.id}` });

    const report = await kernel.recover(new Date(Date.now() + 1_000), 1_000);

    expect(report.agent).toBeGreaterThanOrEqual(2);
    await expect(repos.runs.find('agent', lost.id)).resolves.toMatchObject({
      status: 'failed',
      errorCode: 'interrupted',
      errorMessage: 'The run stopped with its worker',
    });
    await expect(repos.runs.find('agent', cancelledLost.id)).resolves.toMatchObject({ status: 'cancelled' });
    await expect(repos.runs.find('agent', live.id)).resolves.toMatchObject({ status: 'queued' });
    expect(seen.announced.filter((event) => event.id === lost.id)).toEqual([
      { id: lost.id, outcome: { status: 'failed', code: 'interrupted', message: 'The run stopped with its worker' } },
    ]);
    expect(seen.released).toEqual(expect.arrayContaining([lost.id, cancelledLost.id]));
    expect(seen.released).not.toContain(live.id);

    // A second sweep (another node) finds nothing more to end.
    await kernel.recover(new Date(Date.now() + 1_000), 1_000);
    expect(seen.announced.filter((event) => event.id === lost.id)).toHaveLength(1);
  });
});
