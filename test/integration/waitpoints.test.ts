import { randomUUID } from 'node:crypto';
import path from 'node:path';
import os from 'node:os';
import { Worker } from 'bullmq';
import { CancelSignals } from '../../src/lib/cancel-signals';
import { createLogger } from '../../src/lib/logger';
import { duplicateRedis, type RedisConnections } from '../../src/lib/redis';
import { createRepositories, type Repositories } from '../../src/models';
import { openDatabase, type Database } from '../../src/models/database';
import type { RunRow, WaitpointRow } from '../../src/models/schema';
import { bullPrefix, QueueRegistry } from '../../src/producers/registry';
import type { RunOutcome } from '../../src/runs/outcome';
import { RunKernel, WAITPOINT_DEADLINE_JOB, type RunHandle, type RunKindSpec } from '../../src/runs/run-kernel';
import { createTestDatabase, serverPostgresUrl, type TestDatabase } from '../support/database';
import { testRedisConnections } from '../support/redis';
import { eventually } from '../support/wait';

/** What a test kind saw: its continuations and terminal events. */
interface Seen {
  continued: Array<{ id: string; status: string; waitpoints: string[] }>;
  announced: Array<{ id: string; outcome: RunOutcome<string, number> }>;
}

/**
 * Waiting as a run state, on a real PostgreSQL server (completions race on separate connections)
 * and real Redis/BullMQ (a deadline's delayed job). Each test registers the `agent` kind on a
 * kernel of its own whose `continue` records what it was handed, under its own key prefix and ids.
 */
describe('waitpoints on the run kernel', () => {
  let testDb: TestDatabase;
  let database: Database;
  let other: Database;
  let repos: Repositories;
  let redis: RedisConnections;
  const closers: Array<() => Promise<unknown>> = [];
  const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

  beforeAll(async () => {
    testDb = await createTestDatabase({ server: serverPostgresUrl() });
    database = await openDatabase({ url: testDb.url, dataDir: path.join(os.tmpdir(), 'switchboard-waitpoints-test') });
    // A second pool stands for another process on the same stores.
    other = await openDatabase({ url: testDb.url, dataDir: path.join(os.tmpdir(), 'switchboard-waitpoints-test') });
    repos = createRepositories(database.db);
    redis = testRedisConnections();
    await redis.ready();
  }, 60_000);

  afterAll(async () => {
    for (const close of closers.reverse()) await close();
    await redis?.quit();
    await other?.close();
    await database?.close();
    await testDb?.drop();
  });

  function kernelWithKind(options: { db?: Database; keyPrefix?: string; seen?: Seen } = {}) {
    const keyPrefix = options.keyPrefix ?? `waitpoints-${randomUUID().slice(0, 8)}`;
    const queues = new QueueRegistry(redis.queues.command, keyPrefix);
    const signals = new CancelSignals(redis.realtime.command, keyPrefix, logger);
    closers.push(
      () => signals.close(),
      () => queues.close(),
    );
    const own = options.db ? createRepositories(options.db.db) : repos;
    const kernel = new RunKernel({ runs: own.runs, waitpoints: own.waitpoints, queues, signals, logger });
    const seen: Seen = options.seen ?? { continued: [], announced: [] };
    const spec: RunKindSpec<string, number, never, string> = {
      kind: 'agent',
      queue: 'agent-runs',
      jobId: (id) => `run-${id}`,
      interrupted: { code: 'interrupted', message: 'The run stopped with its worker' },
      releases: [],
      authorizeCancel: async () => ({ status: 'open' }),
      persist: async (_tx, run) => `persisted ${run.status}`,
      announce: async (run, outcome) => void seen.announced.push({ id: run.id, outcome }),
      continue: async (run: RunRow, waitpoints: readonly WaitpointRow[]) =>
        void seen.continued.push({ id: run.id, status: run.status, waitpoints: waitpoints.map((w) => w.id) }),
    };
    const runs = kernel.register(spec);
    return { kernel, runs, queues, seen, keyPrefix };
  }

  /** A run its worker holds. */
  const runningRun = async (runs: RunHandle<string, number, never, string>) => {
    const id = randomUUID();
    const userId = randomUUID();
    await runs.create({ id, userId });
    await runs.start(id);
    return { id, userId };
  };

  const approval = (userId: string) => ({ kind: 'approval' as const, userId, idempotencyKey: `approval:${randomUUID()}` });

  test('given a running run parked on an approval, it waits; only its owner completes it, once, and the run goes on exactly once', async () => {
    const { kernel, runs, seen } = kernelWithKind();
    const { id, userId } = await runningRun(runs);

    const parked = await runs.wait(id, [approval(userId)]);
    expect(parked).toMatchObject({ state: 'waiting', run: { status: 'waiting' } });
    const [waitpoint] = parked.waitpoints;
    expect(waitpoint).toMatchObject({ kind: 'approval', status: 'pending', runKind: 'agent', runId: id, userId });

    // Another user: 404, and nothing moves.
    await expect(kernel.completeWaitpoint(waitpoint.id, randomUUID(), { approved: true })).rejects.toMatchObject({
      status: 404,
      code: 'not_found',
    });
    await expect(kernel.completeWaitpoint(randomUUID(), userId)).rejects.toMatchObject({ status: 404 });
    await expect(repos.runs.find('agent', id)).resolves.toMatchObject({ status: 'waiting' });
    expect(seen.continued).toEqual([]);

    await expect(kernel.completeWaitpoint(waitpoint.id, userId, { approved: true })).resolves.toMatchObject({
      continued: true,
      waitpoint: { status: 'completed', output: { approved: true }, completedBy: userId },
    });
    await expect(repos.runs.find('agent', id)).resolves.toMatchObject({ status: 'queued' });
    expect(seen.continued).toEqual([{ id, status: 'queued', waitpoints: [waitpoint.id] }]);

    // Completed twice: 409, the run does not go on again.
    await expect(kernel.completeWaitpoint(waitpoint.id, userId, { approved: false })).rejects.toMatchObject({
      status: 409,
      code: 'already_completed',
    });
    expect(seen.continued).toHaveLength(1);
    // Its new job takes it on.
    await expect(runs.start(id)).resolves.toMatchObject({ started: true, run: { status: 'running' } });
  });

  test('given a run waiting on several waitpoints completed at once from two processes, it goes on once, after the last', async () => {
    const seen: Seen = { continued: [], announced: [] };
    const here = kernelWithKind({ seen });
    const there = kernelWithKind({ db: other, keyPrefix: here.keyPrefix, seen });
    for (let round = 0; round < 5; round++) {
      const { id, userId } = await runningRun(here.runs);
      const { waitpoints } = await here.runs.wait(id, [approval(userId), approval(userId), approval(userId)]);
      await here.kernel.completeWaitpoint(waitpoints[0].id, userId);
      await expect(repos.runs.find('agent', id)).resolves.toMatchObject({ status: 'waiting' });

      const results = await Promise.all([
        here.kernel.completeWaitpoint(waitpoints[1].id, userId),
        there.kernel.completeWaitpoint(waitpoints[2].id, userId),
      ]);
      expect(results.filter((result) => result.continued)).toHaveLength(1);
      const continued = seen.continued.filter((entry) => entry.id === id);
      expect(continued).toHaveLength(1);
      expect(continued[0].waitpoints.sort()).toEqual(waitpoints.map((w) => w.id).sort());
      await expect(repos.runs.find('agent', id)).resolves.toMatchObject({ status: 'queued' });
    }
  });

  test('given a waitpoint completed before its run parked, the park goes on at once', async () => {
    const { kernel, runs, seen } = kernelWithKind();
    const { id, userId } = await runningRun(runs);
    const [early] = await runs.block(id, [approval(userId)]);
    // Decided while the worker still held the run: nothing moves yet.
    await expect(kernel.completeWaitpoint(early.id, userId)).resolves.toMatchObject({ continued: false });
    await expect(repos.runs.find('agent', id)).resolves.toMatchObject({ status: 'running' });

    await expect(runs.wait(id)).resolves.toMatchObject({ state: 'continued', run: { status: 'queued' } });
    expect(seen.continued).toEqual([{ id, status: 'queued', waitpoints: [early.id] }]);
  });

  test('given a cancel requested before the park, the run does not wait: the park is refused and nothing is created', async () => {
    const { runs } = kernelWithKind();
    const { id, userId } = await runningRun(runs);
    await repos.runs.requestCancel('agent', id, userId);
    await expect(runs.wait(id, [approval(userId)])).resolves.toMatchObject({ state: 'refused', run: { status: 'running' } });
    await expect(repos.waitpoints.ofRun('agent', id)).resolves.toEqual([]);
  });

  test('given a waiting run, cancel ends it at once; a completion after it does not bring it back', async () => {
    const { kernel, runs, seen } = kernelWithKind();
    const { id, userId } = await runningRun(runs);
    const { waitpoints } = await runs.wait(id, [approval(userId)]);

    await runs.cancel(id, { userId });
    await expect(repos.runs.find('agent', id)).resolves.toMatchObject({ status: 'cancelled' });
    expect(seen.announced).toEqual([{ id, outcome: { status: 'cancelled' } }]);

    await expect(kernel.completeWaitpoint(waitpoints[0].id, userId)).resolves.toMatchObject({ continued: false });
    await expect(repos.runs.find('agent', id)).resolves.toMatchObject({ status: 'cancelled' });
    expect(seen.continued).toEqual([]);
  });

  test('given a completion racing a cancel, the run ends cancelled exactly once', async () => {
    const seen: Seen = { continued: [], announced: [] };
    const here = kernelWithKind({ seen });
    const there = kernelWithKind({ db: other, keyPrefix: here.keyPrefix, seen });
    for (let round = 0; round < 8; round++) {
      const { id, userId } = await runningRun(here.runs);
      const { waitpoints } = await here.runs.wait(id, [approval(userId)]);
      await Promise.all([here.kernel.completeWaitpoint(waitpoints[0].id, userId), there.runs.cancel(id, { userId })]);
      // Went on first (queued): its continuation's job, finding the cancel requested, ends it (as a worker's begin does).
      const row = await repos.runs.find('agent', id);
      if (row?.status === 'queued') await here.runs.end(id, { status: 'cancelled' });
      await expect(repos.runs.find('agent', id)).resolves.toMatchObject({ status: 'cancelled' });
      expect(seen.announced.filter((event) => event.id === id)).toEqual([{ id, outcome: { status: 'cancelled' } }]);
      // A late job of a continuation cannot start it.
      await expect(here.runs.start(id)).resolves.toMatchObject({ started: false });
    }
  });

  test('given a restart while a run waits (a new kernel on the same stores), the completion still continues it, and recovery leaves it alone', async () => {
    const first = kernelWithKind();
    const { id, userId } = await runningRun(first.runs);
    const { waitpoints } = await first.runs.wait(id, [approval(userId)]);

    const restarted = kernelWithKind({ db: other, keyPrefix: first.keyPrefix });
    // Recovery after the grace: a waiting run is not a lost one.
    await restarted.kernel.recover(new Date(Date.now() + 60_000), 100);
    await expect(repos.runs.find('agent', id)).resolves.toMatchObject({ status: 'waiting' });
    expect(restarted.seen.announced.filter((event) => event.id === id)).toEqual([]);

    await restarted.kernel.completeWaitpoint(waitpoints[0].id, userId, { approved: true });
    expect(restarted.seen.continued).toEqual([{ id, status: 'queued', waitpoints: [waitpoints[0].id] }]);
  });

  test('given a deadline waitpoint, its delayed job completes it at its time and the run goes on', async () => {
    const { kernel, runs, seen, keyPrefix } = kernelWithKind();
    const connection = duplicateRedis(redis.queues.command, { maxRetriesPerRequest: null, enableOfflineQueue: true });
    const worker = new Worker(
      'assistant',
      async (job) => {
        if (job.name !== WAITPOINT_DEADLINE_JOB) throw new Error(`unexpected job ${job.name}`);
        return kernel.completeDeadline((job.data as { waitpointId: string }).waitpointId);
      },
      { connection, prefix: bullPrefix(keyPrefix) },
    );
    closers.push(
      () => worker.close(),
      () => connection.quit(),
    );
    const { id, userId } = await runningRun(runs);
    const at = new Date(Date.now() + 400);
    const { waitpoints } = await runs.wait(id, [{ kind: 'deadline', userId, idempotencyKey: `deadline:${id}`, completeAfter: at }]);
    expect(waitpoints[0]).toMatchObject({ kind: 'deadline', status: 'pending' });
    await expect(repos.runs.find('agent', id)).resolves.toMatchObject({ status: 'waiting' });

    await eventually(
      async () => seen.continued,
      (continued) => continued.length === 1,
      10_000,
    );
    const completed = await repos.waitpoints.find(waitpoints[0].id);
    expect(completed).toMatchObject({ status: 'completed', output: { timedOut: true }, completedBy: null });
    expect(completed!.completedAt!.getTime()).toBeGreaterThanOrEqual(at.getTime() - 50);
  });

  test('given a deadline whose delayed job was lost, recovery completes it and the run goes on', async () => {
    const { kernel, runs, queues, seen } = kernelWithKind();
    const { id, userId } = await runningRun(runs);
    const { waitpoints } = await runs.wait(id, [
      { kind: 'deadline', userId, idempotencyKey: `deadline:${id}`, completeAfter: new Date(Date.now() + 50) },
    ]);
    // Redis lost the job (no worker runs here either).
    await queues.remove('assistant', `waitpoint-deadline-${waitpoints[0].id}`);
    await eventually(async () => (await repos.waitpoints.listOverdue(1000)).some((row) => row.id === waitpoints[0].id), Boolean, 5_000);

    await kernel.recover(new Date(), 1000);
    await expect(repos.waitpoints.find(waitpoints[0].id)).resolves.toMatchObject({ status: 'completed' });
    expect(seen.continued).toEqual([{ id, status: 'queued', waitpoints: [waitpoints[0].id] }]);
  });
});
