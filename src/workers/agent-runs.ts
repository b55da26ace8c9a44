import { onJobs } from './handlers';
import type { WorkerPorts } from './ports';

type Ports = Pick<WorkerPorts, 'agentRuns'>;

/** `agent-runs` queue: read a local agent's files (or take a cloud run's fetched items), extract, deliver. */
export const agentRunHandlers = onJobs('agent-runs', 'src/workers/agent-runs.ts', {
  // attemptsStarted > 1: a stalled job (its worker died) started again.
  'agent-run': (payload, job, { agentRuns }: Ports) => agentRuns.run(payload, { restarted: job.attemptsStarted > 1 }),
});

/** `connectors` queue: fetch a cloud agent's new mail or messages, then queue the run on `agent-runs`. */
export const connectorHandlers = onJobs('connectors', 'src/workers/agent-runs.ts', {
  'connector-fetch': (payload, job, { agentRuns }: Ports) =>
    agentRuns.fetch(payload, { last: job.attemptsMade + 1 >= (job.opts.attempts ?? 1) }),
});
