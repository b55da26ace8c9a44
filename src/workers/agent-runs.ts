import { DelayedError } from 'bullmq';
import { onJobs } from './handlers';
import type { WorkerPorts } from './ports';

type Ports = Pick<WorkerPorts, 'agentRuns'>;

/** How long a run whose device is serving another run waits on its queue before it asks again. */
const DEVICE_BUSY_RETRY_MS = 1_000;

/** `agent-runs` queue: read a local agent's files (or take a cloud run's fetched items), extract, deliver. */
export const agentRunHandlers = onJobs('agent-runs', 'src/workers/agent-runs.ts', {
  'agent-run': async (payload, job, { agentRuns }: Ports) => {
    const waits = payload.deviceWaits ?? 0;
    // A start beyond the first and beyond its waits for the device: a stalled job (its worker died) started again.
    const result = await agentRuns.run(payload, { restarted: job.attemptsStarted > 1 + waits });
    if (!('deviceBusy' in result)) return result;
    // One run at a time per device: this one goes back to the queue until the device is free.
    await job.updateData({ ...job.data, deviceWaits: waits + 1 });
    await job.moveToDelayed(Date.now() + DEVICE_BUSY_RETRY_MS, job.token);
    throw new DelayedError();
  },
});

/** `connectors` queue: fetch a cloud agent's new mail or messages, then queue the run on `agent-runs`. */
export const connectorHandlers = onJobs('connectors', 'src/workers/agent-runs.ts', {
  'connector-fetch': (payload, job, { agentRuns }: Ports) =>
    agentRuns.fetch(payload, { last: job.attemptsMade + 1 >= (job.opts.attempts ?? 1) }),
});
