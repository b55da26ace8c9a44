import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents, Worker, type Job } from 'bullmq';
import { z } from 'zod';
import { QueueRegistry, bullPrefix } from '../../src/producers/registry';
import { defineJob } from '../../src/producers/define';
import { queueProcessor, type ResolvedHandler } from '../../src/workers/handlers';
import { keysEverywhere, testBullConnection } from '../support/redis';

/**
 * The catalog's two derived doors against real Redis and BullMQ: `enqueue` (payload parsed, the
 * declared options and job id applied) and the processor built from a handler map (dispatch by job
 * name, payload parsed again, failures that must not retry).
 */
describe('queue catalog: enqueue and the processor derived from it', () => {
  const redis = testBullConnection();
  const closers: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const close of closers.reverse()) await close();
    await redis.quit();
  });

  const ids = { userId: randomUUID(), sessionId: randomUUID(), messageId: randomUUID() };

  test('enqueue applies the declared id and options, parses the payload, and queues a duplicate once', async () => {
    const keyPrefix = `catalog-${randomUUID()}`;
    const queues = new QueueRegistry(redis, keyPrefix);
    closers.push(() => queues.close());

    const job = await queues.enqueue('assistant', 'chat-turn', ids);
    const again = await queues.enqueue('assistant', 'chat-turn', ids);
    const timeout = await queues.enqueue('assistant', 'waitpoint-deadline', { waitpointId: ids.messageId }, { delay: 60_000 });

    expect(job.id).toBe(ids.messageId);
    expect(again.id).toBe(ids.messageId);
    expect(job.name).toBe('chat-turn');
    // The schema's default is applied before the payload reaches Redis.
    expect((await queues.get('assistant').getJob(ids.messageId))!.data).toEqual({ ...ids, tools: 'device' });
    expect(job.opts).toMatchObject({ attempts: 1, backoff: { type: 'exponential', delay: 1_000 } });
    expect(timeout.id).toBe(`waitpoint-deadline-${ids.messageId}`);
    // A chat turn waits in BullMQ's prioritized state: the assistant queue is ordered fairly per user.
    expect(await queues.get('assistant').getJobCounts('waiting', 'prioritized', 'delayed')).toEqual({
      waiting: 0,
      prioritized: 1,
      delayed: 1,
    });
  });

  test('enqueue refuses a payload that does not parse and writes nothing to Redis', async () => {
    const keyPrefix = `catalog-${randomUUID()}`;
    const queues = new QueueRegistry(redis, keyPrefix);
    closers.push(() => queues.close());

    await expect(queues.enqueue('generation', 'generate', { generationId: 'nope' } as never)).rejects.toThrow(z.ZodError);
    await expect(queues.enqueue('assistant', 'nope' as never, {})).rejects.toThrow('Queue assistant has no job named nope');

    expect(await keysEverywhere(redis, `${bullPrefix(keyPrefix)}:*`)).toEqual([]);
  });

  test('enqueueBulk queues many payloads in one call, each under its declared id, a duplicate once', async () => {
    const keyPrefix = `catalog-${randomUUID()}`;
    const queues = new QueueRegistry(redis, keyPrefix);
    closers.push(() => queues.close());
    const [a, b] = [randomUUID(), randomUUID()];
    const payload = (generationId: string) => ({ generationId, canvasId: ids.sessionId });

    const jobs = await queues.enqueueBulk('broadcast', 'broadcast-blocks', [payload(a), payload(b), payload(a)]);
    await expect(
      queues.enqueueBulk('broadcast', 'broadcast-blocks', [payload(randomUUID()), { generationId: 'x' } as never]),
    ).rejects.toThrow(z.ZodError);

    expect(jobs.map((job) => job.id)).toEqual([`broadcast-${a}`, `broadcast-${b}`, `broadcast-${a}`]);
    expect(jobs[0].opts).toMatchObject({ attempts: 5, backoff: { type: 'exponential', delay: 200 } });
    expect(await queues.get('broadcast').getJobCounts('waiting')).toEqual({ waiting: 2 });
    expect(await queues.enqueueBulk('broadcast', 'broadcast-blocks', [])).toEqual([]);
  });

  /** A queue of its own with a worker running `processor`; resolves each job's outcome. */
  async function serve(processor: ReturnType<typeof queueProcessor>) {
    const name = `test-${randomUUID()}`;
    // The queue's keys under one hash tag, as the app's are (BullMQ's scripts touch several at once).
    const options = { connection: redis, prefix: bullPrefix(`catalog-${randomUUID()}`) };
    const queue = new Queue(name, options);
    // Read from the stream's start: the queue is new, and an event written before the first blocking
    // read (a cluster connection can be slower to send it than the worker is to finish) still counts.
    const events = new QueueEvents(name, { ...options, lastEventId: '0-0' });
    const worker = new Worker(name, processor, options);
    closers.push(
      () => worker.close(),
      () => events.close(),
      () => queue.close(),
    );
    await Promise.all([events.waitUntilReady(), worker.waitUntilReady()]);
    return async (jobName: string, data: unknown, attempts = 3) => {
      const job = await queue.add(jobName, data, { attempts, backoff: { type: 'fixed', delay: 10 } });
      try {
        return { result: await job.waitUntilFinished(events, 10_000) };
      } catch (error) {
        const failed = (await queue.getJob(job.id!))!;
        return { error: (error as Error).message, attemptsMade: failed.attemptsMade };
      }
    };
  }

  test('the event reader starts where the stream ended when first asked for: later events arrive, earlier ones do not', async () => {
    const keyPrefix = `catalog-${randomUUID()}`;
    const queues = new QueueRegistry(redis, keyPrefix, redis);
    closers.push(() => queues.close());
    const before = await queues.enqueue('assistant', 'chat-turn', { ...ids, messageId: randomUUID() });

    const events = await queues.events('assistant');
    // Asked for again (even at once), it is the same reader.
    expect(await queues.events('assistant')).toBe(events);
    const added: string[] = [];
    events.on('added', ({ jobId }) => added.push(jobId));
    // Enqueued the moment the reader resolved, likely before its first blocking read went out: still seen.
    const after = await queues.enqueue('assistant', 'chat-turn', { ...ids, messageId: randomUUID() });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no 'added' event for ${after.id}; saw ${added.join(', ')}`)), 5_000);
      events.on(`added:${after.id!}` as 'added', () => {
        clearTimeout(timer);
        resolve();
      });
      if (added.includes(after.id!)) resolve();
    });
    expect(added).toEqual([after.id]);
    expect(added).not.toContain(before.id);
  });

  const handler = <P>(handle: (payload: P, job: Job) => Promise<unknown>): ResolvedHandler<unknown> => ({
    handle: handle as never,
    source: 'test',
  });

  test('a queue of several jobs runs each name by its handler, with the parsed payload and the ports', async () => {
    const jobs = {
      add: defineJob({ schema: z.object({ a: z.number(), b: z.number().default(1) }), options: {} }),
      echo: defineJob({ schema: z.object({ text: z.string() }), options: {} }),
    };
    const ports = { prefix: '>' };
    const handlers = new Map([
      ['add', handler<{ a: number; b: number }>(async ({ a, b }) => a + b)],
      [
        'echo',
        {
          handle: (async (payload: { text: string }, job: Job, p: typeof ports) => `${p.prefix}${payload.text} (${job.name})`) as never,
          source: 'test',
        },
      ],
    ]) as Map<string, ResolvedHandler<typeof ports>>;
    const run = await serve(queueProcessor({ name: 'multi', jobs }, handlers, ports));

    expect(await run('add', { a: 2 })).toEqual({ result: 3 });
    expect(await run('echo', { text: 'hi' })).toEqual({ result: '>hi (echo)' });
  });

  test('a bad payload and an unknown job name fail at once, without retries, saying why', async () => {
    const jobs = {
      one: defineJob({ schema: z.object({ n: z.number() }), options: {} }),
      two: defineJob({ schema: z.object({}), options: {} }),
    };
    const handlers = new Map([
      ['one', handler(async () => 'ran')],
      ['two', handler(async () => 'ran')],
    ]);
    const run = await serve(queueProcessor({ name: 'multi', jobs }, handlers, {}));

    expect(await run('one', { n: 'x' })).toEqual({ error: expect.stringMatching(/^Invalid multi payload \(one\): n: /), attemptsMade: 1 });
    expect(await run('three', {})).toEqual({ error: 'Queue multi has no job named "three"', attemptsMade: 1 });
  });

  test('on a queue of one job, any job name runs as that job (an operator re-running one by hand)', async () => {
    const jobs = { only: defineJob({ schema: z.object({ n: z.number() }), options: {} }) };
    const run = await serve(
      queueProcessor({ name: 'single', jobs }, new Map([['only', handler<{ n: number }>(async ({ n }) => n * 2)]]), {}),
    );

    expect(await run('retry', { n: 21 })).toEqual({ result: 42 });
  });
});
