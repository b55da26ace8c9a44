/**
 * The client package writes its HTTP types out (packages/client/src/types.ts) so that its
 * declarations stand alone; this file derives the same types from the server's own zod schemas and
 * view functions and fails `npm run typecheck` when the two differ (decision 0130). Type-only: it
 * is compiled, never run.
 */
import type { z } from 'zod';
import type { ApiRequestBody, ApiResponseBody } from '../../src/http/api-types';
import type * as Sdk from '@switchboard/client';
import type { TierLimits } from '../../config/tiers';
import type { chatBodySchema } from '../../src/assistant/chat-service';
import type { ChatEvent, TurnUsage } from '../../src/turns/turn-events';
import type { NotesEvent } from '../../src/assistant/notes-events';
import type { publicUser } from '../../src/auth/auth-service';
import type { GenerationEvent, SequencedEvent } from '../../src/generation/events';
import type { toAuditView } from '../../src/models/audit-repository';
import type { HistoryEntry } from '../../src/models/history-repository';
import type { CanvasesRepository, CanvasView } from '../../src/models/canvases-repository';
import type { toChatMessageView, toChatSessionView } from '../../src/models/chat-views';
import type { toGenerationView } from '../../src/models/generations-repository';
import type { toHitlView } from '../../src/models/hitl-repository';
import type { toInputView } from '../../src/flows/flow-inputs';
import type { ChatSessionRow } from '../../src/models/schema';
import type { AgentService } from '../../src/agents/agent-service';
import type { JourneyService } from '../../src/agents/journey';
import type { OAuthService } from '../../src/agents/oauth-service';
import type { journeyMessageSchema, journeyStartSchema } from '../../src/http/routes/journey-routes';
import type { oauthRefreshSchema } from '../../src/http/routes/oauth-routes';
import type { toAgentView, toRunView } from '../../src/models/agents-repository';
import type { embeddingResultSchema } from '../../src/producers/embeddings';
import type {
  createCloudAgentSchema,
  createLocalAgentSchema,
  listRunsQuerySchema,
  updateCloudAgentSchema,
  updateLocalAgentSchema,
} from '../../src/schemas/agents';
import type {
  addMemberSchema,
  createCanvasSchema,
  embedSchema,
  generateSchema,
  loginSchema,
  registerSchema,
  updateCanvasSchema,
} from '../../src/schemas/api';
import type { Block, BlockInput, BlockType, createBlockSchema, updateBlockSchema } from '../../src/schemas/blocks';

/** Each side's type, every property expanded, so that `a?: T` and `a?: T | undefined` compare alike. */
type Deep<X> = X extends (...args: never[]) => unknown
  ? X
  : X extends readonly (infer E)[]
    ? Deep<E>[]
    : X extends object
      ? { [K in keyof X]: Deep<Exclude<X[K], undefined>> }
      : X;
type Same<A, B> = [Deep<A>] extends [Deep<B>] ? ([Deep<B>] extends [Deep<A>] ? true : false) : false;
/** Fails to compile unless `true`. */
function same<_T extends true>(): void {}

type ServerMember = Awaited<ReturnType<CanvasesRepository['listMembers']>>[number];
type ServerSession = ReturnType<typeof toChatSessionView>;

export function contract(): void {
  same<Same<Sdk.Block, Block>>();
  same<Same<Sdk.BlockType, BlockType>>();
  same<Same<Sdk.BlockInput, BlockInput>>();
  same<Same<Sdk.GenerationEvent, GenerationEvent>>();
  same<Same<Sdk.SequencedEvent, SequencedEvent>>();
  same<Same<Sdk.ChatEvent, ChatEvent>>();
  same<Same<Sdk.TurnUsage, TurnUsage>>();
  same<Same<Sdk.NotesEvent, NotesEvent>>();

  same<Same<Sdk.RegisterRequest, z.input<typeof registerSchema>>>();
  same<Same<Sdk.LoginRequest, z.input<typeof loginSchema>>>();
  same<Same<Sdk.CreateCanvasRequest, z.input<typeof createCanvasSchema>>>();
  same<Same<Sdk.UpdateCanvasRequest, z.input<typeof updateCanvasSchema>>>();
  same<Same<Sdk.AddMemberRequest, z.input<typeof addMemberSchema>>>();
  same<Same<Sdk.CreateBlockRequest, z.input<typeof createBlockSchema>>>();
  same<Same<Sdk.UpdateBlockRequest, z.input<typeof updateBlockSchema>>>();
  same<Same<Sdk.GenerateRequest, z.input<typeof generateSchema>>>();
  same<Same<Sdk.ChatRequest, z.input<typeof chatBodySchema>>>();
  same<Same<Sdk.EmbedRequest, z.input<typeof embedSchema>>>();
  same<Same<Sdk.CreateLocalAgentRequest, z.input<typeof createLocalAgentSchema>>>();
  same<Same<Sdk.UpdateLocalAgentRequest, z.input<typeof updateLocalAgentSchema>>>();
  same<Same<Sdk.CreateCloudAgentRequest, z.input<typeof createCloudAgentSchema>>>();
  same<Same<Sdk.UpdateCloudAgentRequest, z.input<typeof updateCloudAgentSchema>>>();
  same<Same<Sdk.ListRunsQuery, Pick<z.input<typeof listRunsQuerySchema>, 'agentId'> & { page?: number; limit?: number }>>();
  same<Same<Sdk.JourneyStartRequest, z.input<typeof journeyStartSchema>>>();
  same<Same<Sdk.JourneyMessageRequest, z.input<typeof journeyMessageSchema>>>();
  same<Same<Sdk.OAuthRefreshRequest, z.input<typeof oauthRefreshSchema>>>();

  same<Same<Sdk.User, ReturnType<typeof publicUser>>>();
  same<Same<Sdk.TierLimits, TierLimits>>();
  same<Same<Sdk.Canvas, CanvasView>>();
  same<Same<Sdk.CanvasMember, ServerMember>>();
  same<Same<Sdk.Generation, ReturnType<typeof toGenerationView>>>();
  same<Same<Sdk.AuditRow, ReturnType<typeof toAuditView>>>();
  same<Same<Sdk.HistoryEntry, HistoryEntry>>();
  same<Same<Sdk.ChatSession, ServerSession>>();
  same<Same<Sdk.ChatMessage, ReturnType<typeof toChatMessageView>>>();
  same<Same<Sdk.SessionStatus, ServerSession['status']>>();
  same<Same<Sdk.SessionDocumentation['documentationStatus'], NonNullable<ChatSessionRow['documentationStatus']>>>();
  same<Same<Sdk.Approval, ReturnType<typeof toHitlView>>>();
  same<Same<Sdk.InputRequest, ReturnType<typeof toInputView>>>();
  same<Same<Sdk.Embedding, z.output<typeof embeddingResultSchema>>>();
  same<Same<Sdk.Agent, ReturnType<typeof toAgentView>>>();
  same<Same<Sdk.AgentRun, ReturnType<typeof toRunView>>>();
  same<Same<Sdk.StartedRun, Awaited<ReturnType<AgentService['runNow']>>>>();
  same<Same<Sdk.JourneyReply, Awaited<ReturnType<JourneyService['message']>>>>();
  same<Same<Sdk.JourneyView, Awaited<ReturnType<JourneyService['view']>>>>();
  same<Same<Sdk.OAuthAuthorization, Awaited<ReturnType<OAuthService['authorize']>>>>();
  same<Same<Sdk.OAuthRefreshed, Awaited<ReturnType<OAuthService['refresh']>>>>();
}

/**
 * The same types read by operationId from the route declarations (`src/http/api-types.ts`): the
 * requests a client sends and the responses it reads, as the declared routes define them.
 */
export function operationContract(): void {
  same<Same<Sdk.RegisterRequest, ApiRequestBody<'register'>>>();
  same<Same<Sdk.LoginRequest, ApiRequestBody<'login'>>>();
  same<Same<Sdk.CreateCanvasRequest, ApiRequestBody<'createCanvas'>>>();
  same<Same<Sdk.UpdateCanvasRequest, ApiRequestBody<'updateCanvas'>>>();
  same<Same<Sdk.AddMemberRequest, ApiRequestBody<'setCanvasMember'>>>();
  same<Same<Sdk.CreateBlockRequest, ApiRequestBody<'createBlock'>>>();
  same<Same<Sdk.UpdateBlockRequest, ApiRequestBody<'updateBlock'>>>();
  same<Same<Sdk.GenerateRequest, ApiRequestBody<'generateStream'>>>();
  same<Same<Sdk.ChatRequest, ApiRequestBody<'chat'>>>();
  same<Same<Sdk.ChatRequest, ApiRequestBody<'chatStream'>>>();
  same<Same<Sdk.EmbedRequest, ApiRequestBody<'embedText'>>>();
  same<Same<Sdk.CreateLocalAgentRequest, ApiRequestBody<'createLocalAgent'>>>();
  same<Same<Sdk.UpdateLocalAgentRequest, ApiRequestBody<'updateLocalAgent'>>>();
  same<Same<Sdk.CreateCloudAgentRequest, ApiRequestBody<'createCloudAgent'>>>();
  same<Same<Sdk.UpdateCloudAgentRequest, ApiRequestBody<'updateCloudAgent'>>>();
  same<Same<Sdk.JourneyStartRequest, ApiRequestBody<'startAgentJourney'>>>();
  same<Same<Sdk.JourneyMessageRequest, ApiRequestBody<'answerAgentJourney'>>>();
  same<Same<Sdk.OAuthRefreshRequest, ApiRequestBody<'oauthRefresh'>>>();

  same<Same<Sdk.AuthResponse, ApiResponseBody<'login'>>>();
  same<Same<Sdk.CreateApiKeyRequest, ApiRequestBody<'createApiKey'>>>();
  same<Same<Sdk.CreatedApiKey, ApiResponseBody<'createApiKey'>>>();
  same<Same<Sdk.ApiKeyPage, ApiResponseBody<'listApiKeys'>>>();
  same<Same<{ apiKey: Sdk.ApiKey }, ApiResponseBody<'revokeApiKey'>>>();
  same<Same<Sdk.CanvasWithMembers, ApiResponseBody<'getCanvas'>>>();
  same<Same<Sdk.UndoResult, ApiResponseBody<'undoGeneration'>>>();
  same<Same<Sdk.UndoRequest, ApiRequestBody<'undoGeneration'>>>();
  same<Same<Sdk.GenerationCancelResult, ApiResponseBody<'cancelGeneration'>>>();
  same<Same<Sdk.ChatCancelResult, ApiResponseBody<'cancelChatTurn'>>>();
  same<Same<Sdk.AnswerRatingResult, ApiResponseBody<'rateChatAnswer'>>>();
  same<Same<Sdk.AgentRunCancelResult, ApiResponseBody<'cancelAgentRun'>>>();
  same<Same<Sdk.JourneyCancelResult, ApiResponseBody<'cancelAgentJourneyTurn'>>>();
  same<Same<Sdk.JourneyReply, ApiResponseBody<'answerAgentJourney'>>>();
  same<Same<Sdk.ChatHistory, ApiResponseBody<'getChatHistory'>>>();
  same<Same<Sdk.SessionDocumentation, ApiResponseBody<'getSessionDocumentation'>>>();
  same<Same<Sdk.Approval, ApiResponseBody<'getApprovalRequest'>>>();
  same<Same<Sdk.Approval, ApiResponseBody<'approveRequest'>>>();
  same<Same<Sdk.Approval[], ApiResponseBody<'listApprovalRequests'>['requests']>>();
  same<Same<Sdk.InputRequest, ApiResponseBody<'getInputRequest'>>>();
  same<Same<Sdk.InputRequest, ApiResponseBody<'answerInputRequest'>>>();
  same<Same<Sdk.InputRequest[], ApiResponseBody<'listInputRequests'>['inputs']>>();
  same<Same<Sdk.Generation, ApiResponseBody<'getGeneration'>['generation']>>();
  same<Same<Sdk.ChatResponse, ApiResponseBody<'chat'>>>();
  same<Same<Sdk.ChatResponse, ApiResponseBody<'chatWithFlow'>>>();
  same<Same<Sdk.ChatResponse, ApiResponseBody<'embedChat'>>>();
  same<Same<Sdk.ChatSession, ApiResponseBody<'getChatSession'>['session']>>();
  same<Same<Sdk.ChatSession[], ApiResponseBody<'listChatSessions'>['sessions']>>();
  same<Same<Sdk.CodingAgentView[], ApiResponseBody<'listCodingAgents'>['agents']>>();
  same<Same<Sdk.Engagement, ApiResponseBody<'getUsageEngagement'>>>();
  same<Same<Sdk.Embedding, ApiResponseBody<'embedText'>>>();
  same<Same<Sdk.StartedRun, ApiResponseBody<'runAgent'>>>();
  same<Same<Sdk.JourneyReply, ApiResponseBody<'answerAgentJourney'>>>();
  same<Same<Sdk.JourneyView, ApiResponseBody<'getAgentJourney'>>>();
  same<Same<Sdk.OAuthRefreshed, ApiResponseBody<'oauthRefresh'>>>();
}
