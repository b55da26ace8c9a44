import { z } from 'zod';

const list = z.string().transform((value) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean),
);
/** `https://host[:port]` exactly as a browser sends it in `Origin` (lowercase, no path, no default port). */
function isExactOrigin(value: string): boolean {
  if (!/^https?:\/\/[^/?#*\s]+$/.test(value)) return false;
  try {
    return new URL(value).origin === value;
  } catch {
    return false;
  }
}
const int = (min = 0) => z.coerce.number().int().min(min);
const json = z.string().transform((value, ctx) => {
  try {
    return JSON.parse(value) as unknown;
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be valid JSON' });
    return z.NEVER;
  }
});

/**
 * Every environment variable Switchboard reads, with its default. Empty strings count as unset so
 * that an `.env` line like `REDIS_URL=` means "use the embedded default".
 */
export const envSchema = z.object({
  /** `development` | `test` | `production`. Production requires JWT_SECRET. */
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  /** Roles this process runs: any of api, worker, scheduler. */
  SWITCHBOARD_ROLES: list.pipe(z.array(z.enum(['api', 'worker', 'scheduler'])).min(1)).default(['api', 'worker', 'scheduler']),
  /** Queues a worker process consumes (default: all). */
  WORKER_QUEUES: list.optional(),
  /** HTTP bind address and port. */
  HOST: z.string().default('127.0.0.1'),
  PORT: int().max(65_535).default(3000),
  /** Embedded data (PGlite files, generated JWT secret). */
  DATA_DIR: z.string().default('./.data'),
  /** PostgreSQL server; unset = embedded PGlite under DATA_DIR. `memory://` = in-memory PGlite. */
  DATABASE_URL: z.string().optional(),
  /**
   * Connections one process keeps to the PostgreSQL server at most; a statement that finds them all
   * busy waits up to 5 s for one. Every process of a deployment opens its own pool, so the server's
   * max_connections must cover their sum. Embedded PGlite has one connection whatever this says.
   */
  DATABASE_POOL_SIZE: int(1).max(1000).default(10),
  /** Redis server; unset = a redis-server child process on a free port. */
  REDIS_URL: z.string().optional(),
  /**
   * Redis Cluster seed nodes, `host:port,…`: every Redis use (queues, sockets, logs, limits) runs on
   * the cluster, keys grouped by hash tags. Excludes REDIS_URL and the REDIS_URL_* split.
   */
  REDIS_CLUSTER_NODES: list.optional(),
  /** Redis of the BullMQ queues (jobs, fair-share sets); default REDIS_URL. */
  REDIS_URL_QUEUES: z.string().optional(),
  /** Redis of the realtime side (Socket.IO adapter, canvas logs, event logs, devices, cancels, stream and socket leases); default REDIS_URL. */
  REDIS_URL_REALTIME: z.string().optional(),
  /** Redis of counters and small records (limits, budgets, throttles, idempotency, journeys, locks); default REDIS_URL. */
  REDIS_URL_CACHE: z.string().optional(),
  /** Prefix of every Redis key (BullMQ queues, rate limits, event logs): isolates deployments and tests. */
  REDIS_KEY_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/)
    .default('sb'),
  /** OpenAI-compatible endpoint. Unset (both) = the in-process offline demo model. */
  OPENAI_API_KEY: z.string().optional(),
  OPENAI_BASE_URL: z.url().optional(),
  /** Model for generation and chat, and models tried in order when it fails. */
  LLM_MODEL: z.string().default('gpt-4o-mini'),
  LLM_FALLBACK_MODELS: list.default([]),
  /**
   * The model ticket notes are written with: `provider:model` or a model of the first provider
   * (unset: the default model). Must be a configured one.
   */
  NOTES_MODEL: z.string().min(1).optional(),
  /**
   * Whether the short-form provider (OPENAI_BASE_URL) accepts Anthropic-style `cache_control` on
   * message parts (an Anthropic model behind OpenRouter or LiteLLM): long fixed system prompts are
   * then marked for prompt caching. LLM_PROVIDERS says it per provider (`promptCache`).
   */
  LLM_PROMPT_CACHE: z.enum(['true', 'false']).default('false'),
  /** Provider label recorded with token usage (openai, ollama, vllm, ...). */
  LLM_PROVIDER: z.string().default('openai'),
  /**
   * Several OpenAI-compatible providers, JSON: [{name, baseUrl, apiKeyEnv, models, kind?}].
   * The first provider's first model is the default. Unset = the short form above (one provider).
   */
  LLM_PROVIDERS: json.optional(),
  /** Fallback chain across providers, `provider:model` comma list, tried in order when a call fails. */
  LLM_FALLBACK: list.default([]),
  /**
   * `max_tokens` a budgeted model call (a user with budget limits) is sent with, and what the budget
   * reserves for its output: the provider stops there, so spent never passes a limit. Calls of
   * users without limits keep the provider's default.
   */
  LLM_MAX_TOKENS: int().min(1).max(1_000_000).default(8_192),
  /**
   * How long a model's answer stream may send nothing (no token, no keep-alive) before the attempt
   * is abandoned and the next model of the chain is tried: a stalled provider never holds a run.
   */
  LLM_STREAM_IDLE_TIMEOUT_MS: int().min(100).max(3_600_000).default(60_000),
  /** Embedding model. */
  EMBEDDING_MODEL: z.string().default('text-embedding-3-small'),
  /**
   * `1` = serve the offline demo model on purpose when no model is configured under
   * NODE_ENV=production (a demo or staging box); without it such a process refuses to start.
   */
  LLM_DEMO: z.enum(['0', '1']).default('0'),
  /** Pause per demo token or tool call, to watch streaming and inject faults mid-job. */
  DEMO_LLM_DELAY_MS: int().default(0),
  /**
   * JSON prices that win over the price catalog (@pydantic/genai-prices) and the free self-hosted
   * models: {"model": {"inputPerMillion": n, "outputPerMillion": n, "cachedInputPerMillion"?: n}}.
   */
  LLM_PRICING: json.optional(),
  /** HMAC secret for access tokens. Required in production; generated under DATA_DIR otherwise. */
  JWT_SECRET: z.string().min(32).optional(),
  ACCESS_TOKEN_TTL_SECONDS: int(60).default(900),
  REFRESH_TOKEN_TTL_DAYS: int(1).default(30),
  /**
   * Seconds during which a just-rotated refresh token, presented again by the client it was issued
   * to (same user agent and IP), gets a new pair in its session instead of counting as reuse: a
   * page that reloaded before storing its new cookie stays signed in. 0 turns the grace off; at most 60.
   */
  REFRESH_REUSE_GRACE_SECONDS: int(0).max(60).default(5),
  /** `/auth/login` attempts per client IP per minute (each costs an argon2 verification). */
  LOGIN_ATTEMPTS_PER_IP_PER_MINUTE: int(1).default(60),
  /** Consecutive wrong passwords for one account before it backs off (30 s, doubling, up to 15 min). */
  LOGIN_FAILURES_BEFORE_BACKOFF: int(1).default(5),
  /** `/auth/register` calls per client IP per hour. */
  REGISTRATIONS_PER_IP_PER_HOUR: int(1).default(50),
  /**
   * Public embed chats: requests per minute per embed token, and again per client IP on
   * each token; the next is 429 with Retry-After.
   */
  EMBED_RATE_LIMIT_PER_MINUTE: int(1).default(20),
  /** Express `trust proxy`: unset = the socket's address is the client IP; a hop count or a list of proxy addresses behind a reverse proxy. */
  TRUST_PROXY: z.string().optional(),
  /**
   * Browser origins (comma list of exact origins, e.g. `https://app.example.com`) allowed to call
   * the API and open sockets from another site; default none. `*`, paths and non-http(s) values are
   * refused: each entry is compared exactly with the request's `Origin`.
   */
  CORS_ORIGINS: list
    .pipe(
      z.array(
        z
          .string()
          .refine(
            isExactOrigin,
            'each entry must be an exact origin like https://app.example.com (scheme, host, optional port; no path, no wildcard)',
          ),
      ),
    )
    .default([]),
  /** base64 of 32 bytes: encrypts OAuth tokens at rest. */
  OAUTH_ENCRYPTION_KEY: z
    .string()
    .refine((value) => Buffer.from(value, 'base64').length === 32, 'must be base64 of 32 bytes')
    .optional(),
  /** Earlier OAUTH_ENCRYPTION_KEY values (comma list): their ciphertexts still decrypt and are re-encrypted on use. */
  OAUTH_ENCRYPTION_OLD_KEYS: list
    .pipe(z.array(z.string().refine((value) => Buffer.from(value, 'base64').length === 32, 'each old key must be base64 of 32 bytes')))
    .default([]),
  /**
   * Public base URL of this API (default http://HOST:PORT): OAuth redirect URIs use it, and its origin is
   * the one browser origin `/mcp` accepts besides CORS_ORIGINS.
   */
  PUBLIC_URL: z.url().optional(),
  /** Google OAuth client (Gmail agents) and the endpoints the SDK talks to (tests point them at local fakes). */
  GOOGLE_CLIENT_ID: z.string().optional(),
  GOOGLE_CLIENT_SECRET: z.string().optional(),
  GOOGLE_API_BASE_URL: z.url().default('https://gmail.googleapis.com/'),
  GOOGLE_OAUTH_BASE_URL: z.url().default('https://oauth2.googleapis.com'),
  GOOGLE_AUTHORIZE_URL: z.url().default('https://accounts.google.com/o/oauth2/v2/auth'),
  /** Microsoft identity platform client (Outlook and Teams agents), tenant, and endpoints. */
  MS_CLIENT_ID: z.string().optional(),
  MS_CLIENT_SECRET: z.string().optional(),
  MS_TENANT: z
    .string()
    .regex(/^[A-Za-z0-9.-]+$/)
    .default('common'),
  MS_GRAPH_BASE_URL: z.url().default('https://graph.microsoft.com'),
  MS_LOGIN_BASE_URL: z.url().default('https://login.microsoftonline.com'),
  /** Bounds of one local agent run: files, total bytes, bytes per file, and how long the device may take. */
  AGENT_RUN_MAX_FILES: int(1).default(200),
  AGENT_RUN_MAX_BYTES: int(1).default(5 * 1024 * 1024),
  AGENT_RUN_MAX_FILE_BYTES: int(1).default(512 * 1024),
  AGENT_RUN_TIMEOUT_MS: int(100).default(120_000),
  /** How long an agent run waits for its device to come online before it ends `timed_out` (default 7 days). */
  AGENT_DEVICE_WAIT_MS: int(100).default(7 * 24 * 3_600_000),
  /** Scheduler tick (node-cron expression; default every minute). */
  SCHEDULER_TICK_CRON: z.string().default('* * * * *'),
  /** How long an unfinished agent setup journey is kept. */
  JOURNEY_TTL_SECONDS: int(60).default(3600),
  /** HTTP Basic credentials for the queue dashboard. */
  ADMIN_USER: z.string().optional(),
  ADMIN_PASSWORD: z.string().optional(),
  /**
   * User ids (comma list) that hold admin rights besides those granted with `switchboard admin
   * grant`. Ids, never emails: an email is something a stranger can register.
   */
  ADMIN_USER_IDS: list.pipe(z.array(z.uuid('each entry must be a user id (uuid)'))).default([]),
  /** Bearer token `/metrics` requires (on PORT and METRICS_PORT); unset = open, as before. */
  METRICS_TOKEN: z.string().min(16).optional(),
  /** Blocks per broadcast chunk and pause between chunks. */
  BROADCAST_CHUNK_SIZE: int(1).default(10),
  BROADCAST_CHUNK_DELAY_MS: int().default(50),
  /** How long a canvas's room events stay replayable by `canvas:sync` (at least the 2-minute recovery window). */
  CANVAS_LOG_TTL_SECONDS: int(120).default(600),
  /** Room events kept per canvas for `canvas:sync` (approximate bound of its Redis stream). */
  CANVAS_LOG_MAX_EVENTS: int(10).default(1000),
  /** Messages one member may post to one room thread a minute (the next is 429 rate_limited). */
  ROOM_THREAD_MEMBER_MESSAGES_PER_MINUTE: int(1).default(10),
  /** Messages one room thread takes a minute from all its members together (the next is 429 rate_limited). */
  ROOM_THREAD_MESSAGES_PER_MINUTE: int(1).default(30),
  /** Most blocks one canvas holds: creating past it is 409 canvas_full, a generation keeps what fits. */
  MAX_BLOCKS_PER_CANVAS: int(1).default(10_000),
  /**
   * Open sockets one user may hold over every API node, `/canvas` and `/device` together;
   * the next connection fails with connect_error `too_many_sockets`.
   */
  MAX_SOCKETS_PER_USER: int(1).default(20),
  /** A node renews its sockets' places in that count this often ×3; a node killed without closing them frees them after this long. */
  SOCKET_LEASE_SECONDS: int(2).default(60),
  /** Past this many missed events `canvas:sync` answers `resync` (reloading the canvas is cheaper). */
  CANVAS_SYNC_MAX_EVENTS: int(1).default(500),
  /** Prompt guard: block (422), warn (log only) or off. */
  PROMPT_GUARD: z.enum(['block', 'warn', 'off']).default('block'),
  /**
   * SSE streams (generation events, chat turns, ticket notes) one user may hold open at once,
   * counted across every API node (a lease per stream in Redis); the next one answers 429.
   */
  MAX_STREAMS_PER_USER: int(1).default(20),
  /**
   * How often a quiet stream asks the database whether its generation, turn or notes ended without
   * a terminal event in the log (expired or lost log, dead worker), so that it can end too.
   */
  STREAM_CHECK_INTERVAL_MS: int(100).default(10_000),
  /** How long generation events stay replayable. */
  GENERATION_EVENTS_TTL_SECONDS: int(3600).default(6 * 3600),
  /** Jobs one worker process runs at once, per queue. */
  GENERATION_CONCURRENCY: int(1).default(4),
  BROADCAST_CONCURRENCY: int(1).default(8),
  /**
   * `assistant` jobs one worker process runs at once: chat, chatflow and journey turns, the resumes
   * after approvals and deadlines, ticket notes and session embeddings. A turn spends nearly all
   * its time waiting on the model, a device or the database, so a process holds many.
   */
  ASSISTANT_CONCURRENCY: int(1).max(1000).default(64),
  /**
   * How long a queue may go without a live worker (each worker process beats for its queues) before
   * the api warns in its log and `/readyz`, and requests that would wait on the queue answer 503
   * `queue_unconsumed` at once.
   */
  QUEUE_UNCONSUMED_SECONDS: int(1).max(3600).default(30),
  /** A job whose worker stops renewing its lock (crash, kill -9) goes back to waiting after this long. */
  WORKER_LOCK_MS: int(500).default(30_000),
  /**
   * A worker process renews a lease in Redis four times per this; once it lapses (kill -9, a lost
   * host), another worker process puts its running jobs back to waiting. 0 = no leases (jobs of a
   * dead worker wait for WORKER_LOCK_MS and BullMQ's stall check).
   */
  WORKER_LEASE_MS: z.coerce
    .number()
    .int()
    .refine((ms) => ms === 0 || ms >= 1_000, 'must be 0 (off) or at least 1000')
    .default(6_000),
  /** How often the reaper looks for work a crash left behind (generations, turns, approvals, runs, notes). */
  REAPER_INTERVAL_MS: int(100).default(30_000),
  /** Work younger than this is never reaped (covers the gap between a row and its job). */
  REAPER_GRACE_MS: int(0).default(60_000),
  /**
   * How long a budget reservation may stay open (its job queued, its model call running) before
   * the reaper settles it: released when no call took it, charged in full when its call's process died.
   */
  BUDGET_RESERVATION_TTL_MS: int(1_000).default(900_000),
  /**
   * The plans the tier table starts from: `default` (rate limits only, budgets unlimited, every
   * feature on) or `seed` (the product design's plans: free 100 model requests a month and cloud
   * models only, pro unlimited with local models, hourly limits on model calls, device operations
   * and approvals). `TIER_LIMITS` is laid over it.
   */
  TIER_PRESET: z.enum(['default', 'seed']).default('default'),
  /**
   * JSON override of the tier table, merged over the preset per key: rate limits, budgets
   * (`tokensPerHour`, `requestsPerHour`, `tokensPerMonth`, `costUsdPerMonth`, `requestsPerMonth`; null = unlimited) and
   * `features` (`localModels`, `cloudAgents`, `flows`): {"free": {"requestsPerMonth": 100, "features": {"localModels": false}}}.
   */
  TIER_LIMITS: json.optional(),
  /** Device tool call timeout and approval timeout. */
  DEVICE_RPC_TIMEOUT_MS: int(1).default(30_000),
  /** Plain-WebSocket devices: `ping` every this often, closed when no `pong` comes within the timeout. */
  DEVICE_WS_PING_INTERVAL_MS: int(50).default(30_000),
  DEVICE_WS_PONG_TIMEOUT_MS: int(50).default(10_000),
  HITL_TIMEOUT_MS: int(1).default(300_000),
  /** An agentflow HTTP tool call that has not answered in full by then fails. */
  FLOW_HTTP_TIMEOUT_MS: int(100).default(10_000),
  /** The most of an HTTP tool's response body a node reads; the rest is cut off. */
  FLOW_HTTP_MAX_RESPONSE_BYTES: int(1).default(65_536),
  /**
   * Origins whose HTTP tools may reach loopback and private addresses (comma list; none by
   * default: a flow's owner could otherwise reach the deployment's own network).
   */
  FLOW_HTTP_PRIVATE_ORIGINS: list.default([]),
  /**
   * Overrides of the coding agents (orchestrator, ask, coder, debug, architect), JSON: per agent any
   * of {description, toolsets, prompt, model: {provider, model} | null, maxToolIterations}.
   */
  CODING_AGENTS: json.optional(),
  /** A PSA call (pushing a session's ticket notes) that has not answered by then fails and is retried. */
  PSA_TIMEOUT_MS: int(100).default(15_000),
  /**
   * PSA base URL origins that may be plain http and reach loopback and private addresses (comma
   * list; none by default: a user could otherwise make the server call the deployment's own network).
   */
  PSA_PRIVATE_ORIGINS: list.default([]),
  /** A webhook receiver that has not answered in full by then counts as a failed attempt. */
  WEBHOOK_TIMEOUT_MS: int(100).default(10_000),
  /** Attempts of one webhook delivery (the first included) before it is marked failed. */
  WEBHOOK_ATTEMPTS: int(1).max(20).default(8),
  /** The first retry's delay; each later one waits twice as long as the one before. */
  WEBHOOK_BACKOFF_MS: int(10).default(10_000),
  /** Webhook deliveries one worker process sends at once. */
  WEBHOOK_CONCURRENCY: int(1).default(10),
  /**
   * Deliveries kept in one endpoint's log: finished ones past the newest this many are deleted as
   * new ones are written (one still being attempted stays until it ends).
   */
  WEBHOOK_DELIVERIES_KEPT: int(1).max(100_000).default(1_000),
  /**
   * Origins webhook endpoints may have on loopback and private addresses (comma list; none by
   * default: a user could otherwise make the deployment POST into its own network).
   */
  WEBHOOK_PRIVATE_ORIGINS: list.default([]),
  /** Largest document a knowledge base takes, in bytes (an upload or a fetched URL); larger ones are refused with 413. */
  KNOWLEDGE_MAX_FILE_BYTES: int(1)
    .max(512 * 1024 * 1024)
    .default(20 * 1024 * 1024),
  /** Files one upload request may carry. */
  KNOWLEDGE_MAX_FILES: int(1).max(100).default(10),
  /** Documents one knowledge base may hold. */
  KNOWLEDGE_MAX_DOCUMENTS: int(1).max(100_000).default(1_000),
  /**
   * How long a chat turn sent with files waits for their ingestion before it answers; past it the
   * turn answers that they are still being processed (later turns of the session read them).
   */
  KNOWLEDGE_CHAT_WAIT_MS: int(0).max(600_000).default(60_000),
  /** Knowledge documents one worker process ingests at once. */
  KNOWLEDGE_CONCURRENCY: int(1).max(64).default(2),
  /**
   * Origins a knowledge URL may have on loopback and private addresses (comma list; none by
   * default: a user could otherwise make the deployment fetch from its own network).
   */
  KNOWLEDGE_PRIVATE_ORIGINS: list.default([]),
  /** Rows one evaluation dataset may hold (an upload, or one made from past executions). */
  EVAL_MAX_ROWS: int(1).max(100_000).default(1_000),
  /** Largest evaluation dataset, as the JSON of its rows (or the CSV uploaded), in characters. */
  EVAL_MAX_DATASET_BYTES: int(1_000)
    .max(100 * 1024 * 1024)
    .default(2 * 1024 * 1024),
  /** Executions one evaluation may have running at once (a request may ask for fewer; 2 by default). */
  EVAL_MAX_CONCURRENCY: int(1).max(64).default(4),
  /** Evaluations one user may have running at once; past it a new one is refused (429 `too_many_evaluations`). */
  EVAL_MAX_RUNNING: int(1).max(100).default(3),
  /**
   * The proxy outbound model and tool calls go through (`http://[user:pass@]host:port`): for
   * `https:` targets and for `http:` targets. Unset: they connect directly. The lowercase
   * spellings (`https_proxy`, `http_proxy`, `no_proxy`) are read when the uppercase ones are unset.
   */
  HTTPS_PROXY: z.url({ protocol: /^https?$/ }).optional(),
  HTTP_PROXY: z.url({ protocol: /^https?$/ }).optional(),
  /** Hosts reached directly despite a proxy (comma list: `example.com` also covers its subdomains, `.example.com`, `host:port`, `*` for all). */
  NO_PROXY: z.string().optional(),
  /** Tools that need a human's approval besides every delete_* (comma list of tool names). */
  HITL_DANGEROUS_TOOLS: list.default([]),
  /** Deadline for a graceful shutdown. */
  SHUTDOWN_TIMEOUT_MS: int(100).default(10_000),
  /** Worker/scheduler-only processes serve /metrics and /healthz on this port (api processes use PORT). */
  METRICS_PORT: int().max(65_535).optional(),
  /**
   * A request's headers and body must arrive within this long (ms), or the connection answers 408
   * and closes: a client that trickles its body cannot hold a connection for minutes.
   */
  HTTP_REQUEST_TIMEOUT_MS: int(500).max(600_000).default(60_000),
  /**
   * Open connections one client IP may hold to the API at once (sockets and streams included); one
   * more is answered 429 and closed. Connections from a `TRUST_PROXY` address are not counted.
   */
  HTTP_MAX_CONNECTIONS_PER_IP: int(1).default(256),
  /** pino level. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** `json` (one object per line) or `pretty` (pino-pretty); unset = pretty on a terminal outside production. */
  LOG_FORMAT: z.enum(['json', 'pretty']).optional(),
});

export type Env = z.infer<typeof envSchema>;
