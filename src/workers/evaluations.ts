import { onJobs } from './handlers';
import type { WorkerPorts } from './ports';

/** The evaluation jobs of the `flows` queue: thin handlers over the evaluation runner. */
export const evaluationHandlers = onJobs('flows', 'src/workers/evaluations.ts', {
  'evaluation-advance': (payload, _job, { evaluations }: Pick<WorkerPorts, 'evaluations'>) => evaluations.advance(payload.evaluationId),
  'evaluation-score': (payload, _job, { evaluations }: Pick<WorkerPorts, 'evaluations'>) =>
    evaluations.score(payload.evaluationId, payload.executionId),
});
