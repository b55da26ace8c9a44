import { UnrecoverableError, type Job, type Processor } from 'bullmq';
import type { QueueName } from '../../config';
import { QUEUE_CATALOG, type JobName, type JobPayload } from '../producers/catalog';
import { describePayloadIssues, type JobDeclaration, type QueueDeclaration } from '../producers/define';

/** One job's handler: the parsed payload, the BullMQ job (id, attempts, progress) and the process's ports. */
export type JobHandler<P, Payload = unknown> = (payload: Payload, job: Job<Payload>, ports: P) => Promise<unknown>;

/**
 * Handlers of some jobs of one queue, declared where the work is described (Immich's `@OnJob`): a
 * queue's jobs may be handled by several modules (the assistant queue: turns, approvals, notes,
 * journeys), and {@link resolveHandlers} checks that together they handle each job exactly once.
 * `P` is the ports the handlers read: a narrow slice of the process's {@link WorkerPorts}.
 */
export interface JobHandlers<P = never> {
  queue: QueueName;
  /** Who declared them, for the startup error (`src/workers/assistant.ts`). */
  source: string;
  handlers: Readonly<Record<string, JobHandler<P>>>;
}

/** Declares handlers for jobs of `queue`, each typed from its catalog declaration. */
export function onJobs<Q extends QueueName, P>(
  queue: Q,
  source: string,
  handlers: { [J in JobName<Q>]?: (payload: JobPayload<Q, J>, job: Job<JobPayload<Q, J>>, ports: P) => Promise<unknown> },
): JobHandlers<P> {
  return { queue, source, handlers: handlers as Record<string, JobHandler<P>> };
}

/** A job name's handler and who declared it. */
export interface ResolvedHandler<P> {
  handle: JobHandler<P>;
  source: string;
}

/**
 * One handler per job of every declared queue, or an error naming each job that has none or two
 * (and each handler for a job that is not declared). Called when a worker process starts, before
 * it takes any job, so a forgotten or doubled handler stops the deploy instead of stranding jobs.
 */
export function resolveHandlers<P>(
  all: readonly JobHandlers<P>[],
  catalog: Readonly<Record<string, Pick<QueueDeclaration, 'jobs'>>> = QUEUE_CATALOG,
): Map<string, Map<string, ResolvedHandler<P>>> {
  const problems: string[] = [];
  const byQueue = new Map<string, Map<string, ResolvedHandler<P>>>(Object.keys(catalog).map((queue) => [queue, new Map()]));
  for (const { queue, source, handlers } of all) {
    const jobs = catalog[queue]?.jobs;
    for (const [name, handle] of Object.entries(handlers)) {
      if (!jobs || !Object.hasOwn(jobs, name)) {
        problems.push(`${source} handles job "${name}" of queue ${queue}, which the catalog does not declare`);
        continue;
      }
      const seen = byQueue.get(queue)!.get(name);
      if (seen) problems.push(`job "${name}" of queue ${queue} has two handlers (${seen.source}, ${source})`);
      else byQueue.get(queue)!.set(name, { handle, source });
    }
  }
  for (const [queue, { jobs }] of Object.entries(catalog)) {
    for (const name of Object.keys(jobs))
      if (!byQueue.get(queue)!.has(name)) problems.push(`job "${name}" of queue ${queue} has no handler`);
  }
  if (problems.length) throw new Error(`Queue handlers do not match the catalog (src/producers/catalog.ts): ${problems.join('; ')}`);
  return byQueue;
}

/**
 * The BullMQ processor of one queue: picks the job's handler by name, parses the payload with the
 * job's schema (a payload that does not parse is an `UnrecoverableError`, never a retry) and calls
 * the handler with the process's ports. A queue of one job runs a job of any name as that job (the
 * name is a label there, as it was before the catalog; an operator re-running a job by hand relies
 * on it); on a queue of several jobs an unknown name fails without retries.
 */
export function queueProcessor<P>(
  declaration: { name: string; jobs: Readonly<Record<string, JobDeclaration>> },
  handlers: Map<string, ResolvedHandler<P>>,
  ports: P,
): Processor {
  const jobs: Record<string, JobDeclaration> = declaration.jobs;
  const names = Object.keys(jobs);
  const only = names.length === 1 ? names[0] : undefined;
  return async (job: Job) => {
    const name = Object.hasOwn(jobs, job.name) ? job.name : only;
    const handler = name === undefined ? undefined : handlers.get(name);
    if (name === undefined || !handler) throw new UnrecoverableError(`Queue ${declaration.name} has no job named "${job.name}"`);
    const parsed = jobs[name].schema.safeParse(job.data);
    if (!parsed.success)
      throw new UnrecoverableError(`Invalid ${declaration.name} payload (${name}): ${describePayloadIssues(parsed.error)}`);
    return handler.handle(parsed.data, job, ports);
  };
}
