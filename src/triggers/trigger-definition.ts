import { createHash } from 'node:crypto';
import { CronExpressionParser } from 'cron-parser';
import { z } from 'zod';
import { executeFlowSchema } from '../flows/definition';
import { timezoneSchema } from '../schemas/agents';
import type { FlowTriggerConfig, FlowTriggerRow, FlowTriggerSettings } from '../models/schema';

/**
 * Flow triggers as the API reads and writes them: a `schedule` (cron + IANA time zone + catch-up
 * policy + the input each run gets), a `webhook` (a URL and a signing secret; the signed JSON body
 * is the input) or a `connector` (a cloud agent's fetched mails are the input). Any of them may
 * carry a concurrency key and limit, a debounce and a rate limit.
 */

export const TRIGGER_TYPES = ['schedule', 'webhook', 'connector'] as const;
export const CATCH_UP_POLICIES = ['skip', 'run_once'] as const;
/** Triggers one flow may hold. */
export const MAX_TRIGGERS_PER_FLOW = 20;
/** The longest debounce: a fire waits at most this long for a quieter moment. */
export const MAX_DEBOUNCE_SECONDS = 3_600;
/** Fires of one sample a schedule's shortest gap is measured over. */
const INTERVAL_SAMPLE = 400;

/** Five-field cron (minute hour day month weekday); seconds are not offered. */
export const triggerCronSchema = z
  .string()
  .trim()
  .min(9)
  .max(100)
  .superRefine((value, ctx) => {
    if (value.split(/\s+/).length !== 5)
      return void ctx.addIssue({ code: 'custom', message: 'cron must have 5 fields: minute hour day month weekday' });
    try {
      CronExpressionParser.parse(value, { tz: 'UTC' });
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: `cron is not a valid cron expression: ${(error as Error).message}` });
    }
  });

const TEMPLATE = /\{\{\s*input\.([A-Za-z0-9_-]{1,64})\s*\}\}/g;
/** A concurrency key: literal text and `{{input.<key>}}` references, rendered per fire. */
const concurrencyKeySchema = z
  .string()
  .trim()
  .min(1)
  .max(200)
  .refine((value) => !value.includes('\0'), 'may not contain NUL characters')
  .refine((value) => !/\{\{(?!\s*input\.[A-Za-z0-9_-]{1,64}\s*\}\})/.test(value), 'may reference only {{input.<key>}}');

const name = z
  .string()
  .trim()
  .min(1)
  .max(200)
  .refine((value) => !value.includes('\0'), 'may not contain NUL characters');
/** An input as executions take it (keys as templates name them); no default, so a PATCH without it changes nothing. */
export const triggerInputSchema = executeFlowSchema.shape.input.unwrap();

const settingsShape = {
  concurrency: z
    .strictObject({
      key: concurrencyKeySchema.optional().describe('e.g. `{{input.customerId}}`: fires with the same value share the limit'),
      limit: z.number().int().min(1).max(100),
    })
    .nullable()
    .optional()
    .describe('At most `limit` executions of this trigger queued or running at once per key value; a fire past it waits'),
  rateLimit: z
    .strictObject({ limit: z.number().int().min(1).max(10_000), perSeconds: z.number().int().min(1).max(86_400) })
    .nullable()
    .optional()
    .describe('At most `limit` fires per `perSeconds`; one past it is refused (a webhook 429) or skipped (a schedule slot)'),
};
const debounceSeconds = z
  .number()
  .int()
  .min(1)
  .max(MAX_DEBOUNCE_SECONDS)
  .nullable()
  .optional()
  .describe('Fires within this many seconds of each other run once, after the last, with its input');

const scheduleShape = {
  cron: triggerCronSchema,
  timezone: timezoneSchema.default('UTC'),
  catchUp: z
    .enum(CATCH_UP_POLICIES)
    .default('skip')
    .describe('After downtime: `skip` the missed slots (default) or `run_once` for the latest of them'),
  input: triggerInputSchema.default({}).describe('The input every scheduled execution gets'),
};

export const createTriggerSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('schedule'), name, enabled: z.boolean().default(true), ...scheduleShape, ...settingsShape }),
  z.strictObject({ type: z.literal('webhook'), name, enabled: z.boolean().default(true), debounceSeconds, ...settingsShape }),
  z.strictObject({
    type: z.literal('connector'),
    name,
    enabled: z.boolean().default(true),
    agentId: z.uuid().describe('A cloud agent of the caller: each of its runs that fetches mail fires the trigger'),
    debounceSeconds,
    ...settingsShape,
  }),
]);
export type CreateTrigger = z.output<typeof createTriggerSchema>;

/** What a PATCH may change; the type and a connector's agent stay. A field of another type is refused. */
export const updateTriggerSchema = z
  .strictObject({
    name: name.optional(),
    enabled: z.boolean().optional(),
    cron: scheduleShape.cron.optional(),
    timezone: timezoneSchema.optional(),
    catchUp: z.enum(CATCH_UP_POLICIES).optional(),
    input: triggerInputSchema.optional(),
    debounceSeconds,
    ...settingsShape,
  })
  .refine((body) => Object.keys(body).length > 0, 'Give at least one field to change');
export type UpdateTrigger = z.output<typeof updateTriggerSchema>;

/** The settings part of a body, laid over the stored ones (null clears one). */
export function settingsOf(body: Partial<Record<keyof FlowTriggerSettings, unknown>>, base: FlowTriggerSettings = {}): FlowTriggerSettings {
  const merged: FlowTriggerSettings = { ...base };
  for (const key of ['concurrency', 'rateLimit', 'debounceSeconds'] as const) {
    if (!(key in body) || body[key] === undefined) continue;
    if (body[key] === null) delete merged[key];
    else (merged as Record<string, unknown>)[key] = body[key];
  }
  return merged;
}

/** A schedule's configuration, when the trigger is one. */
export function scheduleOf(row: Pick<FlowTriggerRow, 'type' | 'config'>): Extract<FlowTriggerConfig, { cron: string }> | null {
  return row.type === 'schedule' ? (row.config as Extract<FlowTriggerConfig, { cron: string }>) : null;
}

/** The first slot of `cron` in `timezone` strictly after `after`. */
export function nextSlot(cron: string, timezone: string, after: Date): Date {
  return CronExpressionParser.parse(cron, { tz: timezone, currentDate: after }).next().toDate();
}

/** The latest slot at or before `now`. */
export function latestSlot(cron: string, timezone: string, now: Date): Date {
  // prev() is exclusive: a tick exactly on the slot still counts it.
  return CronExpressionParser.parse(cron, { tz: timezone, currentDate: new Date(now.getTime() + 1) })
    .prev()
    .toDate();
}

/**
 * The shortest gap, in seconds, between two consecutive fires of `cron` in `timezone`, over the
 * next {@link INTERVAL_SAMPLE} fires from `from` (enough to meet any minute, hour or day pattern's
 * tightest spacing; a daylight-saving jump that brings two fires closer counts).
 */
export function shortestInterval(cron: string, timezone: string, from = new Date()): number {
  const slots = CronExpressionParser.parse(cron, { tz: timezone, currentDate: from });
  let previous = slots.next().toDate().getTime();
  let shortest = Infinity;
  for (let i = 1; i < INTERVAL_SAMPLE && slots.hasNext(); i++) {
    const next = slots.next().toDate().getTime();
    shortest = Math.min(shortest, (next - previous) / 1000);
    previous = next;
    if (shortest <= 60) break;
  }
  return shortest;
}

/**
 * The concurrency key's value for one fire: the template with each `{{input.<key>}}` replaced by
 * the input's value (text as is, anything else as JSON); '' when the trigger has no key (one
 * limit for all its fires). Long values are hashed, so the stored key stays short.
 */
export function concurrencyKeyOf(settings: FlowTriggerSettings, input: Record<string, unknown>): string {
  const template = settings.concurrency?.key;
  if (!template) return '';
  const value = template.replace(TEMPLATE, (_whole, key: string) => {
    const found = input[key];
    return typeof found === 'string' ? found : JSON.stringify(found ?? null);
  });
  return value.length <= 200 ? value : `sha256:${createHash('sha256').update(value).digest('hex')}`;
}
