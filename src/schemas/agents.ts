import { CronExpressionParser } from 'cron-parser';
import { z } from 'zod';
import { AGENT_DATA_TYPES } from './device-protocol';
import { deviceIdSchema } from './device-protocol';
import { modelRefSchema } from './model-ref';

/**
 * Agent configs as the HTTP API reads and writes them: camelCase
 * JSON, one schema per payload. Credentials are never part of a body: a cloud agent gets one
 * through the OAuth flow (`/oauth/:provider/authorize?agentId=…`).
 */

export const AGENT_TYPES = ['local_directory', 'gmail', 'teams', 'outlook'] as const;
export const CLOUD_PROVIDERS = ['gmail', 'outlook', 'teams'] as const;

/** Five-field cron (minute hour day month weekday), parsed by cron-parser; seconds are not offered. */
export const cronSchema = z
  .string()
  .trim()
  .min(9)
  .max(100)
  .superRefine((value, ctx) => {
    if (value.split(/\s+/).length !== 5)
      return void ctx.addIssue({ code: 'custom', message: 'scheduleCron must have 5 fields: minute hour day month weekday' });
    try {
      CronExpressionParser.parse(value, { tz: 'UTC' });
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: `scheduleCron is not a valid cron expression: ${(error as Error).message}` });
    }
  });

export const timezoneSchema = z
  .string()
  .max(64)
  .refine((zone) => {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: zone });
      return true;
    } catch {
      return false;
    }
  }, 'timezone must be an IANA time zone such as Europe/Berlin');

const WINDOWS_ABSOLUTE = /^[A-Za-z]:[\\/]/;
/** An absolute local path on the device (POSIX or Windows drive) without `..` segments, never a UNC path. */
export const directoryPathSchema = z
  .string()
  .min(1)
  .max(1_024)
  .refine((value) => value.startsWith('/') || WINDOWS_ABSOLUTE.test(value), 'directoryPaths must be absolute paths')
  // `//host/share`, `\\host\share` and `\\?\` / `\\.\` device paths reach other machines or raw devices
  // from a Windows device: a local agent reads local folders only.
  .refine((value) => !/^[\\/]{2}/.test(value), 'directoryPaths may not be network (UNC) or device paths')
  .refine((value) => !value.split(/[\\/]+/).includes('..'), 'directoryPaths may not contain ".." segments')
  .refine((value) => !value.includes('\0'), 'directoryPaths may not contain NUL');

export const fileExtensionSchema = z
  .string()
  .regex(/^\.[A-Za-z0-9]{1,10}$/, 'fileExtensions look like ".txt"')
  .transform((ext) => ext.toLowerCase());

export const dataTypesSchema = z
  .array(z.enum(AGENT_DATA_TYPES, { error: `dataTypes may contain ${AGENT_DATA_TYPES.join(', ')}` }))
  .min(1)
  .max(AGENT_DATA_TYPES.length)
  .transform((types) => [...new Set(types)]);

/** A trimmed, non-empty text without NUL, which Postgres text and jsonb columns refuse (a 500, not a 400). */
const text = (max: number) =>
  z
    .string()
    .trim()
    .min(1)
    .max(max)
    .refine((value) => !value.includes('\0'), 'may not contain NUL characters');
const name = text(200);
const promptTemplate = text(8_000);

/**
 * The agent's own model, `{provider, model}` as flow nodes name one; checked against the configured
 * models when saved (400 `unknown_model`). Null (or absent) = the deployment's default chain.
 */
const agentModelSchema = modelRefSchema.nullable().optional();

const isoDate = z.iso.datetime({ offset: true }).or(z.iso.date());
export const filterConfigSchema = z
  .strictObject({
    labels: z.array(text(100)).max(20).optional(),
    dateRange: z
      .strictObject({ from: isoDate.optional(), to: isoDate.optional() })
      .refine(
        (range) => !range.from || !range.to || Date.parse(range.from) <= Date.parse(range.to),
        'dateRange.from must not be after dateRange.to',
      )
      .optional(),
    senders: z.array(text(254)).max(50).optional(),
    /**
     * Teams: also read the channel messages of the teams the user joined. Connecting then asks for
     * the channel scopes, which most tenants let only an administrator consent to; ignored elsewhere.
     */
    channels: z.boolean().optional(),
  })
  .default({});

export const createLocalAgentSchema = z.strictObject({
  name,
  deviceId: deviceIdSchema,
  directoryPaths: z.array(directoryPathSchema).min(1).max(50),
  dataTypes: dataTypesSchema,
  promptTemplate,
  model: agentModelSchema,
  fileExtensions: z.array(fileExtensionSchema).min(1).max(50).default(['.txt', '.md']),
  scheduleCron: cronSchema.nullable().optional(),
  timezone: timezoneSchema.default('UTC'),
  enabled: z.boolean().default(true),
});
export const updateLocalAgentSchema = z
  .strictObject({
    name: name.optional(),
    deviceId: deviceIdSchema.optional(),
    directoryPaths: z.array(directoryPathSchema).min(1).max(50).optional(),
    dataTypes: dataTypesSchema.optional(),
    promptTemplate: promptTemplate.optional(),
    model: agentModelSchema,
    fileExtensions: z.array(fileExtensionSchema).min(1).max(50).optional(),
    scheduleCron: cronSchema.nullable().optional(),
    timezone: timezoneSchema.optional(),
    enabled: z.boolean().optional(),
  })
  .refine((body) => Object.keys(body).length > 0, 'send at least one field to change');

export const createCloudAgentSchema = z.strictObject({
  provider: z.enum(CLOUD_PROVIDERS),
  name,
  dataTypes: dataTypesSchema,
  promptTemplate,
  model: agentModelSchema,
  scheduleCron: cronSchema.nullable().optional(),
  timezone: timezoneSchema.default('UTC'),
  filterConfig: filterConfigSchema,
  enabled: z.boolean().default(true),
});
export const updateCloudAgentSchema = z
  .strictObject({
    name: name.optional(),
    dataTypes: dataTypesSchema.optional(),
    promptTemplate: promptTemplate.optional(),
    model: agentModelSchema,
    scheduleCron: cronSchema.nullable().optional(),
    timezone: timezoneSchema.optional(),
    filterConfig: filterConfigSchema.optional(),
    enabled: z.boolean().optional(),
  })
  .refine((body) => Object.keys(body).length > 0, 'send at least one field to change');

export const listRunsQuerySchema = z.strictObject({
  agentId: z.uuid().optional(),
  page: z.coerce.number().int().min(1).max(10_000).default(1),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  /** The previous page's `nextCursor` (newest first); when given, `page` is not used. */
  cursor: z.string().min(1).max(500).optional(),
});

export type CreateLocalAgent = z.output<typeof createLocalAgentSchema>;
export type UpdateLocalAgent = z.output<typeof updateLocalAgentSchema>;
export type CreateCloudAgent = z.output<typeof createCloudAgentSchema>;
export type UpdateCloudAgent = z.output<typeof updateCloudAgentSchema>;

/** What `/agents/catalog` lists: each agent type with the JSON schema of its config. */
export function agentCatalog() {
  const local = z.toJSONSchema(createLocalAgentSchema, { io: 'input', unrepresentable: 'any' });
  const cloud = z.toJSONSchema(createCloudAgentSchema, { io: 'input', unrepresentable: 'any' });
  return [
    {
      type: 'local_directory',
      kind: 'local',
      name: 'Local directory',
      description: 'Watches local directories, extracts data from files using AI',
      configSchema: local,
    },
    {
      type: 'gmail',
      kind: 'cloud',
      name: 'Gmail',
      description: 'Scans Gmail inbox, extracts tasks/notes from emails',
      configSchema: cloud,
      scopes: ['https://www.googleapis.com/auth/gmail.readonly'],
    },
    {
      type: 'teams',
      kind: 'cloud',
      name: 'Microsoft Teams',
      description:
        'Monitors your Teams chats (1:1 and group) and, with filterConfig.channels, the channels of your teams; extracts action items',
      configSchema: cloud,
      scopes: ['Chat.Read'],
    },
    {
      type: 'outlook',
      kind: 'cloud',
      name: 'Outlook',
      description: 'Scans Outlook inbox, extracts tasks/notes',
      configSchema: cloud,
      scopes: ['Mail.Read'],
    },
  ] as const;
}

/**
 * The slot a cron expression was last due at or before `now` (null when it never was, which a
 * valid expression never is), and the next one after `now`.
 */
export function cronSlots(expression: string, timezone: string, now: Date): { previous: Date; next: Date } {
  const at = new Date(now.getTime() + 1); // prev() is exclusive: a tick exactly on the slot still counts it
  const previous = CronExpressionParser.parse(expression, { tz: timezone, currentDate: at }).prev().toDate();
  const next = CronExpressionParser.parse(expression, { tz: timezone, currentDate: now }).next().toDate();
  return { previous, next };
}
