import { randomUUID } from 'node:crypto';
import { Worker, type Job } from 'bullmq';
import { createLogger } from '../../src/lib/logger';
import { redisKeys } from '../../src/lib/redis-keys';
import { QueueRegistry, bullPrefix } from '../../src/producers/registry';
import { startWorkers } from '../../src/workers/worker-pool';
import { WorkerLeases } from '../../src/workers/worker-leases';
import { testBullConnection } from '../support/redis';
import { waitUntil } from '../support/wait';

/**
 * The dead-worker detector against a real Redis and real BullMQ workers: a process whose lease
 * lapsed has its active jobs put back to waiting by the next beat of a live process, long before
 * the jobs' own locks (30 s here) would lapse; a live process's jobs are never touched.
 */
describe('WorkerLeases', () => {
  const logger = createLogger({ level: 'silent' });
  const connection = testBullConnection();
  let prefix: string;
  let registry: QueueRegistry;
  const workers: Worker[] = [];
  const leases: WorkerLeases[] = [];

  beforeEach(() => {
    prefix = `leases-${randomUUID().slice(0, 8)}`;
    registry = new QueueRegistry(connection, prefix);
  });

  afterEach(async () => {
    await Promise.all(workers.splice(0).map((worker) => worker.close(true)));
    await Promise.all(leases.splice(0).map((lease) => lease.stop()));
    await Promise.all(registry.all().map((queue) => queue.obliterate({ force: true })));
    await registry.close();
  });

  afterAll(() => connection.quit());

  const detector = (leaseMs = 60_000, identity?: string) => {
    const lease = new WorkerLeases({
      redis: connection,
      keyPrefix: prefix,
      queues: registry,
      queueNames: ['generation'],
      leaseMs,
      identity,
      logger,
    });
    leases.push(lease);
    return lease;
  };

  /** A BullMQ worker of `generation` under `workerName` whose jobs never finish; resolves each job as it starts. */
  function hangingWorker(workerName: string, started: Job[], concurrency = 4) {
    const [worker] = startWorkers({
      queues: ['generation'],
      processors: {
        generation: {
          concurrency,
          processor: (job) => {
            started.push(job);
            return new Promise(() => undefined);
          },
        },
      },
      connection,
      keyPrefix: prefix,
      logger,
      workerName,
    });
    workers.push(worker);
    return worker;
  }

  test('a lease that lapses while a live process watches: its active jobs go back to waiting at the next beat and run again there', async () => {
    const dead = detector();
    await dead.start();
    const startedOnDead: Job[] = [];
    const deadWorker = hangingWorker(dead.name, startedOnDead);
    const queue = registry.get('generation');
    await queue.add('generate', { n: 1 }, { jobId: 'job-1' });
    await queue.add('generate', { n: 2 }, { jobId: 'job-2' });
    await waitUntil(() => startedOnDead.length === 2, 10_000);
    expect(startedOnDead.map((job) => job.processedBy)).toEqual([dead.name, dead.name]);
    const live = detector();
    const startedOnLive: Job[] = [];
    hangingWorker(live.name, startedOnLive);
    await live.start();
    // The process dies: its worker stops without finishing its jobs (they stay active, their locks
    // last 30 s), and its lease lapses now, while the live process watches.
    await deadWorker.close(true);
    await dead.stop();
    const [seconds, micros] = await connection.time();
    await connection.zadd(redisKeys(prefix).workerLeases(), Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - 1, dead.name);

    expect((await live.beat()).sort()).toEqual(['job-1', 'job-2']);
    await waitUntil(() => startedOnLive.length === 2, 10_000);
    expect(startedOnLive.map((job) => job.id).sort()).toEqual(['job-1', 'job-2']);
    expect(startedOnLive.every((job) => job.attemptsStarted === 2 && job.attemptsMade === 0)).toBe(true);
    expect(await connection.zscore(redisKeys(prefix).workerLeases(), dead.name)).toBeNull();
  });

  test('a prioritized job put back wakes a worker blocked on its queue at once, not when its wait times out', async () => {
    const dead = detector();
    await dead.start();
    const startedOnDead: Job[] = [];
    const deadWorker = hangingWorker(dead.name, startedOnDead);
    const queue = registry.get('generation');
    // Fairly shared queues give every job a priority (its owner's jobs in flight).
    await queue.add('generate', { n: 1 }, { jobId: 'job-prioritized', priority: 1 });
    await waitUntil(() => startedOnDead.length === 1, 10_000);
    await deadWorker.close(true);
    await dead.stop();

    // A live worker that blocks up to 10 s between looks at an empty queue.
    const startedOnLive: Job[] = [];
    const live = new Worker(
      'generation',
      (job) => {
        startedOnLive.push(job);
        return new Promise(() => undefined);
      },
      { connection, prefix: bullPrefix(prefix), drainDelay: 10, name: 'live' },
    );
    workers.push(live);
    await live.waitUntilReady();
    expect(await registry.requeueActiveOf('generation', dead.name, 2, logger)).toEqual(['job-prioritized']);
    // Half its wait: only a wake-up lets it take the job in time.
    await waitUntil(() => startedOnLive.length === 1, 5_000);
    expect(startedOnLive[0]).toMatchObject({ id: 'job-prioritized', priority: 1 });
  });

  test("a live process's jobs stay where they are, and a job restarted too often is left to the stall check", async () => {
    const alive = detector();
    await alive.start();
    const started: Job[] = [];
    hangingWorker(alive.name, started);
    const queue = registry.get('generation');
    await queue.add('generate', { n: 1 }, { jobId: 'job-live' });
    await waitUntil(() => started.length === 1, 10_000);

    const other = detector();
    await other.start();
    expect(await other.beat()).toEqual([]);
    expect(await queue.getJobState('job-live')).toBe('active');

    // Asked to put back a job already started more often than its attempts plus the restarts allowed
    // (here none: -1), the registry leaves it to BullMQ's stall check.
    expect(started[0].attemptsStarted).toBe(1);
    expect(await registry.requeueActiveOf('generation', alive.name, -1, logger)).toEqual([]);
    expect(await queue.getJobState('job-live')).toBe('active');
  });

  test("a restarted process takes back its earlier incarnation's jobs at start, whose lease has not lapsed, and no other process's", async () => {
    const identity = `data-dir:${randomUUID()}`;
    const before = detector(60_000, identity);
    await before.start();
    const stranger = detector(60_000, `data-dir:${randomUUID()}`);
    await stranger.start();
    const startedBefore: Job[] = [];
    const startedOnStranger: Job[] = [];
    // One job at a time: the stranger's job cannot land on this worker.
    const killedWorker = hangingWorker(before.name, startedBefore, 1);
    const queue = registry.get('generation');
    await queue.add('generate', { n: 1 }, { jobId: 'job-mine' });
    await waitUntil(() => startedBefore.length === 1, 10_000);
    hangingWorker(stranger.name, startedOnStranger);
    await queue.add('generate', { n: 2 }, { jobId: 'job-strangers' });
    await waitUntil(() => startedOnStranger.length === 1, 10_000);
    // kill -9: the worker stops without finishing its job and the lease stays, valid for a minute.
    await killedWorker.close(true);
    expect(before.name.startsWith(`${identity}#`)).toBe(true);

    const restarted = detector(60_000, identity);
    expect(restarted.name).not.toBe(before.name);
    const startedAfter: Job[] = [];
    hangingWorker(restarted.name, startedAfter);
    await restarted.start();

    // Back to waiting before its lock or lease lapsed; a live worker (either) runs it again.
    const again = () => [...startedAfter, ...startedOnStranger].find((job) => job.id === 'job-mine');
    await waitUntil(() => again() !== undefined, 10_000);
    expect(again()).toMatchObject({ attemptsStarted: 2 });
    const lease = redisKeys(prefix).workerLeases();
    expect(await connection.zscore(lease, before.name)).toBeNull();
    expect(await connection.zscore(lease, restarted.name)).not.toBeNull();
    // A process of another identity keeps its lease and its job.
    expect(await connection.zscore(lease, stranger.name)).not.toBeNull();
    expect(await queue.getJobState('job-strangers')).toBe('active');
    expect((await queue.getJob('job-strangers'))!.processedBy).toBe(stranger.name);
  });

  test('a process that stops cleanly gives its lease back', async () => {
    const lease = detector(2_000);
    await lease.start();
    expect(await connection.zscore(redisKeys(prefix).workerLeases(), lease.name)).not.toBeNull();
    await lease.stop();
    expect(await connection.zscore(redisKeys(prefix).workerLeases(), lease.name)).toBeNull();
  });
});
