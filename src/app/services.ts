import type http from 'node:http';
import type { Config } from '../../config';
import { ThreadApprovals } from '../turns/thread-approvals';
import { ApprovalService } from '../turns/approvals';
import { ChatTurnLife } from '../assistant/chat-turn-life';
import { ChatEventLog } from '../turns/turn-events';
import { ThreadRelay } from '../assistant/thread-relay';
import { ChatLane } from '../assistant/chat-lane';
import { registerChatRuns } from '../assistant/chat-run';
import { NotesEventLog } from '../assistant/notes-events';
import { registerNotesRuns } from '../assistant/notes-run';
import { registerAgentRuns } from '../agents/agent-run';
import { CredentialVault } from '../agents/credentials';
import { registerJourneyRuns } from '../agents/journey-run';
import { JourneyStore } from '../agents/journey-store';
import { AgentRunChannel } from '../agents/run-channel';
import { LimitsResolver } from '../auth/limits';
import { BudgetDoor } from '../budget/budget-door';
import { PsaConnections } from '../connectors/psa';
import { resolveOAuthEncryptionKey, SecretBox } from '../connectors/secret-box';
import { DeviceChannel } from '../devices/device-channel';
import { DeviceRegistry } from '../devices/device-registry';
import { prometheusDeviceRpcMetrics } from '../devices/device-rpc';
import { WsRelay } from '../devices/ws-relay';
import { FlowEventLog } from '../flows/flow-events';
import { FlowExecutions } from '../flows/flow-executions';
import { FlowInputs } from '../flows/flow-inputs';
import { editedArgumentsProblems } from '../flows/edited-arguments';
import { registerFlowRuns } from '../flows/flow-run';
import { HttpCredentials } from '../flows/http-credentials';
import { GenerationEventLog } from '../generation/event-log';
import { GenerationLimiter } from '../generation/generation-limiter';
import { registerGenerationRuns } from '../generation/generation-run';
import { CancelSignals } from '../lib/cancel-signals';
import type { Logger } from '../lib/logger';
import { useOutboundProxy } from '../lib/outbound-proxy';
import { StreamFollower } from '../lib/stream-follower';
import { UsageLimiter } from '../lib/usage-limiter';
import { McpTools } from '../mcp/mcp-tools';
import type { Metrics } from '../observability/metrics';
import { QueueRegistry } from '../producers/registry';
import { WorkerPresence } from '../producers/worker-presence';
import { CanvasEmitter, type CanvasNamespace } from '../realtime/canvas-emitter';
import { answerPresenceQueries } from '../realtime/canvas-presence';
import { CANVAS_NAMESPACE } from '../schemas/socket-events';
import { CanvasLog } from '../realtime/canvas-log';
import { closeSocketServer, createSocketServer } from '../realtime/socket-server';
import { RunHoldings } from '../runs/run-holdings';
import { RunKernel } from '../runs/run-kernel';
import { SubscriptionCache } from '../webhooks/subscriptions';
import { WebhookService } from '../webhooks/webhook-service';
import { KnowledgeService } from '../knowledge/knowledge-service';
import { scoreEndedExecutions } from '../evals/evaluations';
import { FlowTriggers } from '../triggers/flow-triggers';
import type { Closers } from './shutdown';
import type { Stores } from './stores';

/** The parts every role shares: queues, event logs, the socket server, devices, budgets and the run kernel with each kind's runs. */
export type Services = ReturnType<typeof buildServices>;

/**
 * Builds the parts the roles share, over the process's stores. The socket server attaches to
 * `httpServer` when this process serves the API (its rooms reach other nodes through Redis either
 * way). What holds a connection or a timer is added to `closers`.
 */
export function buildServices(
  config: Config,
  stores: Stores,
  parts: { logger: Logger; metrics: Metrics; httpServer?: http.Server },
  closers: Closers,
) {
  const { logger, metrics, httpServer } = parts;
  const { repos, connections } = stores;
  const { realtime, cache } = connections;
  const queues = new QueueRegistry(connections.queues.command, config.redis.keyPrefix, connections.queues.blocking);
  closers.unshift(['queues', () => queues.close()]);
  // Which queues have a live worker: workers beat for theirs, the API warns and fails fast on the others.
  const presence = new WorkerPresence(connections.queues.command, config.redis.keyPrefix, config.queues.unconsumedMs);
  // One reader of every followed event log in this process (it connects on first use).
  const follower = new StreamFollower(realtime.command);
  closers.unshift(['stream follower', () => follower.close()]);
  const events = new GenerationEventLog(realtime.command, config.redis.keyPrefix, config.generation.eventsTtlSeconds, follower);
  const limiter = new GenerationLimiter(cache.command, config.redis.keyPrefix);
  // Agentflow executions: the same sequenced, resumable log as generations.
  const flowEvents = new FlowEventLog(realtime.command, config.redis.keyPrefix, config.generation.eventsTtlSeconds, follower);
  const chatEvents = new ChatEventLog(realtime.command, config.redis.keyPrefix, undefined, follower);
  // Model requests and tool calls leave through HTTPS_PROXY / HTTP_PROXY unless NO_PROXY names the host.
  useOutboundProxy(config.outboundProxy);
  // OAuth tokens and HTTP tool credentials are sealed with OAUTH_ENCRYPTION_KEY (generated under DATA_DIR when unset outside production).
  const secretBox = new SecretBox(resolveOAuthEncryptionKey(config.oauth.encryptionKey, config.data.dir), config.oauth.oldKeys);
  const vault = new CredentialVault(secretBox, repos);
  const httpCredentials = new HttpCredentials({ repos, box: secretBox });
  // PSA credentials are sealed with the same key.
  const psa = new PsaConnections({ box: secretBox, repos, settings: config.psa });
  // One limiter for every surface of the same work: HTTP routes, device sockets, flow executions, webhook test sends, the workers' device operations and approvals.
  const usage = new UsageLimiter(cache.command, config.redis.keyPrefix, config.usageLimits);
  // Webhooks out: run ends and approval requests become signed deliveries on the `webhooks` queue.
  // Each user's endpoints and push configs are cached per process (every run's end reads them), dropped on every node when they change.
  const subscriptions = new SubscriptionCache(
    realtime.command,
    config.redis.keyPrefix,
    (userId) => repos.webhooks.subscriptions(userId),
    logger,
  );
  void subscriptions
    .listen()
    .catch((error: unknown) => logger.warn({ err: error }, 'webhook subscriptions: not cached, the subscriber failed'));
  closers.unshift(['webhook subscriptions', () => subscriptions.close()]);
  const webhooks = new WebhookService({ config, repos, box: secretBox, enqueue: queues.enqueue, usage, logger, subscriptions });
  // Knowledge bases: documents in through the `knowledge` queue, hybrid search out.
  const knowledge = new KnowledgeService({ config, repos, queues, logger: logger.child({ component: 'knowledge' }) });
  // Which vector index the database gave knowledge chunks: a PostgreSQL server without pgvector searches by an exact scan, and says so.
  void repos.knowledge.vectorIndex().then(
    (index) =>
      index === 'exact-scan'
        ? logger.warn({ index }, 'knowledge search: the database has no pgvector extension, vectors are searched by an exact scan')
        : logger.info({ index }, 'knowledge search: pgvector HNSW'),
    (error: unknown) => logger.warn({ err: error }, 'knowledge search: the vector index could not be read'),
  );
  // Registered MCP servers: their auth headers sealed with the same key, their calls under the HTTP tools' limits.
  const mcpTools = new McpTools({ repos, box: secretBox, limits: config.flowHttp, publicUrl: config.oauth.publicUrl, logger });
  // Frames past twice the run's byte limit are refused (the worker keeps at most maxBytes of them).
  const agentRunChannel = new AgentRunChannel(realtime.command, config.redis.keyPrefix, 2 * config.agents.maxBytes);

  const io = createSocketServer({
    redis: realtime.blocking,
    keyPrefix: config.redis.keyPrefix,
    httpServer,
    corsOrigins: config.cors.origins,
    logger,
  });
  closers.unshift(['sockets', () => closeSocketServer(io)]);
  // Every canvas room event gets a seq and a place in the canvas's replay log.
  const canvasLog = new CanvasLog(realtime.command, config.redis.keyPrefix, config.canvasLog, follower);
  const canvasEvents = new CanvasEmitter(io, canvasLog, logger);
  // A room thread's turns are room events of its canvas: every stored batch of a turn's events goes to the room too.
  const threadRelay = new ThreadRelay({ room: canvasEvents, chat: repos.chat, logger });
  chatEvents.mirrorTo(threadRelay.mirror);
  // Every process with the /canvas namespace answers the other nodes' presence queries (workers are counted as nodes).
  answerPresenceQueries(io.of(CANVAS_NAMESPACE) as CanvasNamespace);
  // Any process can call a device: the channel reaches it on whichever node holds its connection.
  const relay = new WsRelay(realtime.command, config.redis.keyPrefix, logger);
  const devices = new DeviceChannel(io, {
    timeoutMs: config.device.rpcTimeoutMs,
    logger,
    metrics: prometheusDeviceRpcMetrics(metrics),
    relay,
  });
  closers.unshift(['device channel', () => devices.close()]);
  const deviceRegistry = new DeviceRegistry(realtime.command, config.redis.keyPrefix, { logger });
  // One approval service per process: the worker parks turns on it, the API decides through it.
  const approvals = new ApprovalService({
    config,
    repos,
    queues,
    logger,
    metrics,
    devices,
    chatEvents,
    browsers: canvasEvents,
    usage,
    onRequested: async (row) => {
      await Promise.all([webhooks.approvalRequested(row), webhooks.pushApprovalRequested(row)]);
    },
    // A chat turn's request is a waitpoint of its run (the kernel is built below).
    waits: () => runKernel,
    // A room thread's requests: decided under the thread's policy, or by the owner of a lent device.
    threads: new ThreadApprovals({ repos, room: canvasEvents, logger }),
    // An approval may run the call with the approver's arguments: they must fit the tool's schema.
    checkArguments: editedArgumentsProblems,
  });
  // The forms of agentflows' human_input nodes: each a waitpoint of its execution's run, told to every surface of each recipient.
  const inputs = new FlowInputs({
    repos,
    waits: () => runKernel,
    devices,
    browsers: canvasEvents,
    events: flowEvents,
    onRequested: (row, flowId) => webhooks.inputRequested(row, flowId),
    logger,
  });
  // Cancel requests: any API node asks, the worker streaming the model hears it.
  const signals = new CancelSignals(realtime.command, config.redis.keyPrefix, logger);
  closers.unshift(['cancel signals', () => signals.close()]);
  // Every model call, and every request that queues one, reserves its cost against the user's budget first.
  const limits = new LimitsResolver({ users: repos.users, tiers: config.tiers, providers: config.llm.providers });
  const budget = new BudgetDoor({
    redis: cache.command,
    keyPrefix: config.redis.keyPrefix,
    limits,
    usage: repos.usage,
    logger,
    metrics,
    calls: {
      maxTokens: config.llm.maxTokens,
      pricing: config.llm.pricing,
      defaultModel: config.llm.model,
      // Every model a call may go to: a request is priced at the dearest, as its calls are.
      models: [...config.llm.fallbackModels, ...config.llm.providers.flatMap((provider) => provider.models)],
    },
    reservationTtlMs: config.budget.reservationTtlMs,
  });
  // Every run's life (start, end, cancel, recovery) goes through one kernel, which gives back the budget reservations a run held.
  const holdings = new RunHoldings({ redis: cache.command, keyPrefix: config.redis.keyPrefix, budget });
  // An evaluation's execution that ended is queued for scoring.
  const evaluationEnded = scoreEndedExecutions({ repos, queues });
  const runKernel = new RunKernel({
    runs: repos.runs,
    waitpoints: repos.waitpoints,
    queues,
    signals,
    logger,
    holdings,
    onEnded: async (run) => {
      await Promise.all([webhooks.runEnded(run), webhooks.pushRunEnded(run), evaluationEnded(run)]);
    },
  });
  // An approval's waitpoint completing at its deadline times the request out.
  runKernel.onWaitpoint('approval', approvals.waitpointHook());
  // A form's waitpoint completes with its first answer, or at its deadline (the form times out).
  runKernel.onWaitpoint('input', inputs.waitpointHook());
  const generationRuns = registerGenerationRuns(runKernel, {
    config,
    repos,
    events,
    limiter,
    canvasEvents,
    enqueue: queues.enqueue,
    logger,
    metrics,
  });
  const flowRuns = registerFlowRuns(runKernel, { repos, events: flowEvents, queues, logger, metrics, approvals, inputs });
  const agentRuns = registerAgentRuns(runKernel, { config, repos, queues, logger, metrics });
  const journeyRuns = registerJourneyRuns(runKernel, {
    repos,
    store: new JourneyStore(cache.command, config.redis.keyPrefix, config.agents.journeyTtlSeconds),
    queues,
    logger,
  });
  const notesRuns = registerNotesRuns(runKernel, {
    repos,
    notesEvents: new NotesEventLog(realtime.command, config.redis.keyPrefix),
    logger,
  });
  const chatLane = new ChatLane({ repos, queues, logger });
  const chatRuns = registerChatRuns(runKernel, { repos, queues, chatEvents, devices, approvals, lane: chatLane, logger });
  const chatTurnLife = new ChatTurnLife({ repos, runs: chatRuns, chatEvents, relay: threadRelay });
  // Agentflow executions start from the API (a person or an app) and from the workers (a trigger's fire).
  const flowExecutions = new FlowExecutions({
    repos,
    events: flowEvents,
    queues,
    signals,
    usage,
    logger,
    metrics,
    runs: flowRuns,
    budget,
    mcp: mcpTools,
    consumers: presence,
    promptGuard: config.generation.promptGuard,
  });
  // Flow triggers: the API saves them and receives webhooks, the scheduler fires schedules, agent runs fire connectors.
  const flowTriggers = new FlowTriggers({
    repos,
    box: secretBox,
    enqueue: queues.enqueue,
    redis: cache.command,
    keyPrefix: config.redis.keyPrefix,
    limits,
    publicUrl: config.oauth.publicUrl,
    logger,
  });
  return {
    queues,
    presence,
    follower,
    events,
    limiter,
    flowEvents,
    chatEvents,
    vault,
    httpCredentials,
    psa,
    webhooks,
    knowledge,
    mcpTools,
    agentRunChannel,
    io,
    canvasLog,
    canvasEvents,
    threadRelay,
    relay,
    devices,
    deviceRegistry,
    usage,
    approvals,
    inputs,
    signals,
    limits,
    budget,
    runKernel,
    generationRuns,
    flowRuns,
    agentRuns,
    journeyRuns,
    notesRuns,
    chatRuns,
    chatTurnLife,
    chatLane,
    flowExecutions,
    flowTriggers,
  };
}
