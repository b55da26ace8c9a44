import { doublePrecision, integer, jsonb, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { timestamps } from './columns';

/** Evaluations (migration 0055): datasets of inputs and expected outputs, runs against flows, and their scored answers. */

/** A user's rows of inputs and expected outputs to run flows against. */
export const evalDatasets = pgTable('eval_datasets', {
  id: uuid('id').primaryKey().defaultRandom(),
  userId: uuid('user_id').notNull(),
  name: text('name').notNull(),
  source: text('source', { enum: ['upload', 'executions'] }).notNull(),
  rowCount: integer('row_count').notNull(),
  /** The rows' size as JSON, in characters. */
  bytes: integer('bytes').notNull(),
  ...timestamps,
});
export type EvalDatasetRow = typeof evalDatasets.$inferSelect;

export const evalDatasetRows = pgTable(
  'eval_dataset_rows',
  {
    datasetId: uuid('dataset_id').notNull(),
    position: integer('position').notNull(),
    input: jsonb('input').$type<Record<string, unknown>>().notNull(),
    expected: jsonb('expected').$type<unknown>(),
  },
  (table) => [primaryKey({ columns: [table.datasetId, table.position] })],
);
export type EvalDatasetRowRow = typeof evalDatasetRows.$inferSelect;

export type EvaluationStatus = 'running' | 'completed' | 'failed' | 'cancelled';
export const evaluations = pgTable('evaluations', {
  id: uuid('id').primaryKey(),
  userId: uuid('user_id').notNull(),
  flowId: uuid('flow_id').notNull(),
  datasetId: uuid('dataset_id').notNull(),
  versions: integer('versions').array().notNull(),
  /** The scorers as validated when the evaluation was created (src/evals/scorers.ts). */
  scorers: jsonb('scorers').$type<unknown[]>().notNull(),
  tier: text('tier', { enum: ['free', 'pro', 'enterprise'] })
    .notNull()
    .default('free'),
  /** Executions of this evaluation running at once, at most. */
  concurrency: integer('concurrency').notNull(),
  status: text('status', { enum: ['running', 'completed', 'failed', 'cancelled'] })
    .notNull()
    .default('running'),
  errorCode: text('error_code'),
  errorMessage: text('error_message'),
  ...timestamps,
  completedAt: timestamp('completed_at', { withTimezone: true }),
});
export type EvaluationRow = typeof evaluations.$inferSelect;

export type EvaluationResultStatus = 'pending' | 'running' | 'scored' | 'failed' | 'cancelled';
/** One answer of an evaluation: a dataset row run by one version. */
export const evaluationResults = pgTable(
  'evaluation_results',
  {
    evaluationId: uuid('evaluation_id').notNull(),
    version: integer('version').notNull(),
    position: integer('position').notNull(),
    status: text('status', { enum: ['pending', 'running', 'scored', 'failed', 'cancelled'] })
      .notNull()
      .default('pending'),
    /** Set when the row is claimed, before its execution is started under this id. */
    executionId: uuid('execution_id'),
    claimedAt: timestamp('claimed_at', { withTimezone: true }),
    output: jsonb('output').$type<unknown>(),
    /** Each scorer's `{scorer, score, reason}`, in the evaluation's scorer order. */
    scores: jsonb('scores').$type<Array<{ scorer: string; score: number; reason: string }>>(),
    /** The mean of `scores`. */
    score: doublePrecision('score'),
    inputTokens: integer('input_tokens').notNull().default(0),
    outputTokens: integer('output_tokens').notNull().default(0),
    costUsd: doublePrecision('cost_usd').notNull().default(0),
    /** What the LLM judge's calls cost for this answer. */
    judgeCostUsd: doublePrecision('judge_cost_usd').notNull().default(0),
    latencyMs: integer('latency_ms'),
    errorCode: text('error_code'),
    errorMessage: text('error_message'),
    completedAt: timestamp('completed_at', { withTimezone: true }),
  },
  (table) => [primaryKey({ columns: [table.evaluationId, table.version, table.position] })],
);
export type EvaluationResultRow = typeof evaluationResults.$inferSelect;
