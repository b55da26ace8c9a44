/**
 * Request and response types of the HTTP API, written out so the package stands alone (no server
 * code in its declarations). They are checked against the types the server derives from its own
 * zod schemas and view functions in test/types/client-contract.ts: a change on either side that
 * makes them differ fails `npm run typecheck`.
 */
import type { ApprovalRequested, ApprovalResolved, GenerationStage } from './payloads';

/* ---- blocks ---------------------------------------------------------------------------------- */
export type BlockType = 'text' | 'heading' | 'todo' | 'bullet_list' | 'code' | 'quote' | 'divider' | 'image';

/** The content of each block type. */
export interface BlockContents {
  text: { text: string };
  heading: { text: string; level: number };
  todo: { text: string; checked: boolean };
  bullet_list: { items: string[] };
  code: { code: string; language: string };
  quote: { text: string };
  divider: { [x: string]: never };
  image: { url: string; alt: string };
}

/** A block as clients see it. */
export interface Block {
  id: string;
  canvasId: string;
  type: BlockType;
  content: Record<string, unknown>;
  rank: string;
  generationSessionId: string | null;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
}

/** A block the model produced, before it is stored (`tool_output` events). */
export type BlockInput = { [K in BlockType]: { type: K; content: BlockContents[K] } }[BlockType];

/* ---- streamed events ------------------------------------------------------------------------- */
export type GenerationEvent =
  | { type: 'status'; generationId: string; stage: GenerationStage }
  | { type: 'tool_output'; generationId: string; index: number; block: BlockInput }
  /** A model failed mid-turn and the turn is asked again (the same model once, then the next): drop every `tool_output` with `index >= fromIndex`. */
  | { type: 'rollback'; generationId: string; fromIndex: number }
  | { type: 'complete'; generationId: string; blocks: Block[]; truncated: boolean; usage?: Record<string, unknown> }
  | { type: 'error'; generationId: string; code: string; message: string }
  | { type: 'cancelled'; generationId: string };

export interface SequencedEvent {
  seq: number;
  event: GenerationEvent;
}

export interface TurnUsage {
  provider: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

export type ChatEvent =
  | { type: 'text_chunk'; sessionId: string; text: string }
  | { type: 'tool_call'; sessionId: string; callId: string; name: string; arguments: Record<string, unknown>; agent?: string }
  | {
      type: 'tool_result';
      sessionId: string;
      callId: string;
      name: string;
      ok: boolean;
      content: string;
      agent?: string;
      changeId?: string;
    }
  | { type: 'final'; sessionId: string; response: string; usage: TurnUsage }
  | { type: 'error'; sessionId: string; code: string; message: string }
  | { type: 'cancelled'; sessionId: string; response: string; usage: TurnUsage }
  | ({ type: 'approval_requested' } & ApprovalRequested)
  | ({ type: 'approval_resolved'; sessionId: string } & ApprovalResolved)
  /** A coding turn: which agent works now, and what it is doing. */
  | { type: 'agent'; sessionId: string; agent: string; state: AgentState }
  | { type: 'plan'; sessionId: string; steps: Array<{ agent: string; task: string; status: PlanStepStatus }> }
  /** The sources the answer may cite, numbered as the model read them (`[1]`, `[2]`, …). */
  | { type: 'citations'; sessionId: string; sources: Citation[] };
/** One source an answer cites: the document, where in it, and the words quoted. */
export interface Citation {
  index: number;
  documentId: string;
  title: string;
  mediaType: string;
  chunkId: string;
  page?: number;
  section?: string;
  snippet: string;
}
/** Where a step of the Orchestrator's plan is. */
export type PlanStepStatus = 'pending' | 'running' | 'done' | 'cancelled';
/** What a coding agent is doing: thinking (the model), waiting for an approval, running a tool, done, failed. */
export type AgentState = 'processing' | 'waiting' | 'executing' | 'idle' | 'error';

export type NotesEvent = { type: 'chunk'; text: string } | { type: 'done'; documentation: string } | { type: 'error'; message: string };

/* ---- requests -------------------------------------------------------------------------------- */
type Placement = { afterId?: string; beforeId?: string };
export type AgentDataTypeName = 'tasks' | 'notes' | 'checkpoints' | 'projects';
export type CloudProvider = 'gmail' | 'outlook' | 'teams';
export type MemberRole = 'owner' | 'editor' | 'viewer';
export interface CloudFilterConfig {
  labels?: string[];
  dateRange?: { from?: string; to?: string };
  senders?: string[];
  /** Teams: also read channel messages of the teams you joined (connecting asks for the channel scopes, which most tenants let only an admin grant). */
  channels?: boolean;
}

export interface RegisterRequest {
  email: string;
  password: string;
  name: string;
}
export interface LoginRequest {
  email: string;
  password: string;
}
export interface CreateCanvasRequest {
  title: string;
}
export interface UpdateCanvasRequest {
  title: string;
}
export interface AddMemberRequest {
  email: string;
  role: MemberRole;
}
export type CreateBlockRequest = { [K in BlockType]: Placement & { type: K; content: BlockContents[K] } }[BlockType];
export interface UpdateBlockRequest {
  content?: Record<string, unknown>;
  afterId?: string | null;
  beforeId?: string | null;
}
export interface GenerateRequest {
  prompt: string;
  afterId?: string;
}
export interface ChatRequest {
  message: string;
  sessionId?: string;
  deviceId?: string;
  config?: { provider: string; model: string };
  tools?: 'device' | 'none';
  /** Where the user is in the app (≤ 8,000 characters of JSON): kept on the session, given to the model every turn; `{}` clears it. */
  context?: Record<string, unknown>;
  /** A coding turn: the agent that works on the project the device serves (`orchestrator` picks one by the message). */
  agent?: CodingAgentName;
  /** What this message does while a turn of its session runs (unset: the session's strategy, else `enqueue`). */
  multitask?: Multitask;
  /** Files sent with the message (at most 4), ingested into the session's own knowledge base; the answer cites them. */
  files?: ChatFilePart[];
}
/** A file sent with a chat message: the AI SDK's UI message `file` part, its `url` a base64 `data:` URL. */
export interface ChatFilePart {
  type: 'file';
  mediaType: string;
  filename?: string;
  url: string;
}
/** A change a coding agent made to a device's project; the device keeps the previous content to undo it. */
export interface ChangeRecord {
  changeId: string;
  path: string;
  tool: 'write_file' | 'edit_file' | 'delete_file' | 'undo_change';
  at: string;
  created: boolean;
  deleted: boolean;
  hash: string | null;
  previousHash: string | null;
  undoneBy?: string | null;
}
/** `POST /devices/:deviceId/changes/:changeId/undo`. */
export interface UndoneChange {
  path: string;
  diff: string;
  change?: ChangeRecord;
}
/** The coding agents (docs/coding-agents.md). */
export type CodingAgentName = 'orchestrator' | 'ask' | 'coder' | 'debug' | 'architect';
export interface EmbedRequest {
  text: string;
}

/** One configured model of one provider (`LLM_PROVIDERS`); the demo model is `{provider: 'demo', model: 'demo'}`. */
export interface AgentModelRef {
  provider: string;
  model: string;
}
export interface CreateLocalAgentRequest {
  name: string;
  deviceId: string;
  directoryPaths: string[];
  dataTypes: AgentDataTypeName[];
  promptTemplate: string;
  /** The agent's own model (then the deployment's fallback chain); not configured → 400 `unknown_model`; null = the default. */
  model?: AgentModelRef | null;
  fileExtensions?: string[];
  scheduleCron?: string | null;
  timezone?: string;
  enabled?: boolean;
}
export type UpdateLocalAgentRequest = Partial<CreateLocalAgentRequest>;
export interface CreateCloudAgentRequest {
  provider: CloudProvider;
  name: string;
  dataTypes: AgentDataTypeName[];
  promptTemplate: string;
  /** The agent's own model (then the deployment's fallback chain); not configured → 400 `unknown_model`; null = the default. */
  model?: AgentModelRef | null;
  scheduleCron?: string | null;
  timezone?: string;
  filterConfig?: CloudFilterConfig;
  enabled?: boolean;
}
export type UpdateCloudAgentRequest = Partial<Omit<CreateCloudAgentRequest, 'provider'>>;
/** `page` and `limit` are coerced from the query string by the server. */
export type ListRunsQuery = {
  agentId?: string;
  page?: number;
  limit?: number;
};

/* ---- responses ------------------------------------------------------------------------------- */
export interface User {
  id: string;
  email: string;
  name: string;
  tier: 'free' | 'pro' | 'enterprise';
  role: 'user' | 'admin' | 'service';
  createdAt: string;
}
/** What a plan lets its users reach at all; a feature that is off answers 403 `tier_forbidden`. */
export interface TierFeatures {
  localModels: boolean;
  cloudAgents: boolean;
  flows: boolean;
}
/** Model spend per window; `null` = unlimited. */
export interface BudgetLimits {
  tokensPerHour: number | null;
  requestsPerHour: number | null;
  tokensPerMonth: number | null;
  costUsdPerMonth: number | null;
  requestsPerMonth: number | null;
}
export interface TierLimits extends BudgetLimits {
  generationsPerMinute: number;
  generationsPerHour: number;
  concurrentGenerations: number;
  maxBlocksPerGeneration: number;
  maxEnabledAgents: number;
  /** Largest knowledge file (and chat file), in bytes; the deployment's cap applies too. */
  maxKnowledgeFileBytes: number;
  /** Documents one knowledge base may hold; the deployment's cap applies too. */
  maxKnowledgeDocuments: number;
  /** Knowledge bases the user may own (a chat session's own base is not counted). */
  maxKnowledgeBases: number;
  /** The shortest gap between two fires of a flow's schedule trigger, in seconds. */
  minScheduleIntervalSeconds: number;
  features: TierFeatures;
}
/** One user's overrides over their tier (`PUT /admin/users/:id/limits`); absent keys keep the tier's value. */
export type UserLimitOverrides = Partial<BudgetLimits> & { features?: Partial<TierFeatures> };
/** A user's plan as an operator set it: tier, overrides, and the limits in effect (tier + overrides). */
export interface UserPlan {
  id: string;
  tier: User['tier'];
  limitOverrides: UserLimitOverrides | null;
  limits: TierLimits;
}
/** One user in an operator's list (`GET /admin/users`). */
export interface UserListEntry {
  id: string;
  email: string;
  name: string;
  tier: User['tier'];
  admin: boolean;
  createdAt: string;
}
/** One of the caller's devices (`GET /devices`): online now, or named by a local agent. */
export interface DeviceView {
  deviceId: string;
  online: boolean;
  connectedAt: string | null;
  agentIds: string[];
  agents: Array<{ id: string; name: string }>;
  /** The project folder the device serves to the coding agents; null when none or offline. */
  project: { name: string; root?: string } | null;
}
/** A coding agent as the deployment runs it (`GET /coding/agents`). */
export interface CodingAgentView {
  name: 'orchestrator' | 'ask' | 'coder' | 'debug' | 'architect';
  description: string;
  prompt: string;
  toolsets: Array<'code_read' | 'code_write' | 'code_exec'>;
  /** What the model is offered; `write` and `execute` wait for approval, `plan` is the Orchestrator's `plan_steps`. */
  tools: Array<{ name: string; risk: 'read' | 'write' | 'execute' | 'plan' }>;
  /** The model its turns call: its own when served, else the deployment's default. */
  model: { provider: string; model: string };
  /** The model configured for it; null: the default. */
  configuredModel: { provider: string; model: string } | null;
  maxToolIterations: number;
  /** The fields the operator's `CODING_AGENTS` changed. */
  overridden: Array<'description' | 'toolsets' | 'prompt' | 'model' | 'maxToolIterations'>;
}
/** `GET /usage/engagement`: how the assistant is used over a range of UTC days. */
export interface Engagement {
  from: string;
  to: string;
  /** Answers rated up and down in the range; `rate` = up / (up + down), null when none was rated. */
  satisfaction: { up: number; down: number; rate: number | null };
  /** User and assistant messages sent, the sessions they were in, and messages per session (null without sessions). */
  messages: { messages: number; sessions: number; perSession: number | null };
  /** Per UTC day with any, the users who sent a message that day. */
  dailyActiveUsers: Array<{ day: string; users: number }>;
  averageDailyActiveUsers: number;
}
/** One window of `GET /usage/budget`; a `limit…` of `null` is unlimited. */
export interface BudgetWindow {
  window: 'hour' | 'month';
  limitTokens: number | null;
  usedTokens: number;
  reservedTokens: number;
  limitRequests: number | null;
  usedRequests: number;
  limitCostUsd: number | null;
  usedCostUsd: number;
  resetsAt: string;
}
export interface BudgetResponse {
  tier: User['tier'];
  windows: BudgetWindow[];
}
export interface AuthResponse {
  user: User;
  accessToken: string;
  refreshToken: string;
}
export interface TokenPair {
  accessToken: string;
  refreshToken: string;
}
/** `read`: GET and HEAD only; `write`: everything the user may do. Keys never carry admin rights. */
export type ApiKeyScope = 'read' | 'write';
/** An API key as listed: never its secret. */
export interface ApiKey {
  id: string;
  name: string;
  /** The first characters of the secret, to tell keys apart. */
  prefix: string;
  scopes: ApiKeyScope[];
  createdAt: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
  revokedAt: string | null;
}
/** What a webhook endpoint listens to: `run.succeeded`, `run.failed`, `run.cancelled`, `approval.requested`, `input.requested`. */
export interface CreateWebhookRequest {
  url: string;
  events: string[];
  /** Only this flow's executions and their approvals; default every run of yours. */
  flowId?: string;
  description?: string;
}

export interface WebhookEndpoint {
  id: string;
  url: string;
  description: string;
  events: string[];
  flowId: string | null;
  createdAt: string;
}

/** One attempt of a delivery: `retrying` (failed, another follows), `delivered`, or `failed` (the last). */
export interface WebhookDeliveryAttempt {
  attempt: number;
  status: 'retrying' | 'delivered' | 'failed';
  responseStatus: number | null;
  error: string | null;
  attemptedAt: string;
}

/** One message to one endpoint: its `id` is the `webhook-id` the receiver sees. */
export interface WebhookDelivery {
  id: string;
  endpointId: string;
  eventType: string;
  status: 'pending' | 'retrying' | 'delivered' | 'failed';
  attempts: number;
  responseStatus: number | null;
  lastError: string | null;
  /** Every attempt, oldest first (a delivery's newest 30): how it ended, the receiver's status code or why none, when. */
  attemptLog: WebhookDeliveryAttempt[];
  payload: unknown;
  createdAt: string;
  lastAttemptAt: string | null;
  deliveredAt: string | null;
}

/** An MCP server you registered: its auth header by name only. */
export interface McpServer {
  id: string;
  /** Its tools are named `mcp__<name>__<tool>`. */
  name: string;
  /** Shared by the operators with every user. */
  shared: boolean;
  url: string;
  authHeader: { name: string; stored: true } | null;
  /** A server that wants OAuth: how your own sign-in to it stands (null: it takes no sign-in). */
  oauth: { status: 'not_started' | 'pending' | 'signed_in' | 'sign_in_required'; expiresAt: string | null } | null;
  allowedTools: string[];
  /** Tools that run without approval; every other allowed tool is dangerous. */
  safeTools: string[];
  createdAt: string;
}
/** An OAuth sign-in to an MCP server, started: open `authorizationUrl` in the browser before `expiresAt`. */
export interface McpSignIn {
  authorizationUrl: string;
  expiresAt: string;
}
export type { McpToolStatus } from './mcp-types';
export interface RegisterMcpServerRequest {
  /** Lowercase letters and digits, words joined by one `_` (1-24). */
  name: string;
  /** The Streamable HTTP endpoint. */
  url: string;
  /** Sent with every request to the server; stored sealed. */
  authHeader?: { name: string; value: string };
  allowedTools: string[];
  safeTools?: string[];
}
export interface CreateApiKeyRequest {
  name: string;
  /** Default `['read', 'write']`. */
  scopes?: ApiKeyScope[];
  /** ISO 8601, in the future; default never. */
  expiresAt?: string;
}
/** The new key and its secret (`sb_live_…`), shown this once. */
export interface CreatedApiKey {
  apiKey: ApiKey;
  secret: string;
}
export interface ApiKeyPage {
  apiKeys: ApiKey[];
  nextCursor: string | null;
}
export interface MeResponse {
  user: User & { limits: TierLimits };
}
/**
 * `GET /me/export`: everything the server holds about the caller. Rows keep their stored field
 * names; secrets are never included (a stored OAuth credential says `stored: true`).
 */
export interface AccountExport {
  format: 'switchboard.account-export.v1';
  exportedAt: string;
  profile: { id: string; email: string; name: string; tier: string; role: string; createdAt: string; updatedAt: string };
  canvases: Array<Record<string, unknown> & { id: string; title: string; blocks: Array<Record<string, unknown>> }>;
  memberships: Array<{ canvasId: string; role: MemberRole; joinedAt: string }>;
  chatSessions: Array<Record<string, unknown> & { id: string; messages: Array<Record<string, unknown>> }>;
  approvals: Array<Record<string, unknown>>;
  flows: Array<
    Record<string, unknown> & { id: string; embeds: Array<Record<string, unknown>>; executions: Array<Record<string, unknown>> }
  >;
  agents: {
    local: Array<Record<string, unknown>>;
    cloud: Array<Record<string, unknown> & { credential: { id: string; stored: true } | null }>;
    connections: Array<{ id: string; provider: string; scope: string | null; createdAt: string; updatedAt: string; stored: true }>;
    runs: Array<Record<string, unknown>>;
  };
  /** Your PSA connection, never its credentials. */
  psaConnections: Array<PsaConnection & { credentials: { stored: true } }>;
  generations: Array<Record<string, unknown>>;
  usage: Array<Record<string, unknown>>;
  apiKeys: Array<{
    id: string;
    name: string;
    scopes: ApiKeyScope[];
    createdAt: string;
    lastUsedAt: string | null;
    expiresAt: string | null;
    revokedAt: string | null;
  }>;
  /** Registered MCP servers; the auth header by name only. */
  mcpServers: Array<Omit<McpServer, 'shared'>>;
}
/** `DELETE /me`: the account's email as the confirmation. */
export interface DeleteAccountRequest {
  confirm: string;
}
/** What `DELETE /me` did with the canvases the caller owned. */
export interface DeletedAccount {
  deleted: true;
  canvasesDeleted: string[];
  canvasesTransferred: Array<{ canvasId: string; to: string }>;
}
export interface Canvas {
  id: string;
  title: string;
  ownerId: string;
  /** The caller's role on this canvas. */
  role: MemberRole;
  createdAt: string;
  updatedAt: string;
}
export interface CanvasMember {
  userId: string;
  name: string;
  email: string;
  role: MemberRole;
}
export interface CanvasWithMembers {
  canvas: Canvas;
  /** The first 200 members in join order; `members.list(id, {cursor: membersNextCursor})` has the rest. */
  members: CanvasMember[];
  membersNextCursor: string | null;
}
export interface AddedMember {
  userId: string;
  name: string;
  email: string;
  role: CanvasMember['role'];
}
export interface Generation {
  id: string;
  canvasId: string;
  userId: string;
  status: 'queued' | 'running' | 'completed' | 'failed' | 'cancelled' | 'undone';
  blockCount: number;
  truncated: boolean;
  usage: { provider: string | null; model: string | null; inputTokens: number; outputTokens: number; costUsd: number };
  error: { code: string; message: string | null } | null;
  attempts: number;
  createdAt: string;
  startedAt: string | null;
  completedAt: string | null;
  undoneAt: string | null;
}
export interface UndoResult {
  generationId: string;
  /** The removed blocks, in rank order. */
  blockIds: string[];
  /** Blocks of the generation people had edited since, kept (empty with `force`). */
  keptBlockIds: string[];
}
/**
 * `undo`'s body: `force` removes the blocks people edited since the generation, too;
 * `askIfEdited` refuses (409 `edited_blocks`, nothing changed) an undo that would keep edited blocks.
 */
export interface UndoRequest {
  force?: boolean;
  askIfEdited?: boolean;
}
export interface RedoResult {
  generationId: string;
  /** The restored blocks, with their ids and ranks, in rank order. */
  blocks: Block[];
}
/**
 * One entry of `GET /me/history`: a tool the assistant ran on your device (`device_tool_call`:
 * `details.tool`, `outcome`, `approvalId`, `deviceId`, `sessionId`), a generation, a flow execution,
 * an agent run, or another audited action of yours (`action`, e.g. `ai.generation.undone`).
 */
export interface HistoryEntry {
  id: string;
  kind: 'device_tool_call' | 'generation' | 'flow_execution' | 'agent_run' | 'action';
  action: string;
  at: string;
  details: Record<string, unknown>;
}

export interface AuditRow {
  id: string;
  action: string;
  actorId: string;
  onBehalfOf: string | null;
  canvasId: string | null;
  targetType: string | null;
  targetId: string | null;
  details: unknown;
  /** The client address of the HTTP request behind the action (as the server saw it, behind its trusted proxies), or null. */
  ip: string | null;
  /** That request's `User-Agent` (at most 300 characters), or null. */
  userAgent: string | null;
  /** The device the action ran on (a device tool call), or null. */
  deviceId: string | null;
  createdAt: string;
}
export interface ChatResponse {
  sessionId: string;
  /** The answer; when `cancelled`, as far as it got before the stop. */
  response: string;
  /** The turn was stopped by a cancel. */
  cancelled?: true;
  usage: TurnUsage;
}
/** 202 of `generations.cancel`. */
export interface GenerationCancelResult {
  generationId: string;
  status: 'cancelling';
}
/** 202 of `chat.cancel`. */
export interface ChatCancelResult {
  sessionId: string;
  status: 'cancelling';
}
export type SessionStatus = 'active' | 'paused' | 'escalated' | 'resolved';
export interface ChatSession {
  id: string;
  deviceId: string | null;
  status: SessionStatus;
  mode: 'none' | 'device' | 'flow';
  flowId: string | null;
  /** Set on a session started through a chatflow's public widget. */
  embedId: string | null;
  escalationReason: string | null;
  /** The app's context of the conversation (the latest request that carried one). */
  context: Record<string, unknown> | null;
  title: string | null;
  /** The PSA ticket its notes go to. */
  psaTicketId: string | null;
  /** Null until the session is resolved. */
  psaPushStatus: PsaPushStatus | null;
  psaPushError: string | null;
  memberMappingWarning: string | null;
  /** The task lane as the console left it (`chat.setTaskLane`); null when none was kept. */
  pendingTaskLane: TaskLane | null;
  /** What a message sent while a turn of the session runs does (`chat.setMultitask`); `enqueue` unless set. */
  multitask: Multitask;
  /** The coding agent working on it (its latest coding turn's, or the running plan step's); null when it never had one. */
  agent: CodingAgentView['name'] | null;
  /** The canvas whose room thread it is (its members read it, its editors post); null for a private session. */
  canvasId: string | null;
  /** Who decides an approval asked by the thread's turns; `requester` off a thread. */
  approvals: ThreadApprovalPolicy;
  createdAt: string;
  updatedAt: string;
}
/**
 * What a message sent while a turn of its session runs does: `enqueue` runs it after that turn (it
 * reads its answer), `reject` refuses it (409 `turn_in_progress`), `interrupt` cancels the running
 * turn keeping its words, `rollback` cancels it and removes its messages.
 */
export type Multitask = 'enqueue' | 'reject' | 'interrupt' | 'rollback';
/** A session's task lane: questions to answer and actions to do, and whether the lane is collapsed. */
export interface TaskLane {
  collapsed: boolean;
  items: Array<{ id: string; kind: 'question' | 'action'; text: string; answer?: string; done?: boolean }>;
}
export interface ChatMessage {
  id: string;
  role: 'user' | 'assistant' | 'tool';
  content: string;
  toolName: string | null;
  replyTo: string | null;
  status: 'completed' | 'cancelled';
  usage: { provider: string | null; model: string; inputTokens: number; outputTokens: number; costUsd: number } | null;
  /** On an assistant answer its owner rated. */
  /** On a user message of a room thread: the member who sent it and the name they sent it under; null otherwise. */
  authorId: string | null;
  authorName: string | null;
  rating: AnswerRating | null;
  createdAt: string;
}
/** The owner's thumbs up or down on an assistant answer; rating again replaces it. */
export interface AnswerRating {
  rating: 'up' | 'down';
  comment: string | null;
  ratedAt: string | null;
}
export interface AnswerRatingResult {
  sessionId: string;
  messageId: string;
  rating: AnswerRating;
}
export interface ChatHistory {
  session: ChatSession;
  /** Oldest → newest within the page. */
  messages: ChatMessage[];
  /** The `cursor` for the messages before this page; null when it reaches the first. */
  nextCursor: string | null;
}
/** `flows.chatHistory(id)`: the messages of all your sessions with a chatflow, each naming its session. */
export interface FlowChatHistory {
  flowId: string;
  /** The sessions the page's messages belong to, most recently active first. */
  sessions: ChatSession[];
  /** Oldest → newest within the page, across the sessions. */
  messages: Array<ChatMessage & { sessionId: string }>;
  /** The `cursor` for the messages before this page; null when it reaches the first. */
  nextCursor: string | null;
}
/** How the push of a session's notes to the user's PSA stands: `pending_retry` queued or being retried, `no_psa` none connected. */
export type PsaPushStatus = 'sent' | 'pending_retry' | 'no_psa' | 'failed';
export interface ResolveResponse {
  sessionId: string;
  status: 'resolved';
  documentation: null;
  psaPushStatus: PsaPushStatus;
  psaPushError: string | null;
  memberMappingWarning: string | null;
}
/** An escalate's answer: as a resolve's, its notes being written and pushed to the PSA the same way. */
export interface EscalateResponse extends Omit<ResolveResponse, 'status'> {
  status: 'escalated';
}
/** A PSA connection (`PUT /psa/connection`), never its credentials. */
export interface PsaConnection {
  provider: 'connectwise';
  baseUrl: string;
  companyId: string;
  clientId: string | null;
  memberIdentifier: string | null;
  authType: 'member_keys' | 'api_key';
  createdAt: string;
  updatedAt: string;
}
export interface PsaConnectionRequest {
  provider: 'connectwise';
  /** The REST API's root, e.g. `https://api-na.myconnectwise.net/v4_6_release/apis/3.0`. */
  baseUrl: string;
  companyId: string;
  clientId?: string;
  memberIdentifier?: string;
  /** A member's public and private keys, or an API key. */
  publicKey?: string;
  privateKey?: string;
  apiKey?: string;
}
export interface SessionDocumentation {
  sessionId: string;
  status: SessionStatus;
  /** Never null here: a session whose notes were never asked for is 404. */
  documentationStatus: 'pending' | 'generating' | 'ready' | 'failed';
  documentation: string | null;
  /** The notes' Problem Summary, once ready. */
  problemSummary: string | null;
  /** Each item of the notes' Steps Taken, once ready. */
  diagnosticSteps: Array<{ description: string }> | null;
  /** The summary given when resolving, else (once ready) the notes' Resolution. */
  resolutionSummary: string | null;
}
/** A resolved session like a query (`GET /chat/sessions/similar`). */
export interface SimilarSession {
  sessionId: string;
  title: string | null;
  problemSummary: string | null;
  resolutionSummary: string | null;
  updatedAt: string;
  /** Cosine similarity to the query, above 0, at most 1. */
  score: number;
}
export interface Approval {
  id: string;
  sessionId: string;
  toolName: string;
  parameters: Record<string, unknown>;
  reason: string;
  status: 'pending' | 'approved' | 'rejected' | 'timeout';
  expiresAt: string;
  decidedAt: string | null;
  decidedBy: string | null;
  decisionReason: 'user' | 'timeout' | 'cancelled' | null;
  /** The one member who decides it whatever its thread's policy (the owner of a device lent to the thread); null otherwise. */
  addressedTo: string | null;
  /** The arguments the approver ran the call with instead of `parameters`; null when it ran as asked. */
  editedArguments: Record<string, unknown> | null;
  /** A rejection's message, given to the model as the tool's result; null for a plain rejection. */
  reply: string | null;
  createdAt: string;
}
/**
 * A form an agentflow's human_input node sent to its recipients (`GET /hitl/inputs/:id`): answer it
 * with `inputs.answer` (a signed-in person only) before `expiresAt`.
 */
export interface InputRequest {
  id: string;
  executionId: string;
  nodeId: string;
  /** The flow's owner, who asks. */
  ownerId: string;
  prompt: string;
  /** A JSON Schema of an object: its properties are the fields. */
  form: Record<string, unknown>;
  /** The decision buttons (none: one plain submit). */
  decisions: Array<{ name: string; label: string }>;
  status: 'pending' | 'answered' | 'timeout' | 'cancelled';
  /** The answer's values; null while pending (and for a timeout without a default answer). */
  values: Record<string, unknown> | null;
  decision: string | null;
  answeredBy: string | null;
  answeredAt: string | null;
  expiresAt: string;
  createdAt: string;
}
/**
 * Who decides an approval asked by a room thread's turns: the member whose message asked
 * (`requester`, the default), any editor or owner, the canvas owner, or `quorum` editors (the first
 * reject of one of them rejects).
 */
export interface ThreadApprovalPolicy {
  policy: 'requester' | 'any_editor' | 'canvas_owner' | 'quorum';
  quorum: number | null;
}
/** A device its owner lent to a room thread. */
export interface DeviceLoan {
  deviceId: string;
  ownerId: string;
  lentAt: string;
}
export interface Embedding {
  vector: number[];
  model: string;
  dimensions: number;
}

interface AgentCommon {
  id: string;
  name: string;
  dataTypes: AgentDataTypeName[];
  promptTemplate: string;
  /** The agent's own model; null = the deployment's default. */
  model: AgentModelRef | null;
  scheduleCron: string | null;
  timezone: string;
  enabled: boolean;
  lastRunAt: string | null;
  nextRunAt: string | null;
  createdAt: string;
  updatedAt: string;
}
export type Agent =
  | (AgentCommon & { type: 'local_directory'; deviceId: string; directoryPaths: string[]; fileExtensions: string[] })
  | (AgentCommon & {
      type: CloudProvider;
      provider: CloudProvider;
      filterConfig: CloudFilterConfig;
      connected: boolean;
      status: 'active' | 'reauth_required';
    });
export interface AgentRun {
  id: string;
  agentId: string;
  agentType: 'local' | 'cloud';
  trigger: 'schedule' | 'manual';
  slot: string | null;
  deviceId: string | null;
  /** `queued` from a manual run's request until a worker takes it. */
  status: 'queued' | 'running' | 'waiting_device' | 'success' | 'partial' | 'error' | 'cancelled';
  itemsProcessed: number;
  itemsCreated: number;
  errors: string[];
  startedAt: string;
  completedAt: string | null;
}
export interface AgentRunPage {
  runs: AgentRun[];
  page: number;
  limit: number;
  total: number;
}
/** 202 of `agents.cancelRun`. */
export interface AgentRunCancelResult {
  runId: string;
  status: 'cancelling';
}
/** 202 of `agents.journey.cancel`. */
export interface JourneyCancelResult {
  sessionId: string;
  status: 'cancelling';
}
export interface StartedRun {
  runId: string;
  agentId: string;
  agentType: 'local' | 'cloud';
  status: 'queued';
}

export interface JourneyStartRequest {
  agentType: 'local' | 'cloud';
  dataTypes: AgentDataTypeName[];
}
export interface JourneyMessageRequest {
  sessionId: string;
  message: string;
}
/** A journey reply: the next question, or `done: true` with the `promptTemplate`. */
export interface JourneyReply {
  sessionId: string;
  message: string;
  done: boolean;
  turn: number;
  promptTemplate?: string;
  /** The answer was cancelled before its reply: `message` is the question it answered, asked again. */
  cancelled?: true;
}
export interface JourneyView {
  sessionId: string;
  done: boolean;
  turn: number;
  promptTemplate?: string;
  agentType: 'local' | 'cloud';
  dataTypes: AgentDataTypeName[];
  messages: Array<{ role: 'user' | 'assistant'; content: string }>;
  /** Answers whose turn was cancelled before its reply, oldest first (the last 20). */
  cancelledTurns: Array<{ turn: number; answer: string; cancelledAt: string }>;
  expiresInSeconds: number;
}

export type OAuthProvider = CloudProvider;
export interface OAuthAuthorization {
  url: string;
  state: string;
  expiresAt: string;
  binding: { cookieName: string; value: string; maxAgeSeconds: number };
}
export type OAuthRefreshRequest = { credentialId?: string; agentId?: string } | undefined;
export interface OAuthRefreshed {
  credentialId: string;
  expiresAt: string | null;
}

/** `GET /metrics/summary` (the route builds it inline; kept in step by the SDK test). */
export interface MetricsSummary {
  scope: 'all' | 'user';
  queues: Record<string, Record<'waiting' | 'active' | 'delayed' | 'failed' | 'completed', number>>;
  usage: {
    byModel: Array<{ provider: string; model: string; calls: number; inputTokens: number; outputTokens: number; costUsd: number }>;
    last24h: { costUsd: number; calls: number };
  };
}

/** A message of the ticket-notes stream (`data: {"type":"chunk","text":…}` … `data: [DONE]` / `data: [ERROR] msg`). */
export type NotesStreamEvent = { type: 'chunk'; text: string } | { type: 'done' } | { type: 'error'; message: string };

// Flows (chatflows and agentflows), their executions and public embeds.
export type FlowType = 'chatflow' | 'agentflow';
export interface Flow {
  id: string;
  type: FlowType;
  name: string;
  /** The published version's (defaults filled in, e.g. a chatflow's `historyWindow`). */
  definition: Record<string, unknown>;
  /** The version new executions and chat turns run. */
  publishedVersion: number;
  /** The newest version saved (a draft when greater than `publishedVersion`). */
  latestVersion: number;
  createdAt: string;
  updatedAt: string;
}
/** A saved version of a flow's definition: numbered from 1, never changed. */
export interface FlowVersionSummary {
  version: number;
  published: boolean;
  createdAt: string;
}
export interface FlowVersion extends FlowVersionSummary {
  definition: Record<string, unknown>;
}
/** A credential HTTP tools send (`httpTools[].credential`): its secret is never answered. */
export interface HttpCredential {
  name: string;
  scheme: 'bearer' | 'basic' | 'header';
  headerName: string | null;
  /** The only origins the secret is sent to; null for one stored before origins existed (sent nowhere until stored again). */
  origins: string[] | null;
  createdAt: string;
  updatedAt: string;
}
export interface PutHttpCredentialRequest {
  scheme: 'bearer' | 'basic' | 'header';
  /** With `scheme: 'header'`: the header to send the secret in. */
  headerName?: string;
  secret: string;
  /** The only origins the secret is ever sent to (exact, e.g. `https://api.example.com`); changing them takes the secret again. */
  origins: string[];
}
/**
 * A chatflow definition is `{systemPrompt, model?: {provider, model}, temperature?, historyWindow?}`; an
 * agentflow's is `{nodes: [{id, prompt, model?, dependsOn?, outputSchema?, tools?}], output: nodeId, deviceId?,
 * httpTools?: [{name, description, method, url}], allowedOrigins?}`.
 */
export interface CreateFlowRequest {
  type: FlowType;
  name: string;
  definition: Record<string, unknown>;
}
export interface UpdateFlowRequest {
  name?: string;
  /** Saved as the next version, published unless `publish: false`. */
  definition?: Record<string, unknown>;
  publish?: boolean;
}
export interface FlowUsage {
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}
export type ExecutionStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
export interface FlowExecutionSummary {
  id: string;
  flowId: string;
  /** The flow version it runs (null: started before flows kept versions). */
  flowVersion: number | null;
  status: ExecutionStatus;
  input: Record<string, unknown>;
  /** The `output` node's output once completed, else null. */
  output: unknown;
  error: { code: string; message: string } | null;
  usage: FlowUsage;
  /** A replay: the execution it replays and the node it started from; null otherwise. */
  replayOf: { executionId: string; fromNode: string } | null;
  createdAt: string;
  startedAt: string | null;
  completedAt: string | null;
}
export interface FlowExecutionNode {
  id: string;
  status: 'pending' | 'running' | 'completed' | 'failed' | 'skipped' | 'cancelled';
  output: unknown;
  error: { code: string; message: string } | null;
  attempts: number;
  /** A replay's node taken over from the execution it replays (its committed output; it did not run). */
  reused: boolean;
  usage: FlowUsage & { provider: string | null; model: string | null };
  startedAt: string | null;
  completedAt: string | null;
}
export interface FlowExecution extends FlowExecutionSummary {
  /** In definition order. */
  nodes: FlowExecutionNode[];
}
/** An execution's event: `type` is the SSE event name, every one carries `executionId`. */
export type FlowExecutionEvent = { executionId: string } & (
  | { type: 'execution_started'; flowId: string; replayOf?: { executionId: string; fromNode: string } }
  | { type: 'node_started'; nodeId: string; attempt: number }
  | {
      /** One tool call of a node: its arguments, its result as the model read it, whether it succeeded. */
      type: 'tool_called';
      nodeId: string;
      tool: string;
      kind: 'device' | 'http' | 'mcp' | 'knowledge';
      args: unknown;
      result: string;
      ok: boolean;
      truncated?: true;
      startedAt: string;
      durationMs: number;
      approvalId?: string;
    }
  /** A dangerous device tool call waits for the owner's decision (`approvals.approve` / `approvals.reject`). */
  | { type: 'approval_requested'; nodeId: string; approvalId: string; tool: string; expiresAt: string }
  | { type: 'node_completed'; nodeId: string; output: unknown; usage: FlowUsage; reused?: true }
  | { type: 'node_failed'; nodeId: string; error: { code: string; message: string } }
  | { type: 'execution_completed'; output: unknown; usage: FlowUsage }
  | { type: 'execution_failed'; error: { code: string; message: string } }
  | { type: 'cancelled' }
);
/** An execution event with its sequence number (the SSE `id`, from 1 per execution). */
export interface SequencedExecutionEvent {
  seq: number;
  event: FlowExecutionEvent;
}
/** What a replay changes: the node's `prompt` or `model`, a subflow node's `nodeInput`, the execution's `input` (key by key). */
export interface ReplayChanges {
  prompt?: string;
  model?: { provider: string; model: string };
  nodeInput?: Record<string, string>;
  input?: Record<string, unknown>;
}
export interface ReplayRequest {
  fromNode: string;
  changes?: ReplayChanges;
}
export interface ReplayStarted {
  executionId: string;
  /** The version it runs: a new draft when the changes changed the definition. */
  flowVersion: number;
  draft: boolean;
  reusedNodes: string[];
}
export interface FlowChatRequest {
  message: string;
  sessionId?: string;
}
export interface FlowEmbed {
  id: string;
  embedId: string;
  flowId: string;
  allowedOrigins: string[];
  /** The flow version the widget chats with. */
  version: number;
  createdAt: string;
}
export interface CreatedFlowEmbed {
  embedId: string;
  /** The public token of the widget's routes (`/embed/public/{embedToken}/…`); shown once. */
  embedToken: string;
  embed: FlowEmbed;
}
/** Per-trigger controls: a concurrency key and limit, a debounce and a rate limit (webhook and connector only for the last two). */
export interface FlowTriggerSettings {
  concurrency?: { key?: string; limit: number } | null;
  debounceSeconds?: number | null;
  rateLimit?: { limit: number; perSeconds: number } | null;
}
/** `POST /flows/:id/triggers`. */
export type CreateFlowTriggerRequest =
  | ({
      type: 'schedule';
      name: string;
      enabled?: boolean;
      /** Five fields: minute hour day month weekday. */
      cron: string;
      /** IANA time zone, default UTC. */
      timezone?: string;
      /** Slots missed while no scheduler ran: `skip` (default) or `run_once`. */
      catchUp?: 'skip' | 'run_once';
      input?: Record<string, unknown>;
    } & Omit<FlowTriggerSettings, 'debounceSeconds' | 'rateLimit'>)
  | ({ type: 'webhook'; name: string; enabled?: boolean } & FlowTriggerSettings)
  | ({ type: 'connector'; name: string; enabled?: boolean; agentId: string } & FlowTriggerSettings);
/** `PATCH /flows/:id/triggers/:triggerId`: at least one field. */
export type UpdateFlowTriggerRequest = {
  name?: string;
  enabled?: boolean;
  cron?: string;
  timezone?: string;
  catchUp?: 'skip' | 'run_once';
  input?: Record<string, unknown>;
} & FlowTriggerSettings;
/** A trigger as its owner reads it (never its secret). */
export interface FlowTrigger {
  id: string;
  flowId: string;
  type: 'schedule' | 'webhook' | 'connector';
  name: string;
  enabled: boolean;
  cron: string | null;
  timezone: string | null;
  catchUp: 'skip' | 'run_once' | null;
  input: Record<string, unknown> | null;
  /** A schedule: when it fires next (null while disabled). */
  nextRunAt: string | null;
  /** A webhook: where deliveries are POSTed. */
  url: string | null;
  agentId: string | null;
  concurrency: { key: string | null; limit: number } | null;
  debounceSeconds: number | null;
  rateLimit: { limit: number; perSeconds: number } | null;
  lastFiredAt: string | null;
  lastExecutionId: string | null;
  lastError: { code: string; message: string } | null;
  createdAt: string;
  updatedAt: string;
}
export interface CreatedFlowTrigger {
  trigger: FlowTrigger;
  /** A webhook's signing secret (`whsec_…`), shown this once. */
  secret?: string;
}
/** `POST /hooks/:triggerId` accepted a delivery. */
export interface FlowWebhookAccepted {
  accepted: true;
  fire: string;
  debounced: boolean;
}
/** One UTC day of model usage per provider and model. */
export interface DailyUsage {
  day: string;
  provider: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}
/** `admin.audit`'s filters and page. */
export interface AuditQuery {
  /** Only entries of this user (who acted). */
  actorId?: string;
  /** Only entries of this device (its tool calls). */
  deviceId?: string;
  /** Only entries of this action, e.g. `device.tool_call`. */
  action?: string;
  limit?: number;
  cursor?: string;
}
export interface UsageQuery {
  /** First UTC day, `YYYY-MM-DD` (default: 29 days before `to`). */
  from?: string;
  /** Last UTC day, included (default: today). */
  to?: string;
  /** Every user's usage (admins only; 403 otherwise). */
  all?: boolean;
}

/* ---- knowledge bases ------------------------------------------------------------------------- */
export interface KnowledgeBase {
  id: string;
  ownerId: string;
  name: string;
  description: string;
  documentCount: number;
  /** `owner`: yours; `shared`: shared with a canvas you are a member of (read only). */
  access: 'owner' | 'shared';
  /** The chat session whose files the base holds, else null. */
  sessionId: string | null;
  /** The canvases it is shared with (to its owner; empty for a reader). */
  canvasIds: string[];
  createdAt: string;
}
export type KnowledgeDocumentStatus = 'queued' | 'parsing' | 'embedding' | 'ready' | 'failed';
export interface KnowledgeDocument {
  id: string;
  baseId: string;
  name: string;
  source: 'upload' | 'url';
  url: string | null;
  /** Sniffed from the bytes, not the name. */
  mediaType: string | null;
  sizeBytes: number;
  status: KnowledgeDocumentStatus;
  /** Why it failed (status `failed`). */
  error: string | null;
  revision: number;
  chunkCount: number;
  createdAt: string;
  updatedAt: string;
}
export interface KnowledgeChunk {
  ordinal: number;
  text: string;
  page: number | null;
  section: string | null;
  tokens: number;
}
export interface KnowledgeSearchRequest {
  query: string;
  baseIds?: string[];
  documentIds?: string[];
  mediaTypes?: string[];
  metadata?: Record<string, string | number | boolean>;
  limit?: number;
}
export interface KnowledgeHit {
  chunkId: string;
  documentId: string;
  documentName: string;
  mediaType: string | null;
  baseId: string;
  ordinal: number;
  text: string;
  page: number | null;
  section: string | null;
  score: number;
}
/** Where an ingestion stands: each step, and chunks stored of the total while embedding. */
export interface KnowledgeProgress {
  documentId: string;
  revision: number;
  status: KnowledgeDocumentStatus;
  chunksStored?: number;
  chunksTotal?: number;
  error?: string;
}
/** A file to upload: its name, bytes and (optionally) declared type; the server sniffs the type from the bytes. */
export interface KnowledgeFile {
  name: string;
  data: Blob | Uint8Array;
  type?: string;
}

/** An OAuth client you allowed to use `/mcp` (`client.mcpClients.list()`). */
export interface AllowedMcpClient {
  /** The consent: revoking it revokes every consent given to its client. */
  grantId: string;
  /** The client's id: the HTTPS URL of its metadata document. */
  clientId: string;
  /** What it may do at `/mcp`: `mcp:read`, `mcp:call`, `flow:<id>`. */
  scopes: string[];
  allowedAt: string;
  /** When the consent ends unless it is used to refresh. */
  expiresAt: string | null;
}

/* ---- Evaluations ---------------------------------------------------------------------------- */

/** A dataset of an evaluation: rows of inputs and expected outputs (`/evaluations/datasets`). */
export interface EvaluationDataset {
  id: string;
  name: string;
  /** Uploaded, or made from past executions. */
  source: 'upload' | 'executions';
  rowCount: number;
  /** The rows as JSON, in characters. */
  bytes: number;
  createdAt: string;
}
export interface EvaluationDatasetRow {
  position: number;
  input: Record<string, unknown>;
  expected?: unknown;
}
/** How each answer is scored (1 to 10 per evaluation). */
export type EvaluationScorer =
  | { type: 'exact'; name?: string; caseSensitive?: boolean }
  | { type: 'contains'; name?: string; value?: string; caseSensitive?: boolean }
  | { type: 'regex'; name?: string; pattern: string; flags?: string }
  | { type: 'json_schema'; name?: string; schema: Record<string, unknown> }
  | { type: 'llm_judge'; name?: string; rubric: string; model?: { provider: string; model: string } };
export interface CreateEvaluationRequest {
  flowId: string;
  datasetId: string;
  versions: number[];
  scorers: EvaluationScorer[];
  concurrency?: number;
}
export interface Evaluation {
  id: string;
  flowId: string;
  datasetId: string;
  versions: number[];
  /** As given, each with its `name`. */
  scorers: Array<Record<string, unknown>>;
  concurrency: number;
  status: 'running' | 'completed' | 'failed' | 'cancelled';
  error: { code: string; message: string } | null;
  createdAt: string;
  completedAt: string | null;
}
/** One row of one version: its execution, answer, scores, cost and latency. */
export interface EvaluationResult {
  version: number;
  position: number;
  status: 'pending' | 'running' | 'scored' | 'failed' | 'cancelled';
  executionId: string | null;
  output?: unknown;
  scores: Array<{ scorer: string; score: number; reason: string }>;
  score: number | null;
  usage: { inputTokens: number; outputTokens: number; costUsd: number; judgeCostUsd: number };
  latencyMs: number | null;
  error: { code: string; message: string } | null;
  completedAt: string | null;
}
/** One version's figures in a comparison. */
export interface EvaluationVersionSummary {
  version: number;
  rows: number;
  pending: number;
  running: number;
  scored: number;
  failed: number;
  cancelled: number;
  meanScore: number | null;
  scorers: Array<{ scorer: string; meanScore: number }>;
  costUsd: number;
  judgeCostUsd: number;
  inputTokens: number;
  outputTokens: number;
  latencyMs: { p50: number | null; p95: number | null; mean: number | null };
}
export interface EvaluationComparison {
  evaluation: Evaluation;
  versions: EvaluationVersionSummary[];
  /** The best version on each measure (null while none has one). */
  best: { score: number | null; costUsd: number | null; latencyP95Ms: number | null };
}

/** A turn of a room thread that has not ended: `roomSeq` is its first room event's seq (null before it has one). */
export interface ThreadOpenTurn {
  turnId: string;
  authorId: string | null;
  authorName: string | null;
  roomSeq: number | null;
}
/** `threads.get`: the thread, the caller's role on its canvas, and its turns queued or running now. */
export interface ThreadView {
  thread: ChatSession;
  role: 'owner' | 'editor' | 'viewer';
  openTurns: ThreadOpenTurn[];
}
export interface CreateThreadRequest {
  title?: string;
  multitask?: Multitask;
}
export interface ThreadMessageRequest {
  message: string;
  multitask?: Multitask;
  config?: { provider: string; model: string };
}
