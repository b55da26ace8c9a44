import { agentRunHandlers, connectorHandlers } from './agent-runs';
import { assistantHandlers } from './assistant';
import { broadcastHandlers } from './broadcast';
import { embeddingHandlers } from './embeddings';
import { evaluationHandlers } from './evaluations';
import { flowHandlers } from './flows';
import { generationHandlers } from './generation';
import { webhookHandlers } from './webhooks';
import { knowledgeHandlers } from './knowledge';
import { psaHandlers } from './psa';
import type { JobHandlers } from './handlers';
import type { WorkerPorts } from './ports';

/**
 * Every job handler of the worker role. `resolveHandlers` checks this list against the catalog
 * when a worker starts: each declared job has exactly one handler here.
 */
export const JOB_HANDLERS: readonly JobHandlers<WorkerPorts>[] = [
  generationHandlers,
  broadcastHandlers,
  assistantHandlers,
  embeddingHandlers,
  agentRunHandlers,
  connectorHandlers,
  flowHandlers,
  evaluationHandlers,
  psaHandlers,
  webhookHandlers,
  knowledgeHandlers,
];
