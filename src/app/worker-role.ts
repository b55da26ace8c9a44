import type { UsageLimiter } from '../lib/usage-limiter';
import type { BudgetDoor } from '../budget/budget-door';
import type { CanvasEmitter } from '../realtime/canvas-emitter';
import type { Worker } from 'bullmq';
import type { RedisConnections } from '../lib/redis';
import { startDemoLLM } from '../demo-model';
import { QUEUE_NAMES, callsModels, type QueueName } from '../../config';
import { createTextEmbedder } from '../ai/embeddings';
import type { LlmEndpoint } from '../ai/llm';
import { ModelGateway } from '../ai/model-gateway';
import { dangerousToolPolicy, type ApprovalService } from '../turns/approvals';
import { AssistantRunner } from '../assistant/assistant-runner';
import type { ChatTurnLife } from '../assistant/chat-turn-life';
import type { ChatEventLog } from '../turns/turn-events';
import type { ThreadRelay } from '../assistant/thread-relay';
import { ThreadTools } from '../assistant/thread-tools';
import { NotesEventLog } from '../assistant/notes-events';
import { SessionNotesRunner } from '../assistant/session-notes-runner';
import { ChatflowRunner } from '../flows/chatflow-runner';
import { JourneyRunner } from '../agents/journey-runner';
import { AgentRunner } from '../agents/agent-runner';
import { DeviceRunLease } from '../agents/device-run-lease';
import type { AgentRuns } from '../agents/agent-run';
import type { JourneyRuns } from '../agents/journey-run';
import { PsaPush } from '../assistant/psa-push';
import type { PsaConnections } from '../connectors/psa';
import type { CredentialVault } from '../agents/credentials';
import type { McpTools } from '../mcp/mcp-tools';
import type { AgentRunChannel } from '../agents/run-channel';
import type { DeviceRegistry } from '../devices/device-registry';
import type { DeviceChannel } from '../devices/device-channel';
import { FlowRunner } from '../flows/flow-runner';
import type { FlowInputs } from '../flows/flow-inputs';
import { FlowExecutions } from '../flows/flow-executions';
import { EvaluationRunner } from '../evals/evaluation-runner';
import { NodeTools } from '../flows/node-tools';
import type { FlowEventLog } from '../flows/flow-events';
import { GenerationRunner, type GenerationRunnerDeps } from '../generation/generation-runner';
import type { Metrics } from '../observability/metrics';
import type { RunKernel } from '../runs/run-kernel';
import type { NotesRuns } from '../assistant/notes-run';
import type { FlowRuns } from '../flows/flow-run';
import type { LimitsResolver } from '../auth/limits';
import { TriggerFirer } from '../triggers/trigger-firer';
import type { FlowTriggers } from '../triggers/flow-triggers';
import { processIdentity } from './process-identity';
import { Reaper } from './reaper';
import { QUEUE_CATALOG } from '../producers/catalog';
import { requestEmbedding } from '../producers/requests';
import type { QueueRegistry } from '../producers/registry';
import type { WorkerPresence } from '../producers/worker-presence';
import { batchedEmbedder } from '../workers/embeddings';
import { queueProcessor, resolveHandlers, type JobHandlers } from '../workers/handlers';
import { JOB_HANDLERS } from '../workers/index';
import type { HttpCredentials } from '../flows/http-credentials';
import type { WorkerPorts } from '../workers/ports';
import type { WebhookService } from '../webhooks/webhook-service';
import { KnowledgeIngester, type IngestProgress } from '../knowledge/ingester';
import { embedTexts } from '../knowledge/embed';
import { KnowledgeService } from '../knowledge/knowledge-service';
import { KnowledgeEventLog } from '../knowledge/progress-events';
import { startWorkers, type QueueProcessor } from '../workers/worker-pool';
import { WorkerLeases } from '../workers/worker-leases';

/** No limit: an evaluation's executions are limited by its concurrency, not `flowExecutionsPerMinute`. */
const unlimitedUsage = { take: async () => undefined } as unknown as UsageLimiter;

/** What the generation runner needs (its endpoint is resolved here), plus what the other queues use. */
export interface WorkerRoleDeps extends Omit<GenerationRunnerDeps, 'models' | 'metrics' | 'enqueue' | 'canvasEvents'> {
  /** Canvas room events, to every API node (the broadcast worker also sends pre-serialized chunks). */
  canvasEvents: CanvasEmitter;
  /** The process's Redis connections by concern: BullMQ workers on the queues' blocking one. */
  redis: RedisConnections;
  /** The run kernel: the reaper recovers every registered kind through it. */
  kernel: RunKernel;
  /** Agent runs on the run kernel. */
  agentRuns: AgentRuns;
  /** Journey turns on the run kernel. */
  journeyRuns: JourneyRuns;
  /** The ticket notes' runs. */
  notesRuns: NotesRuns;
  /** The flow executions' runs. */
  flowRuns: FlowRuns;
  /** Starts the executions trigger fires ask for. */
  flowExecutions: FlowExecutions;
  /** Fires the connector triggers of a cloud agent whose run fetched items. */
  flowTriggers: FlowTriggers;
  /** The owners' plans, read when a trigger fires. */
  limits: LimitsResolver;
  /** The process's queues: the catalog's `enqueue`, embeddings waited on, the connectors rate limit. */
  queues: QueueRegistry;
  metrics: Metrics;
  /** The process's device channel: tool calls, chat text and agent runs reach devices on any node. */
  devices: DeviceChannel;
  /** The process's one approval service (shared with the API role when both run here). */
  approvals: ApprovalService;
  /** The forms of agentflows' human_input nodes (sent from here, answered through the API). */
  inputs: FlowInputs;
  chatEvents: ChatEventLog;
  /** Sends a room thread's turn events (and the assistant's state) to its canvas room. */
  threadRelay: ThreadRelay;
  /** Ends chat turns stopped by a cancel. */
  chatTurnLife: ChatTurnLife;
  /** Agent runs: who is online, the frames of local runs, and sealed OAuth tokens. */
  deviceRegistry: DeviceRegistry;
  agentRunChannel: AgentRunChannel;
  vault: CredentialVault;
  /** Users' PSA connections (their credentials sealed like OAuth tokens). */
  psa: PsaConnections;
  /** Webhooks out: the deliveries the `webhooks` queue attempts. */
  webhooks: WebhookService;
  /** The sealed credentials agentflow HTTP tools send. */
  httpCredentials: HttpCredentials;
  /** The event logs of agentflow executions. */
  flowEvents: FlowEventLog;
  /** Tools of the users' registered MCP servers (agentflow nodes and the assistant). */
  mcpTools?: McpTools;
  /** Every model call is reserved before it is sent and settled when it ends. */
  budget: BudgetDoor;
  /** The per-user limits shared with the API (the assistant's hourly device operations). */
  usage?: UsageLimiter;
  /** Overrides the configured model endpoint (tests point it at a scripted server). */
  endpoint?: LlmEndpoint;
  /** Where this process says which queues it consumes (the API counts a queue without a worker). */
  presence: WorkerPresence;
  /** Where knowledge ingestions report their progress (the documents' event streams). */
  knowledgeProgress?: (event: IngestProgress) => void;
  /** The job handlers to serve (default: all of them, src/workers/index.ts); checked against the catalog first. */
  handlers?: readonly JobHandlers<WorkerPorts>[];
}

/**
 * The worker role: the model endpoint (the in-process demo model when none is configured) and one
 * BullMQ Worker per queue. Loaded with a dynamic import, so API-only processes never load
 * LangChain or the model client.
 */
export async function startWorkerRole(deps: WorkerRoleDeps) {
  const { config } = deps;
  // Before anything starts: every job of the catalog has exactly one handler, or this throws naming it.
  const handlers = resolveHandlers(deps.handlers ?? JOB_HANDLERS);
  const closers: Array<[string, () => Promise<unknown>]> = [];
  const gatewayDeps = {
    pricing: config.llm.pricing,
    usage: deps.repos.usage,
    metrics: deps.metrics,
    maxTokens: config.llm.maxTokens,
    streamIdleTimeoutMs: config.llm.streamIdleTimeoutMs,
    budget: deps.budget,
    logger: deps.logger.child({ component: 'model-gateway' }),
  };
  let endpoint = deps.endpoint;
  let models: ModelGateway;
  let summary: string;
  if (endpoint) {
    models = ModelGateway.fromEndpoint(endpoint, gatewayDeps);
    summary = `${endpoint.provider} ${endpoint.models.join(' → ')} at ${endpoint.baseURL}`;
  } else if (config.llm.providers.length) {
    const [first] = config.llm.providers;
    models = new ModelGateway(
      config.llm.providers,
      [{ provider: first.name, model: first.models[0] }, ...config.llm.fallback],
      gatewayDeps,
    );
    // Embeddings use the default provider's endpoint.
    endpoint = { baseURL: first.baseURL, apiKey: first.apiKey, provider: first.name, models: first.models };
    summary = models.chain.map((ref) => `${ref.provider}:${ref.model}`).join(' → ');
  } else if (!callsModels(config.queues.names)) {
    // Queues that never call a model (a broadcast-only worker): no demo model server to start.
    endpoint = { baseURL: 'http://127.0.0.1:9/v1', apiKey: 'unused', provider: 'demo', models: ['demo'] };
    models = ModelGateway.fromEndpoint(endpoint, gatewayDeps);
    summary = `none (${config.queues.names.join(', ')} call no model)`;
  } else {
    const demo = await startDemoLLM({ delayMs: config.llm.demoDelayMs });
    closers.push(['demo llm', () => demo.close()]);
    endpoint = { baseURL: demo.baseURL, apiKey: 'demo', provider: 'demo', models: ['demo'] };
    models = ModelGateway.fromEndpoint(endpoint, gatewayDeps);
    summary = `DEMO model at ${endpoint.baseURL} (offline and deterministic: NOT a real language model; set OPENAI_BASE_URL / OPENAI_API_KEY for one)`;
  }

  // One subscriber connection per worker process hears every cancel request.
  await deps.signals.listen();
  const { repos, logger, metrics, events, canvasEvents: emit, queues, devices, chatEvents, signals } = deps;
  const { enqueue } = queues;
  const notesEvents = new NotesEventLog(deps.redis.realtime.blocking, config.redis.keyPrefix);
  const knowledgeEvents = new KnowledgeEventLog(deps.redis.realtime.command, config.redis.keyPrefix);
  const psaPush = new PsaPush({ repos, psa: deps.psa, enqueue, logger });
  // Retrieval for chatflows and the `search_knowledge` tool: the caller's own chunks only.
  const knowledge = new KnowledgeService({ config, repos, queues, logger: logger.child({ component: 'knowledge' }) });
  const searchKnowledge = (ownerId: string, query: Parameters<KnowledgeService['search']>[1]) => knowledge.search(ownerId, query);
  // The services the handlers call, each given what it uses (no spread of the whole bag).
  const ports: WorkerPorts = {
    config,
    log: logger,
    metrics,
    repos,
    enqueue,
    emit,
    events,
    generations: new GenerationRunner({
      config,
      repos,
      events,
      canvasEvents: emit,
      models,
      logger,
      metrics,
      signals,
      runs: deps.runs,
    }),
    assistant: new AssistantRunner({
      config,
      repos,
      models,
      devices,
      chatEvents,
      logger,
      metrics,
      // Dangerous tool calls park the turn until the user decides.
      policy: dangerousToolPolicy(config.hitl.dangerousTools),
      embed: (job, timeoutMs) => requestEmbedding(queues, job, timeoutMs),
      approvals: deps.approvals,
      mcp: deps.mcpTools,
      budget: deps.budget,
      signals,
      chatTurnLife: deps.chatTurnLife,
      usage: deps.usage,
      knowledge: {
        search: searchKnowledge,
        searchable: (userId, sessionId) => repos.knowledge.hasSearchable(userId, sessionId),
        attachments: { statuses: (ids) => repos.knowledge.documentStatuses(ids), waitMs: config.knowledge.chatWaitMs },
      },
      threads: {
        tools: new ThreadTools({ repos, room: emit, maxBlocks: config.canvas.maxBlocks, logger }),
        relay: deps.threadRelay,
      },
      resumeFlowNode: async (row) => {
        const { executionId, nodeId } = row.continuation as { executionId: string; nodeId: string };
        const tier = (await repos.users.findById(row.userId))?.tier ?? 'free';
        await enqueue('flows', 'node', { executionId, nodeId, userId: row.userId, tier, resume: row.id });
      },
    }),
    notes: new SessionNotesRunner({
      config,
      repos,
      models,
      notesEvents,
      logger,
      metrics,
      runs: deps.notesRuns,
      enqueue,
      psaPush,
    }),
    psaPush,
    journeys: new JourneyRunner({
      config,
      repos,
      models,
      redis: deps.redis.cache.blocking,
      signals,
      runs: deps.journeyRuns,
      logger,
      metrics,
    }),
    chatflows: new ChatflowRunner({
      repos,
      models,
      chatEvents,
      logger,
      metrics,
      signals,
      chatTurnLife: deps.chatTurnLife,
      knowledge: searchKnowledge,
    }),
    agentRuns: new AgentRunner({
      config,
      repos,
      enqueue,
      pauseConnectors: (ms) => queues.rateLimit('connectors', ms),
      // A cloud run's fetched mails fire the flows' connector triggers on its agent.
      onFetched: (event) => deps.flowTriggers.connectorFetched(event),
      devices,
      registry: deps.deviceRegistry,
      channel: deps.agentRunChannel,
      vault: deps.vault,
      models,
      signals,
      runs: deps.agentRuns,
      logger,
      metrics,
      deviceLease: new DeviceRunLease(deps.redis.cache.command, config.redis.keyPrefix, config.agents.runTimeoutMs + 60_000),
    }),
    flows: new FlowRunner({
      repos,
      models,
      events: deps.flowEvents,
      enqueueBulk: queues.enqueueBulk,
      signals,
      logger,
      metrics,
      runs: deps.flowRuns,
      // Subflows' child executions start here, each with its own budget reservation.
      children: new FlowExecutions({
        repos,
        events: deps.flowEvents,
        queues,
        signals,
        logger,
        metrics,
        runs: deps.flowRuns,
        budget: deps.budget,
        mcp: deps.mcpTools,
      }),
      tools: new NodeTools({
        repos,
        devices,
        events: deps.flowEvents,
        http: config.flowHttp,
        credentials: deps.httpCredentials,
        policy: dangerousToolPolicy(config.hitl.dangerousTools),
        logger,
        mcp: deps.mcpTools,
        budget: deps.budget,
        knowledge: searchKnowledge,
      }),
      approvals: deps.approvals,
      inputs: deps.inputs,
    }),
    evaluations: new EvaluationRunner({
      repos,
      // An evaluation's rows start as the owner's executions, from the worker.
      executions: new FlowExecutions({
        repos,
        events: deps.flowEvents,
        queues,
        signals,
        usage: deps.usage ?? unlimitedUsage,
        logger,
        metrics,
        runs: deps.flowRuns,
        budget: deps.budget,
        mcp: deps.mcpTools,
        promptGuard: config.generation.promptGuard,
      }),
      models,
      queues,
      logger,
    }),
    embedder: batchedEmbedder(createTextEmbedder(endpoint, config.llm.embeddingModel), {
      budget: deps.budget,
      pricing: config.llm.pricing,
    }),
    triggers: new TriggerFirer({ repos, executions: deps.flowExecutions, limits: deps.limits, logger }),
    webhooks: deps.webhooks,
    waits: deps.kernel,
    knowledge: new KnowledgeIngester({
      repos,
      embed: (who, texts) => embedTexts(queues, who, texts),
      urlRules: { maxBytes: config.knowledge.maxFileBytes, timeoutMs: 30_000, privateOrigins: config.knowledge.privateOrigins },
      logger: logger.child({ component: 'knowledge' }),
      // Each step and stored round to the ingestion's log (the document's SSE stream); a log not written loses events, never chunks.
      progress: (event) => {
        deps.knowledgeProgress?.(event);
        knowledgeEvents
          .report(event)
          .catch((error: unknown) => logger.warn({ err: error, documentId: event.documentId }, 'knowledge progress not logged'));
      },
    }),
  };
  const processors: Partial<Record<QueueName, QueueProcessor>> = {};
  for (const declaration of Object.values(QUEUE_CATALOG)) {
    processors[declaration.name] = {
      processor: queueProcessor(declaration, handlers.get(declaration.name)!, ports),
      concurrency: typeof declaration.concurrency === 'function' ? declaration.concurrency(config) : declaration.concurrency,
      ...('limiter' in declaration ? { limiter: declaration.limiter } : {}),
    };
  }
  const queueNames = config.queues.explicit ? config.queues.names : config.queues.names.filter((name) => processors[name]);
  // The dead-worker detector: this process's lease, and the jobs of processes whose lease lapsed (or,
  // of a process with an identity, the jobs of its own earlier incarnations, taken back at start).
  const leases =
    config.queues.leaseMs > 0
      ? new WorkerLeases({
          redis: deps.redis.queues.command,
          keyPrefix: config.redis.keyPrefix,
          queues,
          queueNames: QUEUE_NAMES,
          leaseMs: config.queues.leaseMs,
          identity: processIdentity(config),
          logger,
        })
      : undefined;
  // The lease is held before any job is taken under this process's name, and a first beat that fails
  // stops the start before a worker runs.
  if (leases) {
    await leases.start();
    closers.unshift(['worker lease', () => leases.stop()]);
  }
  const workers: Worker[] = startWorkers({
    queues: queueNames,
    processors,
    connection: deps.redis.queues.blocking,
    keyPrefix: config.redis.keyPrefix,
    logger,
    metrics,
    lockMs: config.queues.lockMs,
    ...(leases ? { workerName: leases.name } : {}),
  });
  // Closed first (they finish their active jobs), then the lease, then the model they were calling.
  closers.unshift(['workers', () => Promise.allSettled(workers.map((worker) => worker.close()))]);
  // Before the workers drain: a stopping worker no longer counts as its queues' consumer.
  const beating = await deps.presence.announce(queueNames, logger);
  closers.unshift(['worker presence', () => beating.stop()]);
  // Work a dead process left open is ended or resumed: at start, then every REAPER_INTERVAL_MS.
  const reaper = new Reaper({
    config,
    repos,
    queues,
    redis: deps.redis.cache.blocking,
    approvals: deps.approvals,
    kernel: deps.kernel,
    logger,
    flows: ports.flows,
    evaluations: ports.evaluations,
    budget: deps.budget,
  });
  reaper.start();
  closers.unshift(['reaper', () => reaper.stop()]);
  return { summary, closers };
}
