import type { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { startDemoLLM } from '../ai/demo-llm';
import { createTextEmbedder } from '../ai/embeddings';
import type { LlmEndpoint } from '../ai/llm';
import { ModelGateway } from '../ai/model-gateway';
import { dangerousToolPolicy, type ApprovalService } from '../assistant/approvals';
import { AssistantRunner } from '../assistant/assistant-runner';
import type { ChatCancels } from '../assistant/chat-cancel';
import type { ChatEventLog } from '../assistant/chat-events';
import { NotesEventLog } from '../assistant/notes-events';
import { SessionNotesRunner } from '../assistant/session-notes-runner';
import { JourneyRunner } from '../agents/journey-runner';
import { AgentRunner } from '../agents/agent-runner';
import type { CredentialVault } from '../agents/credentials';
import type { AgentRunChannel } from '../agents/run-channel';
import type { DeviceRegistry } from '../devices/device-registry';
import type { DeviceChannel } from '../devices/device-channel';
import { GenerationRunner, type GenerationRunnerDeps } from '../generation/generation-runner';
import type { Metrics } from '../observability/metrics';
import { Reaper } from './reaper';
import { createAgentRunsProcessor, createConnectorsProcessor } from '../workers/agent-runs';
import { createAssistantProcessor } from '../workers/assistant';
import { createBroadcastProcessor } from '../workers/broadcast';
import { createEmbeddingsProcessor, EMBEDDINGS_CONCURRENCY } from '../workers/embeddings';
import { createGenerationProcessor } from '../workers/generation';
import { startWorkers, type QueueProcessor } from '../workers/worker-pool';

/** Assistant turns per worker process: they mostly wait on the model and on devices, not on CPU. */
const ASSISTANT_CONCURRENCY = 10;
/** Agent runs and connector fetches per worker process: they wait on devices, providers and the model. */
const AGENT_RUN_CONCURRENCY = 4;

/** What the generation runner needs (its endpoint is resolved here), plus what the other queues use. */
export interface WorkerRoleDeps extends Omit<GenerationRunnerDeps, 'models' | 'metrics'> {
  connection: Redis;
  metrics: Metrics;
  /** The process's device channel: tool calls, chat text and agent runs reach devices on any node. */
  devices: DeviceChannel;
  /** The process's one approval service (shared with the API role when both run here). */
  approvals: ApprovalService;
  chatEvents: ChatEventLog;
  /** Ends chat turns stopped by a cancel (SPEC §11). */
  chatCancels: ChatCancels;
  /** Agent runs: who is online, the frames of local runs, and sealed OAuth tokens. */
  deviceRegistry: DeviceRegistry;
  agentRunChannel: AgentRunChannel;
  vault: CredentialVault;
  /** Overrides the configured model endpoint (tests point it at a scripted server). */
  endpoint?: LlmEndpoint;
}

/**
 * The worker role: the model endpoint (the in-process demo model when none is configured) and one
 * BullMQ Worker per queue. Loaded with a dynamic import, so API-only processes never load
 * LangChain or the model client.
 */
export async function startWorkerRole(deps: WorkerRoleDeps) {
  const { config } = deps;
  const closers: Array<[string, () => Promise<unknown>]> = [];
  const gatewayDeps = { pricing: config.llm.pricing, usage: deps.repos.usage, metrics: deps.metrics };
  let endpoint = deps.endpoint;
  let models: ModelGateway;
  let summary: string;
  if (endpoint) {
    models = ModelGateway.fromEndpoint(endpoint, gatewayDeps);
    summary = `${endpoint.provider} ${endpoint.models.join(' → ')} at ${endpoint.baseURL}`;
  } else if (config.llm.providers.length) {
    const [first] = config.llm.providers;
    models = new ModelGateway(config.llm.providers, [{ provider: first.name, model: first.models[0] }, ...config.llm.fallback], gatewayDeps);
    // Embeddings use the default provider's endpoint.
    endpoint = { baseURL: first.baseURL, apiKey: first.apiKey, provider: first.name, models: first.models };
    summary = models.chain.map((ref) => `${ref.provider}:${ref.model}`).join(' → ');
  } else {
    const demo = await startDemoLLM({ delayMs: config.llm.demoDelayMs });
    closers.push(['demo llm', () => demo.close()]);
    endpoint = { baseURL: demo.baseURL, apiKey: 'demo', provider: 'demo', models: ['demo'] };
    models = ModelGateway.fromEndpoint(endpoint, gatewayDeps);
    summary = `DEMO model at ${endpoint.baseURL} (offline and deterministic: NOT a real language model; set OPENAI_BASE_URL / OPENAI_API_KEY for one)`;
  }

  // One subscriber connection per worker process hears every cancel request (SPEC §11).
  await deps.signals.listen();
  const runner = new GenerationRunner({ ...deps, models });
  // Dangerous tool calls park the turn until the user decides (0021).
  const assistant = new AssistantRunner({ ...deps, models, policy: dangerousToolPolicy(config.hitl.dangerousTools) });
  const notesEvents = new NotesEventLog(deps.connection, config.redis.keyPrefix);
  const notes = new SessionNotesRunner({ ...deps, models, notesEvents });
  const journey = new JourneyRunner({ ...deps, models, redis: deps.connection });
  const agentRuns = new AgentRunner({ ...deps, models, registry: deps.deviceRegistry, channel: deps.agentRunChannel });
  const processors: Partial<Record<string, QueueProcessor>> = {
    generation: { processor: createGenerationProcessor(runner), concurrency: config.generation.concurrency },
    broadcast: { processor: createBroadcastProcessor(deps), concurrency: config.broadcast.concurrency },
    assistant: { processor: createAssistantProcessor(assistant, notes, journey), concurrency: ASSISTANT_CONCURRENCY },
    embeddings: {
      processor: createEmbeddingsProcessor({ ...deps, embedder: createTextEmbedder(endpoint, config.llm.embeddingModel) }),
      concurrency: EMBEDDINGS_CONCURRENCY,
    },
    'agent-runs': { processor: createAgentRunsProcessor(agentRuns), concurrency: AGENT_RUN_CONCURRENCY },
    // A limiter far above real use: it is there so a provider 429's queue.rateLimit pauses every worker.
    connectors: { processor: createConnectorsProcessor(agentRuns), concurrency: AGENT_RUN_CONCURRENCY, limiter: { max: 1_000, duration: 1_000 } },
  };
  const queueNames = config.queues.explicit ? config.queues.names : config.queues.names.filter((name) => processors[name]);
  const workers: Worker[] = startWorkers({
    queues: queueNames,
    processors,
    connection: deps.connection,
    keyPrefix: config.redis.keyPrefix,
    logger: deps.logger,
    metrics: deps.metrics,
    lockMs: config.queues.lockMs,
  });
  // Workers first (they finish their active jobs), then the model they were calling.
  closers.unshift(['workers', () => Promise.allSettled(workers.map((worker) => worker.close()))]);
  // Work a dead process left open is ended or resumed: at start, then every REAPER_INTERVAL_MS.
  const reaper = new Reaper({ ...deps, redis: deps.connection, notesEvents });
  reaper.start();
  closers.unshift(['reaper', () => reaper.stop()]);
  return { summary, closers };
}
