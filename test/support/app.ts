import { randomUUID } from 'node:crypto';
import { loadConfig } from '../../config';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app/switchboard';
import { createLogger } from '../../src/lib/logger';
import { createTestDatabase } from './database';
import { testRedisEnv } from './database';
import { startScriptedLLM, type ScriptedLLM } from './scripted-llm';
import type { ChatResponder, ChatTurn } from '../../src/demo-model/openai-compatible-server';

export interface TestApp {
  app: RunningSwitchboard;
  url: string;
  api: string;
  llm: ScriptedLLM;
  keyPrefix: string;
  stop(): Promise<void>;
}

/**
 * Switchboard with every role in this process, on the run's private Redis (own key prefix, so
 * own queues), its own database, and a scripted OpenAI-compatible model.
 */
export async function startTestApp(
  options: {
    env?: Record<string, string>;
    /** Turns played in order, one per model request. */
    script?: ChatTurn[];
    /** Answers every request once the scripted turns are used up (e.g. to hold a turn open). */
    responder?: ChatResponder;
    /** Pause of the scripted model before each streamed piece (to act while it streams). */
    llmDelayMs?: number;
    /** Receives every log line (JSON) at `logLevel` (default debug) instead of discarding them. */
    logs?: (line: string) => void;
    logLevel?: string;
    /** Another OpenAI-compatible server the app's models are on, instead of the scripted one (which still runs). */
    llmBaseURL?: string;
    /** The scripted provider accepts Anthropic-style `cache_control` (LLM_PROMPT_CACHE). */
    promptCache?: boolean;
    /** Redis settings instead of the run's Redis (a cluster's REDIS_CLUSTER_NODES, a split's REDIS_URL_*). */
    redis?: Record<string, string>;
    /** The process's own metric families on /metrics (off by default: see `testConfig`). */
    processMetrics?: boolean;
  } = {},
): Promise<TestApp> {
  const database = await createTestDatabase({ migrated: true });
  const llm = await startScriptedLLM(options.responder ?? [], { delayMs: options.llmDelayMs });
  if (options.script) llm.push(...options.script);
  const keyPrefix = `t-${randomUUID().slice(0, 8)}`;
  const config = testConfig({
    keyPrefix,
    databaseUrl: database.url,
    env: { BROADCAST_CHUNK_DELAY_MS: '5', ...options.env },
    redis: options.redis,
    processMetrics: options.processMetrics,
  });
  const app = await startSwitchboard(config, {
    logger: options.logs
      ? createLogger({ level: options.logLevel ?? 'debug', destination: { write: (line: string) => void options.logs!(line) } })
      : createLogger({ level: config.log.level }),
    endpoint: {
      baseURL: options.llmBaseURL ?? llm.baseURL,
      apiKey: 'test',
      provider: 'scripted',
      models: [config.llm.configured ? config.llm.model : 'scripted-model', ...config.llm.fallbackModels],
      promptCache: options.promptCache,
    },
  });
  return {
    app,
    url: app.url!,
    api: `${app.url}/api/v1`,
    llm,
    keyPrefix,
    stop: async () => {
      await app.stop();
      await llm.close();
      await database.drop();
    },
  };
}

/**
 * The configuration every in-process test app uses: the run's Redis, a given database and key prefix.
 * Without the process's own metric families unless asked: their GC observer outlives the app, and
 * under jest it would keep each finished test file's whole module graph in the worker's heap.
 */
export function testConfig(options: {
  keyPrefix: string;
  databaseUrl: string;
  env?: Record<string, string>;
  redis?: Record<string, string>;
  processMetrics?: boolean;
}) {
  const config = loadConfig({
    NODE_ENV: 'test',
    PORT: '0',
    ...(options.redis ?? testRedisEnv()),
    REDIS_KEY_PREFIX: options.keyPrefix,
    DATABASE_URL: options.databaseUrl,
    DATA_DIR: `${process.cwd()}/.data/test`,
    JWT_SECRET: 'test-secret-test-secret-test-secret-0123456789',
    SHUTDOWN_TIMEOUT_MS: '5000',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    // A test's victim and thief are one process (same user agent and address), so to the server
    // they are one client: reuse detection is tested strictly, and the grace suite turns it on.
    REFRESH_REUSE_GRACE_SECONDS: '0',
    ...options.env,
  });
  return { ...config, metrics: { ...config.metrics, processMetrics: options.processMetrics ?? false } };
}
