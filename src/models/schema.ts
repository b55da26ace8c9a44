import { sql } from 'drizzle-orm';
import type { UserLimitOverrides } from '../../config/tiers';
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

/**
 * drizzle mirror of migrations/*.sql (the SQL files are the source of truth for DDL; this file
 * gives queries their types). Keep both in step.
 */
const timestamps = {
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
};

export const users = pgTable('users', {
  id: uuid('id').primaryKey().defaultRandom(),
  email: text('email').notNull().unique(),
  name: text('name').notNull(),
  passwordHash: text('password_hash'),
  tier: text('tier', { enum: ['free', 'pro', 'enterprise'] })
    .notNull()
    .default('free'),
  role: text('role', { enum: ['user', 'admin', 'service'] })
    .notNull()
    .default('user'),
  /** An operator's per-user limit overrides over the tier (null: none). */
  limitOverrides: jsonb('limit_overrides').$type<UserLimitOverrides>(),
  ...timestamps,
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

export const refreshTokens = pgTable('refresh_tokens', {
  id: uuid('id').primaryKey().defaultRandom(),
  userId: uuid('user_id').notNull(),
  familyId: uuid('family_id').notNull(),
  tokenHash: text('token_hash').notNull().unique(),
  expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  usedAt: timestamp('used_at', { withTimezone: true }),
  revokedAt: timestamp('revoked_at', { withTimezone: true }),
  /** SHA-256 of the user agent and IP the token was issued to (null: issued before clients were bound). */
  clientHash: text('client_hash'),
  /** Once rotated: the token issued in its place (a grace use moves it to the newer one). */
  replacedBy: uuid('replaced_by'),
  ...timestamps,
});

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

export type UserRow = typeof users.$inferSelect;
export type RefreshTokenRow = typeof refreshTokens.$inferSelect;
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
export type AuditRow = typeof systemAudit.$inferSelect;
export type MemberRole = (typeof canvasMembers.$inferSelect)['role'];
export type ChatSessionRow = typeof chatSessions.$inferSelect;
export type ChatMessageRow = typeof chatMessages.$inferSelect;
export type HitlRequestRow = typeof hitlRequests.$inferSelect;
export type HitlStatus = HitlRequestRow['status'];

/* ---- Background agents ---------------------------------------------------------------- */

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

/* ---- Flows ------------------------------------------------------------------ */

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

/** A user's API keys (migration 0015): only the secret's SHA-256 is kept, with its first characters for lists. */
export const apiKeys = pgTable('api_keys', {
  id: uuid('id').primaryKey().defaultRandom(),
  userId: uuid('user_id').notNull(),
  name: text('name').notNull(),
  prefix: text('prefix').notNull(),
  keyHash: text('key_hash').notNull().unique(),
  scopes: text('scopes', { enum: ['read', 'write'] })
    .array()
    .notNull(),
  ...timestamps,
  lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
  expiresAt: timestamp('expires_at', { withTimezone: true }),
  revokedAt: timestamp('revoked_at', { withTimezone: true }),
});
export type ApiKeyRow = typeof apiKeys.$inferSelect;

/** A user's webhook endpoint: every run of theirs (`flowId` null) or one flow's executions. */
export const webhookEndpoints = pgTable('webhook_endpoints', {
  id: uuid('id').primaryKey().defaultRandom(),
  userId: uuid('user_id').notNull(),
  flowId: uuid('flow_id'),
  url: text('url').notNull(),
  description: text('description').notNull().default(''),
  events: text('events').array().notNull(),
  /** The `whsec_…` signing secret, sealed (src/connectors/secret-box.ts); never returned after creation. */
  secretSealed: text('secret_sealed').notNull(),
  ...timestamps,
});
export type WebhookEndpointRow = typeof webhookEndpoints.$inferSelect;

export const WEBHOOK_DELIVERY_STATUSES = ['pending', 'retrying', 'delivered', 'failed'] as const;
export type WebhookDeliveryStatus = (typeof WEBHOOK_DELIVERY_STATUSES)[number];

/** One message to one endpoint: its body as signed, its state and its last attempt. */
export const webhookDeliveries = pgTable('webhook_deliveries', {
  id: uuid('id').primaryKey().defaultRandom(),
  endpointId: uuid('endpoint_id').notNull(),
  userId: uuid('user_id').notNull(),
  eventType: text('event_type').notNull(),
  body: text('body').notNull(),
  status: text('status', { enum: WEBHOOK_DELIVERY_STATUSES }).notNull().default('pending'),
  attempts: integer('attempts').notNull().default(0),
  responseStatus: integer('response_status'),
  lastError: text('last_error'),
  ...timestamps,
  lastAttemptAt: timestamp('last_attempt_at', { withTimezone: true }),
  deliveredAt: timestamp('delivered_at', { withTimezone: true }),
});
export type WebhookDeliveryRow = typeof webhookDeliveries.$inferSelect;
/** Every attempt of a delivery (its newest ones): number, outcome, the receiver's status code or why none, when. */
export const webhookDeliveryAttempts = pgTable(
  'webhook_delivery_attempts',
  {
    deliveryId: uuid('delivery_id').notNull(),
    attempt: integer('attempt').notNull(),
    status: text('status', { enum: ['retrying', 'delivered', 'failed'] }).notNull(),
    responseStatus: integer('response_status'),
    error: text('error'),
    attemptedAt: timestamp('attempted_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [primaryKey({ columns: [table.deliveryId, table.attempt] })],
);
export type WebhookDeliveryAttemptRow = typeof webhookDeliveryAttempts.$inferSelect;
/** MCP servers a user registered, or an operator shared (no user); their auth header only sealed. */
export const mcpServers = pgTable('mcp_servers', {
  id: uuid('id').primaryKey(),
  userId: uuid('user_id'),
  name: text('name').notNull(),
  url: text('url').notNull(),
  authHeaderName: text('auth_header_name'),
  authHeaderSealed: text('auth_header_sealed'),
  allowedTools: text('allowed_tools').array().notNull(),
  safeTools: text('safe_tools').array().notNull(),
  /** UTF-8 bytes of each allowed tool's definition as the server last listed it, by tool name. */
  toolSizes: jsonb('tool_sizes').$type<Record<string, number>>().notNull().default({}),
  /** The approved hash of each tool's definition (name, description, input schema), by tool name. */
  toolPins: jsonb('tool_pins').$type<Record<string, string>>().notNull().default({}),
  /** Users sign in to it with OAuth, each with their own account there (0040_mcp_oauth.sql). */
  oauth: boolean('oauth').notNull().default(false),
  ...timestamps,
});
export type McpServerRow = typeof mcpServers.$inferSelect;

/** Whether a user's OAuth sign-in to an MCP server may be used: never signed in, signed in, or to be signed in again. */
export type McpOAuthStatus = 'pending' | 'signed_in' | 'sign_in_required';

/** One user's OAuth sign-in to one MCP server: client, metadata, verifier and tokens sealed as one document. */
export const mcpOAuthGrants = pgTable(
  'mcp_oauth_grants',
  {
    serverId: uuid('server_id').notNull(),
    userId: uuid('user_id').notNull(),
    status: text('status').$type<McpOAuthStatus>().notNull(),
    sealed: text('sealed').notNull(),
    /** sha256 (base64url) of the `state` of the sign-in under way. */
    stateHash: text('state_hash'),
    /** sha256 (base64url) of the binding cookie given to the browser that started it. */
    bindingHash: text('binding_hash'),
    stateExpiresAt: timestamp('state_expires_at', { withTimezone: true }),
    /** When the access token expires (null: the server did not say). */
    expiresAt: timestamp('expires_at', { withTimezone: true }),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    ...timestamps,
  },
  (table) => [primaryKey({ columns: [table.serverId, table.userId] })],
);
export type McpOAuthGrantRow = typeof mcpOAuthGrants.$inferSelect;

/* ---- Evaluations (0055_evaluations.sql) ------------------------------------- */

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
