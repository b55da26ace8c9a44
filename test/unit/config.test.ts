import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig, productionModelRequired, QUEUE_NAMES, sharedDatabaseRequired, sharedRedisRequired } from '../../config';
import { Pricing } from '../../src/budget/pricing';
import { envSchema } from '../../config/env';
import { QUEUE_CATALOG } from '../../src/producers/catalog';
import { DEFAULT_PRICING } from '../../config/pricing';
import { DEFAULT_TIER_LIMITS, mergeTierLimits, TIERS } from '../../config/tiers';

/** The ConfigError loadConfig throws for `env`, or a failure when it does not throw one. */
function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`expected loadConfig to reject ${JSON.stringify(env)}`);
}

/** `NAME=value` lines of a dotenv file (comments and blank lines skipped). */
function readDotenv(file: string): Record<string, string> {
  const entries = readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const equals = line.indexOf('=');
      return [line.slice(0, equals), line.slice(equals + 1)] as const;
    });
  return Object.fromEntries(entries);
}

describe('loadConfig defaults', () => {
  test('given an empty env, every section has its documented default', () => {
    const config = loadConfig({});

    expect(config.env).toBe('development');
    expect(config.roles).toEqual(['api', 'worker', 'scheduler']);
    expect(config.http).toEqual({ host: '127.0.0.1', port: 3000, bodyLimit: '1mb', requestTimeoutMs: 60_000, maxConnectionsPerIp: 256 });
    expect(config.data.dir).toBe('./.data');
    expect(config.database.url).toBeUndefined();
    expect(config.redis).toEqual({
      url: undefined,
      keyPrefix: 'sb',
      cluster: undefined,
      urls: { queues: undefined, realtime: undefined, cache: undefined },
    });
    expect(config.llm).toMatchObject({
      configured: false,
      model: 'demo',
      provider: 'demo',
      embeddingModel: 'demo',
      fallbackModels: [],
      demoDelayMs: 0,
    });
    expect(config.broadcast).toEqual({ chunkSize: 10, chunkDelayMs: 50, concurrency: 8 });
    expect(config.generation).toMatchObject({ promptGuard: 'block', maxPromptChars: 8_000, concurrency: 4 });
    expect(config.assistant).toEqual({ concurrency: 64 });
    expect(config.queues).toEqual({ names: [...QUEUE_NAMES], explicit: false, lockMs: 30_000, leaseMs: 6_000, unconsumedMs: 30_000 });
    expect(config.auth).toMatchObject({
      jwtSecret: undefined,
      accessTokenTtlSeconds: 900,
      refreshTokenTtlDays: 30,
      refreshReuseGraceSeconds: 5,
    });
    expect(config.admin).toEqual({ user: undefined, password: undefined, userIds: [] });
  });

  test('given an empty env, the tier table is the default one', () => {
    const { tiers } = loadConfig({});

    // Budgets unlimited and every feature on, unless TIER_LIMITS says otherwise.
    const open = {
      tokensPerHour: null,
      requestsPerHour: null,
      tokensPerMonth: null,
      costUsdPerMonth: null,
      requestsPerMonth: null,
      features: { localModels: true, cloudAgents: true, flows: true },
    };
    expect(tiers).toEqual({
      free: {
        generationsPerMinute: 5,
        generationsPerHour: 50,
        concurrentGenerations: 1,
        maxBlocksPerGeneration: 200,
        maxEnabledAgents: 2,
        maxKnowledgeFileBytes: 10 * 1024 * 1024,
        maxKnowledgeDocuments: 200,
        maxKnowledgeBases: 20,
        minScheduleIntervalSeconds: 900,
        ...open,
      },
      pro: {
        generationsPerMinute: 30,
        generationsPerHour: 1_000,
        concurrentGenerations: 4,
        maxBlocksPerGeneration: 200,
        maxEnabledAgents: 10,
        maxKnowledgeFileBytes: 50 * 1024 * 1024,
        maxKnowledgeDocuments: 2_000,
        maxKnowledgeBases: 200,
        minScheduleIntervalSeconds: 300,
        ...open,
      },
      enterprise: {
        generationsPerMinute: 120,
        generationsPerHour: 10_000,
        concurrentGenerations: 16,
        maxBlocksPerGeneration: 200,
        maxEnabledAgents: Infinity,
        maxKnowledgeFileBytes: Infinity,
        maxKnowledgeDocuments: Infinity,
        maxKnowledgeBases: Infinity,
        minScheduleIntervalSeconds: 60,
        ...open,
      },
    });
  });

  test('given variables set to empty strings, they count as unset', () => {
    const config = loadConfig({
      PORT: '',
      HOST: '',
      REDIS_URL: '',
      DATABASE_URL: '',
      SWITCHBOARD_ROLES: '',
      OPENAI_BASE_URL: '',
      OPENAI_API_KEY: '',
      TIER_LIMITS: '',
      NODE_ENV: '',
    });

    expect(config).toEqual(loadConfig({}));
  });

  test('given TIER_PRESET=seed, the tiers are the design’s plans without any JSON', () => {
    const { tiers, usageLimits, tierPreset } = loadConfig({ TIER_PRESET: 'seed' });
    expect(tierPreset).toBe('seed');
    // Free: 100 model requests a month, cloud models only; pro: unlimited requests, local models.
    expect(tiers.free).toEqual(
      expect.objectContaining({ requestsPerMonth: 100, requestsPerHour: 100, features: expect.objectContaining({ localModels: false }) }),
    );
    expect(tiers.pro).toEqual(
      expect.objectContaining({ requestsPerMonth: null, requestsPerHour: 100, features: expect.objectContaining({ localModels: true }) }),
    );
    // The design's hourly limits per user: 100 model calls (above), 1,000 file operations, 50 approval requests.
    for (const tier of ['free', 'pro'] as const)
      expect(usageLimits[tier]).toEqual(expect.objectContaining({ deviceOperationsPerHour: 1_000, approvalsPerHour: 50 }));
    // Enterprise plans are agreed per customer: nothing limited beyond the defaults.
    expect(tiers.enterprise).toEqual(loadConfig({}).tiers.enterprise);
    expect(usageLimits.enterprise).toEqual(loadConfig({}).usageLimits.enterprise);
    // The rest of each tier is the default one.
    expect(tiers.free.generationsPerMinute).toBe(loadConfig({}).tiers.free.generationsPerMinute);
    expect(tiers.free.features.flows).toBe(true);
  });

  test('given TIER_PRESET=seed and TIER_LIMITS, the JSON is laid over the preset key by key', () => {
    const { tiers, usageLimits } = loadConfig({
      TIER_PRESET: 'seed',
      TIER_LIMITS: JSON.stringify({
        free: { requestsPerMonth: 500, approvalsPerHour: 5, features: { flows: false } },
        pro: { requestsPerHour: null },
      }),
    });
    expect(tiers.free).toEqual(
      expect.objectContaining({
        requestsPerMonth: 500,
        requestsPerHour: 100,
        features: { localModels: false, cloudAgents: true, flows: false },
      }),
    );
    expect(usageLimits.free).toEqual(expect.objectContaining({ approvalsPerHour: 5, deviceOperationsPerHour: 1_000 }));
    expect(tiers.pro.requestsPerHour).toBeNull();
  });

  test('given an unknown TIER_PRESET or a bad hourly limit, loadConfig names it', () => {
    expect(configError({ TIER_PRESET: 'gold' }).issues.join('\n')).toMatch(/TIER_PRESET/);
    expect(configError({ TIER_LIMITS: JSON.stringify({ free: { approvalsPerHour: 0 } }) }).issues.join('\n')).toMatch(/approvalsPerHour/);
    expect(configError({ TIER_LIMITS: JSON.stringify({ free: { requestsPerHour: -1 } }) }).issues.join('\n')).toMatch(/requestsPerHour/);
  });

  test('given settings in process.env, loadConfig(env) reads only its argument', () => {
    const saved = process.env.PORT;
    process.env.PORT = '4321';
    try {
      expect(loadConfig({}).http.port).toBe(3000);
      expect(loadConfig({ PORT: '8080' }).http.port).toBe(8080);
    } finally {
      if (saved === undefined) delete process.env.PORT;
      else process.env.PORT = saved;
    }
  });
});

describe('loadConfig roles and queues', () => {
  test.each([
    ['api', ['api']],
    [' worker , api ', ['worker', 'api']],
    ['scheduler,scheduler', ['scheduler']],
    ['api,worker,scheduler', ['api', 'worker', 'scheduler']],
  ])('given SWITCHBOARD_ROLES=%j, roles are %j', (value, roles) => {
    expect(loadConfig({ SWITCHBOARD_ROLES: value }).roles).toEqual(roles);
  });

  test.each(['web', 'api,web', ','])('given SWITCHBOARD_ROLES=%j, loadConfig names the variable', (value) => {
    expect(configError({ SWITCHBOARD_ROLES: value }).message).toContain('SWITCHBOARD_ROLES');
  });

  test('given WORKER_QUEUES with known queues, only those are consumed and the list is explicit', () => {
    expect(loadConfig({ WORKER_QUEUES: 'generation, broadcast' }).queues).toEqual({
      names: ['generation', 'broadcast'],
      explicit: true,
      lockMs: 30_000,
      leaseMs: 6_000,
      unconsumedMs: 30_000,
    });
  });

  test('given WORKER_LEASE_MS, 0 turns the worker leases off and anything between 0 and 1000 is refused', () => {
    expect(loadConfig({ WORKER_LEASE_MS: '0' }).queues.leaseMs).toBe(0);
    expect(loadConfig({ WORKER_LEASE_MS: '2000' }).queues.leaseMs).toBe(2_000);
    expect(configError({ WORKER_LEASE_MS: '500' }).message).toContain('WORKER_LEASE_MS');
  });

  test('given ASSISTANT_CONCURRENCY, the assistant queue runs that many turns at once; 0 or a word is refused', () => {
    const config = loadConfig({ ASSISTANT_CONCURRENCY: '12' });
    expect(config.assistant.concurrency).toBe(12);
    const declared = QUEUE_CATALOG.assistant.concurrency;
    expect(typeof declared === 'function' ? declared(config) : declared).toBe(12);
    expect(configError({ ASSISTANT_CONCURRENCY: '0' }).message).toContain('ASSISTANT_CONCURRENCY');
    expect(configError({ ASSISTANT_CONCURRENCY: 'many' }).message).toContain('ASSISTANT_CONCURRENCY');
  });

  test('DATABASE_POOL_SIZE sizes the PostgreSQL pool (default 10); 0, a fraction or a word is refused', () => {
    expect(loadConfig({}).database.poolSize).toBe(10);
    expect(loadConfig({ DATABASE_POOL_SIZE: '40' }).database.poolSize).toBe(40);
    for (const bad of ['0', '2.5', 'lots']) expect(configError({ DATABASE_POOL_SIZE: bad }).message).toContain('DATABASE_POOL_SIZE');
  });

  test('given WORKER_QUEUES with unknown queues, the error lists each of them', () => {
    const error = configError({ WORKER_QUEUES: 'generation,emails,video' });

    expect(error.issues).toEqual([
      'WORKER_QUEUES: unknown queue(s) emails, video; the queues are generation, broadcast, assistant, embeddings, connectors, agent-runs, flows, psa, webhooks, knowledge',
    ]);
    expect(error.message).toContain('WORKER_QUEUES');
  });
});

describe('loadConfig validation', () => {
  test('given production with nothing else set, one refusal names every setting the start needs', () => {
    const { issues } = configError({ NODE_ENV: 'production' });

    expect(issues.map((issue) => issue.split(': required when')[0])).toEqual([
      'JWT_SECRET',
      'OAUTH_ENCRYPTION_KEY',
      'REDIS_URL',
      'OPENAI_BASE_URL / OPENAI_API_KEY (or LLM_PROVIDERS)',
    ]);
  });

  test('given production with a shared Redis but no secrets, the refusal names only the secrets', () => {
    const { issues } = configError({ NODE_ENV: 'production', REDIS_URL: 'redis://redis:6379', LLM_DEMO: '1' });

    expect(issues).toEqual(['JWT_SECRET: required when NODE_ENV=production', 'OAUTH_ENCRYPTION_KEY: required when NODE_ENV=production']);
  });

  test('given production with a 32-character JWT_SECRET and an encryption key, loadConfig accepts them', () => {
    const secret = 'x'.repeat(32);

    expect(
      loadConfig({ NODE_ENV: 'production', JWT_SECRET: secret, OAUTH_ENCRYPTION_KEY: randomBytes(32).toString('base64') }).auth.jwtSecret,
    ).toBe(secret);
  });

  test.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['OAUTH_ENCRYPTION_KEY', randomBytes(16).toString('base64')],
    ['OAUTH_ENCRYPTION_KEY', 'not base64 at all'],
    ['TIER_LIMITS', '{free: 1}'],
    ['TIER_LIMITS', '[1, 2]'],
    ['TIER_LIMITS', '{"gold": {"generationsPerMinute": 1}}'],
    ['TIER_LIMITS', '{"free": {"generationsPerMinute": 0}}'],
    ['TIER_LIMITS', '{"free": {"generationPerMinute": 10}}'],
    ['TIER_LIMITS', '{"free": {"requestsPerMonth": -1}}'],
    ['TIER_LIMITS', '{"free": {"tokensPerHour": 1.5}}'],
    ['TIER_LIMITS', '{"free": {"features": {"localModels": "no"}}}'],
    ['TIER_LIMITS', '{"free": {"features": {"teleport": true}}}'],
    ['LLM_PRICING', 'nope'],
    ['LLM_PRICING', '{"m": {"inputPerMillion": -1, "outputPerMillion": 1}}'],
    ['JWT_SECRET', 'too-short'],
    ['PROMPT_GUARD', 'maybe'],
    ['REDIS_KEY_PREFIX', 'has space'],
    ['OPENAI_BASE_URL', 'not a url'],
  ])('given %s=%j, the ConfigError names the variable', (name, value) => {
    const error = configError({ [name]: value });

    expect(error.issues).toHaveLength(1);
    expect(error.issues[0].startsWith(`${name}`)).toBe(true);
  });

  test('given a 32-byte base64 OAUTH_ENCRYPTION_KEY, it is accepted', () => {
    const key = randomBytes(32).toString('base64');

    expect(loadConfig({ OAUTH_ENCRYPTION_KEY: key }).oauth.encryptionKey).toBe(key);
  });

  test('given several bad variables, every one is listed in one error', () => {
    const error = configError({ WORKER_QUEUES: 'nope', TIER_LIMITS: '{"free": {"generationsPerHour": -5}}', NODE_ENV: 'production' });

    expect(error.issues.map((issue) => issue.split(':')[0]).sort()).toEqual([
      'JWT_SECRET',
      'OAUTH_ENCRYPTION_KEY',
      'OPENAI_BASE_URL / OPENAI_API_KEY (or LLM_PROVIDERS)',
      'REDIS_URL',
      'TIER_LIMITS',
      'WORKER_QUEUES',
    ]);
  });
});

describe('loadConfig Redis deployment', () => {
  test('REDIS_CLUSTER_NODES gives the cluster seeds, and a cluster counts as the shared Redis a split process needs', () => {
    const config = loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.5:6379, redis-b:7000,[::1]:7001', SWITCHBOARD_ROLES: 'api' });

    expect(config.redis.cluster).toEqual([
      { host: '10.0.0.5', port: 6379 },
      { host: 'redis-b', port: 7000 },
      { host: '::1', port: 7001 },
    ]);
    expect(sharedRedisRequired(config)).toBeNull();
  });

  test.each([
    [{ REDIS_CLUSTER_NODES: 'redis-a' }, 'REDIS_CLUSTER_NODES: redis-a is not host:port (e.g. 10.0.0.5:6379)'],
    [{ REDIS_CLUSTER_NODES: 'redis-a:99999' }, 'REDIS_CLUSTER_NODES: redis-a:99999 is not host:port (e.g. 10.0.0.5:6379)'],
    [
      { REDIS_CLUSTER_NODES: 'a:1', REDIS_URL: 'redis://b:6379' },
      'REDIS_CLUSTER_NODES: runs every Redis use on the cluster; unset REDIS_URL (one Redis deployment or the other)',
    ],
    [{ REDIS_URL_QUEUES: 'http://q:6379' }, 'REDIS_URL_QUEUES: must be a redis:// or rediss:// URL, e.g. redis://host:6379'],
    [
      { REDIS_URL_QUEUES: 'redis://q:6379' },
      'REDIS_URL: required when only some REDIS_URL_* are set (REDIS_URL_REALTIME, REDIS_URL_CACHE default to it)',
    ],
  ])('given %j, loadConfig refuses to start with a clear message', (env, issue) => {
    expect(configError(env).issues).toContain(issue);
  });

  test('each concern defaults to REDIS_URL; a REDIS_URL_* moves only its own', () => {
    const config = loadConfig({ REDIS_URL: 'redis://main:6379', REDIS_URL_QUEUES: 'redis://queues:6379' });

    expect(config.redis.urls).toEqual({ queues: 'redis://queues:6379', realtime: 'redis://main:6379', cache: 'redis://main:6379' });
  });

  test('all three concerns named need no REDIS_URL, and a production process accepts them as its shared Redis', () => {
    const config = loadConfig({
      REDIS_URL_QUEUES: 'redis://q:6379',
      REDIS_URL_REALTIME: 'redis://r:6379',
      REDIS_URL_CACHE: 'rediss://c:6380',
    });

    expect(sharedRedisRequired({ ...config, env: 'production' })).toBeNull();
  });

  test('a production process with no Redis setting at all still refuses to start', () => {
    const config = loadConfig({});

    expect(sharedRedisRequired({ ...config, env: 'production' })).toMatch(/^REDIS_URL: required when NODE_ENV=production/);
  });
});

describe('start requirements beyond the env schema', () => {
  test.each([
    [{ SWITCHBOARD_ROLES: 'api' }, /^DATABASE_URL: required when SWITCHBOARD_ROLES=api runs only some roles here/],
    [{ SWITCHBOARD_ROLES: 'worker,scheduler' }, /^DATABASE_URL: required when SWITCHBOARD_ROLES=worker,scheduler/],
    [{}, null],
    [{ SWITCHBOARD_ROLES: 'api', DATABASE_URL: 'postgres://db/sb' }, null],
    [{ SWITCHBOARD_ROLES: 'worker', DATABASE_URL: 'memory://' }, null],
  ])('given %j, the shared database requirement is %s', (env, expected) => {
    const issue = sharedDatabaseRequired(loadConfig(env));
    if (expected === null) expect(issue).toBeNull();
    else expect(issue).toMatch(expected);
  });

  const production = { NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32), OAUTH_ENCRYPTION_KEY: Buffer.alloc(32).toString('base64') };
  test.each([
    ['production, every role, no model', production, true],
    ['production, api only', { ...production, SWITCHBOARD_ROLES: 'api' }, true],
    ['production, a generation worker', { ...production, SWITCHBOARD_ROLES: 'worker', WORKER_QUEUES: 'generation' }, true],
    ['production, a broadcast-only worker', { ...production, SWITCHBOARD_ROLES: 'worker', WORKER_QUEUES: 'broadcast' }, false],
    ['production, a scheduler', { ...production, SWITCHBOARD_ROLES: 'scheduler' }, false],
    ['production with LLM_DEMO=1', { ...production, LLM_DEMO: '1' }, false],
    ['production with a model', { ...production, OPENAI_API_KEY: 'sk-test' }, false],
    ['development, no model', {}, false],
  ])('%s: the demo model is refused = %s', (_name, env, refused) => {
    const issue = productionModelRequired(loadConfig(env));
    if (refused)
      expect(issue).toMatch(/^OPENAI_BASE_URL \/ OPENAI_API_KEY \(or LLM_PROVIDERS\): required when NODE_ENV=production.*LLM_DEMO=1/);
    else expect(issue).toBeNull();
  });

  test('a model handed in by the embedder counts as configured', () => {
    expect(productionModelRequired(loadConfig(production), true)).toBeNull();
  });

  test('LLM_DEMO takes 0 or 1 only', () => {
    expect(configError({ LLM_DEMO: 'yes' }).issues[0]).toMatch(/^LLM_DEMO: /);
  });
});

describe('tiers', () => {
  test('given a partial TIER_LIMITS override, it merges over the defaults per tier and limit', () => {
    const { tiers } = loadConfig({
      TIER_LIMITS: JSON.stringify({ free: { generationsPerMinute: 10 }, enterprise: { maxEnabledAgents: 50 } }),
    });

    expect(tiers.free).toEqual({ ...DEFAULT_TIER_LIMITS.free, generationsPerMinute: 10 });
    expect(tiers.pro).toEqual(DEFAULT_TIER_LIMITS.pro);
    expect(tiers.enterprise).toEqual({ ...DEFAULT_TIER_LIMITS.enterprise, maxEnabledAgents: 50 });
  });

  test('webhook test sends and redeliveries have a per-minute limit per tier that TIER_LIMITS overrides', () => {
    expect(Object.fromEntries(TIERS.map((tier) => [tier, loadConfig({}).usageLimits[tier].webhookSendsPerMinute]))).toEqual({
      free: 10,
      pro: 30,
      enterprise: 120,
    });
    const { usageLimits } = loadConfig({ TIER_LIMITS: JSON.stringify({ free: { webhookSendsPerMinute: 2 } }) });
    expect(usageLimits.free.webhookSendsPerMinute).toBe(2);
    expect(() => loadConfig({ TIER_LIMITS: JSON.stringify({ free: { webhookSendsPerMinute: 0 } }) })).toThrow(
      /TIER_LIMITS: free\.webhookSendsPerMinute/,
    );
  });

  test("given WEBHOOK_DELIVERIES_KEPT, an endpoint's log keeps that many; the default is 1,000 and 0 is refused", () => {
    expect(loadConfig({}).webhooks.deliveriesKept).toBe(1_000);
    expect(loadConfig({ WEBHOOK_DELIVERIES_KEPT: '50' }).webhooks.deliveriesKept).toBe(50);
    expect(() => loadConfig({ WEBHOOK_DELIVERIES_KEPT: '0' })).toThrow(/WEBHOOK_DELIVERIES_KEPT/);
  });

  test('given no override, every budget is unlimited (null) and every feature on', () => {
    const { tiers } = loadConfig({});

    for (const tier of ['free', 'pro', 'enterprise'] as const) {
      expect(tiers[tier]).toEqual(
        expect.objectContaining({
          tokensPerHour: null,
          tokensPerMonth: null,
          costUsdPerMonth: null,
          requestsPerMonth: null,
          features: { localModels: true, cloudAgents: true, flows: true },
        }),
      );
    }
  });

  test('given budgets and some features in TIER_LIMITS, they apply to that tier and the other features keep their default', () => {
    const { tiers } = loadConfig({
      TIER_LIMITS: JSON.stringify({ free: { requestsPerMonth: 100, costUsdPerMonth: 2.5, features: { localModels: false } } }),
    });

    expect(tiers.free).toEqual({
      ...DEFAULT_TIER_LIMITS.free,
      requestsPerMonth: 100,
      costUsdPerMonth: 2.5,
      features: { localModels: false, cloudAgents: true, flows: true },
    });
    expect(tiers.pro.features).toEqual({ localModels: true, cloudAgents: true, flows: true });
  });

  test('a bad budget in TIER_LIMITS names the tier and the key in the start-up error', () => {
    const error = configError({ TIER_LIMITS: '{"free": {"requestsPerMonth": -1}}' });

    expect(error.issues[0]).toMatch(/^TIER_LIMITS: free\.requestsPerMonth /);
  });

  test('given an override, mergeTierLimits leaves the default table untouched', () => {
    const before = structuredClone(DEFAULT_TIER_LIMITS);

    mergeTierLimits({ pro: { concurrentGenerations: 99 } });

    expect(DEFAULT_TIER_LIMITS).toEqual(before);
  });
});

describe('pricing', () => {
  test('given no override, Pricing uses the list price per million tokens', () => {
    const { pricing } = loadConfig({}).llm;

    expect(Pricing.of(pricing).costOf({ model: 'gpt-4o-mini', inputTokens: 1_000_000, outputTokens: 1_000_000 })).toBeCloseTo(0.75, 10);
    expect(Pricing.of(pricing).costOf({ model: 'demo', inputTokens: 5_000, outputTokens: 5_000 })).toBe(0);
  });

  test('given a model with no price, the call costs 0', () => {
    expect(Pricing.of(DEFAULT_PRICING).costOf({ model: 'llama3:8b', inputTokens: 10_000, outputTokens: 10_000 })).toBe(0);
  });

  test('given LLM_PRICING, it adds and replaces models while keeping the rest', () => {
    const override = { 'my-model': { inputPerMillion: 1, outputPerMillion: 2 }, 'gpt-4o': { inputPerMillion: 0, outputPerMillion: 0 } };

    const { pricing } = loadConfig({ LLM_PRICING: JSON.stringify(override) }).llm;

    expect(Pricing.of(pricing).costOf({ model: 'my-model', inputTokens: 1_000_000, outputTokens: 500_000 })).toBeCloseTo(2, 10);
    expect(Pricing.of(pricing).costOf({ model: 'gpt-4o', inputTokens: 1_000_000, outputTokens: 1_000_000 })).toBe(0);
    // The rest keep their price: the demo model's own, the others the catalog's.
    expect(pricing.demo).toEqual(DEFAULT_PRICING.demo);
    expect(Pricing.of(pricing).costOf({ model: 'gpt-4.1', inputTokens: 1_000_000, outputTokens: 0 })).toBeCloseTo(2, 10);
  });

  test('given the same table twice, Pricing.of hands back one pricing (callers need not hold it)', () => {
    const { pricing } = loadConfig({}).llm;

    expect(Pricing.of(pricing)).toBe(Pricing.of(pricing));
    expect(Pricing.of(pricing)).not.toBe(Pricing.of({ ...pricing }));
  });
});

describe('LLM endpoint', () => {
  test('given no LLM_STREAM_IDLE_TIMEOUT_MS, a silent model stream is abandoned after a minute; a value overrides it; zero is refused', () => {
    expect(loadConfig({}).llm.streamIdleTimeoutMs).toBe(60_000);
    expect(loadConfig({ LLM_STREAM_IDLE_TIMEOUT_MS: '15000' }).llm.streamIdleTimeoutMs).toBe(15_000);
    expect(configError({ LLM_STREAM_IDLE_TIMEOUT_MS: '0' }).message).toContain('LLM_STREAM_IDLE_TIMEOUT_MS');
  });

  test('given OPENAI_BASE_URL, the LLM is configured with LLM_MODEL and the fallback list', () => {
    const { llm } = loadConfig({
      OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1',
      LLM_MODEL: 'llama3.1:8b',
      LLM_FALLBACK_MODELS: 'qwen2.5:7b, mistral ,',
      LLM_PROVIDER: 'ollama',
    });

    expect(llm).toMatchObject({
      configured: true,
      baseURL: 'http://127.0.0.1:11434/v1',
      model: 'llama3.1:8b',
      fallbackModels: ['qwen2.5:7b', 'mistral'],
      provider: 'ollama',
      embeddingModel: 'text-embedding-3-small',
    });
  });

  test('given only OPENAI_API_KEY, the LLM is configured with the default model', () => {
    expect(loadConfig({ OPENAI_API_KEY: 'sk-test' }).llm).toMatchObject({
      configured: true,
      apiKey: 'sk-test',
      model: 'gpt-4o-mini',
      provider: 'openai',
    });
  });

  test('given the short form, it is one provider whose extra models are the fallback chain', () => {
    const { llm } = loadConfig({
      OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1',
      LLM_MODEL: 'a',
      LLM_FALLBACK_MODELS: 'b',
      LLM_PROVIDER: 'ollama',
    });
    expect(llm.providers).toEqual([
      { name: 'ollama', baseURL: 'http://127.0.0.1:11434/v1', apiKey: 'not-set', models: ['a', 'b'], kind: 'openai', promptCache: false },
    ]);
    expect(llm.fallback).toEqual([{ provider: 'ollama', model: 'b' }]);
  });

  test('REFRESH_REUSE_GRACE_SECONDS: 0 turns the grace off; more than 60 or a fraction is refused', () => {
    expect(loadConfig({ REFRESH_REUSE_GRACE_SECONDS: '0' }).auth.refreshReuseGraceSeconds).toBe(0);
    expect(loadConfig({ REFRESH_REUSE_GRACE_SECONDS: '30' }).auth.refreshReuseGraceSeconds).toBe(30);
    expect(() => loadConfig({ REFRESH_REUSE_GRACE_SECONDS: '61' })).toThrow(/REFRESH_REUSE_GRACE_SECONDS/);
    expect(() => loadConfig({ REFRESH_REUSE_GRACE_SECONDS: '1.5' })).toThrow(/REFRESH_REUSE_GRACE_SECONDS/);
  });

  test('NOTES_MODEL names a configured model (provider:model or a model of the first provider); LLM_PROMPT_CACHE marks the short form', () => {
    const short = { OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1', LLM_MODEL: 'a', LLM_FALLBACK_MODELS: 'b', LLM_PROVIDER: 'p' };
    expect(loadConfig({ ...short, NOTES_MODEL: 'b' }).llm.notesModel).toEqual({ provider: 'p', model: 'b' });
    expect(loadConfig({ ...short, NOTES_MODEL: 'p:a' }).llm.notesModel).toEqual({ provider: 'p', model: 'a' });
    expect(loadConfig(short).llm.notesModel).toBeUndefined();
    expect(() => loadConfig({ ...short, NOTES_MODEL: 'claude-haiku' })).toThrow(/NOTES_MODEL/);
    expect(loadConfig({ ...short, LLM_PROMPT_CACHE: 'true' }).llm.providers[0].promptCache).toBe(true);
    expect(() => loadConfig({ ...short, LLM_PROMPT_CACHE: 'yes' })).toThrow(/LLM_PROMPT_CACHE/);
  });

  test('given LLM_PROVIDERS and LLM_FALLBACK, keys come from the named env variables and the chain crosses providers', () => {
    const { llm } = loadConfig({
      LLM_PROVIDERS: JSON.stringify([
        { name: 'openai', baseUrl: 'https://api.openai.com/v1', apiKeyEnv: 'OPENAI_KEY_MAIN', models: ['gpt-4o-mini', 'gpt-4o'] },
        { name: 'local', baseUrl: 'http://127.0.0.1:11434/v1', models: ['llama3.1:8b'], kind: 'ollama' },
      ]),
      OPENAI_KEY_MAIN: 'sk-main',
      LLM_FALLBACK: 'local:llama3.1:8b, openai:gpt-4o',
    });
    expect(llm.configured).toBe(true);
    expect(llm.providers.map((p) => [p.name, p.apiKey, p.kind])).toEqual([
      ['openai', 'sk-main', 'openai'],
      ['local', 'not-set', 'ollama'],
    ]);
    expect(llm.fallback).toEqual([
      { provider: 'local', model: 'llama3.1:8b' },
      { provider: 'openai', model: 'gpt-4o' },
    ]);
  });

  test('given a fallback naming an unknown model, a key variable that is unset, or duplicate names, loadConfig refuses', () => {
    const providers = [{ name: 'openai', baseUrl: 'https://api.openai.com/v1', apiKeyEnv: 'KEY_NOT_SET', models: ['gpt-4o-mini'] }];
    expect(configError({ LLM_PROVIDERS: JSON.stringify(providers), LLM_FALLBACK: 'openai:gpt-5' }).issues).toEqual([
      expect.stringMatching(/LLM_PROVIDERS: .*KEY_NOT_SET/),
      expect.stringMatching(/LLM_FALLBACK: openai:gpt-5/),
    ]);
    expect(configError({ LLM_PROVIDERS: JSON.stringify([...providers, ...providers]) }).issues[0]).toMatch(/unique/);
    expect(configError({ LLM_PROVIDERS: '[]' }).issues[0]).toMatch(/^LLM_PROVIDERS/);
  });
});

describe('loadConfig CORS_ORIGINS', () => {
  test('given no CORS_ORIGINS, no origin is allowed', () => {
    expect(loadConfig({}).cors).toEqual({ origins: [] });
  });

  test('given a comma list of exact origins, each is kept as written', () => {
    expect(loadConfig({ CORS_ORIGINS: ' https://app.example.com , http://localhost:5173 ' }).cors.origins).toEqual([
      'https://app.example.com',
      'http://localhost:5173',
    ]);
  });

  test.each([
    '*',
    'https://*.example.com',
    'app.example.com',
    'https://app.example.com/',
    'https://app.example.com/path',
    'ftp://files.example.com',
    'https://App.Example.com',
    'https://app.example.com:443',
    'null',
    'https://ok.example.com,garbage',
  ])('given CORS_ORIGINS=%j, loadConfig refuses it and says what an origin looks like', (value) => {
    const error = configError({ CORS_ORIGINS: value });

    expect(error.message).toContain('CORS_ORIGINS');
    expect(error.message).toContain('exact origin like https://app.example.com');
  });
});

describe('.env.example', () => {
  const example = readDotenv(path.join(__dirname, '../../.env.example'));

  test('documents every variable of the env schema', () => {
    const missing = Object.keys(envSchema.shape).filter((name) => !(name in example));

    expect(missing).toEqual([]);
  });

  test('documents no variable the schema does not know', () => {
    const unknown = Object.keys(example).filter((name) => !(name in envSchema.shape));

    expect(unknown).toEqual([]);
  });

  test('shows the real defaults: loading it gives the same config as an empty env', () => {
    expect(loadConfig(example)).toEqual(loadConfig({}));
  });
});
