import { UnrecoverableError, Worker, type Job, type Processor } from 'bullmq';
import { describeRedacted } from '../lib/redact-error';
import type { RedisClient } from '../lib/redis';
import type { QueueName } from '../../config';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../observability/metrics';
import { jobDeclaration } from '../producers/catalog';
import { FairShare } from '../producers/fair-share';
import { bullPrefix } from '../producers/registry';
import { traceparentOf } from '../producers/define';
import { tracingOn, withSpan } from '../observability/tracing';

/** BullMQ's control-flow errors: their names and messages are its protocol, kept as they are. */
const BULLMQ_SIGNALS = new Set(['DelayedError', 'WaitingChildrenError', 'RateLimitError', 'WaitingError']);

/**
 * BullMQ keeps a failed job's message and stack in Redis (`failedReason`, `stacktrace`, the admin
 * dashboard): a drizzle error's message holds the SQL parameters, a provider's may quote the prompt.
 * Any error but ours (`UnrecoverableError`, whose texts we write) or BullMQ's signals leaves with
 * its class, codes and frames only.
 */
function forJobRecord(error: unknown): unknown {
  if (
    !(error instanceof Error) ||
    error instanceof UnrecoverableError ||
    BULLMQ_SIGNALS.has(error.name) ||
    error.message.startsWith('bullmq:')
  )
    return error;
  const summary = describeRedacted(error);
  const frames = (error.stack ?? '').split('\n').filter((line) => /^\s+at /.test(line));
  error.message = summary;
  error.stack = [`${error.name}: ${summary}`, ...frames].join('\n');
  return error;
}

export interface QueueProcessor {
  processor: Processor;
  concurrency: number;
  /**
   * BullMQ only honours `queue.rateLimit(ms)` (manual rate limiting) in workers that have a limiter;
   * without one, the other worker processes would pick a rate-limited job up again at once.
   */
  limiter?: { max: number; duration: number };
}

/**
 * Starts one BullMQ Worker per requested queue. Refuses to start when a requested queue has no
 * processor, so a typo in WORKER_QUEUES fails loudly instead of leaving jobs waiting forever.
 */
export function startWorkers(options: {
  queues: QueueName[];
  processors: Partial<Record<QueueName, QueueProcessor>>;
  connection: RedisClient;
  keyPrefix: string;
  logger: Logger;
  metrics?: Metrics;
  /** Lock duration; a crashed worker's job is retried by another after about this long. */
  lockMs?: number;
  /**
   * The process's worker name, written on each job it takes (`processedBy`): the dead-worker
   * detector puts a dead process's jobs back to waiting by it (worker-leases.ts).
   */
  workerName?: string;
}): Worker[] {
  const missing = options.queues.filter((name) => !options.processors[name]);
  if (missing.length) throw new Error(`No processor for queue(s): ${missing.join(', ')}`);
  const fairShare = new FairShare(options.connection, options.keyPrefix);
  return options.queues.map((name) => {
    const { processor, concurrency, limiter } = options.processors[name]!;
    const log = options.logger.child({ component: 'worker', queue: name });
    const spanName = `process ${name}`;
    // Tracing on: the job runs in a span continuing the trace of whoever queued it (its `traceparent`).
    const traced: Processor = (job, token, signal) =>
      tracingOn()
        ? withSpan(
            spanName,
            'consumer',
            {
              'messaging.system': 'bullmq',
              'messaging.destination.name': name,
              'messaging.operation.type': 'process',
              'messaging.message.id': job.id,
              'switchboard.job.name': job.name,
              'switchboard.job.attempt': job.attemptsMade + 1,
            },
            () => timed(job, token, signal),
            traceparentOf(job.data) ?? '',
          )
        : timed(job, token, signal);
    const timed: Processor = async (job, token, signal) => {
      const end = options.metrics?.jobDuration.startTimer({ queue: name });
      try {
        const result: unknown = await processor(job, token, signal);
        end?.({ outcome: 'completed' });
        await releaseFairShare(job, true);
        return result;
      } catch (error) {
        end?.({ outcome: 'failed' });
        const final =
          error instanceof UnrecoverableError ||
          (!(error instanceof Error && BULLMQ_SIGNALS.has(error.name)) && job.attemptsMade + 1 >= (job.opts.attempts ?? 1));
        await releaseFairShare(job, final);
        throw forJobRecord(error);
      }
    };
    /** A job of a fairly shared queue that is finished for good no longer counts for its owner. */
    const releaseFairShare = async (job: Job, final: boolean) => {
      const fairBy = final ? jobDeclaration(name, job.name)?.fairBy : undefined;
      if (!fairBy || job.id === undefined) return;
      await fairShare
        .release(name, fairBy(job.data), [job.id])
        .catch((error: unknown) => log.warn({ jobId: job.id, err: describeRedacted(error) }, 'fair share count not released'));
    };
    const worker = new Worker(name, traced, {
      connection: options.connection,
      prefix: bullPrefix(options.keyPrefix),
      concurrency,
      // A crashed worker's job goes back to waiting once its lease lapses (worker-leases.ts), or else
      // once its lock lapses and the stall check runs.
      lockDuration: options.lockMs ?? 30_000,
      stalledInterval: options.lockMs ?? 30_000,
      maxStalledCount: 2,
      ...(options.workerName ? { name: options.workerName } : {}),
      ...(limiter ? { limiter } : {}),
    });
    worker.on('failed', (job: Job | undefined, error) =>
      log.warn({ jobId: job?.id, attempts: job?.attemptsMade, err: error }, 'job failed'),
    );
    worker.on('error', (error) => log.error({ err: error }, 'worker error'));
    return worker;
  });
}
