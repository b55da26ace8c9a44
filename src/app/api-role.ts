import { RoomThreads, ThreadLimits } from '../assistant/room-threads';
import { RateLimiter } from '../lib/rate-limiter';
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { QUEUE_NAMES, type Config } from '../../config';
import type { LlmEndpoint } from '../ai/llm';
import { ModelCatalog } from '../ai/model-catalog';
import { ProviderProbe } from '../ai/provider-probe';
import { AccountService } from '../account/account-service';
import { AgentService } from '../agents/agent-service';
import { JourneyService } from '../agents/journey';
import { OAuthService } from '../agents/oauth-service';
import { toolApprovalHandler } from '../turns/approvals';
import { ChatService, deviceChatHandler } from '../assistant/chat-service';
import { NotesEventLog } from '../assistant/notes-events';
import { AdminDirectory } from '../auth/admins';
import { ApiKeys } from '../auth/api-keys';
import { AuthService } from '../auth/auth-service';
import { LoginThrottle } from '../auth/login-throttle';
import { resolveJwtSecret } from '../auth/jwt-secret';
import { Revocations } from '../auth/revocations';
import { SessionGuard } from '../auth/session-guard';
import type { TokenSettings } from '../auth/tokens';
import { FlowChats } from '../flows/flow-chat';
import { FlowService } from '../flows/flow-service';
import { FlowReplays } from '../flows/flow-replay';
import { Datasets } from '../evals/datasets';
import { Evaluations } from '../evals/evaluations';
import { GenerationService } from '../generation/generation-service';
import { createHttpApp } from '../http/app';
import type { AdminAccess } from '../http/admin';
import type { ApiContext } from '../http/context';
import { SseStreams } from '../http/sse-streams';
import { KnowledgeEventLog } from '../knowledge/progress-events';
import { StreamSources } from '../http/streams/sources';
import type { Logger } from '../lib/logger';
import { createRedis } from '../lib/redis';
import type { Metrics } from '../observability/metrics';
import { agentChatEndpoint } from '../realtime/agent-chat-ws';
import { registerCanvasNamespace } from '../realtime/canvas-namespace';
import { CursorRelay } from '../realtime/cursor-relay';
import { registerDeviceNamespace } from '../realtime/device-namespace';
import { attachDeviceWebSocket, type DeviceFrameHandlers } from '../realtime/device-ws';
import { SocketQuota } from '../realtime/socket-quota';
import { disconnectClients } from '../realtime/socket-server';
import { CANVAS_NAMESPACE, DEVICE_NAMESPACE, rooms } from '../schemas/socket-events';
import { closeHttp } from './http-servers';
import type { Services } from './services';
import type { Closers } from './shutdown';
import { portInUse, StartCheckError } from './start-checks';
import type { Stores } from './stores';

/**
 * The api role: the HTTP app (routes, SSE streams, the dashboard), the /canvas and /device
 * namespaces and the plain device WebSocket, over the shared services; then it listens. Resolves
 * with the server's URL and the dashboard's line for the start banner.
 */
export async function startApiRole(
  config: Config,
  stores: Stores,
  services: Services,
  parts: {
    logger: Logger;
    metrics: Metrics;
    httpServer: http.Server;
    /** Where the HTTP server's requests go once the app is built (Socket.IO attached first). */
    serve: (listener: http.RequestListener) => void;
    shuttingDown: { value: boolean };
    endpoint?: LlmEndpoint;
  },
  closers: Closers,
): Promise<{ url: string; dashboard: string; providers: ProviderProbe }> {
  const { logger, metrics, httpServer, shuttingDown, endpoint } = parts;
  const { repos, connections, database } = stores;
  const { realtime, cache } = connections;
  // Revoked credentials reach every API node's open streams through one channel (no socket room holds a stream).
  const revocations = new Revocations(realtime.command, config.redis.keyPrefix, logger);
  await revocations.listen();
  closers.unshift(['revocations', () => revocations.close()]);
  /**
   * Ends what a revoked credential holds open on every node: a session (or API key, whose id names
   * its room), or a whole user (sockets and streams opened without a session id). Its sockets in
   * both namespaces are told and closed, its open SSE streams end with `error session_revoked`
   * through the revocations channel, and plain-WebSocket devices (in no Socket.IO room) through the relay.
   */
  const endRevoked = (credential: { sessionId: string } | { userId: string }) => {
    const room = 'sessionId' in credential ? rooms.session(credential.sessionId) : rooms.user(credential.userId);
    for (const namespace of [CANVAS_NAMESPACE, DEVICE_NAMESPACE]) {
      services.io.of(namespace).in(room).emit('auth:expired', { reason: 'session_revoked' });
      services.io.of(namespace).in(room).disconnectSockets();
    }
    revocations
      .announce(['sessionId' in credential ? credential.sessionId : Revocations.userId(credential.userId)])
      .catch((error: unknown) => logger.warn({ err: error }, 'could not announce a revoked credential to open streams'));
    if ('sessionId' in credential)
      services.relay
        .revokeSession(credential.sessionId)
        .catch((error: unknown) => logger.warn({ err: error }, 'could not announce a revoked session to websocket devices'));
  };
  const streams = new SseStreams({
    redis: realtime.command,
    keyPrefix: config.redis.keyPrefix,
    maxPerUser: config.streams.maxPerUser,
    logger,
    shuttingDown: () => shuttingDown.value,
    revocations,
  });

  const tokens: TokenSettings = {
    secret: resolveJwtSecret(config.auth.jwtSecret, config.data.dir),
    issuer: config.auth.issuer,
    audience: config.auth.audience,
    accessTokenTtlSeconds: config.auth.accessTokenTtlSeconds,
  };
  // Every access token is also checked against its user and session.
  // A signed-out session's sockets and streams end at once, on whichever node holds them.
  const sessions = new SessionGuard(repos.users, (sessionId) => endRevoked({ sessionId }));
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
        // Sockets and streams opened with a token that names no session are the user's alone.
        endRevoked({ userId });
      },
      removeJob: (queue, jobId) => services.queues.remove(queue, jobId),
      forgetCanvas: (canvasId) => services.canvasEvents.forget(canvasId),
    },
    logger.child({ component: 'account' }),
  );
  const admins = new AdminDirectory(repos.admins, config.admin.userIds);
  for (const id of await admins.recordEnvGrants())
    logger.warn({ userId: id }, 'ADMIN_USER_IDS names no user: ignored until such a user exists');
  const models = ModelCatalog.of(config, endpoint);
  const chat = new ChatService({
    repos,
    enqueue: services.queues.enqueue,
    registry: services.deviceRegistry,
    logger,
    models,
    runs: services.chatRuns,
    lane: services.chatLane,
    budget: services.budget,
    codingAgents: config.codingAgents,
    consumers: services.presence,
    mcp: services.mcpTools,
    promptGuard: config.generation.promptGuard,
    threads: {
      limits: new ThreadLimits(new RateLimiter(cache.command, config.redis.keyPrefix), config.roomThreads),
      relay: services.threadRelay,
    },
    knowledge: services.knowledge,
  });
  const agents = new AgentService({
    config,
    repos,
    enqueue: services.queues.enqueue,
    runs: services.agentRuns,
    logger,
    budget: services.budget,
    models,
    waits: services.runKernel,
  });
  const providers = new ProviderProbe(
    endpoint ? [{ name: endpoint.provider, baseURL: endpoint.baseURL, apiKey: endpoint.apiKey }] : config.llm.providers,
  );
  const flows = new FlowService({
    repos,
    models,
    credentials: services.httpCredentials,
    promptGuard: config.generation.promptGuard,
    logger,
  });
  const ctx: ApiContext = {
    config,
    logger,
    redis: cache.command,
    repos,
    tokens,
    apiKeys,
    webhooks: services.webhooks,
    knowledge: services.knowledge,
    account,
    auth: new AuthService(repos.users, tokens, config.auth.refreshTokenTtlDays, sessions, config.auth.refreshReuseGraceSeconds),
    generations: new GenerationService({
      config,
      redis: cache.command,
      repos,
      queues: services.queues,
      events: services.events,
      limiter: services.limiter,
      canvasEvents: services.canvasEvents,
      logger,
      runs: services.generationRuns,
      budget: services.budget,
      consumers: services.presence,
    }),
    runs: services.runKernel,
    notesRuns: services.notesRuns,
    psa: services.psa,
    chat,
    chatTurnLife: services.chatTurnLife,
    threads: new RoomThreads({ repos, room: services.canvasEvents }),
    approvals: services.approvals,
    inputs: services.inputs,
    journeys: new JourneyService({
      config,
      redis: cache.command,
      queues: services.queues,
      runs: services.journeyRuns,
      logger,
      budget: services.budget,
      consumers: services.presence,
    }),
    agents,
    devices: services.deviceRegistry,
    deviceCalls: services.devices,
    flows,
    httpCredentials: services.httpCredentials,
    flowExecutions: services.flowExecutions,
    flowReplays: new FlowReplays({ repos, flows, executions: services.flowExecutions, events: services.flowEvents, logger }),
    flowTriggers: services.flowTriggers,
    datasets: new Datasets({ repos, config }),
    evaluations: new Evaluations({
      repos,
      config,
      queues: services.queues,
      executions: services.flowExecutions,
      knows: (ref) => models.knows(ref),
      limits: services.limits,
      usage: services.usage,
      consumers: services.presence,
      logger,
    }),
    flowChats: new FlowChats({
      repos,
      enqueue: services.queues.enqueue,
      logger,
      runs: services.chatRuns,
      budget: services.budget,
      consumers: services.presence,
      promptGuard: config.generation.promptGuard,
    }),
    oauth: new OAuthService({ config, repos, redis: cache.command, vault: services.vault, secret: tokens.secret, logger }),
    mcpServers: services.mcpTools,
    canvasEvents: services.canvasEvents,
    usage: services.usage,
    limits: services.limits,
    budget: services.budget,
    readiness: { redis: () => connections.ping(), database: () => database.ping() },
    workers: services.presence,
    providers,
    shuttingDown,
    queues: services.queues,
    metrics,
    admin: dashboardAccess(config, admins, new LoginThrottle(cache.command, config.redis.keyPrefix, config.auth)),
    streams,
    revocations,
    sources: new StreamSources({
      events: services.events,
      chatEvents: services.chatEvents,
      notesEvents: new NotesEventLog(realtime.command, config.redis.keyPrefix, undefined, services.follower),
      flowEvents: services.flowEvents,
      canvasLog: services.canvasLog,
      knowledgeEvents: new KnowledgeEventLog(realtime.command, config.redis.keyPrefix, undefined, services.follower),
      repos,
      queues: services.queues,
      checkEveryMs: config.streams.checkIntervalMs,
    }),
  };
  metrics.trackOpenStreams(() => streams.size);
  closers.unshift(['queue watch', services.presence.watch(logger)]);
  metrics.trackQueues(
    [...QUEUE_NAMES],
    (name) => services.queues.counts(name),
    (queue, error) => logger.warn({ err: error, queue }, 'queue counts not read for /metrics; the gauge keeps its last values'),
  );
  parts.serve(createHttpApp(ctx));
  // Cursors between nodes over pub/sub, never the adapter's (recovery) stream: a cursor flood must not evict room events a reconnecting client needs.
  const cursorSubscriber = createRedis(realtime.target, 'blocking');
  const cursors = await CursorRelay.start({
    publisher: realtime.command,
    subscriber: cursorSubscriber,
    keyPrefix: config.redis.keyPrefix,
    nsp: services.io.of(CANVAS_NAMESPACE) as never,
    logger,
  });
  closers.unshift(['cursor relay', () => cursors.close()]);
  registerCanvasNamespace(services.io, {
    tokens,
    canvases: repos.canvases,
    canvasLog: services.canvasLog,
    logger,
    metrics,
    cursors,
    // A member types in a thread of the canvas only where they may post: an editor or owner of it.
    threadPoster: async (canvasId, threadId, userId) => {
      const access = await repos.chat.findAccessible(userId, threadId);
      return access?.session.canvasId === canvasId && access.role !== 'viewer';
    },
  });
  // One set of handlers for both device transports: Socket.IO /device and the plain WebSocket.
  const deviceHandlers: DeviceFrameHandlers = {
    onChatRequest: deviceChatHandler(chat, services.usage),
    onToolApproval: toolApprovalHandler(services.approvals),
    onChatCancel: (user, deviceId, payload) => services.chatTurnLife.cancelFromDevice(user.id, deviceId, payload),
    onDeviceHello: async (userId, deviceId) => {
      // Awaited, so the transports' try/catch sees a failure (a rejected promise would end the process).
      await agents.resumeWaitingRuns(userId, deviceId);
    },
    onAgentFrame: (user, deviceId, type, payload) => services.agentRunChannel.accept(user.id, deviceId, type, payload),
  };
  const deviceSockets = registerDeviceNamespace(services.devices, {
    tokens,
    registry: services.deviceRegistry,
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
    registry: services.deviceRegistry,
    channel: services.devices,
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
          await services.usage.take('chatPerMinute', user);
          if (input.agent) await services.usage.take('codingTurnsPerHour', user);
          return chat.start({
            userId: user.id,
            message: input.message,
            sessionId: input.sessionId,
            tier: user.tier,
            agent: input.agent,
            deviceId: input.deviceId,
            multitask: input.multitask,
          });
        },
        decide: async (decider, approvalId, approved) => void (await services.approvals.decide(decider, approvalId, approved, 'http')),
        cancel: async (userId, sessionId) => void (await services.chatTurnLife.cancel(userId, sessionId)),
        followTurn: (turn, signal) => ctx.sources.chatTurnEvents(turn, signal, true),
      }),
    ],
  });
  quota.guard(services.io.of(CANVAS_NAMESPACE));
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
  const url = `http://${config.http.host}:${address.port}`;
  const dashboard = `${url}/admin/services.queues${ctx.admin.generatedPassword ? ` (user ${ctx.admin.user}, password ${ctx.admin.generatedPassword})` : ''}`;
  closers.unshift([
    'http',
    () => {
      // Open connections would hold the server until the deadline: event streams are told to
      // reconnect elsewhere and end, Socket.IO clients are closed, idle keep-alives go below.
      streams.endAll(1_000);
      disconnectClients(services.io);
      return closeHttp(httpServer);
    },
  ]);
  // Before the HTTP server: its upgraded device sockets would keep it from closing.
  closers.unshift(['device websockets', () => deviceWebSockets.close()]);
  return { url, dashboard, providers };
}

/**
 * Dashboard credentials. In embedded (non-production) mode with none configured, a random password
 * is generated for user `admin` and shown once in the start banner.
 */
function dashboardAccess(config: Config, directory: AdminDirectory, throttle: LoginThrottle): AdminAccess {
  const generate = !config.admin.password && config.env !== 'production';
  const password = config.admin.password ?? (generate ? randomBytes(12).toString('base64url') : undefined);
  return {
    user: config.admin.user ?? (password ? 'admin' : undefined),
    password,
    directory,
    throttle,
    generatedPassword: generate ? password : undefined,
  };
}
