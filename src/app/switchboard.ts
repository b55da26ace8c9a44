import { ProviderProbe } from '../ai/provider-probe';
import { BudgetDoor } from '../budget/budget-door';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, productionModelRequired, QUEUE_NAMES, sharedDatabaseRequired, sharedRedisRequired, type Config } from '../../config';
import type { LlmEndpoint } from '../ai/llm';
import { ModelCatalog } from '../ai/model-catalog';
import { ApprovalService, toolApprovalHandler } from '../assistant/approvals';
import { ChatCancels } from '../assistant/chat-cancel';
import { registerChatRuns } from '../assistant/chat-run';
import { ChatEventLog } from '../assistant/chat-events';
import { NotesEventLog } from '../assistant/notes-events';
import { registerNotesRuns } from '../assistant/notes-run';
import { ChatService, deviceChatHandler } from '../assistant/chat-service';
import { FlowEventLog } from '../flows/flow-events';
import { FlowExecutions } from '../flows/flow-executions';
import { registerFlowRuns } from '../flows/flow-run';
import { FlowService } from '../flows/flow-service';
import { FlowChats } from '../flows/flow-chat';
import { AgentService } from '../agents/agent-service';
import { CredentialVault } from '../agents/credentials';
import { JourneyService } from '../agents/journey';
import { OAuthService } from '../agents/oauth-service';
import { AgentRunChannel } from '../agents/run-channel';
import { AgentScheduler } from '../agents/scheduler';
import { PsaConnections } from '../connectors/psa';
import { resolveOAuthEncryptionKey, SecretBox } from '../connectors/secret-box';
import { McpTools } from '../mcp/mcp-tools';
import { AdminDirectory } from '../auth/admins';
import { LimitsResolver } from '../auth/limits';
import { AuthService } from '../auth/auth-service';
import { resolveJwtSecret } from '../auth/jwt-secret';
import { AccountService } from '../account/account-service';
import { ApiKeys } from '../auth/api-keys';
import { SessionGuard } from '../auth/session-guard';
import { UsageLimiter } from '../lib/usage-limiter';
import { useOutboundProxy } from '../lib/outbound-proxy';
import { HttpCredentials } from '../flows/http-credentials';
import { CANVAS_NAMESPACE, DEVICE_NAMESPACE, rooms } from '../schemas/socket-events';
import type { TokenSettings } from '../auth/tokens';
import { GenerationEventLog } from '../generation/event-log';
import { registerGenerationRuns } from '../generation/generation-run';
import { registerAgentRuns } from '../agents/agent-run';
import { registerJourneyRuns } from '../agents/journey-run';
import { JourneyStore } from '../agents/journey-store';
import { GenerationLimiter } from '../generation/generation-limiter';
import { GenerationService } from '../generation/generation-service';
import { createHttpApp, packageVersion } from '../http/app';
import { WebhookService } from '../webhooks/webhook-service';
import { SseStreams } from '../http/sse-streams';
import { StreamFollower } from '../lib/stream-follower';
import { StreamSources } from '../http/streams/sources';
import { agentChatEndpoint } from '../realtime/agent-chat-ws';
import type { ApiContext } from '../http/context';
import { CancelSignals } from '../lib/cancel-signals';
import { createLogger, logFormat, type Logger } from '../lib/logger';
import { createRedis, RedisConnections, type RedisTarget } from '../lib/redis';
import { createRepositories, type Repositories } from '../models';
import { openDatabase } from '../models/database';
import { Metrics, metricsAuthorized } from '../observability/metrics';
import { startTracing } from '../observability/tracing';
import { QueueRegistry } from '../producers/registry';
import { WorkerPresence } from '../producers/worker-presence';
import { RunHoldings } from '../runs/run-holdings';
import { RunKernel } from '../runs/run-kernel';
import { DeviceRegistry } from '../devices/device-registry';
import { DeviceChannel } from '../devices/device-channel';
import { prometheusDeviceRpcMetrics } from '../devices/device-rpc';
import { WsRelay } from '../devices/ws-relay';
import { UNPRICED_WARNING, unpricedUnderCostLimit } from '../budget/pricing';
import { Revocations } from '../auth/revocations';
import { limitConnectionsPerIp, trustedPeer } from '../http/connection-limits';
import { CanvasEmitter } from '../realtime/canvas-emitter';
import { CanvasLog } from '../realtime/canvas-log';
import { registerCanvasNamespace } from '../realtime/canvas-namespace';
import { CursorRelay } from '../realtime/cursor-relay';
import { registerDeviceNamespace } from '../realtime/device-namespace';
import { attachDeviceWebSocket, type DeviceFrameHandlers } from '../realtime/device-ws';
import { SocketQuota } from '../realtime/socket-quota';
import { closeSocketServer, createSocketServer, disconnectClients } from '../realtime/socket-server';
import { startEmbeddedRedis } from './embedded-redis';
import { closeAll } from './shutdown';
import { checkBeforeStart, portInUse, StartCheckError } from './start-checks';

export interface RunningSwitchboard {
  config: Config;
  /** Base URL of the HTTP server (api role only). */
  url?: string;
  /** What runs where, for the start banner. */
  summary: { roles: string[]; database: string; redis: string; llm: string; dashboard?: string };
  logger: Logger;
  /** The repositories over this process's database (tests and embedders read state through them). */
  repos: Repositories;
  /** Graceful stop: refuse new work, drain, close everything; bounded by SHUTDOWN_TIMEOUT_MS. */
  stop(): Promise<void>;
}

/**
 * Builds the shared resources `{config, db, redis, logger}` once and starts the roles this process
 * runs. No DI container: each part gets exactly what it uses.
 */
export async function startSwitchboard(
  config: Config,
  options: {
    logger?: Logger;
    endpoint?: LlmEndpoint;
    metrics?: Metrics;
    /** Told each slow start-up step as it begins (the CLI prints them; a start can take seconds). */
    progress?: (step: string) => void;
  } = {},
): Promise<RunningSwitchboard> {
  const progress = options.progress ?? (() => undefined);
  const logger = options.logger ?? createLogger({ level: config.log.level, format: logFormat(config.env, config.log.format) });
  const metrics = options.metrics ?? new Metrics();
  const closers: Array<[string, () => unknown]> = [];
  const roles = new Set(config.roles);
  for (const warning of config.warnings) logger.warn(warning);
  // A model without a price counts $0 against a cost limit: the operator is told at start (and in /readyz).
  const unpriced = unpricedUnderCostLimit(config);
  if (unpriced.length) logger.warn({ models: unpriced }, UNPRICED_WARNING);
  // The embedded redis-server is private to this process: only the one-process default may use it.
  // So does the embedded database, and production never serves the demo model unless told to.
  const required = [sharedRedisRequired(config), sharedDatabaseRequired(config), productionModelRequired(config, !!options.endpoint)];
  const missing = required.filter((issue): issue is string => issue !== null);
  if (missing.length) throw new ConfigError(missing);
  // The port is free and every Redis answers, before anything starts: each problem one line.
  await checkBeforeStart(config);
  try {
    // Spans are sent when OTEL_EXPORTER_OTLP_ENDPOINT is set; the SDK is not even loaded otherwise.
    // Its closer is the last step of a stop: it flushes the spans of everything closed before it.
    const stopTracing = await startTracing(process.env, logger, { roles: config.roles, version: packageVersion() });
    if (stopTracing) closers.push(['tracing', stopTracing]);
    // The embedded redis-server boots in its own process while the database opens here (PGlite's
    // WASM start and the migrations check): start-up waits for the slower of the two, not both.
    const ownRedis = config.redis.url === undefined && config.redis.cluster === undefined;
    if (ownRedis) progress(`Starting Redis (redis-server under ${config.data.dir})`);
    const [redisStart, databaseOpen] = await Promise.allSettled([
      !ownRedis
        ? Promise.resolve(undefined)
        : startEmbeddedRedis(config.data.dir, {
            onRestart: ({ code, attempt }) =>
              logger.error({ code, attempt }, 'embedded redis-server died; restarted it on the same port and data'),
            // Past repeated restarts: exit non-zero, so a supervisor restarts the whole process.
            onFatal: (error) => {
              logger.fatal({ err: error }, 'embedded redis-server cannot be kept running; exiting');
              process.exit(1);
            },
          }),
      openDatabase({ url: config.database.url, dataDir: config.data.dir, progress }),
    ]);
    const embeddedRedis = redisStart.status === 'fulfilled' ? redisStart.value : undefined;
    if (embeddedRedis) closers.unshift(['embedded redis', () => embeddedRedis.stop()]);
    if (databaseOpen.status === 'fulfilled') closers.unshift(['database', () => databaseOpen.value.close()]);
    if (redisStart.status === 'rejected') throw redisStart.reason;
    if (databaseOpen.status === 'rejected') throw databaseOpen.reason;
    const database = databaseOpen.value;
    // Queues, realtime and cache each on their Redis (one server unless split, or one cluster).
    const connections = RedisConnections.open(redisTargets(config.redis, embeddedRedis?.url));
    closers.unshift(['redis', () => connections.quit()]);
    await connections.ready();
    const { realtime, cache } = connections;
    const repos = createRepositories(database.db);

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
    // Webhooks out: run ends and approval requests become signed deliveries on the `webhooks` queue.
    const webhooks = new WebhookService({ config, repos, box: secretBox, enqueue: queues.enqueue, logger });
    // Registered MCP servers: their auth headers sealed with the same key, their calls under the HTTP tools' limits.
    const mcpTools = new McpTools({ repos, box: secretBox, limits: config.flowHttp, logger });
    // Frames past twice the run's byte limit are refused (the worker keeps at most maxBytes of them).
    const agentRunChannel = new AgentRunChannel(realtime.command, config.redis.keyPrefix, 2 * config.agents.maxBytes);

    // The express app is plugged in later (it needs the socket server), but its request listener
    // must exist BEFORE Socket.IO attaches: Socket.IO then routes /socket.io/ to itself only.
    let handleRequest: http.RequestListener = (_req, res) => void res.writeHead(503).end();
    const httpServer = roles.has('api') ? createHttpServer((req, res) => handleRequest(req, res), config.http.requestTimeoutMs) : undefined;
    if (httpServer)
      limitConnectionsPerIp(httpServer, { maxPerIp: config.http.maxConnectionsPerIp, trusted: trustedPeer(config.trustProxy), logger });
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
    // One limiter for every surface of the same work: HTTP routes, device sockets, flow executions, the workers' device operations and approvals.
    const usage = new UsageLimiter(cache.command, config.redis.keyPrefix, config.usageLimits);
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
      onRequested: (row) => webhooks.approvalRequested(row),
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
    const runKernel = new RunKernel({
      runs: repos.runs,
      queues,
      signals,
      logger,
      holdings,
      onEnded: (run) => webhooks.runEnded(run),
    });
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
    const flowRuns = registerFlowRuns(runKernel, { repos, events: flowEvents, queues, logger, metrics, approvals });
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
    const chatRuns = registerChatRuns(runKernel, { repos, queues, chatEvents, devices, approvals, logger });
    const chatCancels = new ChatCancels({ repos, runs: chatRuns, chatEvents });

    let llmSummary = 'not used by these roles';
    if (roles.has('worker')) {
      const { startWorkerRole } = await import('./worker-role');
      const worker = await startWorkerRole({
        config,
        repos,
        events,
        queues,
        canvasEvents,
        redis: connections,
        logger,
        metrics,
        endpoint: options.endpoint,
        devices,
        approvals,
        chatEvents,
        deviceRegistry,
        agentRunChannel,
        vault,
        psa,
        httpCredentials,
        signals,
        runs: generationRuns,
        notesRuns,
        flowRuns,
        kernel: runKernel,
        agentRuns,
        journeyRuns,
        chatCancels,
        flowEvents,
        mcpTools,
        budget,
        usage,
        presence,
        webhooks,
      });
      llmSummary = worker.summary;
      for (const closer of [...worker.closers].reverse()) closers.unshift(closer);
    }

    if (roles.has('scheduler')) {
      const scheduler = new AgentScheduler({
        repos,
        enqueue: queues.enqueue,
        logger,
        tick: config.agents.schedulerTick,
        limits: new LimitsResolver({ users: repos.users, tiers: config.tiers }),
        budget,
      });
      scheduler.start();
      closers.unshift(['scheduler', () => scheduler.stop()]);
    }

    const shuttingDown = { value: false };
    // Revoked credentials reach every API node's open streams through one channel (no socket room holds a stream).
    const revocations = httpServer ? new Revocations(realtime.command, config.redis.keyPrefix, logger) : undefined;
    if (revocations) {
      await revocations.listen();
      closers.unshift(['revocations', () => revocations.close()]);
    }
    const announceRevoked = (ids: string[]) =>
      revocations
        ?.announce(ids)
        .catch((error: unknown) => logger.warn({ err: error }, 'could not announce a revoked credential to open streams'));
    const streams = new SseStreams({
      redis: realtime.command,
      keyPrefix: config.redis.keyPrefix,
      maxPerUser: config.streams.maxPerUser,
      logger,
      shuttingDown: () => shuttingDown.value,
      revocations,
    });
    let url: string | undefined;
    let dashboard: string | undefined;
    if (httpServer) {
      const tokens: TokenSettings = {
        secret: resolveJwtSecret(config.auth.jwtSecret, config.data.dir),
        issuer: config.auth.issuer,
        audience: config.auth.audience,
        accessTokenTtlSeconds: config.auth.accessTokenTtlSeconds,
      };
      // Every access token is also checked against its user and session.
      const sessions = new SessionGuard(repos.users, (sessionId) => {
        // A signed-out session's sockets close at once, on whichever node holds them.
        for (const namespace of [CANVAS_NAMESPACE, DEVICE_NAMESPACE]) {
          io.of(namespace).in(rooms.session(sessionId)).emit('auth:expired', { reason: 'session_revoked' });
          io.of(namespace).in(rooms.session(sessionId)).disconnectSockets();
        }
        // Open SSE streams of the session (or API key) end with `error session_revoked` on every node.
        void announceRevoked([sessionId]);
        // Plain-WebSocket devices are not in Socket.IO rooms: the relay reaches their nodes.
        relay
          .revokeSession(sessionId)
          .catch((error: unknown) => logger.warn({ err: error }, 'could not announce a revoked session to websocket devices'));
      });
      tokens.accept = sessions.accept;
      tokens.acceptOnCanvas = sessions.acceptOnCanvas;
      // A revoked API key's sockets close like a signed-out session's: the key's id names their room.
      const apiKeys = new ApiKeys(repos.apiKeys, cache.command, config.redis.keyPrefix, logger.child({ component: 'api-keys' }), (keyId) =>
        sessions.revoke(keyId),
      );
      tokens.apiKeys = apiKeys;
      // A deleted account's sockets close at once on every node: each session's and key's room, then the user's own
      // room for any socket opened without a session id.
      const account = new AccountService(
        repos.account,
        {
          revokeSessions: async (userId, sessionIds) => {
            await Promise.all(sessionIds.map((sessionId) => sessions.revoke(sessionId)));
            // Streams opened with a token that names no session are the user's alone.
            void announceRevoked([Revocations.userId(userId)]);
            for (const namespace of [CANVAS_NAMESPACE, DEVICE_NAMESPACE]) {
              io.of(namespace).in(rooms.user(userId)).emit('auth:expired', { reason: 'session_revoked' });
              io.of(namespace).in(rooms.user(userId)).disconnectSockets();
            }
          },
          removeJob: (queue, jobId) => queues.remove(queue, jobId),
          forgetCanvas: (canvasId) => canvasEvents.forget(canvasId),
        },
        logger.child({ component: 'account' }),
      );
      const admins = new AdminDirectory(repos.admins, config.admin.userIds);
      for (const id of await admins.recordEnvGrants())
        logger.warn({ userId: id }, 'ADMIN_USER_IDS names no user: ignored until such a user exists');
      const models = ModelCatalog.of(config, options.endpoint);
      const chat = new ChatService({
        repos,
        enqueue: queues.enqueue,
        registry: deviceRegistry,
        logger,
        models,
        runs: chatRuns,
        budget,
        codingAgents: config.codingAgents,
        consumers: presence,
      });
      const agents = new AgentService({ config, repos, enqueue: queues.enqueue, runs: agentRuns, logger, budget, models });
      const ctx: ApiContext = {
        config,
        logger,
        redis: cache.command,
        repos,
        tokens,
        apiKeys,
        webhooks,
        account,
        auth: new AuthService(repos.users, tokens, config.auth.refreshTokenTtlDays, sessions),
        generations: new GenerationService({
          config,
          redis: cache.command,
          repos,
          queues,
          events,
          limiter,
          canvasEvents,
          logger,
          runs: generationRuns,
          budget,
          consumers: presence,
        }),
        runs: runKernel,
        notesRuns,
        psa,
        chat,
        chatCancels,
        approvals,
        journeys: new JourneyService({ config, redis: cache.command, queues, runs: journeyRuns, logger, budget, consumers: presence }),
        agents,
        devices: deviceRegistry,
        deviceCalls: devices,
        flows: new FlowService({ repos, models, credentials: httpCredentials }),
        httpCredentials,
        flowExecutions: new FlowExecutions({
          repos,
          events: flowEvents,
          queues,
          signals,
          usage,
          logger,
          metrics,
          runs: flowRuns,
          budget,
          consumers: presence,
        }),
        flowChats: new FlowChats({ repos, enqueue: queues.enqueue, logger, runs: chatRuns, budget, consumers: presence }),
        oauth: new OAuthService({ config, repos, redis: cache.command, vault, secret: tokens.secret, logger }),
        mcpServers: mcpTools,
        canvasEvents,
        usage,
        limits,
        budget,
        readiness: { redis: () => connections.ping(), database: () => database.ping() },
        workers: presence,
        providers: new ProviderProbe(
          options.endpoint
            ? [{ name: options.endpoint.provider, baseURL: options.endpoint.baseURL, apiKey: options.endpoint.apiKey }]
            : config.llm.providers,
        ),
        shuttingDown,
        queues,
        metrics,
        admin: dashboardAccess(config, admins),
        streams,
        sources: new StreamSources({
          events,
          chatEvents,
          notesEvents: new NotesEventLog(realtime.command, config.redis.keyPrefix, undefined, follower),
          flowEvents,
          canvasLog,
          repos,
          queues,
          checkEveryMs: config.streams.checkIntervalMs,
        }),
      };
      metrics.trackOpenStreams(() => streams.size);
      closers.unshift(['queue watch', presence.watch(logger)]);
      metrics.trackQueues([...QUEUE_NAMES], (name) => queues.counts(name));
      handleRequest = createHttpApp(ctx);
      // Cursors between nodes over pub/sub, never the adapter's (recovery) stream: a cursor flood must not evict room events a reconnecting client needs.
      const cursorSubscriber = createRedis(realtime.target, 'blocking');
      const cursors = await CursorRelay.start({
        publisher: realtime.command,
        subscriber: cursorSubscriber,
        keyPrefix: config.redis.keyPrefix,
        nsp: io.of(CANVAS_NAMESPACE) as never,
        logger,
      });
      closers.unshift(['cursor relay', () => cursors.close()]);
      registerCanvasNamespace(io, { tokens, canvases: repos.canvases, canvasLog, logger, metrics, cursors });
      // One set of handlers for both device transports: Socket.IO /device and the plain WebSocket.
      const deviceHandlers: DeviceFrameHandlers = {
        onChatRequest: deviceChatHandler(chat, usage),
        onToolApproval: toolApprovalHandler(approvals),
        onChatCancel: (user, deviceId, payload) => chatCancels.cancelFromDevice(user.id, deviceId, payload),
        onDeviceHello: async (userId, deviceId) => {
          // Awaited, so the transports' try/catch sees a failure (a rejected promise would end the process).
          await agents.resumeWaitingRuns(userId, deviceId);
        },
        onAgentFrame: (user, deviceId, type, payload) => agentRunChannel.accept(user.id, deviceId, type, payload),
      };
      const deviceSockets = registerDeviceNamespace(devices, {
        tokens,
        registry: deviceRegistry,
        logger,
        metrics,
        ...deviceHandlers,
        onAgentCancel: (user, _deviceId, payload) => agents.cancelFromDevice(user.id, payload),
      });
      closers.unshift(['device presence', () => deviceSockets.close()]);
      // MAX_SOCKETS_PER_USER over every node, both namespaces and the plain WebSocket; registered after each namespace's auth.
      const quota = new SocketQuota(
        realtime.command,
        config.redis.keyPrefix,
        { maxPerUser: config.sockets.maxPerUser, leaseMs: config.sockets.leaseSeconds * 1000 },
        logger,
      );
      const deviceWebSockets = attachDeviceWebSocket(httpServer, {
        tokens,
        registry: deviceRegistry,
        channel: devices,
        logger,
        metrics,
        quota,
        ...deviceHandlers,
        pingIntervalMs: config.device.wsPingIntervalMs,
        pongTimeoutMs: config.device.wsPongTimeoutMs,
        // IDE clients of the CodeLab agent API: the assistant's chat, approvals and cancel behind the same upgrade.
        endpoints: [
          agentChatEndpoint({
            logger,
            startTurn: async (user, input) => {
              await usage.take('chatPerMinute', user);
              return chat.start({ userId: user.id, message: input.message, sessionId: input.sessionId, tier: user.tier });
            },
            decide: async (userId, approvalId, approved) => void (await approvals.decide(userId, approvalId, approved, 'http')),
            cancel: async (userId, sessionId) => void (await chatCancels.cancel(userId, sessionId)),
            followTurn: (turn, signal) => ctx.sources.chatTurnEvents(turn, signal, true),
          }),
        ],
      });
      quota.guard(io.of(CANVAS_NAMESPACE));
      quota.guard(deviceSockets.nsp as never);
      closers.unshift(['socket quota', () => quota.close()]);
      await new Promise<void>((resolve, reject) => {
        // Taken since the start's check (another process was quicker): the same one line.
        httpServer.once('error', (error: NodeJS.ErrnoException) =>
          reject(new StartCheckError(portInUse('PORT', config.http.host, config.http.port, error.code ?? 'error'))),
        );
        httpServer.listen(config.http.port, config.http.host, () => resolve());
      });
      const address = httpServer.address() as AddressInfo;
      url = `http://${config.http.host}:${address.port}`;
      dashboard = `${url}/admin/queues${ctx.admin.generatedPassword ? ` (user ${ctx.admin.user}, password ${ctx.admin.generatedPassword})` : ''}`;
      closers.unshift([
        'http',
        () => {
          // Open connections would hold the server until the deadline: event streams are told to
          // reconnect elsewhere and end, Socket.IO clients are closed, idle keep-alives go below.
          streams.endAll(1_000);
          disconnectClients(io);
          return closeHttp(httpServer);
        },
      ]);
      // Before the HTTP server: its upgraded device sockets would keep it from closing.
      closers.unshift(['device websockets', () => deviceWebSockets.close()]);
    }
    if (!httpServer && config.http.metricsPort !== undefined) {
      const ready = async () => {
        if (shuttingDown.value) return false;
        const checks = [connections.ping(), database.ping()].map((check) =>
          Promise.race([check, new Promise((_, reject) => setTimeout(reject, 1_500).unref())]),
        );
        return (await Promise.allSettled(checks)).every((result) => result.status === 'fulfilled');
      };
      const metricsServer = await serveMetrics(metrics, config.http.host, config.http.metricsPort, config.metrics.token, ready);
      closers.unshift(['metrics http', () => closeHttp(metricsServer)]);
    }
    closers.unshift(['readiness', () => void (shuttingDown.value = true)]);

    return {
      config,
      url,
      logger,
      repos,
      summary: {
        roles: [...roles],
        database: database.description,
        redis: embeddedRedis ? `embedded redis-server at ${embeddedRedis.url}` : describeRedis(config.redis),
        llm: llmSummary,
        dashboard,
      },
      stop: () => closeAll(closers, config.shutdown.timeoutMs, logger),
    };
  } catch (error) {
    await closeAll(closers, config.shutdown.timeoutMs, logger);
    throw error;
  }
}

/**
 * /metrics, /healthz and /readyz (Redis and the database answer, and no shutdown has begun) for
 * processes without the api role, so workers can be scraped and probed (deploy/k8s).
 */
async function serveMetrics(
  metrics: Metrics,
  host: string,
  port: number,
  token: string | undefined,
  ready: () => Promise<boolean>,
): Promise<http.Server> {
  const server = createHttpServer(
    (req, res) =>
      void (async () => {
        if (req.url === '/metrics') {
          if (!metricsAuthorized(req.headers.authorization, token)) {
            res.writeHead(401, { 'Content-Type': 'application/json', 'WWW-Authenticate': 'Bearer realm="metrics"' });
            return void res.end(
              JSON.stringify({ error: { code: 'unauthorized', message: 'Metrics require the METRICS_TOKEN bearer token' } }),
            );
          }
          res.setHeader('Content-Type', metrics.registry.contentType);
          return void res.end(await metrics.registry.metrics());
        }
        if (req.url === '/healthz') return void res.setHeader('Content-Type', 'application/json').end('{"status":"ok"}');
        if (req.url === '/readyz') {
          const ok = await ready();
          res.writeHead(ok ? 200 : 503, { 'Content-Type': 'application/json' });
          return void res.end(JSON.stringify({ status: ok ? 'ready' : 'unavailable' }));
        }
        res.writeHead(404).end();
      })().catch(() => {
        // A scrape or probe whose read failed (Redis, the database) answers 503, not an unhandled rejection.
        if (!res.headersSent) res.writeHead(503);
        res.end();
      }),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

/**
 * An idle keep-alive connection stays open 65 s, longer than the idle timeout of the proxies and
 * load balancers usually in front (60 s) and of clients' pools. Node's default of 5 s races
 * them: a request sent on a connection as the server closes it is reset.
 */
const HTTP_KEEP_ALIVE_MS = 65_000;

/**
 * The API's server. A request's headers and body must arrive within `requestTimeoutMs` (the 60 s
 * of proxies' idle timeouts by default; Node's own default is 300 s), else 408 and the connection
 * closes; headers alone keep Node's 60 s when that is shorter. Node checks the deadlines on an
 * interval (30 s by default), checked here a tenth as often as the deadline, so a trickled body
 * is cut close to it. The deadline covers receiving the request only: a stream or a socket, once its
 * request arrived, is not cut. (The metrics-only server, without a body to read, keeps Node's.)
 */
function createHttpServer(listener: http.RequestListener, requestTimeoutMs?: number): http.Server {
  const server = requestTimeoutMs
    ? http.createServer(
        {
          requestTimeout: requestTimeoutMs,
          headersTimeout: Math.min(60_000, requestTimeoutMs),
          connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.round(requestTimeoutMs / 10))),
        },
        listener,
      )
    : http.createServer(listener);
  server.keepAliveTimeout = HTTP_KEEP_ALIVE_MS;
  return server;
}

/** How often a closing server looks again for keep-alive connections that became idle. */
const IDLE_SWEEP_MS = 100;

/**
 * Stops accepting connections and waits for in-flight requests. Idle keep-alive connections close
 * at once, and so does each connection whose last request ends later (an event stream told to
 * reconnect, a long poll): a keep-alive client would otherwise hold the server for its idle timeout.
 */
function closeHttp(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    const sweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
    server.close(() => {
      clearInterval(sweep);
      resolve();
    });
    server.closeIdleConnections();
  });
}

/**
 * Dashboard credentials. In embedded (non-production) mode with none configured, a random password
 * is generated for user `admin` and shown once in the start banner.
 */
function dashboardAccess(config: Config, directory: AdminDirectory) {
  const generate = !config.admin.password && config.env !== 'production';
  const password = config.admin.password ?? (generate ? randomBytes(12).toString('base64url') : undefined);
  return {
    user: config.admin.user ?? (password ? 'admin' : undefined),
    password,
    directory,
    generatedPassword: generate ? password : undefined,
  };
}

const redactUrl = (url: string) => url.replace(/\/\/[^@/]*@/, '//***@');

/** Each concern's Redis: the cluster's seeds, its own URL, or the embedded server's. */
function redisTargets(redis: Config['redis'], embeddedUrl: string | undefined): Record<'queues' | 'realtime' | 'cache', RedisTarget> {
  if (redis.cluster) return { queues: redis.cluster, realtime: redis.cluster, cache: redis.cluster };
  const url = (own: string | undefined) => own ?? embeddedUrl!;
  return { queues: url(redis.urls.queues), realtime: url(redis.urls.realtime), cache: url(redis.urls.cache) };
}

/** The banner's Redis line: the cluster's seeds, one URL, or each concern's (passwords hidden). */
function describeRedis(redis: Config['redis']): string {
  if (redis.cluster) return `Redis Cluster (seeds ${redis.cluster.map((seed) => `${seed.host}:${seed.port}`).join(', ')})`;
  const { queues, realtime, cache } = redis.urls;
  if (queues === realtime && realtime === cache) return redactUrl(queues ?? '');
  return `queues ${redactUrl(queues ?? '')}, realtime ${redactUrl(realtime ?? '')}, cache ${redactUrl(cache ?? '')}`;
}
