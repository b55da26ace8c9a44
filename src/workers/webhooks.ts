import { onJobs } from './handlers';
import type { WorkerPorts } from './ports';

/**
 * `webhooks` queue: one attempt of one delivery per run of the job. An attempt that did not get a
 * 2xx throws, so BullMQ retries it with the backoff it was queued with; the last attempt marks the
 * delivery failed instead (redelivery via the API queues a new round).
 */
export const webhookHandlers = onJobs('webhooks', 'src/workers/webhooks.ts', {
  deliver: async ({ deliveryId }, job, { webhooks }: Pick<WorkerPorts, 'webhooks'>) => {
    const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    const outcome = await webhooks.attempt(deliveryId, lastAttempt);
    if (outcome.status === 'retrying') throw new Error(`webhook delivery ${deliveryId} not accepted: ${outcome.error}`);
    return outcome;
  },
  push: async ({ pushId, body }, _job, { webhooks }: Pick<WorkerPorts, 'webhooks'>) => {
    const outcome = await webhooks.attemptPush(pushId, body);
    if (outcome.status === 'retrying') throw new Error(`A2A push ${pushId} not accepted: ${outcome.error}`);
    return outcome;
  },
});
