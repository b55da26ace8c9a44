import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type { TierLimits } from '../../config';
import { DEFAULT_TIER_LIMITS } from '../../config/tiers';
import { BudgetDoor, type CallEstimate } from '../../src/budget/budget-door';
import { CancelSignals } from '../../src/lib/cancel-signals';
import { createLogger } from '../../src/lib/logger';
import type { RedisConnections } from '../../src/lib/redis';
import { RedisKeys } from '../../src/lib/redis-keys';
import { createRepositories, type Repositories } from '../../src/models';
import { openDatabase, type Database } from '../../src/models/database';
import { QueueRegistry } from '../../src/producers/registry';
import type { RunOutcome } from '../../src/runs/outcome';
import { RunHoldings } from '../../src/runs/run-holdings';
import { RunKernel, type RunHandle } from '../../src/runs/run-kernel';
import type { RunKindName } from '../../src/runs/transitions';
import { createTestDatabase, serverPostgresUrl, type TestDatabase } from '../support/database';
import { deleteKeysEverywhere, testRedisConnections } from '../support/redis';

const KINDS: RunKindName[] = ['generation', 'chat', 'notes', 'flow', 'agent', 'journey'];
const ENDS: RunOutcome<string, number>[] = [
  { status: 'succeeded', result: 'done' },
  { status: 'failed', code: 'boom', message: 'it failed' },
  { status: 'cancelled' },
  { status: 'timed_out', message: 'too slow' },
];
const estimate = (tokens: number): CallEstimate => ({ inputTokens: tokens, maxTokens: 100, costUsd: 0.001, requests: 1 });

/**
 * The budget reservations a run holds are given back by the run kernel on every terminal move of
 * every kind, whoever makes it (the runner's end, a cancel, the reaper's recovery), and only what no
 * model call took: a call's settled usage stays exactly as settled. Real PostgreSQL for the runs,
 * real Redis for the budget door's counts; the user's plan is a plain value, as in the door's own test.
 */
describe('the run kernel gives back what a run holds', () => {
  let testDb: TestDatabase;
  let database: Database;
  let repos: Repositories;
  let redis: RedisConnections;
  let limits: TierLimits;
  const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const opened: Array<{ queues: QueueRegistry; signals: CancelSignals; keyPrefix: string }> = [];

  beforeAll(async () => {
    testDb = await createTestDatabase({ server: serverPostgresUrl() });
    database = await openDatabase({ url: testDb.url, dataDir: path.join(os.tmpdir(), 'switchboard-run-holdings-test') });
    repos = createRepositories(database.db);
    redis = testRedisConnections();
    await redis.ready();
  }, 60_000);

  beforeEach(() => {
    limits = { ...DEFAULT_TIER_LIMITS.free, tokensPerMonth: 1_000_000 };
  });

  afterAll(async () => {
    for (const { queues, signals, keyPrefix } of opened) {
      await signals.close();
      await queues.close();
      await deleteKeysEverywhere(redis.cache.command, `${keyPrefix}:*`);
    }
    await redis?.quit();
    await database?.close();
    await testDb?.drop();
  });

  /** A kernel with `kind` registered and the holdings wired to a real budget door, under a key prefix of its own. */
  function kernelWith(kind: RunKindName, options: { cancelEndsAtOnce?: boolean } = {}) {
    const keyPrefix = `run-holdings-${randomUUID().slice(0, 8)}`;
    const queues = new QueueRegistry(redis.queues.command, keyPrefix);
    const signals = new CancelSignals(redis.realtime.command, keyPrefix, logger);
    opened.push({ queues, signals, keyPrefix });
    const door = new BudgetDoor({
      redis: redis.cache.command,
      keyPrefix,
      limits: { forUser: async () => ({ tier: 'free', limits, version: 1 }) },
      usage: { spentSince: async (_user, starts) => starts.map(() => ({ tokens: 0, requests: 0, costUsd: 0 })) },
      logger,
    });
    const holdings = new RunHoldings({ redis: redis.cache.command, keyPrefix, budget: door });
    const kernel = new RunKernel({ runs: repos.runs, queues, signals, logger, holdings });
    const announced: string[] = [];
    const runs: RunHandle<string, number, never, string> = kernel.register<string, number, never, string>({
      kind,
      queue: 'agent-runs',
      jobId: (id) => `holdings-${id}`,
      interrupted: { code: 'interrupted', message: 'The run stopped with its worker' },
      releases: [],
      authorizeCancel: async () => ({ status: 'running' }),
      persist: async (_tx, run) => `persisted ${run.status}`,
      announce: async (run) => void announced.push(run.id),
      ...options,
    });
    const held = async (id: string) => (await redis.cache.command.smembers(new RedisKeys(keyPrefix).runHoldings(kind, id))).length;
    return { kernel, runs, door, holdings, held, announced };
  }

  /** A run of the kind, queued, whose request reserved its first call, held by the run. */
  async function heldRun(setup: ReturnType<typeof kernelWith>, tokens = 500) {
    const id = randomUUID();
    const userId = randomUUID();
    await setup.runs.create({ id, userId });
    const reservationId = await setup.door.admit(userId, estimate(tokens));
    await setup.runs.hold(id, { userId, reservationId });
    expect((await setup.door.reserved(userId)).month.tokens).toBe(tokens + 100);
    expect(await setup.held(id)).toBe(1);
    return { id, userId, reservationId };
  }

  test.each(KINDS)('the %s kind: a run gives back its reservation on each of the four terminal moves', async (kind) => {
    const setup = kernelWith(kind);
    for (const outcome of ENDS) {
      const { id, userId } = await heldRun(setup);
      await setup.runs.start(id);
      const ended = await setup.runs.end(id, outcome);
      expect(ended).toMatchObject({ won: true, run: { status: outcome.status } });
      const counts = await setup.door.counts(userId);
      expect(counts.month.reserved).toEqual({ tokens: 0, requests: 0, microUsd: 0 });
      // Released whole: nothing counted as used for a reservation no call took.
      expect(counts.month.used).toEqual({ tokens: 0, requests: 0, microUsd: 0 });
      expect(await setup.held(id)).toBe(0);
    }
  });

  test.each(KINDS)('the %s kind: a run ended by crash recovery (its job is gone) gives back its reservation', async (kind) => {
    const setup = kernelWith(kind);
    const queued = await heldRun(setup);
    const running = await heldRun(setup);
    await setup.runs.start(running.id);
    const report = await setup.kernel.recover(new Date(Date.now() + 60_000), 100);
    expect(report[kind]).toBeGreaterThanOrEqual(2);
    for (const { id, userId } of [queued, running]) {
      expect(await setup.runs.find(id)).toMatchObject({ status: 'failed', errorCode: 'interrupted' });
      expect((await setup.door.counts(userId)).month.reserved.tokens).toBe(0);
      expect(await setup.held(id)).toBe(0);
    }
  });

  test('a reservation a model call took is settled by that call with what it used, and the end gives nothing back twice', async () => {
    const setup = kernelWith('generation');
    const { id, userId, reservationId } = await heldRun(setup, 1_000);
    await setup.runs.start(id);
    const ticket = { userId, reservationId };
    const call = await setup.door.forCall(ticket, () => estimate(1_000));
    expect(call?.id).toBe(reservationId);
    await setup.door.settle(call!, { inputTokens: 700, outputTokens: 50, costUsd: 0.0005, requests: 1 });
    // A second call of the run reserves its own and is still in flight when the run is cancelled.
    const second = await setup.door.forCall(ticket, () => estimate(200));
    await setup.runs.end(id, { status: 'cancelled' });
    const counts = await setup.door.counts(userId);
    expect(counts.month.used).toEqual({ tokens: 750, requests: 1, microUsd: 500 });
    // The in-flight call's reservation is its own: it settles it when it returns.
    expect(counts.month.reserved.tokens).toBe(300);
    await setup.door.settle(second!, { inputTokens: 200, outputTokens: 10, costUsd: 0, requests: 1 });
    expect(await setup.door.counts(userId)).toMatchObject({
      month: { used: { tokens: 960, requests: 2 }, reserved: { tokens: 0, requests: 0, microUsd: 0 } },
    });
  });

  test('a reservation held after its run ended (a worker that took a job of a run already reaped) is given back at once', async () => {
    const setup = kernelWith('chat');
    const id = randomUUID();
    const userId = randomUUID();
    await setup.runs.create({ id, userId });
    await setup.runs.end(id, { status: 'cancelled' });
    const reservationId = await setup.door.admit(userId, estimate(400));
    await setup.runs.hold(id, { userId, reservationId });
    expect((await setup.door.counts(userId)).month.reserved.tokens).toBe(0);
    expect(await setup.held(id)).toBe(0);
  });

  test("a run ended by its user's cancel request (the kernel's cancel path) gives back its reservation", async () => {
    const setup = kernelWith('flow', { cancelEndsAtOnce: true });
    const { id, userId } = await heldRun(setup);
    await setup.runs.start(id);
    await setup.runs.cancel(id, { userId });
    expect(await setup.runs.find(id)).toMatchObject({ status: 'cancelled' });
    expect((await setup.door.counts(userId)).month.reserved.tokens).toBe(0);
    expect(await setup.held(id)).toBe(0);
  });

  test('a parked run (waiting for its device) gives back what no call took, and stays open', async () => {
    const setup = kernelWith('agent');
    const { id, userId } = await heldRun(setup);
    await setup.runs.start(id);
    await setup.runs.park(id);
    expect((await setup.door.counts(userId)).month.reserved.tokens).toBe(0);
    expect(await setup.runs.find(id)).toMatchObject({ status: 'running' });
    expect(await setup.held(id)).toBe(0);
  });

  test('a run of a user without budget limits holds nothing, and its end is announced as any other', async () => {
    limits = { ...DEFAULT_TIER_LIMITS.free };
    const setup = kernelWith('notes');
    const id = randomUUID();
    const userId = randomUUID();
    await setup.runs.create({ id, userId });
    const reservationId = await setup.door.admit(userId, estimate(400));
    await setup.runs.hold(id, { userId, reservationId });
    expect(await setup.held(id)).toBe(0);
    await setup.runs.end(id, { status: 'succeeded', result: 'ok' });
    expect(setup.announced).toEqual([id]);
  });
});
