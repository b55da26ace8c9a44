import { z } from 'zod';
import { baseJobOptions, defineJob, defineQueue } from './define';

/**
 * `webhooks` queue: one job per delivery of a message to one endpoint. The payload carries the
 * delivery's id only: the body, URL and sealed secret live in its rows. `round` is the number of
 * attempts already recorded when it was queued, so a redelivery is a new job while a retry of the
 * same round is BullMQ's own (attempts and backoff come from the config at enqueue).
 */
export const webhookDeliveryJobSchema = z.object({
  deliveryId: z.uuid(),
  round: z.number().int().nonnegative().default(0),
});
export type WebhookDeliveryJob = z.infer<typeof webhookDeliveryJobSchema>;

/**
 * `webhooks` queue, `push`: one A2A push notification (a task's state) to one push config. The
 * body is the exact JSON sent on every attempt; the URL and sealed token are read from the config
 * at send time, so a config deleted meanwhile sends nothing.
 */
export const a2aPushJobSchema = z.object({
  pushId: z.uuid(),
  eventId: z.uuid(),
  body: z.string().max(1_000_000),
});
export type A2aPushJob = z.infer<typeof a2aPushJobSchema>;

export const webhooksQueue = defineQueue({
  name: 'webhooks',
  jobs: {
    deliver: defineJob({
      schema: webhookDeliveryJobSchema,
      options: { ...baseJobOptions, attempts: 8, backoff: { type: 'exponential', delay: 10_000 } },
      jobId: (job) => `webhook-${job.deliveryId}-${job.round}`,
    }),
    push: defineJob({
      schema: a2aPushJobSchema,
      options: { ...baseJobOptions, attempts: 8, backoff: { type: 'exponential', delay: 10_000 } },
      jobId: (job) => `a2a-push-${job.pushId}-${job.eventId}`,
    }),
  },
  concurrency: (config) => config.webhooks.concurrency,
});
