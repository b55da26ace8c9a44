import { z } from 'zod';
import { QUEUE_NAMES, type QueueName } from '../../../config';
import { CODING_AGENT_NAMES } from '../../../config/coding-agents';
import { JOURNEY_AGENT_TYPES, JOURNEY_DATA_TYPES } from '../../agents/journey-script';
import { journeyEntrySchema } from '../../agents/journey-store';
import { AGENT_DATA_TYPES } from '../../schemas/device-protocol';
import { AGENT_TYPES, CLOUD_PROVIDERS } from '../../schemas/agents';
import { BLOCK_TYPES } from '../../schemas/blocks';

/**
 * Response bodies, for the document only: handlers build these from repository views, so nothing
 * parses them at run time. `test/integration/openapi.test.ts` checks live responses against them.
 */

/** The API's error shape, `#/components/schemas/Error`. */
export const errorBodySchema = z.object({
  error: z.object({
    code: z.string().describe('Stable, machine-readable code, e.g. `validation_failed`, `not_found`'),
    message: z.string().describe('What went wrong, for people'),
    details: z.unknown().optional().describe('For `validation_failed`: `[{path, message}]`, one per problem'),
  }),
});

const timestamp = z.iso.datetime();

export const userView = z.object({
  id: z.uuid(),
  email: z.string(),
  name: z.string(),
  tier: z.enum(['free', 'pro', 'enterprise']),
  role: z.enum(['user', 'admin', 'service']),
  createdAt: timestamp,
});

export const authSessionResponse = z.object({
  user: userView,
  accessToken: z.string().describe('JWT, 15 minutes; send as `Authorization: Bearer`'),
  refreshToken: z.string().describe('Single use: refreshing rotates it, and a reused one is rejected'),
});

export const meResponse = z.object({
  user: userView.extend({
    admin: z.boolean().describe('Holds admin rights now (an operator grant or ADMIN_USER_IDS): the queue dashboard and `scope: all`'),
    limits: z.record(z.string(), z.unknown()).describe('The tier limits'),
  }),
});

const memberRole = z.enum(['owner', 'editor', 'viewer']);
const canvasView = z.object({
  id: z.uuid(),
  title: z.string(),
  ownerId: z.uuid(),
  role: memberRole.describe("The caller's role"),
  createdAt: timestamp,
  updatedAt: timestamp,
});
const memberView = z.object({ userId: z.uuid(), name: z.string(), email: z.string(), role: memberRole });

export const canvasResponse = z.object({ canvas: canvasView });
export const canvasWithMembersResponse = z.object({
  canvas: canvasView,
  members: z.array(memberView),
  membersNextCursor: z.string().nullable(),
});
export const canvasListResponse = z.object({ canvases: z.array(canvasView), nextCursor: z.string().nullable() });
export const membersResponse = z.object({ members: z.array(memberView), nextCursor: z.string().nullable() });
export const memberResponse = z.object({ member: memberView });

const blockView = z.object({
  id: z.uuid(),
  canvasId: z.uuid(),
  type: z.enum(BLOCK_TYPES as [string, ...string[]]),
  content: z.record(z.string(), z.unknown()),
  rank: z.string().describe('LexoRank-style base-62 key; blocks sort by it'),
  generationSessionId: z.uuid().nullable().describe('The generation that created it, or null'),
  createdBy: z.uuid(),
  createdAt: timestamp,
  updatedAt: timestamp,
});
export const blockResponse = z.object({ block: blockView });
export const blockListResponse = z.object({ blocks: z.array(blockView), nextCursor: z.string().nullable() });

export const undoResponse = z.object({
  generationId: z.uuid(),
  blockIds: z.array(z.uuid()).describe('The removed blocks, in rank order'),
  keptBlockIds: z.array(z.uuid()).describe('Blocks of the generation people had edited since, kept (empty with `force`)'),
});
export const redoResponse = z.object({
  generationId: z.uuid(),
  blocks: z.array(blockView).describe('The restored blocks, with their ids and ranks, in rank order'),
});

/** 202 of a cancel request: the stop is under way; the stream ends with `cancelled`. */
export const generationCancelResponse = z.object({ generationId: z.uuid(), status: z.literal('cancelling') });
export const chatCancelResponse = z.object({ sessionId: z.uuid(), status: z.literal('cancelling') });

export const embedResponse = z.object({ vector: z.array(z.number()), model: z.string(), dimensions: z.number().int() });

export const sessionStatusResponse = z.object({ sessionId: z.uuid(), status: z.string(), documentation: z.null().optional() });

const psaPushFields = {
  psaPushStatus: z
    .enum(['sent', 'pending_retry', 'no_psa', 'failed'])
    .describe('The push of the notes to your PSA: `pending_retry` queued or being retried, `no_psa` none connected'),
  psaPushError: z.string().nullable().describe('Why the last try failed'),
  memberMappingWarning: z.string().nullable().describe('Set when the note could not be posted as your PSA member'),
};

/** `POST /chat/sessions/:id/resolve`: the status, and how the push of the notes to the PSA stands. */
export const sessionResolveResponse = z.object({
  sessionId: z.uuid(),
  status: z.literal('resolved'),
  documentation: z.null(),
  ...psaPushFields,
});

/** `POST /chat/sessions/:id/escalate`: the status, and how the push of the notes to the PSA stands. */
export const sessionEscalateResponse = sessionResolveResponse.extend({ status: z.literal('escalated') });

/** A PSA connection, never its credentials. */
export const psaConnectionResponse = z.object({
  connection: z.object({
    provider: z.literal('connectwise'),
    baseUrl: z.string(),
    companyId: z.string(),
    clientId: z.string().nullable(),
    memberIdentifier: z.string().nullable(),
    authType: z.enum(['member_keys', 'api_key']),
    createdAt: timestamp,
    updatedAt: timestamp,
  }),
});

// Agents (`toAgentView` / `toRunView` in src/models/agents-repository.ts)

const dataTypes = z.array(z.enum(AGENT_DATA_TYPES));
const agentCommon = {
  id: z.uuid(),
  name: z.string(),
  dataTypes,
  promptTemplate: z.string(),
  model: z
    .object({ provider: z.string(), model: z.string() })
    .nullable()
    .describe("The agent's own model; null = the deployment's default (then its LLM_FALLBACK chain)"),
  scheduleCron: z.string().nullable().describe('Five-field cron, or null for manual runs only'),
  timezone: z.string().describe('IANA time zone the schedule is read in'),
  enabled: z.boolean(),
  lastRunAt: timestamp.nullable(),
  nextRunAt: timestamp.nullable().describe('Next scheduled run; null without a schedule or when disabled'),
  createdAt: timestamp,
  updatedAt: timestamp,
};
export const localAgentView = z.object({
  ...agentCommon,
  type: z.literal('local_directory'),
  deviceId: z.string(),
  directoryPaths: z.array(z.string()),
  fileExtensions: z.array(z.string()),
});
export const cloudAgentView = z.object({
  ...agentCommon,
  type: z.enum(CLOUD_PROVIDERS),
  provider: z.enum(CLOUD_PROVIDERS),
  filterConfig: z.object({
    labels: z.array(z.string()).optional(),
    dateRange: z.object({ from: z.string().optional(), to: z.string().optional() }).optional(),
    senders: z.array(z.string()).optional(),
    channels: z.boolean().optional().describe('Teams: also reads channel messages of the joined teams'),
  }),
  connected: z.boolean().describe('Whether an OAuth credential is attached (`/oauth/{provider}/authorize?agentId=`)'),
  status: z.enum(['active', 'reauth_required']),
});
export const localAgentListResponse = z.object({ agents: z.array(localAgentView), nextCursor: z.string().nullable() });
export const cloudAgentListResponse = z.object({ agents: z.array(cloudAgentView), nextCursor: z.string().nullable() });

export const agentCatalogResponse = z.object({
  agents: z.array(
    z.object({
      type: z.enum(AGENT_TYPES),
      kind: z.enum(['local', 'cloud']),
      name: z.string(),
      description: z.string(),
      configSchema: z.record(z.string(), z.unknown()).describe('JSON Schema of the body that creates an agent of this kind'),
      scopes: z.array(z.string()).optional().describe('OAuth scopes the provider is asked for'),
    }),
  ),
});

const runView = z.object({
  id: z.uuid(),
  agentId: z.uuid(),
  agentType: z.enum(['local', 'cloud']),
  trigger: z.enum(['schedule', 'manual']),
  slot: timestamp.nullable().describe('The schedule slot a scheduled run is for'),
  deviceId: z.string().nullable(),
  status: z
    .enum(['queued', 'running', 'success', 'error', 'partial', 'waiting_device', 'cancelled'])
    .describe('`queued` until a worker takes the run (a manual run is listed from its request on)'),
  itemsProcessed: z.number().int(),
  itemsCreated: z.number().int(),
  errors: z.array(z.string()),
  startedAt: timestamp,
  completedAt: timestamp.nullable(),
});
export const agentRunListResponse = z.object({
  runs: z.array(runView),
  page: z.number().int(),
  limit: z.number().int(),
  total: z.number().int(),
  nextCursor: z.string().nullable(),
});
export const agentRunQueuedResponse = z.object({
  runId: z.uuid(),
  agentId: z.uuid(),
  agentType: z.enum(['local', 'cloud']),
  status: z.literal('queued'),
});

// OAuth

const provider = z.enum(CLOUD_PROVIDERS);
export const oauthAuthorizeResponse = z.object({
  url: z.string().describe("The provider's consent URL; send the browser there"),
  state: z.string().describe('Signed, single-use state (10 minutes), also inside `url`'),
  expiresAt: timestamp,
});
export const oauthCallbackResponse = z.object({
  connected: z.literal(true),
  credentialId: z.uuid(),
  provider,
  agentId: z.uuid().nullable().describe('The agent the credential was attached to (the `agentId` given to authorize), or null'),
});
export const oauthRefreshResponse = z.object({ credentialId: z.uuid(), expiresAt: timestamp.nullable() });

// Agent setup journey

export const journeyReplyResponse = z.object({
  sessionId: z.uuid(),
  message: z.string().describe("The assistant's next question, or its closing message"),
  done: z.boolean(),
  turn: z.number().int().describe('Answers processed so far: 0 after start'),
  promptTemplate: z.string().optional().describe('Only once `done`'),
  cancelled: z
    .literal(true)
    .optional()
    .describe('The answer was cancelled before its reply: `message` is the question it answered, asked again'),
});
export const journeyViewResponse = z.object({
  sessionId: z.uuid(),
  agentType: z.enum(JOURNEY_AGENT_TYPES),
  dataTypes: z.array(z.enum(JOURNEY_DATA_TYPES)),
  turn: z.number().int(),
  done: z.boolean(),
  messages: z.array(journeyEntrySchema).describe('The first question, then each answer followed by its reply'),
  promptTemplate: z.string().optional(),
  cancelledTurns: z
    .array(z.object({ turn: z.number().int(), answer: z.string(), cancelledAt: z.string() }))
    .describe(
      'Answers whose turn was cancelled before its reply, oldest first (the last 20); the session stayed at the question they answered',
    ),
  expiresInSeconds: z.number().int(),
});

// Canvas audit (`toAuditView` in src/models/audit-repository.ts)

const auditView = z.object({
  id: z.uuid(),
  actorId: z.uuid(),
  onBehalfOf: z.uuid().nullable().describe('The user an agent or service acted for, or null'),
  action: z.string().describe('E.g. `canvas.member.set`, `ai.generation.undone`'),
  canvasId: z.uuid().nullable(),
  targetType: z.string().nullable(),
  targetId: z.uuid().nullable(),
  details: z.record(z.string(), z.unknown()),
  ip: z.string().nullable().describe('The client address of the HTTP request behind the action (`req.ip`, honouring TRUST_PROXY), or null'),
  userAgent: z.string().nullable().describe("That request's User-Agent (at most 300 characters), or null"),
  deviceId: z.string().nullable().describe('The device the action ran on (a device tool call), or null'),
  createdAt: timestamp,
});
export const historyListResponse = z.object({
  history: z
    .array(
      z.object({
        id: z.uuid(),
        kind: z.enum(['device_tool_call', 'generation', 'flow_execution', 'agent_run', 'action']),
        action: z.string().describe('The audit action (`device.tool_call`, `ai.generation.undone`, …), or the kind'),
        at: timestamp,
        details: z.record(z.string(), z.unknown()).describe('What the entry records: see the kinds above'),
      }),
    )
    .describe('Newest first'),
  nextCursor: z.string().nullable(),
});

export const auditListResponse = z.object({ audit: z.array(auditView).describe('Newest first'), nextCursor: z.string().nullable() });

// Generations (`toGenerationView` in src/models/generations-repository.ts)

export const generationResponse = z.object({
  generation: z.object({
    id: z.uuid(),
    canvasId: z.uuid(),
    userId: z.uuid(),
    status: z.enum(['queued', 'running', 'completed', 'failed', 'undone', 'cancelled']),
    blockCount: z.number().int(),
    truncated: z.boolean(),
    usage: z.object({
      provider: z.string().nullable(),
      model: z.string().nullable(),
      inputTokens: z.number().int(),
      outputTokens: z.number().int(),
      costUsd: z.number(),
    }),
    error: z.object({ code: z.string(), message: z.string().nullable() }).nullable(),
    attempts: z.number().int(),
    createdAt: timestamp,
    startedAt: timestamp.nullable(),
    completedAt: timestamp.nullable(),
    undoneAt: timestamp.nullable(),
  }),
});

// Assistant chat and chatflows (src/models/chat-repository.ts, src/turns/turn-events.ts)

/** `TurnUsage`: summed over the turn's model calls (`none` when no model was called). */
const turnUsage = z.object({
  provider: z.string(),
  model: z.string(),
  inputTokens: z.number().int(),
  outputTokens: z.number().int(),
  costUsd: z.number(),
});
/** `POST /chat`, `POST /flows/{id}/chat`, `POST /embed/public/{embedToken}/chat`. */
export const chatTurnResponse = z.object({
  sessionId: z.uuid(),
  response: z.string().describe('The answer; the partial answer of a cancelled turn'),
  cancelled: z.literal(true).optional().describe('Present when a cancel stopped the turn'),
  usage: turnUsage,
});

export const taskLaneView = z.object({
  collapsed: z.boolean(),
  items: z.array(
    z.object({
      id: z.string(),
      kind: z.enum(['question', 'action']),
      text: z.string(),
      answer: z.string().optional(),
      done: z.boolean().optional(),
    }),
  ),
});

const chatSessionStatus = z.enum(['active', 'resolved', 'escalated', 'paused']);
const chatSessionView = z.object({
  id: z.uuid(),
  deviceId: z.string().nullable(),
  status: chatSessionStatus,
  mode: z.enum(['device', 'none', 'flow']),
  flowId: z.uuid().nullable(),
  embedId: z.uuid().nullable().describe("Set on a session started through a chatflow's public widget"),
  escalationReason: z.string().nullable(),
  context: z
    .record(z.string(), z.unknown())
    .nullable()
    .describe(
      "What the user's app sent as the conversation's context (the latest request that carried one); given to the model every turn",
    ),
  title: z.string().nullable(),
  psaTicketId: z.string().nullable().describe('The PSA ticket its notes go to'),
  psaPushStatus: psaPushFields.psaPushStatus.nullable().describe('Null until the session is resolved'),
  psaPushError: psaPushFields.psaPushError,
  memberMappingWarning: psaPushFields.memberMappingWarning,
  pendingTaskLane: taskLaneView.nullable().describe('The task lane as the console left it (`PUT /chat/sessions/:id/task-lane`)'),
  multitask: z
    .enum(['enqueue', 'reject', 'interrupt', 'rollback'])
    .describe('What a message sent while a turn of the session runs does (`PUT /chat/sessions/:id/multitask`); `enqueue` unless set'),
  agent: z
    .enum(CODING_AGENT_NAMES)
    .nullable()
    .describe(
      "The coding agent working on it: the agent its latest coding turn was routed to, or the running plan step's; null when it never had a coding turn",
    ),
  canvasId: z
    .uuid()
    .nullable()
    .describe('The canvas whose room thread it is (its members read it, its editors post); null for a private session'),
  approvals: z
    .object({
      policy: z.enum(['requester', 'any_editor', 'canvas_owner', 'quorum']),
      quorum: z.number().int().nullable().describe('Under `quorum`: how many editors must approve (the first reject of one rejects)'),
    })
    .describe(
      "Who decides an approval asked by the thread's turns (`PUT /canvases/{id}/threads/{threadId}/approvals`); `requester` off a thread",
    ),
  createdAt: timestamp,
  updatedAt: timestamp,
});
export const answerRatingView = z.object({
  rating: z.enum(['up', 'down']),
  comment: z.string().nullable(),
  ratedAt: timestamp.nullable(),
});
export const answerRatingResponse = z.object({ sessionId: z.uuid(), messageId: z.uuid(), rating: answerRatingView });
const chatMessageView = z.object({
  id: z.uuid(),
  role: z.enum(['user', 'assistant', 'tool']),
  content: z.string(),
  toolName: z.string().nullable(),
  replyTo: z.uuid().nullable().describe('On an answer: the user message it answers'),
  status: z.enum(['completed', 'cancelled']),
  usage: z
    .object({
      provider: z.string().nullable(),
      model: z.string(),
      inputTokens: z.number().int(),
      outputTokens: z.number().int(),
      costUsd: z.number(),
    })
    .nullable()
    .describe('On a message a model wrote'),
  authorId: z.uuid().nullable().describe('On a user message of a room thread: the member who sent it (and pays for its turn)'),
  authorName: z.string().nullable().describe('On a user message of a room thread: the display name it was sent under'),
  rating: answerRatingView.nullable().describe("On an assistant answer its owner rated: the owner's thumbs up or down"),
  createdAt: timestamp,
});
/** A room thread as its canvas's members read it: the session, and the turns not ended yet (a late joiner replays them from `roomSeq`). */
export const threadOpenTurnView = z.object({
  turnId: z.uuid().describe("The turn's user message (the `turnId` of its `thread_event`s)"),
  authorId: z.uuid().nullable(),
  authorName: z.string().nullable(),
  roomSeq: z
    .number()
    .int()
    .nullable()
    .describe(
      "The room seq of the turn's `message` event: `canvas:sync {afterSeq: roomSeq - 1}` (or the thread's SSE feed) replays the turn from its start",
    ),
});
export const threadResponse = z.object({
  thread: chatSessionView,
  role: z.enum(['owner', 'editor', 'viewer']),
  openTurns: z.array(threadOpenTurnView),
});
const threadLoanView = z.object({
  deviceId: z.string(),
  ownerId: z.uuid().describe("The member who lent it: a call of another member's turn on it is theirs to approve"),
  lentAt: timestamp,
});
export const threadLoanResponse = z.object({ device: threadLoanView });
export const threadLoanListResponse = z.object({ devices: z.array(threadLoanView) });
export const threadListResponse = z.object({ threads: z.array(chatSessionView), nextCursor: z.string().nullable() });
export const threadCreatedResponse = z.object({ thread: chatSessionView });
export const threadPostResponse = z.object({
  threadId: z.uuid(),
  messageId: z.uuid().describe("The message's id, which is its turn's: the `turnId` of the turn's `thread_event`s"),
});
export const chatSessionListResponse = z.object({ sessions: z.array(chatSessionView), nextCursor: z.string().nullable() });
export const chatSessionResponse = z.object({ session: chatSessionView });
export const chatHistoryResponse = z.object({
  session: chatSessionView,
  messages: z.array(chatMessageView).describe('Oldest → newest within the page'),
  nextCursor: z.string().nullable(),
});
/** `GET /flows/:id/chat/history`: the messages of the caller's sessions with a chatflow, each naming its session. */
export const flowChatHistoryResponse = z.object({
  flowId: z.uuid(),
  sessions: z.array(chatSessionView).describe('The sessions the messages of the page belong to, most recently active first'),
  messages: z.array(chatMessageView.extend({ sessionId: z.uuid() })).describe('Oldest → newest within the page, across the sessions'),
  nextCursor: z.string().nullable(),
});
export const sessionDocumentationResponse = z.object({
  sessionId: z.uuid(),
  status: chatSessionStatus,
  documentationStatus: z.enum(['pending', 'generating', 'ready', 'failed']),
  documentation: z.string().nullable().describe('Markdown ticket notes, once ready'),
  problemSummary: z.string().nullable().describe("The notes' Problem Summary, once ready"),
  diagnosticSteps: z
    .array(z.object({ description: z.string() }))
    .nullable()
    .describe("Each item of the notes' Steps Taken, once ready"),
  resolutionSummary: z.string().nullable().describe("The summary given when resolving, else (once ready) the notes' Resolution"),
});

export const similarSessionsResponse = z.object({
  model: z.string().describe('The embedding model the query and the sessions were compared with'),
  sessions: z.array(
    z.object({
      sessionId: z.uuid(),
      title: z.string().nullable(),
      problemSummary: z.string().nullable(),
      resolutionSummary: z.string().nullable(),
      updatedAt: timestamp,
      score: z.number().describe('Cosine similarity to the query, above 0, at most 1'),
    }),
  ),
});

// Approvals (`toHitlView` in src/models/hitl-repository.ts)

export const approvalView = z.object({
  id: z.uuid(),
  sessionId: z.uuid(),
  toolName: z.string(),
  parameters: z.record(z.string(), z.unknown()),
  reason: z.string(),
  status: z.enum(['pending', 'approved', 'rejected', 'timeout']),
  expiresAt: timestamp,
  decidedAt: timestamp.nullable(),
  decidedBy: z.uuid().nullable(),
  decisionReason: z.enum(['user', 'timeout', 'cancelled']).nullable().describe('Null while pending'),
  addressedTo: z
    .uuid()
    .nullable()
    .describe("The one member who decides it whatever its thread's policy (the owner of a device lent to the thread); null otherwise"),
  editedArguments: z
    .record(z.string(), z.unknown())
    .nullable()
    .describe('The arguments the approver ran the call with instead of `parameters`; null when it ran as asked'),
  reply: z.string().nullable().describe("A rejection's message, given to the model as the tool's result; null for a plain rejection"),
  createdAt: timestamp,
});
export const approvalListResponse = z.object({
  requests: z.array(approvalView).describe('Newest first'),
  nextCursor: z.string().optional().describe('Present when older requests follow; send it back as `?cursor`'),
});
export const inputRequestView = z.object({
  id: z.uuid(),
  executionId: z.uuid(),
  nodeId: z.string(),
  ownerId: z.uuid().describe("The flow's owner, who asks"),
  prompt: z.string().describe('What to answer, above the form (may be empty)'),
  form: z.record(z.string(), z.unknown()).describe('A JSON Schema of an object: its properties are the fields'),
  decisions: z.array(z.object({ name: z.string(), label: z.string() })).describe('The decision buttons (none: one plain submit)'),
  status: z.enum(['pending', 'answered', 'timeout', 'cancelled']),
  values: z.record(z.string(), z.unknown()).nullable().describe("The answer's values; null while pending"),
  decision: z.string().nullable(),
  answeredBy: z.uuid().nullable(),
  answeredAt: timestamp.nullable(),
  expiresAt: timestamp,
  createdAt: timestamp,
});
export const inputRequestListResponse = z.object({
  inputs: z.array(inputRequestView).describe('Newest first'),
  nextCursor: z.string().optional().describe('Present when older forms follow; send it back as `?cursor`'),
});

// Metrics

const jobCounts = z.object({
  waiting: z.number().int(),
  active: z.number().int(),
  delayed: z.number().int(),
  failed: z.number().int(),
  completed: z.number().int(),
});
export const metricsSummaryResponse = z.object({
  scope: z.enum(['user', 'all']).describe("`all` for an admin (everyone's usage), else `user`"),
  queues: z
    .object(Object.fromEntries(QUEUE_NAMES.map((name) => [name, jobCounts])) as Record<QueueName, typeof jobCounts>)
    .describe('Every queue, by name'),
  usage: z.object({
    byModel: z.array(
      z.object({
        provider: z.string(),
        model: z.string(),
        calls: z.number().int(),
        inputTokens: z.number().int(),
        outputTokens: z.number().int(),
        costUsd: z.number(),
      }),
    ),
    last24h: z.object({ costUsd: z.number(), calls: z.number().int() }),
  }),
});
export const metricsJsonResponse = z.array(
  z.object({
    name: z.string(),
    help: z.string(),
    type: z.enum(['counter', 'gauge', 'histogram', 'summary']),
    values: z.array(
      z.object({
        labels: z.record(z.string(), z.union([z.string(), z.number()])),
        value: z.number(),
        metricName: z.string().optional().describe('A histogram series: `…_bucket`, `…_sum`, `…_count`'),
      }),
    ),
  }),
);
