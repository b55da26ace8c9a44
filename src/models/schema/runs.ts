import { jsonb, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { timestamps } from './columns';

/** The life of every run, whatever its kind, and what a waiting run awaits. */

/** The life of every run, whatever its kind (0013_runs.sql); see src/runs/. */
export const runs = pgTable(
  'runs',
  {
    kind: text('kind', { enum: ['generation', 'chat', 'notes', 'flow', 'agent', 'journey'] }).notNull(),
    id: uuid('id').notNull(),
    userId: uuid('user_id').notNull(),
    status: text('status', { enum: ['queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled', 'timed_out'] })
      .notNull()
      .default('queued'),
    queue: text('queue'),
    jobId: text('job_id'),
    cancelRequestedAt: timestamp('cancel_requested_at', { withTimezone: true }),
    cancelRequestedBy: uuid('cancel_requested_by'),
    errorCode: text('error_code'),
    errorMessage: text('error_message'),
    ...timestamps,
    startedAt: timestamp('started_at', { withTimezone: true }),
    endedAt: timestamp('ended_at', { withTimezone: true }),
  },
  (table) => [primaryKey({ columns: [table.kind, table.id] })],
);
export type RunRow = typeof runs.$inferSelect;

/** What a waitpoint awaits. */
export const WAITPOINT_KINDS = ['approval', 'input', 'device', 'deadline', 'run'] as const;
export type WaitpointKind = (typeof WAITPOINT_KINDS)[number];

/**
 * One thing a run waits for (0037_waitpoints.sql): pending until its one completion, which keeps
 * its output. The run it blocks is (`runKind`, `runId`); its owner alone may complete it.
 */
export const waitpoints = pgTable('waitpoints', {
  id: uuid('id').primaryKey().defaultRandom(),
  kind: text('kind', { enum: WAITPOINT_KINDS }).notNull(),
  status: text('status', { enum: ['pending', 'completed'] })
    .notNull()
    .default('pending'),
  userId: uuid('user_id').notNull(),
  runKind: text('run_kind', { enum: ['generation', 'chat', 'notes', 'flow', 'agent', 'journey'] }).notNull(),
  runId: uuid('run_id').notNull(),
  /** The same key (per owner) names the same waitpoint: creating it again returns the first. */
  idempotencyKey: text('idempotency_key').notNull(),
  /** What is awaited, in the kind's words (an approval's id, a device's id, another run's id). */
  ref: text('ref'),
  /** A deadline's time: it completes then, by its delayed job or by recovery. */
  completeAfter: timestamp('complete_after', { withTimezone: true }),
  output: jsonb('output').$type<Record<string, unknown>>(),
  completedAt: timestamp('completed_at', { withTimezone: true }),
  /** The user who completed it; null when the system did (a deadline, a decision on the owner's behalf). */
  completedBy: uuid('completed_by'),
  /** When the run went on past it: a completed waitpoint is handed to one continuation. */
  releasedAt: timestamp('released_at', { withTimezone: true }),
  ...timestamps,
});
export type WaitpointRow = typeof waitpoints.$inferSelect;
