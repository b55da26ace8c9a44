import { boolean, integer, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { timestamps } from './columns';

/** Background agents: local and cloud agents, their OAuth credentials and their runs. */

export type AgentProvider = 'gmail' | 'outlook' | 'teams';
export type AgentDataTypeName = 'tasks' | 'notes' | 'checkpoints' | 'projects';
export interface FilterConfigJson {
  labels?: string[];
  dateRange?: { from?: string; to?: string };
  senders?: string[];
  /** Teams: also read channel messages (connecting asks for the channel scopes). */
  channels?: boolean;
}

export const oauthCredentials = pgTable('oauth_credentials', {
  id: uuid('id').primaryKey().defaultRandom(),
  userId: uuid('user_id').notNull(),
  provider: text('provider', { enum: ['gmail', 'outlook', 'teams'] }).notNull(),
  keyId: text('key_id').notNull(),
  ciphertext: text('ciphertext').notNull(),
  scope: text('scope'),
  ...timestamps,
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});
export type OAuthCredentialRow = typeof oauthCredentials.$inferSelect;

const agentSchedule = {
  /** The agent's own model `{provider, model}` (0023_agent_model.sql); null = the deployment's default chain. */
  model: jsonb('model').$type<{ provider: string; model: string } | null>(),
  scheduleCron: text('schedule_cron'),
  timezone: text('timezone').notNull().default('UTC'),
  enabled: boolean('enabled').notNull().default(true),
  lastRunAt: timestamp('last_run_at', { withTimezone: true }),
  nextRunAt: timestamp('next_run_at', { withTimezone: true }),
  lastScheduledAt: timestamp('last_scheduled_at', { withTimezone: true }),
};

export const localAgents = pgTable('local_agents', {
  id: uuid('id').primaryKey().defaultRandom(),
  userId: uuid('user_id').notNull(),
  deviceId: text('device_id').notNull(),
  name: text('name').notNull(),
  directoryPaths: jsonb('directory_paths').$type<string[]>().notNull(),
  dataTypes: jsonb('data_types').$type<AgentDataTypeName[]>().notNull(),
  promptTemplate: text('prompt_template').notNull(),
  fileExtensions: jsonb('file_extensions').$type<string[]>().notNull(),
  ...agentSchedule,
  ...timestamps,
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});
export type LocalAgentRow = typeof localAgents.$inferSelect;

export const cloudAgents = pgTable('cloud_agents', {
  id: uuid('id').primaryKey().defaultRandom(),
  userId: uuid('user_id').notNull(),
  provider: text('provider', { enum: ['gmail', 'outlook', 'teams'] }).notNull(),
  name: text('name').notNull(),
  dataTypes: jsonb('data_types').$type<AgentDataTypeName[]>().notNull(),
  promptTemplate: text('prompt_template').notNull(),
  filterConfig: jsonb('filter_config').$type<FilterConfigJson>().notNull().default({}),
  credentialId: uuid('credential_id'),
  status: text('status', { enum: ['active', 'reauth_required'] })
    .notNull()
    .default('active'),
  ...agentSchedule,
  ...timestamps,
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});
export type CloudAgentRow = typeof cloudAgents.$inferSelect;

export type AgentRunStatus = 'queued' | 'running' | 'success' | 'error' | 'partial' | 'waiting_device' | 'cancelled';
export const agentRuns = pgTable('agent_runs', {
  id: uuid('id').primaryKey(),
  agentId: uuid('agent_id').notNull(),
  agentType: text('agent_type', { enum: ['local', 'cloud'] }).notNull(),
  userId: uuid('user_id').notNull(),
  trigger: text('trigger', { enum: ['schedule', 'manual'] }).notNull(),
  slot: timestamp('slot', { withTimezone: true }),
  deviceId: text('device_id'),
  status: text('status', { enum: ['queued', 'running', 'success', 'error', 'partial', 'waiting_device', 'cancelled'] }).notNull(),
  itemsProcessed: integer('items_processed').notNull().default(0),
  itemsCreated: integer('items_created').notNull().default(0),
  errors: jsonb('errors').$type<string[]>().notNull().default([]),
  fetched: jsonb('fetched').$type<unknown[]>(),
  startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
  completedAt: timestamp('completed_at', { withTimezone: true }),
  /** When the owner asked to cancel the run while a worker held it. */
  cancelRequestedAt: timestamp('cancel_requested_at', { withTimezone: true }),
});
export type AgentRunRow = typeof agentRuns.$inferSelect;
