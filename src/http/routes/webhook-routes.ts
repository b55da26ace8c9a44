import { z } from 'zod';
import { decodeCursor, idKey, pageOf, pageQuerySchema } from '../../lib/pagination';
import { WEBHOOK_ATTEMPTS_KEPT, type WebhookDeliveryWithAttempts, type WebhookEndpointView } from '../../models/webhooks-repository';
import { uuidParam } from '../../schemas/api';
import { MAX_WEBHOOK_ENDPOINTS, WEBHOOK_EVENTS } from '../../webhooks/webhook-service';
import { routesWith } from '../route';
import type { ApiContext } from '../context';

/** The webhook routes' port: only the webhook service. */
export type WebhookPorts = Pick<ApiContext, 'webhooks'>;
const route = routesWith<WebhookPorts>();
const tags = ['webhooks'];

const eventSchema = z
  .enum(WEBHOOK_EVENTS)
  .describe('`run.succeeded`, `run.failed` (failed or timed out), `run.cancelled`, `approval.requested`, `input.requested`');

/** `POST /webhooks`: where to send, which events, and optionally one flow only. */
export const createWebhookSchema = z.strictObject({
  url: z.string().trim().min(1).max(2_000).describe('The receiver (http or https; private addresses are refused)'),
  events: z.array(eventSchema).min(1).max(WEBHOOK_EVENTS.length),
  flowId: z
    .uuid()
    .optional()
    .describe("Only this flow's executions (and their approval requests and forms); default every run of the caller"),
  description: z.string().trim().max(200).optional(),
});

const endpointView = z.object({
  id: z.uuid(),
  url: z.string(),
  description: z.string(),
  events: z.array(z.string()),
  flowId: z.uuid().nullable(),
  createdAt: z.string(),
});
const attemptView = z.object({
  attempt: z.number().int().describe('Its number: 1 for the first, counting on across redeliveries'),
  status: z
    .enum(['retrying', 'delivered', 'failed'])
    .describe('How it ended: `retrying` (failed, another attempt follows), `delivered` or `failed` (the last)'),
  responseStatus: z.number().int().nullable().describe("The receiver's status code (null: no answer)"),
  error: z
    .string()
    .nullable()
    .describe('Why it failed (`HTTP 500`, `no answer within 10000 ms`, `could not connect (ECONNREFUSED)`); null when delivered'),
  attemptedAt: z.string(),
});
const deliveryView = z.object({
  id: z.uuid().describe('The message id the receiver sees in `webhook-id` (the same on every retry and redelivery)'),
  endpointId: z.uuid(),
  eventType: z.string(),
  status: z.enum(['pending', 'retrying', 'delivered', 'failed']),
  attempts: z.number().int(),
  responseStatus: z.number().int().nullable().describe("The receiver's status code at the last attempt (null: no answer)"),
  lastError: z.string().nullable(),
  attemptLog: z
    .array(attemptView)
    .describe(`Every attempt, oldest first (the newest ${WEBHOOK_ATTEMPTS_KEPT} of a delivery): status, status code or error, time`),
  payload: z.unknown().describe('The message body as sent'),
  createdAt: z.string(),
  lastAttemptAt: z.string().nullable(),
  deliveredAt: z.string().nullable(),
});
const createdResponse = z.object({
  webhook: endpointView,
  secret: z.string().describe('The signing secret (`whsec_…`): shown this once, never again'),
});
const deliveriesPageQuery = pageQuerySchema(50);

const iso = (date: Date | null) => date?.toISOString() ?? null;
const toEndpoint = (row: WebhookEndpointView): z.output<typeof endpointView> => ({
  id: row.id,
  url: row.url,
  description: row.description,
  events: row.events,
  flowId: row.flowId,
  createdAt: row.createdAt.toISOString(),
});
const toDelivery = (row: WebhookDeliveryWithAttempts): z.output<typeof deliveryView> => ({
  id: row.id,
  endpointId: row.endpointId,
  eventType: row.eventType,
  status: row.status,
  attempts: row.attempts,
  responseStatus: row.responseStatus,
  lastError: row.lastError,
  attemptLog: row.attemptLog.map((attempt) => ({
    attempt: attempt.attempt,
    status: attempt.status,
    responseStatus: attempt.responseStatus,
    error: attempt.error,
    attemptedAt: attempt.attemptedAt.toISOString(),
  })),
  payload: JSON.parse(row.body) as unknown,
  createdAt: row.createdAt.toISOString(),
  lastAttemptAt: iso(row.lastAttemptAt),
  deliveredAt: iso(row.deliveredAt),
});

const endpointParam = { id: { schema: uuidParam, resource: 'Webhook endpoint' } };

/** `/webhooks`: endpoints (the secret once), their delivery log, redelivery and a test message. */
export const webhookRoutes = [
  route({
    method: 'post',
    path: '/webhooks',
    operationId: 'createWebhook',
    tags,
    auth: 'bearer',
    summary: 'Register a webhook endpoint; the answer holds its signing secret, shown this once',
    description:
      'Every message is a POST signed the Standard Webhooks way: `webhook-id`, `webhook-timestamp` and ' +
      '`webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>` under the secret. A URL whose host is or resolves to ' +
      `a loopback, private or link-local address is 400; a \`flowId\` not the caller's is 404; more than ${MAX_WEBHOOK_ENDPOINTS} endpoints is 409.`,
    body: createWebhookSchema,
    responses: { 201: { description: 'The endpoint and its secret', schema: createdResponse } },
    errors: [400, 404, 409],
    handler: async ({ user, body }, ctx) => {
      const { endpoint, secret } = await ctx.webhooks.create(user.id, body);
      return { webhook: toEndpoint(endpoint), secret };
    },
  }),

  route({
    method: 'get',
    path: '/webhooks',
    operationId: 'listWebhooks',
    tags,
    auth: 'bearer',
    summary: "The caller's webhook endpoints, newest first (never their secrets)",
    responses: { 200: { description: 'The endpoints', schema: z.object({ webhooks: z.array(endpointView) }) } },
    handler: async ({ user }, ctx) => ({ webhooks: (await ctx.webhooks.list(user.id)).map(toEndpoint) }),
  }),

  route({
    method: 'get',
    path: '/webhooks/:id',
    operationId: 'getWebhook',
    tags,
    auth: 'bearer',
    summary: 'One webhook endpoint of the caller (never its secret)',
    params: endpointParam,
    responses: { 200: { description: 'The endpoint', schema: z.object({ webhook: endpointView }) } },
    errors: [404],
    handler: async ({ user, params }, ctx) => ({ webhook: toEndpoint(await ctx.webhooks.get(user.id, params.id)) }),
  }),

  route({
    method: 'delete',
    path: '/webhooks/:id',
    operationId: 'deleteWebhook',
    tags,
    auth: 'bearer',
    summary: 'Delete a webhook endpoint and its delivery log; queued deliveries to it are dropped',
    params: endpointParam,
    responses: { 204: 'Deleted' },
    errors: [404],
    handler: async ({ user, params }, ctx) => {
      await ctx.webhooks.remove(user.id, params.id);
    },
  }),

  route({
    method: 'get',
    path: '/webhooks/:id/deliveries',
    operationId: 'listWebhookDeliveries',
    tags,
    auth: 'bearer',
    summary: "An endpoint's delivery log, newest first, in pages: status, and every attempt with its status code or error and time",
    description:
      'The log keeps the newest `WEBHOOK_DELIVERIES_KEPT` deliveries of the endpoint (default 1,000): older finished ones are deleted ' +
      'as new ones are written; one still being attempted stays until it ends.',
    params: endpointParam,
    query: deliveriesPageQuery,
    responses: {
      200: {
        description: 'A page of deliveries',
        schema: z.object({ deliveries: z.array(deliveryView), nextCursor: z.string().nullable() }),
      },
    },
    errors: [400, 404],
    handler: async ({ user, params, query }, ctx) => {
      const beforeId = query.cursor ? decodeCursor(query.cursor, idKey) : undefined;
      const rows = await ctx.webhooks.deliveries(user.id, params.id, { limit: query.limit + 1, beforeId });
      const page = pageOf(rows, query.limit, (row) => [row.id]);
      return { deliveries: page.items.map(toDelivery), nextCursor: page.nextCursor };
    },
  }),

  route({
    method: 'post',
    path: '/webhooks/:id/deliveries/:deliveryId/redeliver',
    operationId: 'redeliverWebhook',
    tags,
    auth: 'bearer',
    summary: 'Send a delivered or failed message again: same `webhook-id` and body, a new timestamp and signature',
    description:
      'A delivery still being attempted is 409. Test sends and redeliveries together are limited per user by the tier ' +
      '(`webhookSendsPerMinute`): past it, 429 `rate_limited` with `Retry-After`, and nothing is sent.',
    params: { ...endpointParam, deliveryId: { schema: uuidParam, resource: 'Webhook delivery' } },
    responses: { 202: { description: 'Queued again', schema: z.object({ delivery: deliveryView }) } },
    errors: [404, 409, 429],
    handler: async ({ user, params }, ctx) => ({
      delivery: toDelivery(await ctx.webhooks.redeliver(user, params.id, params.deliveryId)),
    }),
  }),

  route({
    method: 'post',
    path: '/webhooks/:id/test',
    operationId: 'testWebhook',
    tags,
    auth: 'bearer',
    summary: 'Queue a `webhook.test` message to the endpoint (to check a receiver and its signature check)',
    description:
      'Test sends and redeliveries together are limited per user by the tier (`webhookSendsPerMinute`): past it, ' +
      '429 `rate_limited` with `Retry-After`, and no delivery is written or sent.',
    params: endpointParam,
    responses: { 202: { description: 'Queued', schema: z.object({ delivery: deliveryView }) } },
    errors: [404, 429],
    handler: async ({ user, params }, ctx) => ({ delivery: toDelivery(await ctx.webhooks.test(user, params.id)) }),
  }),
];
