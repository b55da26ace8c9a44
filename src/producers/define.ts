import type { JobsOptions } from 'bullmq';
import { z } from 'zod';
import type { Config, QueueName } from '../../config';

/**
 * One job of a queue: its payload schema, its BullMQ options and how its id is built. Declarations
 * only (zod and plain data), so the API process can import them without loading a handler.
 */
export interface JobDeclaration<S extends z.ZodType = z.ZodType> {
  /** Parsed when enqueuing (a bad payload never reaches Redis) and again when processing. */
  schema: S;
  /** attempts, backoff, removeOn*: the job's retry and history policy. The id comes from {@link jobId}. */
  options: Omit<JobsOptions, 'jobId'>;
  /** A deterministic id from the payload where a duplicate would be harmful; BullMQ's own otherwise. */
  jobId?: (payload: z.output<S>) => string;
  /**
   * The owner (a user id) whose jobs share this queue fairly with other owners':
   * a job's priority is how many of its owner's jobs are already queued. Needs {@link jobId}.
   */
  fairBy?: (payload: z.output<S>) => string;
  /** Added to the {@link fairBy} priority: background work (an evaluation's) waits behind every owner's own jobs. */
  priorityBase?: (payload: z.output<S>) => number;
}

/** A queue's whole contract: its name, its jobs, and how many of them one worker process runs at once. */
export interface QueueDeclaration<
  N extends QueueName = QueueName,
  J extends Record<string, JobDeclaration> = Record<string, JobDeclaration>,
> {
  name: N;
  jobs: J;
  /** Jobs one worker process runs at once: a figure, or read from the config (env-tunable). */
  concurrency: number | ((config: Config) => number);
  /**
   * BullMQ only honours `queue.rateLimit(ms)` (manual rate limiting) in workers that have a limiter;
   * without one, the other worker processes would pick a rate-limited job up again at once.
   */
  limiter?: { max: number; duration: number };
}

/**
 * The size of a part of a prompt (UTF-8 bytes of its texts, and how many texts), as a job carries
 * it: what its request counted of the part into the first model call's reservation.
 */
export const promptPartSchema = z.object({ bytes: z.number().int().nonnegative(), texts: z.number().int().nonnegative() });

/** Declares one job; a helper only so that `jobId` is typed from the schema. */
export const defineJob = <S extends z.ZodType>(job: JobDeclaration<S>): JobDeclaration<S> => job;

/** Declares one queue (kept literal, so the catalog's types know every job name and payload). */
export const defineQueue = <const N extends QueueName, const J extends Record<string, JobDeclaration>>(
  queue: QueueDeclaration<N, J>,
): QueueDeclaration<N, J> => queue;

/** Defaults every job shares: retries with exponential backoff, bounded history. */
export const baseJobOptions: Omit<JobsOptions, 'jobId'> = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 1_000 },
  removeOnComplete: { age: 24 * 3600, count: 5_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
};

/** zod issues as one line (paths and messages, never the values: a payload may carry user text). */
export function describePayloadIssues(error: z.ZodError): string {
  return error.issues.map((issue) => (issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message)).join('; ');
}

/**
 * The one field every job's data may carry besides its payload: the W3C `traceparent` of the span
 * that queued it (55 characters), added when tracing is on so the worker's span continues the
 * request's trace. Not part of any payload schema: handlers never see it, job ids never include it.
 */
export const TRACEPARENT_FIELD = 'traceparent';

/** The `traceparent` a job's data carries, when it is a well-formed one. */
export function traceparentOf(data: unknown): string | undefined {
  const value = (data as Record<string, unknown> | null | undefined)?.[TRACEPARENT_FIELD];
  return typeof value === 'string' && TRACEPARENT.test(value) ? value : undefined;
}

const TRACEPARENT = /^[\da-f]{2}-[\da-f]{32}-[\da-f]{16}-[\da-f]{2}$/;
