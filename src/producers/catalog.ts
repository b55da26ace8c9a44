import type { z } from 'zod';
import type { QueueName } from '../../config';
import { agentRunsQueue } from './agent-runs';
import { assistantQueue } from './assistant';
import { broadcastQueue } from './broadcast';
import { connectorsQueue } from './connectors';
import type { JobDeclaration, QueueDeclaration } from './define';
import { embeddingsQueue } from './embeddings';
import { flowsQueue } from './flows';
import { knowledgeQueue } from './knowledge';
import { generationQueue } from './generation';
import { webhooksQueue } from './webhooks';
import { psaQueue } from './psa';

/**
 * Every queue, one declaration each: job names, payload schemas, job options and ids,
 * concurrency and limiter. `enqueue()` (./registry.ts) and the worker pools (src/workers/) are
 * derived from it. `satisfies` makes the compiler refuse a queue name of the config
 * (`QUEUE_NAMES`, which WORKER_QUEUES is checked against) that has no declaration, or the reverse.
 * Declarations only: the API imports this, so nothing here may import a handler.
 */
export const QUEUE_CATALOG = {
  generation: generationQueue,
  broadcast: broadcastQueue,
  assistant: assistantQueue,
  embeddings: embeddingsQueue,
  connectors: connectorsQueue,
  'agent-runs': agentRunsQueue,
  flows: flowsQueue,
  psa: psaQueue,
  webhooks: webhooksQueue,
  knowledge: knowledgeQueue,
} as const satisfies { [Q in QueueName]: QueueDeclaration<Q> };

export type QueueCatalog = typeof QUEUE_CATALOG;
/** The job names of queue `Q`. */
export type JobName<Q extends QueueName> = keyof QueueCatalog[Q]['jobs'] & string;
type SchemaOf<Q extends QueueName, J extends JobName<Q>> = QueueCatalog[Q]['jobs'][J] extends JobDeclaration<infer S> ? S : never;
/** What a producer passes (defaults may be left out). */
export type JobInput<Q extends QueueName, J extends JobName<Q>> = z.input<SchemaOf<Q, J>>;
/** What a handler receives: the payload as parsed. */
export type JobPayload<Q extends QueueName, J extends JobName<Q>> = z.output<SchemaOf<Q, J>>;

/** The declaration of `queue`'s job `name`, or undefined when the queue has no such job. */
export function jobDeclaration(queue: QueueName, name: string): JobDeclaration | undefined {
  const jobs: Record<string, JobDeclaration> = QUEUE_CATALOG[queue].jobs;
  return Object.hasOwn(jobs, name) ? jobs[name] : undefined;
}
