import { z } from 'zod';
import { envSchema } from './env';
import { DEFAULT_PRICING, type ModelPrice } from './pricing';
import { codingAgentOverridesSchema, codingAgents } from './coding-agents';
import { layTierOverride, mergeTierLimits, mergeUsageLimits, TIER_PRESETS, TIERS } from './tiers';

export { TIERS, type Tier, type TierLimits, type UsageLimits, type BudgetLimits, type TierFeatures } from './tiers';
export type { ModelPrice } from './pricing';

export const QUEUE_NAMES = [
  'generation',
  'broadcast',
  'assistant',
  'embeddings',
  'connectors',
  'agent-runs',
  'flows',
  'psa',
  'webhooks',
  'knowledge',
] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];
/** Queues whose jobs never call a model: a worker consuming only these starts no model client (nor the demo model). */
export const MODEL_FREE_QUEUES: readonly QueueName[] = ['broadcast'];
/** Whether a worker consuming `queues` calls a model. */
export const callsModels = (queues: readonly string[]): boolean =>
  queues.some((name) => !(MODEL_FREE_QUEUES as readonly string[]).includes(name));
export type Role = 'api' | 'worker' | 'scheduler';

/** Fixed id of the AI service user (created by the first migration); authors every AI block. */
export const AI_AGENT_USER_ID = '00000000-0000-4000-8000-0000000000a1';

const tierOverrideSchema = z.partialRecord(
  z.enum(TIERS),
  z
    .strictObject({
      generationsPerMinute: z.number().int().positive(),
      generationsPerHour: z.number().int().positive(),
      concurrentGenerations: z.number().int().positive(),
      maxBlocksPerGeneration: z.number().int().positive(),
      maxEnabledAgents: z.number().int().nonnegative(),
      maxKnowledgeFileBytes: z.number().int().positive(),
      maxKnowledgeDocuments: z.number().int().positive(),
      maxKnowledgeBases: z.number().int().nonnegative(),
      minScheduleIntervalSeconds: z.number().int().min(60),
      chatPerMinute: z.number().int().positive(),
      embeddingsPerMinute: z.number().int().positive(),
      journeyPerMinute: z.number().int().positive(),
      agentRunsPerMinute: z.number().int().positive(),
      flowExecutionsPerMinute: z.number().int().positive(),
      webhookSendsPerMinute: z.number().int().positive(),
      deviceOperationsPerHour: z.number().int().positive(),
      approvalsPerHour: z.number().int().positive(),
      codingTurnsPerHour: z.number().int().positive(),
      codeFileOpsPerHour: z.number().int().positive(),
      codeApprovalsPerHour: z.number().int().positive(),
      // Budgets: null (or absent) = unlimited; 0 = none at all.
      tokensPerHour: z.number().int().nonnegative().nullable(),
      requestsPerHour: z.number().int().nonnegative().nullable(),
      tokensPerMonth: z.number().int().nonnegative().nullable(),
      costUsdPerMonth: z.number().nonnegative().nullable(),
      requestsPerMonth: z.number().int().nonnegative().nullable(),
      features: z.strictObject({ localModels: z.boolean(), cloudAgents: z.boolean(), flows: z.boolean() }).partial(),
    })
    .partial(),
);
const providersSchema = z
  .array(
    z.strictObject({
      name: z.string().regex(/^[A-Za-z0-9_.-]+$/),
      baseUrl: z.url(),
      /** The env variable holding this provider's API key (keys never sit in the JSON itself). */
      apiKeyEnv: z
        .string()
        .regex(/^[A-Z_][A-Z0-9_]*$/)
        .optional(),
      models: z.array(z.string().min(1)).min(1),
      kind: z.enum(['openai', 'ollama', 'vllm', 'lmstudio']).optional(),
      /** It accepts Anthropic-style `cache_control` on message parts: fixed system prompts are marked for caching. */
      promptCache: z.boolean().optional(),
    }),
  )
  .min(1)
  .refine((list) => new Set(list.map((provider) => provider.name)).size === list.length, 'provider names must be unique');
const pricingSchema = z.record(
  z.string(),
  z.object({
    inputPerMillion: z.number().min(0),
    outputPerMillion: z.number().min(0),
    cachedInputPerMillion: z.number().min(0).optional(),
  }),
);
/** Provider kinds that run on the operator's own hardware: their models have no per-token price. */
const SELF_HOSTED_KINDS = new Set(['ollama', 'lmstudio', 'vllm']);

/** Thrown by loadConfig with every problem listed, so a misconfigured deployment fails at start. */
export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`Invalid configuration:\n  ${issues.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Parses the environment into grouped settings. Pure: reads only its argument, so tests pass
 * their own env and nothing is parsed at import time.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env) {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  // The proxy variables are also spelled in lowercase (curl's convention); the uppercase one wins.
  for (const name of ['HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY']) cleaned[name] ??= cleaned[name.toLowerCase()];
  for (const name of ['HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY']) if (cleaned[name] === undefined) delete cleaned[name];
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`));
  }
  const e = parsed.data;
  const issues: string[] = [];
  if (e.NODE_ENV === 'production' && !e.JWT_SECRET) issues.push('JWT_SECRET: required when NODE_ENV=production');
  if (e.NODE_ENV === 'production' && !e.OAUTH_ENCRYPTION_KEY) issues.push('OAUTH_ENCRYPTION_KEY: required when NODE_ENV=production');
  const tiers = tierOverrideSchema.safeParse(e.TIER_LIMITS ?? {});
  const agents = codingAgentOverridesSchema.safeParse(e.CODING_AGENTS ?? {});
  if (!agents.success) issues.push(`CODING_AGENTS: ${agents.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`);
  if (!tiers.success) issues.push(`TIER_LIMITS: ${tiers.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`);
  // The preset's plans, with TIER_LIMITS laid over them key by key.
  const plans = layTierOverride(TIER_PRESETS[e.TIER_PRESET], tiers.data ?? {});
  const pricing = pricingSchema.safeParse(e.LLM_PRICING ?? {});
  if (!pricing.success) issues.push(`LLM_PRICING: ${pricing.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`);
  const workerQueues = e.WORKER_QUEUES ?? [...QUEUE_NAMES];
  const unknownQueues = workerQueues.filter((name) => !(QUEUE_NAMES as readonly string[]).includes(name));
  if (unknownQueues.length)
    issues.push(`WORKER_QUEUES: unknown queue(s) ${unknownQueues.join(', ')}; the queues are ${QUEUE_NAMES.join(', ')}`);
  const llm = modelProviders(e, cleaned, issues);
  const redis = redisDeployment(e, issues);
  if (issues.length) {
    // A refused configuration also names what the start would refuse next, so one run lists it all.
    const roles = [...new Set(e.SWITCHBOARD_ROLES)] as Role[];
    const startIssues = [
      sharedRedisRequired({ redis, env: e.NODE_ENV, roles }),
      sharedDatabaseRequired({ database: { url: e.DATABASE_URL, poolSize: e.DATABASE_POOL_SIZE }, roles }),
      productionModelRequired({
        llm: { configured: llm.providers.length > 0, demoAllowed: e.LLM_DEMO === '1' },
        env: e.NODE_ENV,
        roles,
        queues: { names: workerQueues as QueueName[] },
      }),
    ];
    throw new ConfigError([...issues, ...startIssues.filter((issue): issue is string => issue !== null)]);
  }

  const llmConfigured = llm.providers.length > 0;
  return {
    env: e.NODE_ENV,
    roles: [...new Set(e.SWITCHBOARD_ROLES)] as Role[],
    http: {
      host: e.HOST,
      port: e.PORT,
      bodyLimit: '1mb',
      metricsPort: e.METRICS_PORT,
      requestTimeoutMs: e.HTTP_REQUEST_TIMEOUT_MS,
      maxConnectionsPerIp: e.HTTP_MAX_CONNECTIONS_PER_IP,
    },
    data: { dir: e.DATA_DIR },
    database: { url: e.DATABASE_URL, poolSize: e.DATABASE_POOL_SIZE },
    redis,
    llm: {
      /** false = start the offline demo model in-process. */
      configured: llmConfigured,
      apiKey: e.OPENAI_API_KEY,
      baseURL: e.OPENAI_BASE_URL,
      model: llmConfigured ? e.LLM_MODEL : 'demo',
      fallbackModels: e.LLM_FALLBACK_MODELS,
      provider: llmConfigured ? e.LLM_PROVIDER : 'demo',
      embeddingModel: llmConfigured ? e.EMBEDDING_MODEL : 'demo',
      demoDelayMs: e.DEMO_LLM_DELAY_MS,
      /** LLM_DEMO=1: the demo model is served on purpose, even under NODE_ENV=production. */
      demoAllowed: e.LLM_DEMO === '1',
      /** `max_tokens` of every call, reserved by the budget door. */
      maxTokens: e.LLM_MAX_TOKENS,
      /** How long a model stream may be silent before the attempt fails over. */
      streamIdleTimeoutMs: e.LLM_STREAM_IDLE_TIMEOUT_MS,
      /** Empty = the offline demo model. The first provider's first model is the default. */
      providers: llm.providers,
      /** `LLM_FALLBACK` (or, in the short form, `LLM_FALLBACK_MODELS` on the one provider). */
      fallback: llm.fallback,
      /** `NOTES_MODEL`: the model ticket notes are written with (unset: the default model). */
      notesModel: llm.notesModel,
      // The demo model and self-hosted models are free; LLM_PRICING wins over both and over the catalog.
      pricing: {
        ...DEFAULT_PRICING,
        ...Object.fromEntries(
          llm.providers
            // A self-hosted kind, or the short form's LLM_PROVIDER naming one (ollama, lmstudio, vllm).
            .filter((provider) => SELF_HOSTED_KINDS.has(provider.kind) || SELF_HOSTED_KINDS.has(provider.name))
            .flatMap((provider) => provider.models.map((model) => [model, { inputPerMillion: 0, outputPerMillion: 0 }])),
        ),
        ...(pricing.data as Record<string, ModelPrice>),
      },
    },
    auth: {
      jwtSecret: e.JWT_SECRET,
      issuer: 'switchboard',
      audience: 'switchboard-api',
      accessTokenTtlSeconds: e.ACCESS_TOKEN_TTL_SECONDS,
      refreshTokenTtlDays: e.REFRESH_TOKEN_TTL_DAYS,
      refreshReuseGraceSeconds: e.REFRESH_REUSE_GRACE_SECONDS,
      loginAttemptsPerIpPerMinute: e.LOGIN_ATTEMPTS_PER_IP_PER_MINUTE,
      loginFailuresBeforeBackoff: e.LOGIN_FAILURES_BEFORE_BACKOFF,
      registrationsPerIpPerHour: e.REGISTRATIONS_PER_IP_PER_HOUR,
      aiAgentUserId: AI_AGENT_USER_ID,
    },
    oauth: {
      /** Unset in embedded mode = a key generated once under DATA_DIR (see src/connectors/secret-box.ts). */
      encryptionKey: e.OAUTH_ENCRYPTION_KEY,
      oldKeys: e.OAUTH_ENCRYPTION_OLD_KEYS,
      publicUrl: (e.PUBLIC_URL ?? `http://${e.HOST}:${e.PORT}`).replace(/\/+$/, ''),
      google: {
        clientId: e.GOOGLE_CLIENT_ID,
        clientSecret: e.GOOGLE_CLIENT_SECRET,
        apiBaseUrl: e.GOOGLE_API_BASE_URL,
        oauthBaseUrl: e.GOOGLE_OAUTH_BASE_URL.replace(/\/+$/, ''),
        authorizeUrl: e.GOOGLE_AUTHORIZE_URL,
      },
      microsoft: {
        clientId: e.MS_CLIENT_ID,
        clientSecret: e.MS_CLIENT_SECRET,
        tenant: e.MS_TENANT,
        graphBaseUrl: e.MS_GRAPH_BASE_URL.replace(/\/+$/, ''),
        loginBaseUrl: e.MS_LOGIN_BASE_URL.replace(/\/+$/, ''),
      },
    },
    agents: {
      maxFiles: e.AGENT_RUN_MAX_FILES,
      maxBytes: e.AGENT_RUN_MAX_BYTES,
      maxFileBytes: e.AGENT_RUN_MAX_FILE_BYTES,
      runTimeoutMs: e.AGENT_RUN_TIMEOUT_MS,
      deviceWaitMs: e.AGENT_DEVICE_WAIT_MS,
      schedulerTick: e.SCHEDULER_TICK_CRON,
      journeyTtlSeconds: e.JOURNEY_TTL_SECONDS,
    },
    admin: { user: e.ADMIN_USER, password: e.ADMIN_PASSWORD, userIds: e.ADMIN_USER_IDS },
    /** Settings read but no longer honoured; the process warns about each at start. */
    warnings: cleaned.ADMIN_EMAILS
      ? ['ADMIN_EMAILS is ignored: admin rights come from `switchboard admin grant <email>` or ADMIN_USER_IDS (user ids)']
      : [],
    /** `explicit`: WORKER_QUEUES was set, so every listed queue must have a processor. */
    queues: {
      names: workerQueues as QueueName[],
      explicit: e.WORKER_QUEUES !== undefined,
      lockMs: e.WORKER_LOCK_MS,
      leaseMs: e.WORKER_LEASE_MS,
      /** A queue without a worker's beat for this long is reported and fails fast (src/producers/worker-presence.ts). */
      unconsumedMs: e.QUEUE_UNCONSUMED_SECONDS * 1000,
    },
    /** Crash safety: ends or resumes work left `running`/`pending` by a dead process (src/app/reaper.ts). */
    reaper: { intervalMs: e.REAPER_INTERVAL_MS, graceMs: e.REAPER_GRACE_MS },
    budget: { reservationTtlMs: e.BUDGET_RESERVATION_TTL_MS },
    broadcast: { chunkSize: e.BROADCAST_CHUNK_SIZE, chunkDelayMs: e.BROADCAST_CHUNK_DELAY_MS, concurrency: e.BROADCAST_CONCURRENCY },
    /** Chat, chatflow and journey turns one worker process runs at once. */
    assistant: { concurrency: e.ASSISTANT_CONCURRENCY },
    /** The per-canvas event sequence and replay log (src/realtime/canvas-log.ts). */
    /**
     * Sockets per user across nodes and namespaces (default 20), counted in Redis with a
     * lease per socket that its node renews, so a kill -9'd node's sockets stop counting after
     * `leaseSeconds` (src/realtime/socket-quota.ts).
     */
    sockets: { maxPerUser: e.MAX_SOCKETS_PER_USER, leaseSeconds: e.SOCKET_LEASE_SECONDS },
    canvas: { maxBlocks: e.MAX_BLOCKS_PER_CANVAS },
    /** Room threads: messages a minute per member of a thread and per thread (src/assistant/room-threads.ts). */
    roomThreads: {
      memberMessagesPerMinute: e.ROOM_THREAD_MEMBER_MESSAGES_PER_MINUTE,
      threadMessagesPerMinute: e.ROOM_THREAD_MESSAGES_PER_MINUTE,
    },
    /** Public chat widgets of chatflows: per-token and per-IP requests a minute. */
    embeds: { ratePerMinute: e.EMBED_RATE_LIMIT_PER_MINUTE },
    canvasLog: { ttlSeconds: e.CANVAS_LOG_TTL_SECONDS, maxEvents: e.CANVAS_LOG_MAX_EVENTS, maxCatchUp: e.CANVAS_SYNC_MAX_EVENTS },
    /** Open SSE streams per user, across nodes (src/http/sse-streams.ts). */
    streams: { maxPerUser: e.MAX_STREAMS_PER_USER, checkIntervalMs: e.STREAM_CHECK_INTERVAL_MS },
    generation: {
      promptGuard: e.PROMPT_GUARD,
      maxPromptChars: 8_000,
      eventsTtlSeconds: e.GENERATION_EVENTS_TTL_SECONDS,
      concurrency: e.GENERATION_CONCURRENCY,
    },
    tiers: mergeTierLimits(plans),
    tierPreset: e.TIER_PRESET,
    /** Per-minute (and per-hour) limits on paid work per user, by tier. */
    usageLimits: mergeUsageLimits(plans),
    /** Browser origins the API answers CORS for and sockets accept (CORS_ORIGINS). */
    cors: { origins: e.CORS_ORIGINS },
    /** Express `trust proxy` (TRUST_PROXY): whose address `req.ip` is, for per-IP limits. */
    trustProxy: parseTrustProxy(e.TRUST_PROXY),
    device: {
      rpcTimeoutMs: e.DEVICE_RPC_TIMEOUT_MS,
      wsPingIntervalMs: e.DEVICE_WS_PING_INTERVAL_MS,
      wsPongTimeoutMs: e.DEVICE_WS_PONG_TIMEOUT_MS,
    },
    hitl: { timeoutMs: e.HITL_TIMEOUT_MS, dangerousTools: e.HITL_DANGEROUS_TOOLS },
    /** The coding agents with the operator's overrides (CODING_AGENTS over config/coding-agents.ts). */
    codingAgents: codingAgents(agents.data),
    flowHttp: {
      timeoutMs: e.FLOW_HTTP_TIMEOUT_MS,
      maxResponseBytes: e.FLOW_HTTP_MAX_RESPONSE_BYTES,
      privateOrigins: e.FLOW_HTTP_PRIVATE_ORIGINS,
    },
    /** PSA pushes of ticket notes (src/connectors/psa.ts). */
    psa: { timeoutMs: e.PSA_TIMEOUT_MS, privateOrigins: e.PSA_PRIVATE_ORIGINS },
    webhooks: {
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      attempts: e.WEBHOOK_ATTEMPTS,
      backoffMs: e.WEBHOOK_BACKOFF_MS,
      concurrency: e.WEBHOOK_CONCURRENCY,
      deliveriesKept: e.WEBHOOK_DELIVERIES_KEPT,
      privateOrigins: e.WEBHOOK_PRIVATE_ORIGINS,
    },
    /** Knowledge bases: what one document, one upload and one base may hold; ingestion concurrency; URLs allowed on private addresses. */
    knowledge: {
      maxFileBytes: e.KNOWLEDGE_MAX_FILE_BYTES,
      maxFiles: e.KNOWLEDGE_MAX_FILES,
      maxDocuments: e.KNOWLEDGE_MAX_DOCUMENTS,
      concurrency: e.KNOWLEDGE_CONCURRENCY,
      privateOrigins: e.KNOWLEDGE_PRIVATE_ORIGINS,
      chatWaitMs: e.KNOWLEDGE_CHAT_WAIT_MS,
    },
    /** Evaluations: a dataset's rows and size, the executions one evaluation runs at once, the evaluations a user runs at once. */
    evals: {
      maxRows: e.EVAL_MAX_ROWS,
      maxDatasetBytes: e.EVAL_MAX_DATASET_BYTES,
      maxConcurrency: e.EVAL_MAX_CONCURRENCY,
      maxRunning: e.EVAL_MAX_RUNNING,
    },
    /** Where outbound model and tool calls go (src/lib/outbound-proxy.ts); all unset: directly. */
    outboundProxy: { httpsProxy: e.HTTPS_PROXY, httpProxy: e.HTTP_PROXY, noProxy: e.NO_PROXY },
    shutdown: { timeoutMs: e.SHUTDOWN_TIMEOUT_MS },
    log: { level: e.LOG_LEVEL, format: e.LOG_FORMAT },
    metrics: {
      token: e.METRICS_TOKEN,
      /**
       * The process's own families (CPU, memory, event loop, GC). prom-client's GC observer cannot
       * be removed once installed, so a host that starts Switchboard many times in one process
       * (an in-process test suite) turns them off rather than keep every stopped instance alive.
       */
      processMetrics: true,
    },
  };
}

export type Config = ReturnType<typeof loadConfig>;

/** An OpenAI-compatible endpoint as configured. */
export interface ConfiguredProvider {
  name: string;
  baseURL: string;
  apiKey: string;
  models: string[];
  kind: 'openai' | 'ollama' | 'vllm' | 'lmstudio';
  /** Accepts Anthropic-style `cache_control` on message parts. */
  promptCache: boolean;
}

/**
 * The providers and the fallback chain: `LLM_PROVIDERS` when set, else the short form
 * (`OPENAI_BASE_URL`/`OPENAI_API_KEY`, `LLM_PROVIDER`, `LLM_MODEL`, `LLM_FALLBACK_MODELS`), else none
 * (the demo model). Every `LLM_FALLBACK` entry must name a configured provider and model.
 */
function modelProviders(e: z.output<typeof envSchema>, env: Record<string, string | undefined>, issues: string[]) {
  let providers: ConfiguredProvider[] = [];
  if (e.LLM_PROVIDERS !== undefined) {
    const parsed = providersSchema.safeParse(e.LLM_PROVIDERS);
    if (!parsed.success) issues.push(`LLM_PROVIDERS: ${parsed.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`);
    else {
      providers = parsed.data.map((p) => ({
        name: p.name,
        baseURL: p.baseUrl,
        apiKey: (p.apiKeyEnv && env[p.apiKeyEnv]) || 'not-set',
        models: p.models,
        kind: p.kind ?? 'openai',
        promptCache: p.promptCache ?? false,
      }));
      for (const p of parsed.data)
        if (p.apiKeyEnv && !env[p.apiKeyEnv]) issues.push(`LLM_PROVIDERS: ${p.name}.apiKeyEnv names ${p.apiKeyEnv}, which is not set`);
    }
  } else if (e.OPENAI_BASE_URL || e.OPENAI_API_KEY) {
    providers = [
      {
        name: e.LLM_PROVIDER,
        baseURL: e.OPENAI_BASE_URL ?? 'https://api.openai.com/v1',
        apiKey: e.OPENAI_API_KEY ?? 'not-set',
        models: [e.LLM_MODEL, ...e.LLM_FALLBACK_MODELS],
        kind: 'openai',
        promptCache: e.LLM_PROMPT_CACHE === 'true',
      },
    ];
  }
  const fallback: Array<{ provider: string; model: string }> = [];
  for (const entry of e.LLM_FALLBACK) {
    const [provider, ...rest] = entry.split(':');
    const model = rest.join(':');
    if (!providers.find((p) => p.name === provider)?.models.includes(model))
      issues.push(`LLM_FALLBACK: ${entry} is not a configured provider:model`);
    else fallback.push({ provider, model });
  }
  if (!e.LLM_FALLBACK.length && e.LLM_PROVIDERS === undefined && providers.length) {
    fallback.push(...e.LLM_FALLBACK_MODELS.map((model) => ({ provider: providers[0].name, model })));
  }
  let notesModel: { provider: string; model: string } | undefined;
  if (e.NOTES_MODEL !== undefined && providers.length) {
    const [first, ...rest] = e.NOTES_MODEL.split(':');
    const named = rest.length ? { provider: first, model: rest.join(':') } : { provider: providers[0].name, model: e.NOTES_MODEL };
    if (!providers.find((p) => p.name === named.provider)?.models.includes(named.model))
      issues.push(`NOTES_MODEL: ${e.NOTES_MODEL} is not a configured model (provider:model, or a model of the first provider)`);
    else notesModel = named;
  }
  return { providers, fallback, notesModel };
}

/** `TRUST_PROXY` as express takes it: `true`/`false`, a hop count, or addresses / names (`loopback`). */
function parseTrustProxy(value: string | undefined): boolean | number | string {
  if (value === undefined || value === '' || value === 'false') return false;
  if (value === 'true') return true;
  return /^\d+$/.test(value) ? Number(value) : value;
}

/**
 * Why this process may not start its own redis-server: processes that share work (an api node and
 * its workers, several nodes) meet only on one shared Redis, and a private one per process would
 * strand jobs, devices and limits on it without a word. Production always names its Redis. Null
 * when the embedded default is allowed: every role in this one process, outside production.
 */
export function sharedRedisRequired(config: Pick<Config, 'redis' | 'env' | 'roles'>): string | null {
  if (config.redis.url || config.redis.cluster) return null;
  const split = new Set(config.roles).size < ALL_ROLES.length;
  if (config.env !== 'production' && !split) return null;
  const why = config.env === 'production' ? 'NODE_ENV=production' : `SWITCHBOARD_ROLES=${config.roles.join(',')} runs only some roles here`;
  return `REDIS_URL: required when ${why}; every process of a deployment must share one Redis (the embedded redis-server serves the one-process default only). Set REDIS_URL=redis://host:6379 (or REDIS_CLUSTER_NODES=host:port,… for a Redis Cluster)`;
}

const ALL_ROLES = ['api', 'worker', 'scheduler'] as const;

/**
 * Why this process may not open its own embedded database: a process running only some roles
 * shares its work with others, and each would otherwise get a PGlite of its own under its DATA_DIR
 * (in separate containers, a database per process) without a word. Null when DATABASE_URL is set
 * (`memory://` included: a deliberate choice) or every role runs here.
 */
export function sharedDatabaseRequired(config: Pick<Config, 'database' | 'roles'>): string | null {
  if (config.database.url) return null;
  if (new Set(config.roles).size >= ALL_ROLES.length) return null;
  return `DATABASE_URL: required when SWITCHBOARD_ROLES=${config.roles.join(',')} runs only some roles here; every process of a deployment must share one database (the embedded PGlite is private to one process). Set DATABASE_URL=postgres://user:pass@host:5432/switchboard`;
}

/**
 * Why this process may not fall back to the offline demo model: under NODE_ENV=production a
 * process that serves users (api or worker) with no model configured would answer them with the
 * demo model's canned text. Null when a model is configured (or `modelGiven`: an endpoint handed
 * in by the embedder), outside production, with LLM_DEMO=1, or for a scheduler-only process.
 */
export function productionModelRequired(
  config: Pick<Config, 'env' | 'roles'> & {
    llm: Pick<Config['llm'], 'configured' | 'demoAllowed'>;
    queues: Pick<Config['queues'], 'names'>;
  },
  modelGiven = false,
): string | null {
  if (config.env !== 'production' || config.llm.configured || config.llm.demoAllowed || modelGiven) return null;
  if (!config.roles.includes('api') && !(config.roles.includes('worker') && callsModels(config.queues.names))) return null;
  return 'OPENAI_BASE_URL / OPENAI_API_KEY (or LLM_PROVIDERS): required when NODE_ENV=production; with no model configured users would get the offline demo model. Name your model endpoint, or set LLM_DEMO=1 to serve the demo model on purpose';
}

/** The Redis concerns a deployment may put on separate servers. */
export const REDIS_CONCERNS = ['queues', 'realtime', 'cache'] as const;
export type RedisConcern = (typeof REDIS_CONCERNS)[number];

/** One Redis Cluster seed node. */
export interface RedisClusterNode {
  host: string;
  port: number;
}

/**
 * Where Redis is: `cluster` (seed nodes) for a Redis Cluster; else `urls`, each concern's server
 * (its REDIS_URL_* or REDIS_URL), all unset for the embedded redis-server. `url` is REDIS_URL.
 */
function redisDeployment(e: z.output<typeof envSchema>, issues: string[]) {
  const own = { queues: e.REDIS_URL_QUEUES, realtime: e.REDIS_URL_REALTIME, cache: e.REDIS_URL_CACHE };
  for (const concern of REDIS_CONCERNS) {
    const name = `REDIS_URL_${concern.toUpperCase()}`;
    if (own[concern] !== undefined && !/^rediss?:\/\/[^\s]+$/.test(own[concern]))
      issues.push(`${name}: must be a redis:// or rediss:// URL, e.g. redis://host:6379`);
  }
  let cluster: RedisClusterNode[] | undefined;
  if (e.REDIS_CLUSTER_NODES) {
    cluster = [];
    for (const entry of e.REDIS_CLUSTER_NODES) {
      const match = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/.exec(entry);
      const port = match ? Number(match[2]) : 0;
      if (!match || port < 1 || port > 65_535) issues.push(`REDIS_CLUSTER_NODES: ${entry} is not host:port (e.g. 10.0.0.5:6379)`);
      else cluster.push({ host: match[1].replace(/^\[|\]$/g, ''), port });
    }
    if (!e.REDIS_CLUSTER_NODES.length) issues.push('REDIS_CLUSTER_NODES: name at least one node, host:port');
    const alsoSet = ['REDIS_URL', 'REDIS_URL_QUEUES', 'REDIS_URL_REALTIME', 'REDIS_URL_CACHE'].filter(
      (name) => (e as Record<string, unknown>)[name] !== undefined,
    );
    if (alsoSet.length)
      issues.push(
        `REDIS_CLUSTER_NODES: runs every Redis use on the cluster; unset ${alsoSet.join(', ')} (one Redis deployment or the other)`,
      );
  }
  const split = REDIS_CONCERNS.filter((c) => own[c] !== undefined);
  if (!cluster && split.length && split.length < REDIS_CONCERNS.length && e.REDIS_URL === undefined) {
    const missing = REDIS_CONCERNS.filter((c) => own[c] === undefined).map((c) => `REDIS_URL_${c.toUpperCase()}`);
    issues.push(`REDIS_URL: required when only some REDIS_URL_* are set (${missing.join(', ')} default to it)`);
  }
  const urls = { queues: own.queues ?? e.REDIS_URL, realtime: own.realtime ?? e.REDIS_URL, cache: own.cache ?? e.REDIS_URL };
  const anyUrl = REDIS_CONCERNS.some((c) => urls[c] !== undefined);
  return {
    /** REDIS_URL, or the queues' server when every concern names its own (the server the banner shows). */
    url: e.REDIS_URL ?? (anyUrl ? urls.queues : undefined),
    keyPrefix: e.REDIS_KEY_PREFIX,
    cluster,
    urls,
  };
}
