import express, { Router } from 'express';
import { z } from 'zod';
import type { FlowTriggerRow } from '../../models/schema';
import { uuidParam } from '../../schemas/api';
import {
  CATCH_UP_POLICIES,
  createTriggerSchema,
  MAX_TRIGGERS_PER_FLOW,
  TRIGGER_TYPES,
  updateTriggerSchema,
} from '../../triggers/trigger-definition';
import { MAX_HOOK_BODY_BYTES, WEBHOOK_TOLERANCE_SECONDS } from '../../triggers/flow-triggers';
import type { ApiContext } from '../context';
import { mountRoutes, routesWith } from '../route';
import { flowIdParam } from './flow-routes';

/** The trigger routes' port: the flows (owner check), the triggers, the plan gate. */
export type FlowTriggerPorts = Pick<ApiContext, 'flows' | 'flowTriggers' | 'limits'>;
const route = routesWith<FlowTriggerPorts>();

const triggerParams = {
  ...flowIdParam,
  triggerId: { schema: uuidParam, description: 'Trigger id. A malformed id answers 404, like a missing one.', resource: 'Trigger' },
};
const hookParams = {
  triggerId: {
    schema: uuidParam,
    description: 'The webhook trigger id (from its `url`). A malformed id answers 404.',
    resource: 'Trigger',
  },
};

const timestamp = z.iso.datetime();
export const triggerView = z.object({
  id: z.uuid(),
  flowId: z.uuid(),
  type: z.enum(TRIGGER_TYPES),
  name: z.string(),
  enabled: z.boolean(),
  cron: z.string().nullable().describe('A schedule: its five-field cron'),
  timezone: z.string().nullable().describe('A schedule: the IANA time zone its cron reads in'),
  catchUp: z.enum(CATCH_UP_POLICIES).nullable().describe('A schedule: what happens to slots missed while no scheduler ran'),
  input: z.record(z.string(), z.unknown()).nullable().describe('A schedule: the input each execution gets'),
  nextRunAt: timestamp.nullable().describe('A schedule: when it fires next (null while disabled)'),
  url: z.string().nullable().describe('A webhook: where deliveries are POSTed'),
  agentId: z.uuid().nullable().describe('A connector: the cloud agent whose fetched mails fire it'),
  concurrency: z.object({ key: z.string().nullable(), limit: z.number().int() }).nullable(),
  debounceSeconds: z.number().int().nullable(),
  rateLimit: z.object({ limit: z.number().int(), perSeconds: z.number().int() }).nullable(),
  lastFiredAt: timestamp.nullable(),
  lastExecutionId: z.uuid().nullable().describe('The execution its last fire started'),
  lastError: z.object({ code: z.string(), message: z.string() }).nullable().describe('Why its last fire started no execution'),
  createdAt: timestamp,
  updatedAt: timestamp,
});
const triggerResponse = z.object({ trigger: triggerView });
const createdResponse = triggerResponse.extend({
  secret: z.string().optional().describe('A webhook: its signing secret (`whsec_…`), shown this once'),
});

/** A trigger as its owner reads it: never its secret. */
export function toTriggerView(row: FlowTriggerRow, url: (id: string) => string): z.output<typeof triggerView> {
  const schedule =
    row.type === 'schedule'
      ? (row.config as { cron: string; timezone: string; catchUp: 'skip' | 'run_once'; input: Record<string, unknown> })
      : null;
  const { concurrency, debounceSeconds, rateLimit } = row.settings;
  return {
    id: row.id,
    flowId: row.flowId,
    type: row.type,
    name: row.name,
    enabled: row.enabled,
    cron: schedule?.cron ?? null,
    timezone: schedule?.timezone ?? null,
    catchUp: schedule?.catchUp ?? null,
    input: schedule?.input ?? null,
    nextRunAt: schedule && row.enabled ? (row.nextRunAt?.toISOString() ?? null) : null,
    url: row.type === 'webhook' ? url(row.id) : null,
    agentId: row.type === 'connector' ? (row.config as { agentId: string }).agentId : null,
    concurrency: concurrency ? { key: concurrency.key ?? null, limit: concurrency.limit } : null,
    debounceSeconds: debounceSeconds ?? null,
    rateLimit: rateLimit ?? null,
    lastFiredAt: row.lastFiredAt?.toISOString() ?? null,
    lastExecutionId: row.lastExecutionId,
    lastError: row.lastErrorCode ? { code: row.lastErrorCode, message: row.lastErrorMessage ?? '' } : null,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

const tags = ['flows'];
const TRIGGERS =
  'A trigger starts the agentflow unattended, running its published version as its owner. ' +
  '`schedule`: a five-field `cron` in an IANA `timezone` (default UTC), fired once per slot however many schedulers run; ' +
  '`catchUp` says what happens to slots missed while no scheduler ran: `skip` (default) or `run_once` (one run for the latest); ' +
  "`input` is every run's input and must hold each `{{input.<key>}}` the prompts read (400 `missing_input`). " +
  'A cron that fires more often than the plan allows is 403 `schedule_too_frequent` (`details.limit: "minScheduleIntervalSeconds"`). ' +
  '`webhook`: the answer holds the signing `secret`, shown once; deliveries are POSTed to its `url` signed per Standard Webhooks, and the JSON body is the input. ' +
  '`connector`: a cloud agent of the caller (`agentId`); each of its runs that fetches mail fires the trigger with `{agentId, runId, provider, items}`. ' +
  'Any trigger may set `concurrency: {key?, limit}` (at most `limit` of its executions queued or running per value of `key`, a template such as `{{input.customerId}}`; a fire past it waits). ' +
  'Webhook and connector triggers may set `debounceSeconds` (fires that close together run once, after the last, with its input) ' +
  'and `rateLimit: {limit, perSeconds}` (a delivery past it is 429 `trigger_rate_limited`). ' +
  `A flow holds at most ${MAX_TRIGGERS_PER_FLOW} triggers (409 \`too_many_triggers\`); a chatflow none (409 \`not_an_agentflow\`).`;

/** Triggers of the caller's agentflows, declared once; another user's flow answers 404. */
export const flowTriggerRoutes = [
  route({
    method: 'post',
    path: '/flows/:id/triggers',
    operationId: 'createFlowTrigger',
    tags,
    auth: 'bearer',
    summary: 'Add a schedule, webhook or connector trigger to an agentflow',
    description: TRIGGERS,
    params: flowIdParam,
    body: createTriggerSchema,
    bodyExample: {
      type: 'schedule',
      name: 'Weekday brief',
      cron: '0 9 * * 1-5',
      timezone: 'Europe/Berlin',
      catchUp: 'skip',
      input: { topic: 'markets' },
    },
    responses: { 201: { description: 'The trigger (a webhook with its secret, this once)', schema: createdResponse } },
    errors: [403, 404, 409],
    handler: async (input, ctx) => {
      const flow = await ctx.flows.get(input.user.id, input.params.id);
      await ctx.limits.requireFeature(input.user.id, 'flows');
      const { trigger, secret } = await ctx.flowTriggers.create(flow, input.body);
      return { trigger: toTriggerView(trigger, (id) => ctx.flowTriggers.hookUrl(id)), ...(secret ? { secret } : {}) };
    },
  }),

  route({
    method: 'get',
    path: '/flows/:id/triggers',
    operationId: 'listFlowTriggers',
    tags,
    auth: 'bearer',
    summary: "An agentflow's triggers, newest first, each schedule with its next run",
    params: flowIdParam,
    responses: { 200: { description: 'The triggers', schema: z.object({ triggers: z.array(triggerView) }) } },
    errors: [404],
    handler: async ({ user, params }, ctx) => {
      const flow = await ctx.flows.get(user.id, params.id);
      return { triggers: (await ctx.flowTriggers.list(flow)).map((row) => toTriggerView(row, (id) => ctx.flowTriggers.hookUrl(id))) };
    },
  }),

  route({
    method: 'get',
    path: '/flows/:id/triggers/:triggerId',
    operationId: 'getFlowTrigger',
    tags,
    auth: 'bearer',
    summary: 'A trigger, with its next run and what its last fire did',
    params: triggerParams,
    responses: { 200: { description: 'The trigger', schema: triggerResponse } },
    errors: [404],
    handler: async ({ user, params }, ctx) => {
      const flow = await ctx.flows.get(user.id, params.id);
      return { trigger: toTriggerView(await ctx.flowTriggers.get(flow, params.triggerId), (id) => ctx.flowTriggers.hookUrl(id)) };
    },
  }),

  route({
    method: 'patch',
    path: '/flows/:id/triggers/:triggerId',
    operationId: 'updateFlowTrigger',
    tags,
    auth: 'bearer',
    summary: 'Rename, enable or disable a trigger, or change its schedule or settings',
    description:
      "At least one field. A schedule's `cron`, `timezone`, `catchUp` and `input` (checked as when created); `concurrency`, `debounceSeconds`, " +
      "`rateLimit` (null clears one). The type and a connector's agent never change. A schedule's next run is computed again from now.",
    params: triggerParams,
    body: updateTriggerSchema,
    bodyExample: { enabled: false },
    responses: { 200: { description: 'The trigger', schema: triggerResponse } },
    errors: [403, 404],
    handler: async (input, ctx) => {
      const flow = await ctx.flows.get(input.user.id, input.params.id);
      const updated = await ctx.flowTriggers.update(flow, input.params.triggerId, input.body);
      return { trigger: toTriggerView(updated, (id) => ctx.flowTriggers.hookUrl(id)) };
    },
  }),

  route({
    method: 'delete',
    path: '/flows/:id/triggers/:triggerId',
    operationId: 'deleteFlowTrigger',
    tags,
    auth: 'bearer',
    summary: 'Delete a trigger (a webhook URL stops working at once: 404)',
    params: triggerParams,
    responses: { 204: 'Deleted' },
    errors: [404],
    handler: async ({ user, params }, ctx) => {
      const flow = await ctx.flows.get(user.id, params.id);
      await ctx.flowTriggers.remove(flow, params.triggerId);
    },
  }),
];

const hookAccepted = z.object({
  accepted: z.literal(true),
  fire: z.string().describe('The fire this delivery became (the execution started by it records the trigger)'),
  debounced: z.boolean().describe('Whether it waits out the debounce (a later delivery within it replaces its input)'),
});

/** Served by {@link hookRouter}: public, signed per Standard Webhooks, the raw body verified before it is read. */
export const hookRoutes = [
  routesWith<Pick<ApiContext, 'flowTriggers'>>()({
    method: 'post',
    path: '/hooks/:triggerId',
    operationId: 'receiveFlowWebhook',
    tags,
    auth: 'public',
    summary: "Run an agentflow from a signed webhook (the JSON body is the flow's input)",
    description:
      'Signed per Standard Webhooks with the trigger\'s secret: `webhook-signature` holds `v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">` ' +
      `(the key is the base64 after \`whsec_\`). A missing header or a signature that does not verify is 401 \`invalid_signature\`, a timestamp more than ${WEBHOOK_TOLERANCE_SECONDS} s from now ` +
      '401 `timestamp_out_of_tolerance`; nothing runs. The body (empty, or a JSON object of input keys, at most 32,000 characters) becomes the input (400 otherwise). ' +
      'A `webhook-id` already received is 409 `webhook_replayed`; a disabled trigger 409 `trigger_disabled`; past its `rateLimit` 429 `trigger_rate_limited` with Retry-After. ' +
      "Accepted: 202, and the execution starts on a worker (see the trigger's `lastExecutionId`, or the flow's executions).",
    params: hookParams,
    headers: {
      'webhook-id': { description: 'The delivery id: the same id is run once' },
      'webhook-timestamp': { description: 'Unix seconds when it was signed' },
      'webhook-signature': { description: 'Space-separated `v1,<signature>` entries' },
    },
    responses: { 202: { description: 'Accepted: the fire is queued', schema: hookAccepted } },
    errors: [401, 404, 409, 413, 429, 503],
    handler: async ({ req, params }, ctx) => {
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const { fire, debounced } = await ctx.flowTriggers.receive(
        params.triggerId,
        { id: req.get('webhook-id'), timestamp: req.get('webhook-timestamp'), signature: req.get('webhook-signature') },
        raw,
      );
      return { accepted: true as const, fire, debounced };
    },
  }),
];

/** `/hooks/:triggerId` with its own body reading: the exact bytes, any Content-Type, up to {@link MAX_HOOK_BODY_BYTES}. */
export function hookRouter(ctx: ApiContext): Router {
  const router = Router();
  router.use('/hooks', express.raw({ type: () => true, limit: MAX_HOOK_BODY_BYTES }));
  return mountRoutes(router, hookRoutes, ctx);
}
