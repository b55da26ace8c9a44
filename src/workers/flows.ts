import { onJobs } from './handlers';
import type { WorkerPorts } from './ports';

/** `flows` queue: a node of an agentflow execution, or a trigger's fire; thin handlers over the runner and the firer. */
export const flowHandlers = onJobs('flows', 'src/workers/flows.ts', {
  node: (payload, job, { flows }: Pick<WorkerPorts, 'flows' | 'triggers'>) => flows.process(payload, job),
  trigger: (payload, job, { triggers }: Pick<WorkerPorts, 'flows' | 'triggers'>) => triggers.process(payload, job),
});
