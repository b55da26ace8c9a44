import { boolean, doublePrecision, integer, jsonb, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { timestamps } from './columns';

/** Canvases, their members, their blocks and the generations that add them. */

/** Also `block_count` (migration 0011): kept by triggers on `blocks`, read only by `BlocksRepository.insertMany`. */
export const canvases = pgTable('canvases', {
  id: uuid('id').primaryKey().defaultRandom(),
  title: text('title').notNull(),
  ownerId: uuid('owner_id').notNull(),
  ...timestamps,
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

export const canvasMembers = pgTable(
  'canvas_members',
  {
    canvasId: uuid('canvas_id').notNull(),
    userId: uuid('user_id').notNull(),
    role: text('role', { enum: ['owner', 'editor', 'viewer'] }).notNull(),
    ...timestamps,
  },
  (table) => [primaryKey({ columns: [table.canvasId, table.userId] })],
);

export const blocks = pgTable('blocks', {
  id: uuid('id').primaryKey().defaultRandom(),
  canvasId: uuid('canvas_id').notNull(),
  type: text('type').notNull(),
  content: jsonb('content').notNull(),
  rank: text('rank').notNull(),
  generationSessionId: uuid('generation_session_id'),
  createdBy: uuid('created_by').notNull(),
  ...timestamps,
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  /** Who last changed the block by hand (content or position), and when; null while no one has. */
  editedBy: uuid('edited_by'),
  editedAt: timestamp('edited_at', { withTimezone: true }),
});

export const generations = pgTable('generations', {
  id: uuid('id').primaryKey(),
  canvasId: uuid('canvas_id').notNull(),
  userId: uuid('user_id').notNull(),
  prompt: text('prompt').notNull(),
  afterId: uuid('after_id'),
  status: text('status', { enum: ['queued', 'running', 'completed', 'failed', 'undone', 'cancelled'] })
    .notNull()
    .default('queued'),
  blockCount: integer('block_count').notNull().default(0),
  truncated: boolean('truncated').notNull().default(false),
  provider: text('provider'),
  model: text('model'),
  inputTokens: integer('input_tokens').notNull().default(0),
  outputTokens: integer('output_tokens').notNull().default(0),
  costUsd: doublePrecision('cost_usd').notNull().default(0),
  errorCode: text('error_code'),
  errorMessage: text('error_message'),
  attempts: integer('attempts').notNull().default(0),
  ...timestamps,
  startedAt: timestamp('started_at', { withTimezone: true }),
  completedAt: timestamp('completed_at', { withTimezone: true }),
  undoneAt: timestamp('undone_at', { withTimezone: true }),
  /** The blocks the last undo removed, as they were; a redo restores them once and clears this. */
  undoneBlocks: jsonb('undone_blocks').$type<UndoneBlock[]>(),
  /** Set by a cancel request (0007_cancellation.sql): the worker ends the generation `cancelled`. */
  cancelRequestedAt: timestamp('cancel_requested_at', { withTimezone: true }),
});

export type CanvasRow = typeof canvases.$inferSelect;
export type BlockRow = typeof blocks.$inferSelect;

/** A block an undo removed, kept on its generation's row for a redo (every column but the canvas and generation). */
export interface UndoneBlock {
  id: string;
  type: string;
  content: unknown;
  rank: string;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
  editedBy: string | null;
  editedAt: string | null;
}
export type GenerationRow = typeof generations.$inferSelect;
export type MemberRole = (typeof canvasMembers.$inferSelect)['role'];
