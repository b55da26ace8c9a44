import { boolean, doublePrecision, integer, jsonb, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { timestamps } from './columns';

/** Flows: their versions, executions, nodes, items, triggers, forms, embeds and HTTP credentials. */

export type FlowType = 'chatflow' | 'agentflow';
export const flows = pgTable('flows', {
  id: uuid('id').primaryKey().defaultRandom(),
  userId: uuid('user_id').notNull(),
  type: text('type', { enum: ['chatflow', 'agentflow'] }).notNull(),
  name: text('name').notNull(),
  /** A chatflow's or an agentflow's definition, validated on save (src/flows/definition.ts). */
  definition: jsonb('definition').$type<Record<string, unknown>>().notNull(),
  /** The version whose definition `definition` is (what new executions and owner chat turns run). */
  publishedVersion: integer('published_version').notNull().default(1),
  /** The newest version saved (0026_flow_versions.sql). */
  latestVersion: integer('latest_version').notNull().default(1),
  ...timestamps,
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});
export type FlowRow = typeof flows.$inferSelect;

/** A user's named secret for agentflow HTTP tools, sealed with the OAuth key (0027_http_credentials.sql). */
export const httpCredentials = pgTable('http_credentials', {
  id: uuid('id').primaryKey().defaultRandom(),
  userId: uuid('user_id').notNull(),
  name: text('name').notNull(),
  scheme: text('scheme', { enum: ['bearer', 'basic', 'header'] }).notNull(),
  headerName: text('header_name'),
  sealedValue: text('sealed_value').notNull(),
  /** The only origins the secret is sent to (0030_http_credential_origins.sql); null for one stored before: never sent. */
  origins: text('origins').array(),
  ...timestamps,
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});
export type HttpCredentialRow = typeof httpCredentials.$inferSelect;

/** Every saved definition of a flow, numbered from 1; never changed once written (a trigger refuses updates). */
export const flowVersions = pgTable(
  'flow_versions',
  {
    flowId: uuid('flow_id').notNull(),
    version: integer('version').notNull(),
    definition: jsonb('definition').$type<Record<string, unknown>>().notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [primaryKey({ columns: [table.flowId, table.version] })],
);
export type FlowVersionRow = typeof flowVersions.$inferSelect;

export type FlowExecutionStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
export const flowExecutions = pgTable('flow_executions', {
  id: uuid('id').primaryKey(),
  flowId: uuid('flow_id').notNull(),
  userId: uuid('user_id').notNull(),
  status: text('status', { enum: ['queued', 'running', 'completed', 'failed', 'cancelled'] })
    .notNull()
    .default('queued'),
  /** The agentflow definition as it was at execute time. */
  definition: jsonb('definition').$type<Record<string, unknown>>().notNull(),
  /** The flow version that definition is (null: an execution from before versions were kept). */
  flowVersion: integer('flow_version'),
  input: jsonb('input').$type<Record<string, unknown>>().notNull(),
  output: jsonb('output').$type<unknown>(),
  errorCode: text('error_code'),
  errorMessage: text('error_message'),
  tier: text('tier', { enum: ['free', 'pro', 'enterprise'] })
    .notNull()
    .default('free'),
  inputTokens: integer('input_tokens').notNull().default(0),
  outputTokens: integer('output_tokens').notNull().default(0),
  costUsd: doublePrecision('cost_usd').notNull().default(0),
  cancelRequestedAt: timestamp('cancel_requested_at', { withTimezone: true }),
  /** The trigger whose fire started it (0051_flow_triggers.sql); null when a person or an app did. */
  triggerId: uuid('trigger_id'),
  /** The fire's id, unique per trigger: a fire starts one execution however often it is retried. */
  triggerFire: text('trigger_fire'),
  /** The value of the trigger's concurrency key for this fire. */
  concurrencyKey: text('concurrency_key'),
  ...timestamps,
  startedAt: timestamp('started_at', { withTimezone: true }),
  completedAt: timestamp('completed_at', { withTimezone: true }),
  /** A subflow's child execution: the execution and node that started it (0050_flow_control.sql). */
  parentExecutionId: uuid('parent_execution_id'),
  parentNodeId: text('parent_node_id'),
  /** 0 for an execution started by a request, its parent's + 1 for a child. */
  depth: integer('depth').notNull().default(0),
  /** `evaluation`: every job of the execution waits behind everyone's own (0058_flow_replays_and_lanes.sql). */
  lane: text('lane', { enum: ['evaluation'] }),
  /** A replay: the ended execution it started from, and the node it started at. */
  replayOf: uuid('replay_of'),
  replayFrom: text('replay_from'),
});
export type FlowExecutionRow = typeof flowExecutions.$inferSelect;

/** What a trigger's `settings` hold: a concurrency key and limit, a debounce, a rate limit. */
export interface FlowTriggerSettings {
  concurrency?: { key?: string; limit: number };
  debounceSeconds?: number;
  rateLimit?: { limit: number; perSeconds: number };
}
/** A schedule's, a webhook's or a connector's own part of a trigger. */
export type FlowTriggerConfig =
  | { cron: string; timezone: string; catchUp: 'skip' | 'run_once'; input: Record<string, unknown> }
  | Record<string, never>
  | { agentId: string };
/** What starts an agentflow besides a person or an app (0051_flow_triggers.sql). */
export const flowTriggers = pgTable('flow_triggers', {
  id: uuid('id').primaryKey().defaultRandom(),
  flowId: uuid('flow_id').notNull(),
  userId: uuid('user_id').notNull(),
  type: text('type', { enum: ['schedule', 'webhook', 'connector'] }).notNull(),
  name: text('name').notNull(),
  enabled: boolean('enabled').notNull().default(true),
  config: jsonb('config').$type<FlowTriggerConfig>().notNull(),
  settings: jsonb('settings').$type<FlowTriggerSettings>().notNull().default({}),
  /** A webhook's signing secret, sealed with the OAuth key. */
  secretSealed: text('secret_sealed'),
  nextRunAt: timestamp('next_run_at', { withTimezone: true }),
  lastFiredAt: timestamp('last_fired_at', { withTimezone: true }),
  lastExecutionId: uuid('last_execution_id'),
  lastErrorCode: text('last_error_code'),
  lastErrorMessage: text('last_error_message'),
  ...timestamps,
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});
export type FlowTriggerRow = typeof flowTriggers.$inferSelect;

export type FlowNodeStatus = 'pending' | 'running' | 'completed' | 'failed' | 'skipped' | 'cancelled';
export const flowExecutionNodes = pgTable(
  'flow_execution_nodes',
  {
    executionId: uuid('execution_id').notNull(),
    nodeId: text('node_id').notNull(),
    position: integer('position').notNull(),
    status: text('status', { enum: ['pending', 'running', 'completed', 'failed', 'skipped', 'cancelled'] })
      .notNull()
      .default('pending'),
    output: jsonb('output').$type<unknown>(),
    errorCode: text('error_code'),
    errorMessage: text('error_message'),
    attempts: integer('attempts').notNull().default(0),
    provider: text('provider'),
    model: text('model'),
    inputTokens: integer('input_tokens').notNull().default(0),
    outputTokens: integer('output_tokens').notNull().default(0),
    costUsd: doublePrecision('cost_usd').notNull().default(0),
    startedAt: timestamp('started_at', { withTimezone: true }),
    completedAt: timestamp('completed_at', { withTimezone: true }),
    /** When its node_completed / node_failed event was written (a retry writes a missing one). */
    announcedAt: timestamp('announced_at', { withTimezone: true }),
    /** A replay's node written with the output its source execution committed: it did not run (0058). */
    reused: boolean('reused').notNull().default(false),
  },
  (table) => [primaryKey({ columns: [table.executionId, table.nodeId] })],
);
export type FlowExecutionNodeRow = typeof flowExecutionNodes.$inferSelect;
export type FlowItemStatus = 'pending' | 'queued' | 'running' | 'completed' | 'failed';
/** One element of a foreach node's list, or one iteration of a loop node (0050_flow_control.sql). */
export const flowExecutionItems = pgTable(
  'flow_execution_items',
  {
    executionId: uuid('execution_id').notNull(),
    nodeId: text('node_id').notNull(),
    index: integer('item_index').notNull(),
    status: text('status', { enum: ['pending', 'queued', 'running', 'completed', 'failed'] })
      .notNull()
      .default('pending'),
    input: jsonb('input').$type<unknown>(),
    output: jsonb('output').$type<unknown>(),
    errorCode: text('error_code'),
    attempts: integer('attempts').notNull().default(0),
    inputTokens: integer('input_tokens').notNull().default(0),
    outputTokens: integer('output_tokens').notNull().default(0),
    costUsd: doublePrecision('cost_usd').notNull().default(0),
    startedAt: timestamp('started_at', { withTimezone: true }),
    completedAt: timestamp('completed_at', { withTimezone: true }),
  },
  (table) => [primaryKey({ columns: [table.executionId, table.nodeId, table.index] })],
);
export type FlowExecutionItemRow = typeof flowExecutionItems.$inferSelect;

export const INPUT_REQUEST_STATUSES = ['pending', 'answered', 'timeout', 'cancelled'] as const;
export type InputRequestStatus = (typeof INPUT_REQUEST_STATUSES)[number];
/** A decision button of a form: its name (the branch it takes) and the text it shows. */
export interface InputDecision {
  name: string;
  label: string;
}
/**
 * A human_input node's form sent to people (0057_flow_inputs_and_approval_edits.sql): one per
 * execution and node; `userId` is the flow's owner, `recipients` who may answer it.
 */
export const inputRequests = pgTable('input_requests', {
  id: uuid('id').primaryKey().defaultRandom(),
  userId: uuid('user_id').notNull(),
  executionId: uuid('execution_id').notNull(),
  nodeId: text('node_id').notNull(),
  recipients: uuid('recipients').array().notNull(),
  prompt: text('prompt').notNull().default(''),
  form: jsonb('form').$type<Record<string, unknown>>().notNull(),
  decisions: jsonb('decisions').$type<InputDecision[]>().notNull(),
  status: text('status', { enum: INPUT_REQUEST_STATUSES }).notNull().default('pending'),
  /** The form's values as answered (or the timeout's default answer). */
  answer: jsonb('answer').$type<Record<string, unknown>>(),
  decision: text('decision'),
  answeredBy: uuid('answered_by'),
  answeredAt: timestamp('answered_at', { withTimezone: true }),
  expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  /** When its recipients were told (a re-run of the node tells them only if that never happened). */
  announcedAt: timestamp('announced_at', { withTimezone: true }),
  ...timestamps,
});
export type InputRequestRow = typeof inputRequests.$inferSelect;
/** Public chat widgets of chatflows: a hash of the token, the allowed origins (0009_flow_embeds.sql). */
export const flowEmbeds = pgTable('flow_embeds', {
  id: uuid('id').primaryKey().defaultRandom(),
  flowId: uuid('flow_id').notNull(),
  userId: uuid('user_id').notNull(),
  tokenHash: text('token_hash').notNull().unique(),
  allowedOrigins: jsonb('allowed_origins').$type<string[]>().notNull(),
  /** The flow version the widget chats with: a later publish does not change it. */
  flowVersion: integer('flow_version').notNull(),
  ...timestamps,
});
export type FlowEmbedRow = typeof flowEmbeds.$inferSelect;
