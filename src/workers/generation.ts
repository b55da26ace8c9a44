import { onJobs } from './handlers';
import type { WorkerPorts } from './ports';

/** `generation` queue: a thin handler over the runner. */
export const generationHandlers = onJobs('generation', 'src/workers/generation.ts', {
  generate: (payload, job, { generations }: Pick<WorkerPorts, 'generations'>) => generations.process(payload, job),
});
