import type { Config } from '../../config';
import type { AgentRunner } from '../agents/agent-runner';
import type { JourneyRunner } from '../agents/journey-runner';
import type { AssistantRunner } from '../assistant/assistant-runner';
import type { SessionNotesRunner } from '../assistant/session-notes-runner';
import type { PsaPush } from '../assistant/psa-push';
import type { FlowRunner } from '../flows/flow-runner';
import type { EvaluationRunner } from '../evals/evaluation-runner';
import type { ChatflowRunner } from '../flows/chatflow-runner';
import type { GenerationEventLog } from '../generation/event-log';
import type { GenerationRunner } from '../generation/generation-runner';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { Metrics } from '../observability/metrics';
import type { Enqueue } from '../producers/registry';
import type { CanvasEmitter } from '../realtime/canvas-emitter';
import type { BatchedEmbedder } from '../ai/embeddings';
import type { WebhookService } from '../webhooks/webhook-service';
import type { RunKernel } from '../runs/run-kernel';
import type { KnowledgeIngester } from '../knowledge/ingester';
import type { TriggerFirer } from '../triggers/trigger-firer';

/**
 * What job handlers are given: built once per worker process (src/app/worker-role.ts) and handed
 * to every handler as its third argument. Each handler module names the slice it reads
 * (`Pick<WorkerPorts, …>`), so a handler can be read, and tested, alone. The runners are the
 * services thin handlers call; they were built from these same ports.
 */
export interface WorkerPorts {
  config: Config;
  log: Logger;
  metrics: Metrics;
  repos: Repositories;
  /** The catalog's typed enqueue (src/producers/registry.ts). */
  enqueue: Enqueue;
  /** Canvas room events, to every API node (the adapter carries them). */
  emit: CanvasEmitter;
  /** Generation event logs (and the blocks a runner keeps for its broadcast). */
  events: GenerationEventLog;
  generations: GenerationRunner;
  assistant: AssistantRunner;
  notes: SessionNotesRunner;
  /** Pushes of ticket notes to users' PSA. */
  psaPush: PsaPush;
  journeys: JourneyRunner;
  /** Chatflow chat turns. */
  chatflows: ChatflowRunner;
  agentRuns: AgentRunner;
  /** Agentflow nodes. */
  flows: FlowRunner;
  /** Evaluations: rows started as flow executions, answers scored. */
  evaluations: EvaluationRunner;
  /** Flow trigger fires: admitted (concurrency) and started as executions. */
  triggers: TriggerFirer;
  /** The process's embedding model behind one micro-batcher. */
  embedder: BatchedEmbedder;
  /** Webhook deliveries: one signed attempt each. */
  webhooks: WebhookService;
  /** Runs' waitpoints: a deadline's delayed job completes its waitpoint through the run kernel. */
  waits: Pick<RunKernel, 'completeDeadline'>;
  /** Knowledge documents' ingestions: parse, chunk, embed, store. */
  knowledge: KnowledgeIngester;
}
