import { Queue, QueueEvents, type Job, type JobsOptions } from 'bullmq';
import type { Logger } from '../lib/logger';
import type { RedisClient } from '../lib/redis';
import { QUEUE_NAMES, type QueueName } from '../../config';
import { jobDeclaration, type JobInput, type JobName, type JobPayload } from './catalog';
import { FairShare, MAX_PRIORITY } from './fair-share';
import { redisKeys } from '../lib/redis-keys';
import { settled } from '../lib/settled';
import { currentTraceparent, tracingOn, withSpan } from '../observability/tracing';
import { TRACEPARENT_FIELD } from './define';

/** The states of a job that will still run. */
const LIVE_STATES = new Set(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children']);

/** A fair-share priority raised by a declaration's base, within BullMQ's range. */
const withBase = (priority: number, base = 0) => Math.min(MAX_PRIORITY, priority + base);

/** BullMQ key prefix for a deployment prefix (`sb` → `{sb}:bull`, a hash tag), shared by queues and workers. */
export const bullPrefix = (keyPrefix: string) => redisKeys(keyPrefix).bullmqPrefix();

/** A queue's jobs by state; `waiting` includes the jobs of a fairly shared queue that BullMQ keeps as `prioritized`. */
export type QueueCounts = Record<'waiting' | 'active' | 'delayed' | 'failed' | 'completed', number>;

/**
 * One BullMQ `Queue` per queue name, created on first use over a shared fail-fast connection, so
 * an enqueue while Redis is down rejects at once instead of waiting for a reconnect. Also one
 * `QueueEvents` per queue for callers that wait on a job's result (`job.waitUntilFinished`).
 */
export class QueueRegistry {
  private readonly queues = new Map<QueueName, Queue>();
  private readonly queueEvents = new Map<QueueName, Promise<QueueEvents>>();
  private closed = false;
  /** Per-owner counts of the queues whose jobs declare `fairBy`. */
  readonly fairShare: FairShare;

  constructor(
    private readonly connection: RedisClient,
    private readonly keyPrefix: string,
    /** A connection that retries forever (`maxRetriesPerRequest: null`); QueueEvents duplicates it for its blocking reads. */
    private readonly eventsConnection?: RedisClient,
  ) {
    this.fairShare = new FairShare(connection, keyPrefix);
  }

  /**
   * The BullMQ `Queue` itself, for tests that arrange or inspect jobs directly. The server uses the
   * typed methods (enqueue, job, remove, isLive, rateLimit, counts, forDashboard), so every way into a
   * queue goes through the catalog.
   */
  get(name: QueueName): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      const created = new Queue(name, { connection: this.connection, prefix: bullPrefix(this.keyPrefix), skipWaitingForReady: true });
      // Errors surface on the add() that caused them; the queue's own 'error' event must not crash the process.
      created.on('error', () => undefined);
      // A queue first used while Redis is unreachable fails its start (BullMQ reads the server's
      // version once) and would fail every call after Redis is back: it is dropped, and the next
      // call builds a fresh one.
      created.waitUntilReady().catch(() => {
        if (this.queues.get(name) === created) this.queues.delete(name);
        // Closing takes its listeners off the shared connection. It can only fail with the start's
        // own error, which the call that used the queue was given.
        void settled(created.close());
      });
      this.queues.set(name, created);
      queue = created;
    }
    return queue;
  }

  /**
   * The queue's event stream reader, shared by the whole process and created on first use (each
   * holds one blocking Redis connection, and reads every event of its queue). It reads from the
   * stream's end as it was when first asked for, not from whenever its first blocking read goes out,
   * so a job enqueued after this resolves never finishes unseen: await it before enqueueing a job
   * you will wait on. Created only when something waits, so a process that never does (an API
   * node serving chat turns on the same queue) reads none of those events.
   */
  events(name: QueueName): Promise<QueueEvents> {
    let events = this.queueEvents.get(name);
    if (!events) {
      events = this.startEvents(name);
      // A failed start (Redis unreachable) is not kept: the next caller tries again.
      events.catch(() => this.queueEvents.delete(name));
      this.queueEvents.set(name, events);
    }
    return events;
  }

  private async startEvents(name: QueueName): Promise<QueueEvents> {
    if (!this.eventsConnection) throw new Error('QueueRegistry was built without an events connection');
    const queue = this.get(name);
    const [last] = await this.connection.xrevrange(queue.keys.events, '+', '-', 'COUNT', 1);
    if (this.closed) throw new Error('QueueRegistry is closed');
    const events = new QueueEvents(name, {
      connection: this.eventsConnection,
      prefix: bullPrefix(this.keyPrefix),
      lastEventId: last?.[0] ?? '0-0',
    });
    // Reconnects on its own; a waiter times out instead of crashing the process.
    events.on('error', () => undefined);
    // Every `job.waitUntilFinished` also listens for this queue closing: many waiters are normal.
    queue.setMaxListeners(0);
    return events;
  }

  /**
   * Queues job `name` on `queue` as the catalog declares it: the payload is type-checked here and
   * parsed by its schema (a bad payload throws before anything reaches Redis), the options and the
   * job id are the declaration's. Per call: `delay` (an approval's timeout), `attempts` and
   * `backoff` where the operator configures them (webhook deliveries), and `deduplication` (a
   * debounced trigger's fires replace each other while delayed).
   * Bound (an arrow), so it can be handed out alone as the `enqueue` port.
   */
  readonly enqueue = async <Q extends QueueName, J extends JobName<Q>>(
    queue: Q,
    name: J,
    payload: JobInput<Q, J>,
    extra: Pick<JobsOptions, 'delay' | 'attempts' | 'backoff' | 'deduplication'> = {},
  ): Promise<Job<JobPayload<Q, J>>> => {
    const declaration = jobDeclaration(queue, name);
    if (!declaration) throw new Error(`Queue ${queue} has no job named ${name}`);
    const data = declaration.schema.parse(payload);
    const jobId = declaration.jobId?.(data);
    const [priority] = declaration.fairBy && jobId !== undefined ? await this.fairShare.take(queue, declaration.fairBy(data), [jobId]) : [];
    const options: JobsOptions = {
      ...declaration.options,
      ...extra,
      ...(jobId === undefined ? {} : { jobId }),
      ...(priority === undefined ? {} : { priority: withBase(priority, declaration.priorityBase?.(data)) }),
    };
    if (!tracingOn()) return this.get(queue).add(name, data, options) as Promise<Job<JobPayload<Q, J>>>;
    // Tracing on: a producer span, whose context the job's data carries to the worker.
    return withSpan(`send ${queue}`, 'producer', sendAttributes(queue, name), async (span) => {
      const job = await this.get(queue).add(name, traced(data), options);
      span?.setAttributes({ 'messaging.message.id': job.id });
      return job;
    }) as Promise<Job<JobPayload<Q, J>>>;
  };

  /**
   * {@link enqueue} for many payloads of one job in one round trip (`addBulk`): each payload parsed,
   * each job given its declared options and id, so a payload already queued under its id is not
   * queued again. Nothing is added when any payload does not parse.
   */
  readonly enqueueBulk = async <Q extends QueueName, J extends JobName<Q>>(
    queue: Q,
    name: J,
    payloads: readonly JobInput<Q, J>[],
  ): Promise<Job<JobPayload<Q, J>>[]> => {
    const declaration = jobDeclaration(queue, name);
    if (!declaration) throw new Error(`Queue ${queue} has no job named ${name}`);
    if (!payloads.length) return [];
    const jobs = payloads.map((payload) => {
      const data = declaration.schema.parse(payload);
      const jobId = declaration.jobId?.(data);
      return { name, data, opts: { ...declaration.options, ...(jobId === undefined ? {} : { jobId }) } as JobsOptions };
    });
    if (declaration.fairBy) {
      const byOwner = new Map<string, typeof jobs>();
      for (const job of jobs) {
        const owner = declaration.fairBy(job.data);
        byOwner.set(owner, [...(byOwner.get(owner) ?? []), job]);
      }
      for (const [owner, owned] of byOwner) {
        const priorities = await this.fairShare.take(
          queue,
          owner,
          owned.flatMap((job) => (job.opts.jobId === undefined ? [] : [job.opts.jobId])),
        );
        owned.forEach((job, i) => (job.opts.priority = withBase(priorities[i], declaration.priorityBase?.(job.data))));
      }
    }
    if (!tracingOn()) return this.get(queue).addBulk(jobs) as Promise<Job<JobPayload<Q, J>>[]>;
    return withSpan(`send ${queue}`, 'producer', { ...sendAttributes(queue, name), 'messaging.batch.message_count': jobs.length }, () =>
      this.get(queue).addBulk(jobs.map((job) => ({ ...job, data: traced(job.data) }))),
    ) as Promise<Job<JobPayload<Q, J>>[]>;
  };

  /**
   * A queue's job counts by state. Jobs of a fairly shared queue wait in BullMQ's `prioritized`
   * state; they are counted as `waiting`, which is what they are.
   */
  async counts(name: QueueName): Promise<QueueCounts> {
    const counts = await this.get(name).getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed', 'completed');
    return {
      waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
      active: counts.active ?? 0,
      delayed: counts.delayed ?? 0,
      failed: counts.failed ?? 0,
      completed: counts.completed ?? 0,
    };
  }

  /** {@link counts} of every queue, by queue name. */
  async allCounts(): Promise<Record<QueueName, QueueCounts>> {
    const counts = await Promise.all(QUEUE_NAMES.map(async (name) => [name, await this.counts(name)] as const));
    return Object.fromEntries(counts) as Record<QueueName, QueueCounts>;
  }

  /** The job `jobId` of `name`, or undefined when it is gone. */
  async job(name: QueueName, jobId: string): Promise<Job | undefined> {
    return this.get(name).getJob(jobId);
  }

  /**
   * Takes a job off its queue when no worker holds it (waiting, delayed, prioritized, finished or
   * failed). False when it is gone already or a worker holds it (its lock keeps it).
   */
  async remove(name: QueueName, jobId: string): Promise<boolean> {
    return (await this.get(name).remove(jobId)) === 1;
  }

  /**
   * Runs a delayed job now; false when it is not delayed (gone, waiting, running or finished
   * already), which is not an error: whoever promotes a job races whoever queued or ran it.
   */
  async promote(name: QueueName, jobId: string): Promise<boolean> {
    const job = await this.get(name).getJob(jobId);
    if (!job) return false;
    return job.promote().then(
      () => true,
      () => false,
    );
  }

  /** Whether the job will still run (waiting, active, delayed…); a missing, failed or finished job will not. */
  async isLive(name: QueueName, jobId: string): Promise<boolean> {
    return LIVE_STATES.has(await this.get(name).getJobState(jobId));
  }

  /**
   * Puts back to waiting the active jobs of `name` that the worker process `workerName` took (BullMQ
   * keeps that name as the job's `processedBy`): that process is dead, so nobody will finish them
   * and the next free worker runs them again at once. A job already started `maxRestarts` times more
   * than its attempts is left to BullMQ's stall check, which fails it past the stall limit (a job
   * that kills its worker each time does not circle for ever). Returns the ids put back; a job put
   * back that no worker could be woken for is logged on `log`.
   */
  async requeueActiveOf(name: QueueName, workerName: string, maxRestarts: number, log: Logger): Promise<string[]> {
    const requeued: string[] = [];
    for (const job of await this.get(name).getActive()) {
      if (job.processedBy !== workerName || job.id === undefined || job.attemptsStarted > (job.opts.attempts ?? 1) + maxRestarts) continue;
      // No token: the dead process's lock would refuse its own, and nobody else holds one.
      const moved = await job.moveToWait().then(
        () => true,
        // Finished, removed or moved meanwhile (its process was not dead after all, or another sweep was first).
        () => false,
      );
      if (!moved) continue;
      requeued.push(job.id);
      // BullMQ puts a prioritized job back without waking a worker blocked on the queue, which would
      // take it only when its wait times out (seconds later). Queuing it again at its own priority wakes
      // one; the job then waits behind the jobs of that priority already queued.
      if (job.priority > 0)
        await job
          .changePriority({ priority: job.priority })
          .catch((error: unknown) =>
            log.warn(
              { queue: name, jobId: job.id, err: error },
              'job put back but no worker woken for it: one takes it when its wait times out, unless it finished meanwhile',
            ),
          );
    }
    return requeued;
  }

  /** Pauses taking jobs of `name` for `ms` on every worker (a provider asked us to back off). */
  async rateLimit(name: QueueName, ms: number): Promise<void> {
    await this.get(name).rateLimit(ms);
  }

  /**
   * Every catalog queue as its BullMQ `Queue`, for Bull Board only: the dashboard drives jobs
   * (retry, remove, promote) through the objects themselves, which is what an admin asks of it.
   */
  forDashboard(): Queue[] {
    return QUEUE_NAMES.map((name) => this.get(name));
  }

  all(): Queue[] {
    return [...this.queues.values()];
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.queueEvents.values()].map(async (events) => (await events).close()));
    await Promise.allSettled(this.all().map((queue) => queue.close()));
  }
}

/** The typed enqueue of the catalog, as a port for code that only ever adds jobs. */
export type Enqueue = QueueRegistry['enqueue'];
/** The typed bulk enqueue of the catalog (one round trip for many payloads of one job). */
export type EnqueueBulk = QueueRegistry['enqueueBulk'];

/** A job's data with the active span's `traceparent` added (tracing on), for the worker to continue. */
function traced<T>(data: T): T {
  const traceparent = currentTraceparent();
  return traceparent && data !== null && typeof data === 'object' ? { ...data, [TRACEPARENT_FIELD]: traceparent } : data;
}

/** A producer span's attributes (OpenTelemetry's messaging conventions) for jobs `name` sent to `queue`. */
const sendAttributes = (queue: string, name: string) => ({
  'messaging.system': 'bullmq',
  'messaging.destination.name': queue,
  'messaging.operation.type': 'send',
  'switchboard.job.name': name,
});
