import { onJobs } from './handlers';
import type { WorkerPorts } from './ports';

/** `psa` queue: pushes of resolved sessions' ticket notes to their owners' PSA. */
type Ports = Pick<WorkerPorts, 'psaPush'>;

export const psaHandlers = onJobs('psa', 'src/workers/psa.ts', {
  'push-notes': (payload, job, { psaPush }: Ports) => psaPush.process(payload, job),
});
