import { sql } from 'drizzle-orm';
import { boolean, doublePrecision, integer, jsonb, pgTable, text, uuid } from 'drizzle-orm/pg-core';
import { timestamps } from './columns';

/** What the system keeps account of: the audit trail and every model call's usage. */

export const systemAudit = pgTable('system_audit', {
  id: uuid('id').primaryKey().defaultRandom(),
  actorId: uuid('actor_id').notNull(),
  onBehalfOf: uuid('on_behalf_of'),
  action: text('action').notNull(),
  canvasId: uuid('canvas_id'),
  targetType: text('target_type'),
  targetId: uuid('target_id'),
  details: jsonb('details')
    .notNull()
    .default(sql`'{}'::jsonb`),
  /** The client address of the HTTP request behind the action (`req.ip`, honouring TRUST_PROXY). */
  ip: text('ip'),
  /** The `User-Agent` of that request, cut to 300 characters. */
  userAgent: text('user_agent'),
  /** The device an action ran on (a device tool call). */
  deviceId: text('device_id'),
  ...timestamps,
});

export const llmUsage = pgTable('llm_usage', {
  id: uuid('id').primaryKey().defaultRandom(),
  userId: uuid('user_id'),
  generationId: uuid('generation_id'),
  sessionId: uuid('session_id'),
  purpose: text('purpose').notNull(),
  provider: text('provider').notNull(),
  model: text('model').notNull(),
  inputTokens: integer('input_tokens').notNull(),
  outputTokens: integer('output_tokens').notNull(),
  costUsd: doublePrecision('cost_usd').notNull(),
  /** No usage reported by the provider (an aborted stream): estimated at about 4 characters a token. */
  estimated: boolean('estimated').notNull().default(false),
  ...timestamps,
});

export type AuditRow = typeof systemAudit.$inferSelect;
