import type { RoomThreads } from '../assistant/room-threads';
import type { PsaConnections } from '../connectors/psa';
import type { ProviderProbe } from '../ai/provider-probe';
import type { WorkerPresence } from '../producers/worker-presence';
import type { BudgetDoor } from '../budget/budget-door';
import type { ApprovalService } from '../turns/approvals';
import type { FlowInputs } from '../flows/flow-inputs';
import type { RedisClient } from '../lib/redis';
import type { Config } from '../../config';
import type { ChatTurnLife } from '../assistant/chat-turn-life';
import type { ChatService } from '../assistant/chat-service';
import type { DeviceRegistry } from '../devices/device-registry';
import type { DevicePort } from '../devices/device-channel';
import type { AgentService } from '../agents/agent-service';
import type { JourneyService } from '../agents/journey';
import type { OAuthService } from '../agents/oauth-service';
import type { AccountService } from '../account/account-service';
import type { Revocations } from '../auth/revocations';
import type { ApiKeys } from '../auth/api-keys';
import type { McpTools } from '../mcp/mcp-tools';
import type { AuthService } from '../auth/auth-service';
import type { LimitsResolver } from '../auth/limits';
import type { TokenSettings } from '../auth/tokens';
import type { FlowTriggers } from '../triggers/flow-triggers';
import type { FlowExecutions } from '../flows/flow-executions';
import type { FlowReplays } from '../flows/flow-replay';
import type { FlowService } from '../flows/flow-service';
import type { HttpCredentials } from '../flows/http-credentials';
import type { FlowChats } from '../flows/flow-chat';
import type { Datasets } from '../evals/datasets';
import type { Evaluations } from '../evals/evaluations';
import type { RunKernel } from '../runs/run-kernel';
import type { NotesRuns } from '../assistant/notes-run';
import type { GenerationService } from '../generation/generation-service';
import type { Logger } from '../lib/logger';
import type { UsageLimiter } from '../lib/usage-limiter';
import type { Repositories } from '../models';
import type { Metrics } from '../observability/metrics';
import type { QueueRegistry } from '../producers/registry';
import type { CanvasRoom } from '../schemas/canvas-room';
import type { AdminAccess } from './admin';
import type { SseStreams } from './sse-streams';
import type { StreamSources } from './streams/sources';
import type { WebhookService } from '../webhooks/webhook-service';
import type { KnowledgeService } from '../knowledge/knowledge-service';

/** What the HTTP layer needs, built once by the api role and passed to each router. */
export interface ApiContext {
  config: Config;
  logger: Logger;
  redis: RedisClient;
  repos: Repositories;
  tokens: TokenSettings;
  /** API keys: create, list, revoke (their checks run through `tokens`). */
  apiKeys: ApiKeys;
  /** The MCP servers users register for their agentflows and assistant. */
  mcpServers: McpTools;
  auth: AuthService;
  /** Deleting the caller's own account, and what follows it on every node. */
  account: AccountService;
  generations: GenerationService;
  /** The life of every run: cancel requests go through it. */
  runs: RunKernel;
  /** The ticket notes' runs (a session's resolve queues a new one). */
  notesRuns: NotesRuns;
  /** Users' PSA connections: connect, read, remove, and the push of ticket notes. */
  psa: PsaConnections;
  /** Assistant turns: start one (checks, stores, enqueues) and follow its events. */
  chat: ChatService;
  /** Stops a running chat turn. */
  chatTurnLife: ChatTurnLife;
  /** Room threads: chat sessions bound to a canvas, read by its members, posted to by its editors. */
  threads: RoomThreads;
  /** Approval requests of dangerous assistant tool calls. */
  approvals: ApprovalService;
  /** The forms agentflows' human_input nodes send: listed and answered by their recipients. */
  inputs: FlowInputs;
  /** Agent setup journeys: guided conversations that end with a prompt template. */
  journeys: JourneyService;
  /** Background agent configs, manual runs, runs waiting for devices. */
  agents: AgentService;
  /** Which of a user's devices are online (read from Redis; the API never writes presence here). */
  devices: Pick<DeviceRegistry, 'onlineDevices'>;
  /** Calls to a user's device from the API (a project's change history and its undo). */
  deviceCalls: Pick<DevicePort, 'callDevice'>;
  /** OAuth connections of cloud agents (authorize, callback, refresh). */
  oauth: OAuthService;
  /** Webhooks out: a user's endpoints, their delivery log, redelivery. */
  webhooks: WebhookService;
  /** Knowledge bases of the caller: documents in, hybrid search out. */
  knowledge: KnowledgeService;
  /** Saved flows: CRUD with validated definitions. */
  flows: FlowService;
  /** The sealed credentials agentflow HTTP tools name. */
  httpCredentials: HttpCredentials;
  /** Agentflow executions: start, read, cancel. */
  flowExecutions: FlowExecutions;
  /** Replays of ended executions from one of their nodes, as draft versions. */
  flowReplays: FlowReplays;
  /** Evaluation datasets of the caller: uploaded, or made from past executions. */
  datasets: Datasets;
  /** Evaluations: datasets run through flow versions, scored and compared. */
  evaluations: Evaluations;
  /** Flow triggers: schedules, signed inbound webhooks and connectors that start an agentflow. */
  flowTriggers: FlowTriggers;
  /** Chatflow chat turns (the owner's and an embed's visitors'): checks, stores, enqueues. */
  flowChats: FlowChats;
  canvasEvents: CanvasRoom;
  /** The per-user, per-tier usage limits: the process's one limiter, shared with the device sockets and flow executions. */
  usage: UsageLimiter;
  /** A user's tier limits with their overrides, read from the database at each call; the feature gates ask it. */
  limits: LimitsResolver;
  /** Reserves a request's first model call against the user's budget before its job is queued. */
  budget: BudgetDoor;
  queues: QueueRegistry;
  metrics: Metrics;
  admin: AdminAccess;
  /** The one door for SSE streams: per-user cap, heartbeat, shutdown with a `retry:` hint. */
  streams: SseStreams;
  /**
   * Revoked credentials (a key, a session, a deleted user's id) announced to every API node: a
   * streaming door that holds no socket room (`/mcp`) watches its caller's ids here, and the OAuth
   * server announces a revoked grant here.
   */
  revocations: Pick<Revocations, 'watch' | 'unwatch' | 'announce'>;
  /** The event logs routes stream from (generation, chat turn, ticket notes), followed through the process's one reader. */
  sources: StreamSources;
  /** Dependency checks for /readyz; each throws when its dependency is unreachable. */
  readiness: { redis(): Promise<void>; database(): Promise<void> };
  /** Which queues have a live worker, for `/readyz` (reported, never failing it). */
  workers: Pick<WorkerPresence, 'states'>;
  /** Each model provider's reachability for `/readyz` (reported, never failing it). */
  providers: Pick<ProviderProbe, 'states'>;
  /** Set when shutdown begins: readiness answers 503 and new streams are refused. */
  shuttingDown: { value: boolean };
}
