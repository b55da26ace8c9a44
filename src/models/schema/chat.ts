import {
  bigint,
  bigserial,
  boolean,
  doublePrecision,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uuid,
} from 'drizzle-orm/pg-core';
import { timestamps } from './columns';

/** The assistant's sessions (private chats and room threads), their messages, approvals and loans. */

export const chatSessions = pgTable('chat_sessions', {
  id: uuid('id').primaryKey().defaultRandom(),
  userId: uuid('user_id').notNull(),
  deviceId: text('device_id'),
  status: text('status', { enum: ['active', 'resolved', 'escalated', 'paused'] })
    .notNull()
    .default('active'),
  title: text('title'),
  /** Ticket notes (0004_session_notes.sql). */
  resolutionSummary: text('resolution_summary'),
  documentation: text('documentation'),
  documentationStatus: text('documentation_status', { enum: ['pending', 'generating', 'ready', 'failed'] }),
  /** With the device's tools, or a plain assistant (0006_chat_modes.sql). */
  mode: text('mode', { enum: ['device', 'none', 'flow'] })
    .notNull()
    .default('device'),
  flowId: uuid('flow_id'),
  /** A session of a public chat widget belongs to that embed alone (0009_flow_embeds.sql). */
  embedId: uuid('embed_id'),
  escalationReason: text('escalation_reason'),
  /** The app's context of the conversation, given to the model on every turn (0021_chat_session_context.sql). */
  context: jsonb('context').$type<Record<string, unknown>>(),
  /** Resolution outputs taken from the notes when they are stored (0020_session_resolution_outputs.sql). */
  problemSummary: text('problem_summary'),
  diagnosticSteps: jsonb('diagnostic_steps').$type<DiagnosticStep[]>(),
  /** The PSA ticket its notes go to, and how the last push went (0026_psa_connections.sql). */
  psaTicketId: text('psa_ticket_id'),
  psaPushStatus: text('psa_push_status', { enum: ['sent', 'pending_retry', 'no_psa', 'failed'] }),
  psaPushError: text('psa_push_error'),
  /** The id of the push's current claim, which names its job (0060_psa_push_claims.sql). */
  psaPushClaim: uuid('psa_push_claim'),
  memberMappingWarning: text('member_mapping_warning'),
  /** The session's task lane as the console left it (0027_pending_task_lane.sql). */
  pendingTaskLane: jsonb('pending_task_lane').$type<TaskLane>(),
  /** What a second message does while a turn runs; null is `enqueue` (0036_chat_lanes.sql). */
  multitask: text('multitask', { enum: ['enqueue', 'reject', 'interrupt', 'rollback'] }),
  /** The coding agent working on it: its latest coding turn's, or the running plan step's (0034_chat_session_agent.sql). */
  codingAgent: text('coding_agent', { enum: ['orchestrator', 'ask', 'coder', 'debug', 'architect'] }),
  /** The canvas whose thread it is: its members read it, its editors post (0049_room_threads.sql). */
  canvasId: uuid('canvas_id'),
  /** Who decides an approval asked by a thread's turn (0056_thread_approvals_and_loans.sql). */
  approvalPolicy: text('approval_policy', { enum: ['requester', 'any_editor', 'canvas_owner', 'quorum'] })
    .notNull()
    .default('requester'),
  /** How many editors' approvals a `quorum` policy needs. */
  approvalQuorum: integer('approval_quorum'),
  ...timestamps,
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

/** A user's PSA connection: where resolved sessions' ticket notes are pushed (0026_psa_connections.sql). */
export const psaConnections = pgTable('psa_connections', {
  userId: uuid('user_id').primaryKey(),
  provider: text('provider', { enum: ['connectwise'] }).notNull(),
  baseUrl: text('base_url').notNull(),
  companyId: text('company_id').notNull(),
  clientId: text('client_id'),
  memberIdentifier: text('member_identifier'),
  authType: text('auth_type', { enum: ['member_keys', 'api_key'] }).notNull(),
  keyId: text('key_id').notNull(),
  /** The sealed credentials (src/connectors/secret-box.ts); never answered or logged. */
  ciphertext: text('ciphertext').notNull(),
  ...timestamps,
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});
export type PsaConnectionRow = typeof psaConnections.$inferSelect;

/** A session's task lane: questions to answer and actions to do, and whether the lane is collapsed. */
export interface TaskLane {
  collapsed: boolean;
  items: Array<{ id: string; kind: 'question' | 'action'; text: string; answer?: string; done?: boolean }>;
}

/** One step of a session's troubleshooting, as its notes list it. */
export interface DiagnosticStep {
  description: string;
}

/** A resolved session's embedding, kept apart so session reads never carry the vector. */
export const chatSessionEmbeddings = pgTable('chat_session_embeddings', {
  sessionId: uuid('session_id').primaryKey(),
  userId: uuid('user_id').notNull(),
  model: text('model').notNull(),
  vector: jsonb('vector').$type<number[]>().notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

export const chatMessages = pgTable('chat_messages', {
  id: uuid('id').primaryKey().defaultRandom(),
  seq: bigserial('seq', { mode: 'number' }).notNull(),
  sessionId: uuid('session_id').notNull(),
  role: text('role', { enum: ['user', 'assistant', 'tool'] }).notNull(),
  content: text('content').notNull(),
  replyTo: uuid('reply_to'),
  toolName: text('tool_name'),
  provider: text('provider'),
  model: text('model'),
  inputTokens: integer('input_tokens').notNull().default(0),
  outputTokens: integer('output_tokens').notNull().default(0),
  costUsd: doublePrecision('cost_usd').notNull().default(0),
  /** `cancelled`: an assistant answer cut short by a cancel; kept as far as it got. */
  status: text('status', { enum: ['completed', 'cancelled'] })
    .notNull()
    .default('completed'),
  /** On a user message: its turn was asked to stop (0007_cancellation.sql). */
  cancelRequestedAt: timestamp('cancel_requested_at', { withTimezone: true }),
  /** On a user message: a later message rolled its turn back; the turn's end removes its messages (0036_chat_lanes.sql). */
  rollbackRequestedAt: timestamp('rollback_requested_at', { withTimezone: true }),
  /** On an assistant answer: its owner's thumbs up or down, with an optional comment (0028_answer_ratings.sql). */
  rating: text('rating', { enum: ['up', 'down'] }),
  ratingComment: text('rating_comment'),
  ratedAt: timestamp('rated_at', { withTimezone: true }),
  /** On a user message of a room thread: who sent it (and pays for its turn), under which name (0049_room_threads.sql). */
  authorId: uuid('author_id'),
  authorName: text('author_name'),
  /** On a user message of a room thread: the canvas room seq of its `message` event (a late joiner replays from there). */
  roomSeq: bigint('room_seq', { mode: 'number' }),
  ...timestamps,
});

/** Approvals of dangerous assistant tool calls (0003_approvals.sql). */
export const hitlRequests = pgTable('hitl_requests', {
  id: uuid('id').primaryKey().defaultRandom(),
  userId: uuid('user_id').notNull(),
  /** The chat session of an assistant turn's request; null for an agentflow node's (0022_flow_approvals.sql). */
  sessionId: uuid('session_id'),
  /** The agentflow execution of a node's request; null for an assistant turn's. */
  executionId: uuid('execution_id'),
  messageId: uuid('message_id').notNull(),
  deviceId: text('device_id').notNull(),
  toolName: text('tool_name').notNull(),
  parameters: jsonb('parameters').$type<Record<string, unknown>>().notNull(),
  reason: text('reason').notNull(),
  status: text('status', { enum: ['pending', 'approved', 'rejected', 'timeout'] })
    .notNull()
    .default('pending'),
  continuation: jsonb('continuation').$type<unknown>().notNull(),
  expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  decidedAt: timestamp('decided_at', { withTimezone: true }),
  decidedBy: uuid('decided_by'),
  /** Who ended it: `user`, `timeout`, or `cancelled` (its turn was cancelled). */
  decisionReason: text('decision_reason', { enum: ['user', 'timeout', 'cancelled'] }),
  /** When the resume of the decided turn began (0007_crash_safety.sql): the reaper resumes those left null. */
  resumedAt: timestamp('resumed_at', { withTimezone: true }),
  /** The one member who decides it whatever the thread's policy: the owner of a device lent to the thread (0056). */
  addressedTo: uuid('addressed_to'),
  /** The arguments the approver gave the call instead of the model's (0057); null: run as asked. */
  editedArguments: jsonb('edited_arguments').$type<Record<string, unknown>>(),
  /** A rejection's message to the model, read as the tool's result (0057); null: a plain rejection. */
  reply: text('reply'),
  ...timestamps,
});

/** A member's vote on a quorum approval request: one per member (0056_thread_approvals_and_loans.sql). */
export const hitlVotes = pgTable(
  'hitl_votes',
  {
    approvalId: uuid('approval_id').notNull(),
    userId: uuid('user_id').notNull(),
    approved: boolean('approved').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [primaryKey({ columns: [table.approvalId, table.userId] })],
);

/** A device its owner lent to a room thread: the thread's turns may ask to run tools on it (0056). */
export const threadDeviceLoans = pgTable(
  'thread_device_loans',
  {
    threadId: uuid('thread_id').notNull(),
    deviceId: text('device_id').notNull(),
    ownerId: uuid('owner_id').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [primaryKey({ columns: [table.threadId, table.deviceId] })],
);

export type ChatSessionRow = typeof chatSessions.$inferSelect;
export type ChatMessageRow = typeof chatMessages.$inferSelect;
export type HitlRequestRow = typeof hitlRequests.$inferSelect;
export type HitlStatus = HitlRequestRow['status'];
