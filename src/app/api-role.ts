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
import { toolApprovalHandler } from '../assistant/approvals';
import { ChatService, deviceChatHandler } from '../assistant/chat-service';
import { NotesEventLog } from '../assistant/notes-events';
import { AdminDirectory } from '../auth/admins';
import { ApiKeys } from '../auth/api-keys';
import { AuthService } from '../auth/auth-service';
import { resolveJwtSecret } from '../auth/jwt-secret';
import { Revocations } from '../auth/revocations';
import { SessionGuard } from '../auth/session-guard';
import type { TokenSettings } from '../auth/tokens';
import { FlowChats } from '../flows/flow-chat';
import { FlowExecutions } from '../flows/flow-executions';
import { FlowService } from '../flows/flow-service';
import { GenerationService } from '../generation/generation-service';
import { createHttpApp } from '../http/app';
import type { ApiContext } from '../http/context';
import { SseStreams } from '../http/sse-streams';
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
): Promise<{ url: string; dashboard: string }> {
  const { logger, metrics, httpServer, shuttingDown, endpoint } = parts;
  const { repos, connections, database } = stores;
  const { realtime, cache } = connections;
  const {
    queues,
    presence,
    events,
    limiter,
    flowEvents,
    chatEvents,
    vault,
    httpCredentials,
    psa,
    webhooks,
    mcpTools,
    agentRunChannel,
    io,
    canvasLog,
    canvasEvents,
    relay,
    devices,
    deviceRegistry,
    usage,
    approvals,
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
    chatCancels,
    follower,
  } = services;
  // Revoked credentials reach every API node's open streams through one channel (no socket room holds a stream).
  const revocations = new Revocations(realtime.command, config.redis.keyPrefix, logger);
  await revocations.listen();
  closers.unshift(['revocations', () => revocations.close()]);
  const announceRevoked = (ids: string[]) =>
    revocations
      .announce(ids)
      .catch((error: unknown) => logger.warn({ err: error }, 'could not announce a revoked credential to open streams'));
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
  const models = ModelCatalog.of(config, endpoint);
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
    mcp: mcpTools,
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
      mcp: mcpTools,
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
      endpoint ? [{ name: endpoint.provider, baseURL: endpoint.baseURL, apiKey: endpoint.apiKey }] : config.llm.providers,
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
  metrics.trackQueues(
    [...QUEUE_NAMES],
    (name) => queues.counts(name),
    (queue, error) => logger.warn({ err: error, queue }, 'queue counts not read for /metrics; the gauge keeps its last values'),
  );
  parts.serve(createHttpApp(ctx));
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
  const url = `http://${config.http.host}:${address.port}`;
  const dashboard = `${url}/admin/queues${ctx.admin.generatedPassword ? ` (user ${ctx.admin.user}, password ${ctx.admin.generatedPassword})` : ''}`;
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
  return { url, dashboard };
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
