import { z } from 'zod';
import { JOURNEY_AGENT_TYPES, JOURNEY_DATA_TYPES } from '../../agents/journey-script';
import { journeyEntrySchema } from '../../agents/journey-store';
import { AGENT_DATA_TYPES } from '../../devices/protocol';
import { AGENT_TYPES, CLOUD_PROVIDERS } from '../../schemas/agents';
import { BLOCK_TYPES } from '../../schemas/blocks';

/**
 * Response bodies, for the document only: handlers build these from repository views, so nothing
 * parses them at run time. `test/integration/openapi.test.ts` checks live responses against them.
 */

/** The SPEC error shape, `#/components/schemas/Error`. */
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
const canvasView = z.object({ id: z.uuid(), title: z.string(), ownerId: z.uuid(), role: memberRole.describe("The caller's role"), createdAt: timestamp, updatedAt: timestamp });
const memberView = z.object({ userId: z.uuid(), name: z.string(), email: z.string(), role: memberRole });

export const canvasResponse = z.object({ canvas: canvasView });
export const canvasWithMembersResponse = z.object({ canvas: canvasView, members: z.array(memberView), membersNextCursor: z.string().nullable() });
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

export const undoResponse = z.object({ generationId: z.uuid(), blockIds: z.array(z.uuid()) });

/** 202 of a cancel request (SPEC §11): the stop is under way; the stream ends with `cancelled`. */
export const generationCancelResponse = z.object({ generationId: z.uuid(), status: z.literal('cancelling') });
export const chatCancelResponse = z.object({ sessionId: z.uuid(), status: z.literal('cancelling') });

export const embedResponse = z.object({ vector: z.array(z.number()), model: z.string(), dimensions: z.number().int() });

export const sessionStatusResponse = z.object({ sessionId: z.uuid(), status: z.string(), documentation: z.null().optional() });

// Agents (`toAgentView` / `toRunView` in src/models/agents-repository.ts)

const dataTypes = z.array(z.enum(AGENT_DATA_TYPES));
const agentCommon = {
  id: z.uuid(),
  name: z.string(),
  dataTypes,
  promptTemplate: z.string(),
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
  status: z.enum(['running', 'success', 'error', 'partial', 'waiting_device']),
  itemsProcessed: z.number().int(),
  itemsCreated: z.number().int(),
  errors: z.array(z.string()),
  startedAt: timestamp,
  completedAt: timestamp.nullable(),
});
export const agentRunListResponse = z.object({ runs: z.array(runView), page: z.number().int(), limit: z.number().int(), total: z.number().int(), nextCursor: z.string().nullable() });
export const agentRunQueuedResponse = z.object({ runId: z.uuid(), agentId: z.uuid(), agentType: z.enum(['local', 'cloud']), status: z.literal('queued') });

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

// Agent setup journey (decision 0027)

export const journeyReplyResponse = z.object({
  sessionId: z.uuid(),
  message: z.string().describe("The assistant's next question, or its closing message"),
  done: z.boolean(),
  turn: z.number().int().describe('Answers processed so far: 0 after start'),
  promptTemplate: z.string().optional().describe('Only once `done`'),
});
export const journeyViewResponse = z.object({
  sessionId: z.uuid(),
  agentType: z.enum(JOURNEY_AGENT_TYPES),
  dataTypes: z.array(z.enum(JOURNEY_DATA_TYPES)),
  turn: z.number().int(),
  done: z.boolean(),
  messages: z.array(journeyEntrySchema).describe('The first question, then each answer followed by its reply'),
  promptTemplate: z.string().optional(),
  expiresInSeconds: z.number().int(),
});
