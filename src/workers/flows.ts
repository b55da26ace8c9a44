import { onJobs } from './handlers';
import type { WorkerPorts } from './ports';

/** `flows` queue: one job is one node of an agentflow execution; a thin handler over the runner. */
export const flowHandlers = onJobs('flows', 'src/workers/flows.ts', {
  node: (payload, job, { flows }: Pick<WorkerPorts, 'flows'>) => flows.process(payload, job),
});
