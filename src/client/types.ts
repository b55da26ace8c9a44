/**
 * Request and response types of the HTTP API, derived from the objects the server itself uses:
 * request bodies are `z.input` of the zod schemas the routes validate with, responses are the
 * return types of the view functions the routes render with. Type-only imports: none of these
 * modules is loaded by the client at run time.
 */
import type { z } from 'zod';
import type { TierLimits } from '../../config/tiers';
import type { chatBodySchema } from '../assistant/chat-service';
import type { ChatEvent, TurnUsage } from '../assistant/chat-events';
import type { NotesEvent } from '../assistant/notes-events';
import type { publicUser } from '../auth/auth-service';
import type { GenerationEvent, SequencedEvent } from '../generation/events';
import type { toAuditView } from '../models/audit-repository';
import type { CanvasesRepository, CanvasView } from '../models/canvases-repository';
import type { toChatMessageView, toChatSessionView } from '../models/chat-repository';
import type { toGenerationView } from '../models/generations-repository';
import type { toHitlView } from '../models/hitl-repository';
import type { ChatSessionRow } from '../models/schema';
import type { AgentService } from '../agents/agent-service';
import type { JourneyService } from '../agents/journey';
import type { OAuthService } from '../agents/oauth-service';
import type { journeyMessageSchema, journeyStartSchema } from '../http/routes/journey-routes';
import type { oauthRefreshSchema } from '../http/routes/oauth-routes';
import type { toAgentView, toRunView } from '../models/agents-repository';
import type { embeddingResultSchema } from '../producers/embeddings';
import type { createCloudAgentSchema, createLocalAgentSchema, listRunsQuerySchema, updateCloudAgentSchema, updateLocalAgentSchema } from '../schemas/agents';
import type { addMemberSchema, createCanvasSchema, embedSchema, generateSchema, loginSchema, registerSchema, updateCanvasSchema } from '../schemas/api';
import type { Block, createBlockSchema, updateBlockSchema } from '../schemas/blocks';

export type { Block, ChatEvent, GenerationEvent, NotesEvent, SequencedEvent, TurnUsage };

/* ---- requests -------------------------------------------------------------------------------- */
export type RegisterRequest = z.input<typeof registerSchema>;
export type LoginRequest = z.input<typeof loginSchema>;
export type CreateCanvasRequest = z.input<typeof createCanvasSchema>;
export type UpdateCanvasRequest = z.input<typeof updateCanvasSchema>;
export type AddMemberRequest = z.input<typeof addMemberSchema>;
export type CreateBlockRequest = z.input<typeof createBlockSchema>;
export type UpdateBlockRequest = z.input<typeof updateBlockSchema>;
export type GenerateRequest = z.input<typeof generateSchema>;
export type ChatRequest = z.input<typeof chatBodySchema>;
export type EmbedRequest = z.input<typeof embedSchema>;

export type CreateLocalAgentRequest = z.input<typeof createLocalAgentSchema>;
export type UpdateLocalAgentRequest = z.input<typeof updateLocalAgentSchema>;
export type CreateCloudAgentRequest = z.input<typeof createCloudAgentSchema>;
export type UpdateCloudAgentRequest = z.input<typeof updateCloudAgentSchema>;
/** `page` and `limit` are coerced from the query string by the server (their zod input is `unknown`). */
export type ListRunsQuery = Pick<z.input<typeof listRunsQuerySchema>, 'agentId'> & { page?: number; limit?: number };

/* ---- responses ------------------------------------------------------------------------------- */
export type User = ReturnType<typeof publicUser>;
export interface AuthResponse {
  user: User;
  accessToken: string;
  refreshToken: string;
}
export interface TokenPair {
  accessToken: string;
  refreshToken: string;
}
export interface MeResponse {
  user: User & { limits: TierLimits };
}
export type Canvas = CanvasView;
export type CanvasMember = Awaited<ReturnType<CanvasesRepository['listMembers']>>[number];
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
export type Generation = ReturnType<typeof toGenerationView>;
export interface UndoResult {
  generationId: string;
  blockIds: string[];
}
export type AuditRow = ReturnType<typeof toAuditView>;
export interface ChatResponse {
  sessionId: string;
  /** The answer; when `cancelled`, as far as it got before the stop. */
  response: string;
  /** The turn was stopped by a cancel (SPEC §11). */
  cancelled?: true;
  usage: TurnUsage;
}
/** 202 of `generations.cancel` (SPEC §11). */
export interface GenerationCancelResult {
  generationId: string;
  status: 'cancelling';
}
/** 202 of `chat.cancel` (SPEC §11). */
export interface ChatCancelResult {
  sessionId: string;
  status: 'cancelling';
}
export interface ChatHistory {
  session: ReturnType<typeof toChatSessionView>;
  /** Oldest → newest within the page. */
  messages: Array<ReturnType<typeof toChatMessageView>>;
  /** The `cursor` for the messages before this page; null when it reaches the first. */
  nextCursor: string | null;
}
export type SessionStatus = ChatHistory['session']['status'];
export interface ResolveResponse {
  sessionId: string;
  status: 'resolved';
  documentation: null;
}
export interface SessionDocumentation {
  sessionId: string;
  status: SessionStatus;
  documentationStatus: ChatSessionRow['documentationStatus'];
  documentation: string | null;
}
export type Approval = ReturnType<typeof toHitlView>;
export type Embedding = z.output<typeof embeddingResultSchema>;

export type Agent = ReturnType<typeof toAgentView>;
export type AgentRun = ReturnType<typeof toRunView>;
export interface AgentRunPage {
  runs: AgentRun[];
  page: number;
  limit: number;
  total: number;
}
export type StartedRun = Awaited<ReturnType<AgentService['runNow']>>;

export type JourneyStartRequest = z.input<typeof journeyStartSchema>;
export type JourneyMessageRequest = z.input<typeof journeyMessageSchema>;
/** A journey reply: the next question, or `done: true` with the `promptTemplate`. */
export type JourneyReply = Awaited<ReturnType<JourneyService['message']>>;
export type JourneyView = Awaited<ReturnType<JourneyService['view']>>;

export type OAuthProvider = 'gmail' | 'outlook' | 'teams';
export type OAuthAuthorization = Awaited<ReturnType<OAuthService['authorize']>>;
export type OAuthRefreshRequest = z.input<typeof oauthRefreshSchema>;
export type OAuthRefreshed = Awaited<ReturnType<OAuthService['refresh']>>;

/** `GET /metrics/summary` (the route builds it inline; kept in step by the SDK test). */
export interface MetricsSummary {
  scope: 'all' | 'user';
  queues: Record<string, Record<'waiting' | 'active' | 'delayed' | 'failed' | 'completed', number>>;
  usage: {
    byModel: Array<{ provider: string; model: string; calls: number; inputTokens: number; outputTokens: number; costUsd: number }>;
    last24h: { costUsd: number; calls: number };
  };
}

/** A chunk of the ticket-notes stream (`data: <chunk>` … `data: [DONE]` / `data: [ERROR] msg`). */
export type NotesStreamEvent = { type: 'chunk'; text: string } | { type: 'done' } | { type: 'error'; message: string };
